"""What a library scenario can expect (stringcare/sim/judge.py, docs/scenarios.md): a
standing condition is judged as it stands, not only when its event comes; a block
override is physics, not a label."""

from __future__ import annotations

import pytest

from manager_fw import events as mev
from shared import thresholds as thr
from stringcare.sim import judge
from stringcare.sim import params as prm
from stringcare.sim import scenario as scn

SPREAD = thr.QUANTITY_NAMES.index("spread")
VOLTAGE = thr.QUANTITY_NAMES.index("voltage")
WARN = thr.COND_HIGH_WARNING
NORMAL = thr.COND_NORMAL

SCENARIO = """duration = "6h"
[battery]
blocks = 4
[[expect]]
what = "no_event"
tag = "spread"
after = "4h"
within = "2h"
why = "the old check: blind to a warning raised before its window"
[[expect]]
what = "no_condition"
tag = "spread"
string = 1
after = "4h"
within = "2h"
why = "the spread of string 1 does not stand in the window"
[[expect]]
what = "no_condition"
tag = "voltage-high"
string = 1
block = 3
after = "4h"
why = "block 3 is not high"
"""


def _level(t_h: float, quantity: int, block: int, old: int, new: int) -> tuple:
    return (t_h * 3600, 3, quantity, 1, block, 0, old << 8 | new)


def _verdict(events: list[tuple]) -> list[bool]:
    sc = scn.load_text(SCENARIO, "x.toml")
    out = judge.Outcome()
    out.events.extend(events)
    return [x["passed"] for x in judge.verdict(sc, out, 6 * 3600.0)]


def test_a_condition_raised_before_the_window_and_still_standing_fails_no_condition() -> None:
    # spread warning at 2.4 h, never cleared: no event in 4-6 h, but it stands
    assert _verdict([_level(2.4, SPREAD, 14, NORMAL, WARN)]) == [True, False, True]
    # cleared before the window: nothing stands
    cleared = [_level(2.4, SPREAD, 14, NORMAL, WARN), _level(3.0, SPREAD, 2, WARN, NORMAL)]
    assert _verdict(cleared) == [True, True, True]
    # raised inside the window
    assert _verdict([_level(5.0, SPREAD, 1, NORMAL, WARN)]) == [False, False, True]


def test_no_condition_follows_its_block_and_its_direction() -> None:
    # block 3 high before the window, cleared inside it: it stood part of the window
    high = [_level(1.0, VOLTAGE, 3, NORMAL, WARN), _level(4.5, VOLTAGE, 3, WARN, NORMAL)]
    assert _verdict(high)[2] is False
    # another block high, or block 3 low: not what the expectation is about
    other = [_level(1.0, VOLTAGE, 2, NORMAL, WARN)]
    low = [_level(1.0, VOLTAGE, 3, NORMAL, thr.COND_LOW_WARNING)]
    assert _verdict(other)[2] is True and _verdict(low)[2] is True
    # high warning -> high alarm -> normal before the window
    esc = [
        _level(1.0, VOLTAGE, 3, NORMAL, WARN),
        _level(2.0, VOLTAGE, 3, WARN, thr.COND_HIGH_ALARM),
        _level(3.0, VOLTAGE, 3, thr.COND_HIGH_ALARM, NORMAL),
    ]
    assert _verdict(esc)[2] is True


def test_no_condition_takes_only_threshold_quantities() -> None:
    bad = SCENARIO.replace('tag = "voltage-high"', 'tag = "runaway"')
    with pytest.raises(scn.ScenarioError, match="'runaway' is not a threshold condition"):
        scn.load_text(bad, "x.toml")


def test_a_recombination_override_changes_the_float_current() -> None:
    p = prm.draw_blocks(prm.VRLA_12V_40AH, 1, 4, 3, 5.0)
    before = p.float_current_a.copy()
    prm.override_block(p, 0, 1, recombination_factor=0.03)
    assert p.float_current_a[0, 1] == pytest.approx(before[0, 1] * 0.03)
    assert p.float_current_a[0, 0] == before[0, 0]
    prm.override_block(p, 0, 1, recombination_factor=1.0)  # and back
    assert p.float_current_a[0, 1] == pytest.approx(before[0, 1])


# -- every expectation of the library can fail ------------------------------------------


def _event_with(tag: str) -> tuple[int, int, int]:
    """(code, arg, extra) of a manager event that says `tag` (judge.tags())."""
    levels = [NORMAL << 8 | new for new in range(8)]
    for code in range(len(mev.EVENT_NAMES)):
        for arg in range(len(thr.QUANTITY_NAMES)):
            for extra in levels:
                if tag in judge.tags(code, arg, extra):
                    return code, arg, extra
    raise AssertionError("no manager event says %r" % tag)


def _level_of(tag: str) -> int:
    """The condition a no_condition's tag names (voltage: low; spread: high)."""
    if tag.endswith("-alarm"):
        return thr.COND_LOW_ALARM
    if tag.endswith("-high") or tag == "spread":
        return WARN
    return thr.COND_LOW_WARNING


