# What the census found, judged (SPEC §1/§3; docs/manager.md, "Revision check"): the
# INFO of each module, modules in another protocol version, missing relay boxes and
# current sensors, and the compatibility check that refuses a bus of incompatible
# hardware revisions, firmware majors or protocol versions (its texts, which name the
# modules: manager_fw/refusal.py, loaded only when there is something to report).
# Functions of the core: they read and write its per-module census arrays
# (manager_fw/jobs/census.py asks).

from manager_fw.jobs.census import CENSUS_NOT_POLLED, CENSUS_OK, CENSUS_UNREACHABLE
from shared import protocol as p
from shared import version


def hw_generation(hw_rev: int) -> int:
    """Modules whose hw_rev share the high nibble are compatible on one bus
    (docs/manager.md, "Revision check")."""
    return hw_rev >> 4


def reset(core) -> None:
    """Before a census: every module not yet polled, no findings, no refusal."""
    for i in range(core.layout.module_count):
        core.census[i] = CENSUS_NOT_POLLED
    del core.store_lost[:]
    del core.other_protocol[:]
    core.refusal = None
    core.refusal_reason = 0
    core.refusal_module = -1


def module_info(core, i: int, frame) -> None:
    if frame.u8(0) != p.DEVICE_MODULE:
        core.census[i] = CENSUS_UNREACHABLE
        core._problem(
            "%s: the device at address %d is not a battery module (type %d)"
            % (core.layout.label(i), core.layout.addresses[i], frame.u8(0))
        )
        return
    core.census[i] = CENSUS_OK
    core.hw_rev[i] = frame.u8(1)
    core.fw_major[i] = frame.u8(2)
    core.variant[i] = frame.u8(5)
    core.judge.module_uid(i, frame, core.now_s)  # a replaced block: new Ri baseline
    if frame.u8(7) and i not in core.store_lost:
        core.store_lost.append(i)
    core.integrity.info(i, frame)


def wrong_protocol(core, kind: int, addr: int, which: int, version_seen: int) -> None:
    if kind == 2:
        if which not in core.other_protocol:
            core.other_protocol.append(which)
        core.other_protocol_version = version_seen
    else:
        core._problem(
            "the device at address 0x%04x speaks protocol version %d; this manager "
            "speaks %d" % (addr, version_seen, p.VERSION)
        )


def device_missing(core, kind: int, which: int) -> None:
    if kind == 0:
        core._problem(
            "relay/IO box %d does not answer (address 0x%04x): breaker trip, alarm "
            "relay and UPS input on it do not work" % (which, p.ADDR_RELAY_BOX_BASE + which)
        )
    else:
        core._problem(
            "current sensor %d does not answer: string %d has no current reading"
            % (which, core.string_of_sensor[which] + 1)
        )


def census_counts(core):
    """(initialised, not reachable, not yet polled) module counts."""
    c = [0, 0, 0]
    for i in range(core.layout.module_count):
        c[core.census[i]] += 1
    return c[CENSUS_OK], c[CENSUS_UNREACHABLE], c[CENSUS_NOT_POLLED]


def check_compatibility(core) -> bool:
    """SPEC §1/§3: False (and core.refusal says why) for a bus of incompatible protocol
    versions, firmware majors or hardware generations.  The texts that name the
    modules (manager_fw/refusal.py) are loaded only when there is something to say."""
    if not _findings(core):
        return True
    from manager_fw import refusal

    return refusal.check_compatibility(core)


def _findings(core) -> bool:
    """Anything the revision check must refuse or report (a quick scan, no text)."""
    if core.other_protocol or core.store_lost:
        return True
    census = core.census
    generation = -1
    for i in range(core.layout.module_count):
        if census[i] != CENSUS_OK:
            continue
        if core.fw_major[i] != version.VERSION_MAJOR or core.variant[i] != core.cfg.variant:
            return True
        g = hw_generation(core.hw_rev[i])
        if generation < 0:
            generation = g
        elif g != generation:
            return True
    return False
