# StringCare battery module: the entry a board runs at boot (copied to /main.py by
# `stringcare deploy`).  The bundle's stringcare_bundle.py says which board this is;
# its hardware shell comes from boards/<board>/hal.py, the loop from module_fw/main.py.
import stringcare_bundle as bundle

import boards
from module_fw import main as shell

settings = boards.settings()
hal = boards.shell(bundle.BOARD, settings)
try:
    import stringcare_provision  # written by `stringcare deploy --address/--variant`

    shell.apply_provision(hal.slots, stringcare_provision.PROVISION, hal.variant_id)
    import os

    os.remove("stringcare_provision.py")
    print("stringcare: provision applied: %r" % (stringcare_provision.PROVISION,))
except ImportError:
    pass
shell.run(hal)
