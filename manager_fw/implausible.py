# Implausible data (docs/manager.md, "Implausible data"): a module that sends what
# cannot be real (two devices at one address, a reading outside what its variant
# measures) is left out of everything by the poller (ST_IMPLAUSIBLE); the core reports
# it once per reason (event, warning, status) and clears it when the module is
# plausible again.  Functions of the core (core.implausible, core._implausible_text).

from manager_fw import events as ev
from manager_fw import poller as pl
from manager_fw.site import variant_name


def found(core, i: int, a: int, bits: int, now_s: int) -> None:
    """Module i sent what cannot be real: left out of everything (the poller's
    ST_IMPLAUSIBLE), reported once per reason: event, warning, status."""
    new = bits & ~core.implausible[i]
    core.implausible[i] |= bits
    lay = core.layout
    k = lay.string_of(i)
    poll = core.poller
    unused = ("its readings are not used for targets, averages, balancing, thresholds "
              "or the runaway trip")  # fmt: skip
    if new & pl.IMPL_DUPLICATE:
        core._log(now_s, ev.EV_IMPLAUSIBLE, i, k, 0, ev.IMPLAUSIBLE_DUPLICATE)
        _note(core, i, "module %s (address %d): two devices answer as this module: %s "
                       "until only one does; find the second device with this address"
                       % (lay.label(i), a, unused))  # fmt: skip
    if new & pl.IMPL_RANGE:
        mv = poll.voltage_mv[a]
        cc = poll.temp_cc[a]
        lo, hi = poll.voltage_min_mv, poll.voltage_max_mv
        core._log(now_s, ev.EV_IMPLAUSIBLE, i, k, mv * 1000, ev.IMPLAUSIBLE_RANGE, cc & 0xFFFF)
        _note(
            core,
            i,
            "module %s: reads %d.%03d V and %s%d.%02d °C, outside what a %s module "
            "measures (%d.%03d-%d.%03d V, above -40 and up to 100 °C): %s; check its "
            "sense wires, its temperature probe and the site's variant"
            % (lay.label(i), mv // 1000, mv % 1000, "-" if cc < 0 else "", abs(cc) // 100,
               abs(cc) % 100, variant_name(core.cfg.variant), lo // 1000, lo % 1000,
               hi // 1000, hi % 1000, unused),
        )  # fmt: skip


def _note(core, i: int, text: str) -> None:
    core._implausible_text.append((i, text))
    core._problem(text)


def plausible_again(core, i: int, now_s: int) -> None:
    core.implausible[i] = 0
    core._log(now_s, ev.EV_IMPLAUSIBLE, i, core.layout.string_of(i), 0,
              ev.IMPLAUSIBLE_CLEARED)  # fmt: skip
    keep = []
    for m, text in core._implausible_text:
        if m == i:
            if text in core.problems:
                core.problems.remove(text)
        else:
            keep.append((m, text))
    core._implausible_text = keep
