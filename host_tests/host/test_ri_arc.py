"""One Ri (docs/ri.md, "Definition"): on blocks with a charge-transfer arc both methods
report R0 as a 1 kHz tester would, and charger switching ripple that saturates the
amplifier is refused, never turned into a wrong number."""

from __future__ import annotations

import pytest

from boards.sim import riset
from boards.sim.frontend import Block, Ripple, SwitchingRipple
from boards.sim.riset import Bench
from shared import ri, variants

VARIANT = variants.by_code("12v").id
R0 = 0.005


@pytest.fixture(scope="module")
def bench() -> Bench:
    return Bench()


def _measure(bench: Bench, method: int, block: Block, switching=None) -> ri.RiResult:
    gain_range = 0
    while True:
        cal = bench.calibration_ppm(VARIANT, 0, method, gain_range)
        plan = ri.plan_for(VARIANT, method, gain_range, ri_gain_ppm=cal)
        v, i = bench.board(VARIANT, 0).ri_capture(
            plan, block, Ripple.typical(0.2, 50.0, 0.002, 1), switching=switching
        )
        res = ri.evaluate(plan, v, i)
        if ri.needs_low_range(plan, res):
            gain_range = 1
            continue
        return res


@pytest.mark.parametrize("tau_ms", [5, 20])
def test_both_methods_report_r0_on_a_block_with_an_arc(bench: Bench, tau_ms: int) -> None:
    # the arc as large as R0: the step's 100 ms slots alone would report ~2 R0
    block = Block(R0, 0.002, 10.0, R0, tau_ms / 1000)
    step = _measure(bench, ri.RI_METHOD_STEP, block)
    ac = _measure(bench, ri.RI_METHOD_AC, block)
    assert step.ri_nohm is not None and ac.ri_nohm is not None
    assert abs(step.ri_nohm / (R0 * 1e9) - 1) < 0.03, step
    assert abs(ac.ri_nohm / (R0 * 1e9) - 1) < 0.03, ac
    assert abs(step.ri_nohm / ac.ri_nohm - 1) < 0.03


def test_switching_ripple_that_saturates_the_amplifier_is_refused(bench: Bench) -> None:
    # 200 mV at 17.3137 kHz: ~8 V at the high range's amplifier, ~2.4 V at the low's
    res = _measure(bench, ri.RI_METHOD_STEP, Block(R0), SwitchingRipple(17313.7, 0.2))
    assert res.status == ri.RI_SATURATED and res.ri_nohm is None
    assert "out-of-band ripple" in res.detail
    # 50 mV: the high range saturates (refused there), the low range measures it
    res = _measure(bench, ri.RI_METHOD_STEP, Block(R0), SwitchingRipple(17313.7, 0.05))
    assert res.ri_nohm is not None and abs(res.ri_nohm / (R0 * 1e9) - 1) < 0.01


@pytest.mark.parametrize("amplitude_v", [0.05, 0.08])
def test_switching_ripple_repeating_every_100_ms_is_not_a_silent_error(
    bench: Bench, amplitude_v: float
) -> None:
    # 17310.8 Hz: 1731.08 cycles per 100 ms, so the 100 ms comparison barely sees it
    # (it gave -48 % and -70 % with quality ~90-99); an odd count is half a period
    # off over 50 ms: the high range is refused as saturated, the low range measures
    res = _measure(bench, ri.RI_METHOD_STEP, Block(R0), SwitchingRipple(17310.8, amplitude_v))
    assert res.ri_nohm is not None, res
    assert abs(res.ri_nohm / (R0 * 1e9) - 1) < 0.01, res


def _arc_case(name: str):
    for case in riset.arc_cases():
        if case.name == name:
            return case
    raise AssertionError("no arc case %s in boards/sim/riset.py" % name)


def test_a_fast_arc_under_heavy_mains_ripple_is_taken_out(bench: Bench) -> None:
    # tau 3.6 ms, R_ct 0.27 R0, 5 % C ripple at 50 Hz -0.4 %, a small step signal: the
    # ripple's leakage into the Thue-Morse profile is several times the arc's response;
    # before the projection of the mains grids the step method read +27 %
    case = _arc_case("12v/3.891mOhm/c2/arc")
    step, _s, _r = bench.measure(case, ri.RI_METHOD_STEP)
    ac, _s, _r = bench.measure(case, ri.RI_METHOD_AC)
    assert step.ri_nohm is not None and ac.ri_nohm is not None, (step, ac)
    assert abs(step.ri_nohm / (case.r0_ohm * 1e9) - 1) < 0.02, step
    assert abs(step.ri_nohm / ac.ri_nohm - 1) < 0.03, (step, ac)


def test_an_arc_the_step_method_cannot_resolve_is_refused_with_its_reason(bench: Bench) -> None:
    # tau 1.2 ms, R_ct 0.88 R0, the smallest 12 V block at 5 % C ripple (low range): the
    # arc is over within three samples and the leakage is large; it read +88 % before
    case = _arc_case("12v/0.9908mOhm/c2/arc")
    step, _s, _r = bench.measure(case, ri.RI_METHOD_STEP)
    assert step.status == ri.RI_NOISY and step.ri_nohm is None, step
    assert "charge-transfer arc" in step.detail, step.detail
