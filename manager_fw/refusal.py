# The texts of the revision check (docs/manager.md, "Revision check"): why a bus is
# refused, and the problems that do not stop the core (another variant, lost
# settings), each naming its modules as runs within a string ("1S1-3S1, 5S1").  Loaded
# by manager_fw/revisions.py only when its quick scan found something.

from manager_fw import events as ev
from manager_fw.jobs.census import CENSUS_OK
from manager_fw.revisions import hw_generation
from manager_fw.site import variant_name
from shared import protocol as p
from shared import version
from shared.compat import const

# census findings select modules without building lists of 600 indices
SEL_IN_LIST = const(0)  # arg: a short list of module indices
SEL_WRONG_FIRMWARE = const(1)
SEL_GENERATION = const(2)  # arg: the hardware generation
SEL_WRONG_VARIANT = const(3)


def _selected(core, kind: int, i: int, arg) -> bool:
    if kind == SEL_IN_LIST:
        return i in arg
    if core.census[i] != CENSUS_OK:
        return False
    if kind == SEL_WRONG_FIRMWARE:
        return core.fw_major[i] != version.VERSION_MAJOR
    if kind == SEL_GENERATION:
        return hw_generation(core.hw_rev[i]) == arg
    return core.variant[i] != core.cfg.variant


def labels_where(core, kind: int, arg=None):
    """('1S1-3S1, 5S1', count, first module) of the selected modules (8 runs shown)."""
    lay = core.layout
    parts = []
    runs = 0
    count = 0
    first = -1
    start = -1
    prev = -1
    for i in range(lay.module_count + 1):
        sel = i < lay.module_count and _selected(core, kind, i, arg)
        if sel:
            count += 1
            if first < 0:
                first = i
        joins = sel and start >= 0 and prev == i - 1 and lay.string_of(i) == lay.string_of(start)
        if start >= 0 and not joins:
            runs += 1
            if runs <= 8:
                if prev == start:
                    parts.append(lay.label(start))
                else:
                    parts.append("%s-%s" % (lay.label(start), lay.label(prev)))
            start = -1
        if sel:
            if start < 0:
                start = i
            prev = i
    if runs > 8:
        parts.append("and %d more" % (runs - 8))
    return ", ".join(parts), count, first


def check_compatibility(core) -> bool:
    """SPEC §1/§3: refuse a bus with incompatible revisions.  Sets `refusal`."""
    if core.other_protocol:
        text, _count, first = labels_where(core, SEL_IN_LIST, core.other_protocol)
        refuse(
            core,
            ev.REFUSED_PROTOCOL,
            first,
            "refusing to run: module(s) %s answer in protocol version %d; this manager "
            "speaks version %d.  Update their firmware (or the manager's)."
            % (text, core.other_protocol_version, p.VERSION),
        )
        return False
    text, count, first = labels_where(core, SEL_WRONG_FIRMWARE)
    if count:
        refuse(
            core,
            ev.REFUSED_FIRMWARE,
            first,
            "refusing to run: module(s) %s run firmware %d.x; this manager (%s) needs "
            "firmware %d.x on every module.  Update them, then restart."
            % (text, core.fw_major[first], version.VERSION, version.VERSION_MAJOR),
        )
        return False
    gens = []
    for i in range(core.layout.module_count):
        if core.census[i] == CENSUS_OK:
            g = hw_generation(core.hw_rev[i])
            if g not in gens:
                gens.append(g)
    if len(gens) > 1:
        groups = []
        odd = -1
        best = -1
        for g in gens:
            text, count, first = labels_where(core, SEL_GENERATION, g)
            if best < 0 or count < best:
                best = count
                odd = first
            low = g * 16 if g else 1
            groups.append("hw_rev %d-%d: %s" % (low, g * 16 + 15, text))
        refuse(
            core,
            ev.REFUSED_HARDWARE,
            odd,
            "refusing to run: modules of incompatible hardware revisions share the bus "
            "(%s).  Replace the odd ones out, then restart." % "; ".join(groups),
        )
        return False
    text, count, first = labels_where(core, SEL_WRONG_VARIANT)
    if count:
        core._problem(
            "%s: %s module(s); the site is configured for %s modules"
            % (text, variant_name(core.variant[first]), variant_name(core.cfg.variant))
        )
    if core.store_lost:
        text, _count, _first = labels_where(core, SEL_IN_LIST, core.store_lost)
        core._problem("%s lost the settings they had stored: calibration defaults in use" % text)
    return True


def refuse(core, reason: int, module: int, text: str) -> None:
    """Why the bus is refused; the mode table (manager_fw/modes.py) then stops polling."""
    core.refusal = text
    core.refusal_reason = reason
    core.refusal_module = module
