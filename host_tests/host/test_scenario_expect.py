"""What a library scenario can expect (stringcare/sim/judge.py, docs/scenarios.md): a
standing condition is judged as it stands, not only when its event comes; a block
override is physics, not a label."""

from __future__ import annotations

import pytest

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
