"""The scenario library (docs/scenarios.md): every scenario states its case, source and
expectations; a short version of each builds and runs with bounded physics (the full
runs and their verdicts are `stringcare bench judge`)."""

from __future__ import annotations

import pytest

from stringcare.sim import judge, library
from stringcare.sim import params as prm
from stringcare.sim import physics as phy
from stringcare.sim import scenario as scn

NAMES = scn.library_names()


def test_the_library_covers_the_cases_of_issue_11() -> None:
    assert len(NAMES) >= 15
    cats = [scn.load(n).category for n in NAMES]
    for needed, least in (("runaway", 3), ("false-alarm", 6), ("ri", 3), ("balance", 2)):
        assert cats.count(needed) >= least, (needed, cats)
    for name in NAMES:
        sc = scn.load(name)
        assert sc.description and sc.rationale and sc.source, name
        assert sc.expect, name
        assert all(e["why"] for e in sc.expect), name
        if sc.category == "false-alarm":
            assert sc.duration_s >= 24 * 3600, name  # a day at least, with its swing


@pytest.mark.parametrize("name", NAMES)
def test_short_version_runs_with_bounded_physics(name: str) -> None:
    r = library.run_scenario(name, short=True)
    assert r["duration_h"] == pytest.approx(library.SHORT_S / 3600, abs=1e-3)
    # every block between a reversed cell's bound and the boost voltage
    assert -2.5 <= r["min_block_v_per_cell"] and r["max_block_v_per_cell"] <= 2.6, r


def test_the_verdict_reads_the_manager_events() -> None:
    sc = scn.load_text(
        """duration = "2h"
[battery]
blocks = 4
[[events]]
at = "1h"
type = "cell_short"
string = 1
block = 2
[[expect]]
what = "event"
tag = "voltage-low"
string = 1
block = 2
after = "cell_short"
within = "10m"
why = "a shorted cell"
[[expect]]
what = "no_trip"
why = "no runaway"
[[expect]]
what = "no_event"
tag = "ri"
why = "x"
""",
        "v.toml",
    )
    out = judge.Outcome()
    out.scenario_events.append((3600.0, "cell_short"))
    low = 0 << 8 | 1  # normal -> low warning
    out.events.append((3700.0, 3, 0, 1, 2, 11000000, low))  # voltage low warning, block 2
    verdict = judge.verdict(sc, out, 7200.0)
    assert [v["passed"] for v in verdict] == [True, True, True]
    out.events[0] = (3000.0, 3, 0, 1, 2, 11000000, low)  # before the short: not it
    out.trip_s = 5000.0
    verdict = judge.verdict(sc, out, 7200.0)
    assert [v["passed"] for v in verdict] == [False, False, True]


def test_a_collapsed_block_reads_no_minus_40_volts() -> None:
    """A block driven past empty reverses at about -2 V per cell and relaxes to 0 V and
    above when the current stops (issue 11: -42 V at zero current)."""
    p = prm.draw_blocks(prm.VRLA_12V_40AH, 1, 16, seed=3, age_years=6.0)
    prm.override_block(p, 0, 5, capacity_ah_factor=0.1)
    bank = phy.StringBank(p, phy.reference_charger())
    bank.settle_float()
    bank.mains_fail(3000.0)
    lowest = 0.0
    for _ in range(1200):
        bank.step(1.0)
        lowest = min(lowest, float(bank.terminal_v[0, 5]))
    assert -6 * 2.5 < lowest < -6 * 1.5  # it reversed, within the bound
    bank.mains_fail(0.0)  # the load goes: zero current
    for _ in range(720):
        bank.step(5.0)
    assert float(bank.terminal_v[0, 5]) > -0.5
