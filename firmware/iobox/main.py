# StringCare relay/IO box: the entry a box runs at boot (copied to /main.py by
# `stringcare deploy`).  The bundle's stringcare_bundle.py says which board this is;
# its hardware shell is boards/<board>/hal.py, the logic shared/relaybox.py (the
# communication watchdog that releases the alarm contact, docs/protocol.md §5.1), the
# loop shared/busdevice.py.
import stringcare_bundle as bundle

import boards
from shared import busdevice, version
from shared import relaybox as rb
from shared.relaybox import RelayBoxCore

settings = boards.settings()
hal = boards.shell(bundle.BOARD, settings)
core = RelayBoxCore(hal.box, hal.uid, hal.hw_rev, hal.watchdog_ms, hal.failsafe_mask)
# the site key of RELAY_SET (docs/protocol.md §5a): from the key file, or given over USB
key_note = rb.load_key_file(core)
try:
    import stringcare_provision  # written by `stringcare deploy --site-key`

    if rb.provision_key(core, stringcare_provision.PROVISION):
        rb.save_key_file(core)
        key_note = "provision applied: the site key"
    import os

    os.remove("stringcare_provision.py")
except ImportError:
    pass
relays = ",".join(str(k + 1) for k in range(4) if core.failsafe_mask & (1 << k))
busdevice.run(
    hal,
    core,
    "stringcare: iobox %s started, box %d (address 0x%04x), watchdog %d ms, fail-safe relays %s%s"
    % (
        version.VERSION,
        core.box,
        core.address,
        core.watchdog_ms,
        relays or "none",
        ("; " + key_note) if key_note else "",
    ),  # fmt: skip
    rb.save_key_file,  # the key file, when the core asks (a new key, the hourly floor)
)