def _outcome(sc: scn.Scenario) -> judge.Outcome:
    out = judge.Outcome()
    out.scenario_events.extend((e.at_s, e.type) for e in sc.events)
    return out


def _judged(sc: scn.Scenario, i: int, out: judge.Outcome) -> dict:
    out.events.sort(key=lambda e: e[0])
    return judge.verdict(sc, out, sc.duration_s)[i]


def _window(sc: scn.Scenario, exp: dict) -> tuple[float, float]:
    return judge._window(exp, _outcome(sc), sc.duration_s)


LIBRARY = [(n, i) for n in scn.library_names() for i in range(len(scn.load(n).expect))]


@pytest.mark.parametrize(("name", "i"), LIBRARY)
def test_every_library_expectation_can_fail(name: str, i: int) -> None:
    """For each [[expect]] of the library, the run that breaks it: judged failed.  An
    expectation that no run can fail proves nothing."""
    sc = scn.load(name)
    exp = sc.expect[i]
    what = exp["what"]
    start, stop = _window(sc, exp)
    assert start < stop <= sc.duration_s, (name, exp)  # a window the run reaches
    s, b = exp.get("string", 1), exp.get("block", 1)
    out = _outcome(sc)
    if what == "event":  # it never came
        assert _judged(sc, i, out)["passed"] is False
        return
    if what == "no_event":  # it came, in the window
        code, arg, extra = _event_with(exp["tag"])
        out.events.append(((start + stop) / 2, code, arg, s, b, 0, extra))
    elif what == "no_condition":  # raised before the window (or at its start), standing
        q = thr.QUANTITY_NAMES.index(exp["tag"].split("-")[0])
        out.events.append((max(0.0, start - 60), mev.EV_LEVEL, q, s, b, 0, _level_of(exp["tag"])))
    elif what == "trip":  # too late, then in time but too hot
        out.trip_s, out.block_temp_at_trip_c = stop + 60, 40.0
        assert _judged(sc, i, out)["passed"] is False
        if "max_c" not in exp:
            return
        out.trip_s, out.block_temp_at_trip_c = (start + stop) / 2, exp["max_c"] + 1
    elif what == "no_trip":
        out.trip_s, out.block_temp_at_trip_c = (start + stop) / 2, 40.0
    else:  # bleed_wh_day: twice the cap over the window, then no record of it at all
        assert what == "bleed_wh_day", what
        j_s = 2 * exp["max_wh"] * 3600 / 86400
        out.bleed_t_s = [start, stop]
        out.bleed_j = [[0.0] * sc.strings, [j_s * (stop - start)] * sc.strings]
        assert _judged(sc, i, out)["passed"] is False
        out.bleed_t_s, out.bleed_j = [], []
    assert _judged(sc, i, out)["passed"] is False, (name, exp)


def test_a_standing_condition_judged_after_the_run_starts_has_a_no_condition() -> None:
    """A no_event on a threshold condition over a window that starts after the run does
    is blind to a warning raised before it and never cleared (the first centre-tapped
    UPS check passed so): the library pairs each with a no_condition of the same window,
    and that one fails where the no_event passes."""
    for name in scn.library_names():
        sc = scn.load(name)
        for i, exp in enumerate(sc.expect):
            if exp["what"] != "no_event" or exp["tag"] not in judge.CONDITION_TAGS:
                continue
            start, stop = _window(sc, exp)
            if start == 0:
                continue  # from the start: every raise is an event of the window
            keys = ("tag", "string", "block", "after", "within_s")
            twin = [
                j
                for j, x in enumerate(sc.expect)
                if x["what"] == "no_condition" and all(x.get(k) == exp.get(k) for k in keys)
            ]
            assert twin, "%s: %s has no no_condition over its window" % (name, exp)
            s, b = exp.get("string", 1), exp.get("block", 1)
            q = thr.QUANTITY_NAMES.index(exp["tag"].split("-")[0])
            out = _outcome(sc)
            out.events.append((start - 60, mev.EV_LEVEL, q, s, b, 0, _level_of(exp["tag"])))
            assert _judged(sc, i, out)["passed"] is True  # the hole
            assert _judged(sc, twin[0], out)["passed"] is False, name


def test_a_runaway_suspect_is_a_runaway_event() -> None:
    """The warning before a trip names a block: a false-alarm scenario's "no runaway
    event" must see it (it used to see only the trip, which no_trip already judges)."""
    trip = judge.tags(mev.EV_THERMAL_RUNAWAY, 0, 0)
    suspect = judge.tags(mev.EV_THERMAL_RUNAWAY, 2, 0)
    assert {"runaway", "runaway-trip", "warning"} <= trip and "runaway-suspect" not in trip
    assert {"runaway", "runaway-suspect", "warning"} <= suspect and "runaway-trip" not in suspect
    assert judge.tags(mev.EV_THERMAL_RUNAWAY, 1, 0) == set()  # the operator's reset
    for name in scn.library_names():
        sc = scn.load(name)
        if sc.category == "false-alarm":
            assert any(
                e["what"] == "no_event"
                and e["tag"] == "runaway"
                and e["after"] == 0
                and "within_s" not in e
                and "string" not in e
                for e in sc.expect
            ), name
