"""boards/sim/frontend.Ads1219Model: the simulated external block-voltage converter
does what the ADS1219 data sheet (SBAS924A) publishes, and the firmware
(shared/measure.BlockVoltage with VADC_ADS1219) reads it back."""

from __future__ import annotations

import random
import statistics

import pytest

from boards.sim import frontend as sim
from boards.sim.frontend import Ads1219Model, SimBoard
from shared import frontend as fe
from shared import measure
from stringcare.sim import engine
from stringcare.sim import scenario as scn

VREF_V = fe.ADC_VREF_UV / 1e6


def _boards(n: int = 64) -> list[Ads1219Model]:
    return [Ads1219Model(random.Random(("inl", k).__repr__())) for k in range(n)]


def test_inl_stays_within_the_published_maximum_and_uses_it() -> None:
    limit_v = sim.ADS1219_INL_FSR * 2 * VREF_V  # 15 ppm of FSR (2 VREF): 90 uV
    worst = []
    for m in _boards():
        grid = [m.inl_v(VREF_V * k / 200) for k in range(201)]
        assert max(abs(x) for x in grid) <= limit_v * (1 + 1e-9)
        assert abs(grid[0]) < 1e-12 and abs(grid[-1]) < 1e-12  # end-point fit
        worst.append(max(abs(x) for x in grid))
    # the draw is not kinder than the data sheet: some boards come near the limit
    assert max(worst) >= 0.6 * limit_v
    assert statistics.median(worst) >= 0.2 * limit_v


def test_noise_per_conversion_is_the_published_effective_resolution() -> None:
    m = Ads1219Model(random.Random(1))
    rng = random.Random(2)
    lsb_v = VREF_V / (1 << 23)
    codes = [m.code(1.5 + rng.gauss(0.0, m.noise_v)) for _ in range(4000)]
    rms_v = statistics.pstdev(codes) * lsb_v
    # "up to 20 bits effective resolution" at 20 SPS: 2 VREF / 2**20 = 5.7 uV rms
    assert abs(rms_v - 2 * VREF_V / 2**20) <= 0.1 * 2 * VREF_V / 2**20, rms_v
    # full scale clips at the 24-bit code's ends
    assert m.code(2 * VREF_V) == (1 << 23) - 1 and m.code(-2 * VREF_V) == -(1 << 23)


def test_drifts_stay_inside_their_stated_bounds() -> None:
    for m in _boards():
        assert abs(m.gain_tc) <= sim.ADS1219_GAIN_TC
        assert abs(m.offset_tc_v_per_k) <= sim.ADS1219_OFFSET_TC_V_PER_K
        # 30 K warmer moves a mid-scale reading by at most the gain and offset tempco
        cold = m.mean_v(1.5, 25.0, 0.0)
        hot = m.mean_v(1.5, 55.0, 0.0)
        bound = 30 * (1.5 * sim.ADS1219_GAIN_TC + sim.ADS1219_OFFSET_TC_V_PER_K)
        assert abs(hot - cold) <= bound + 1e-12


def _read(board: SimBoard, bv: measure.BlockVoltage, uv: int) -> int:
    frames = [bv.raw_uv(board.voltage_frame_sum_x2(uv / 1e6)) for _ in range(16)]
    return sum(frames) // len(frames)


def test_the_firmware_reads_the_simulated_converter_back() -> None:
    """A new board at 25 °C, two-point calibrated with exact references, reads the
    block in between within its INL, noise and the frame's resolution (far below the
    RP2040 ADC's several LSB); uncalibrated, within the divider's and the reference's
    tolerances."""
    for variant_id in range(5):
        for seed in range(4):
            board = SimBoard(variant_id, seed, vadc=fe.VADC_ADS1219)
            v = board.variant
            lo, hi = v.nominal_min_uv, v.nominal_max_uv

            plain = measure.BlockVoltage(variant_id, vadc=fe.VADC_ADS1219)
            for uv in (lo, hi):
                assert abs(_read(board, plain, uv) - uv) <= uv * 0.004  # 0.1 % + 0.1 % + ...
            offset, gain = measure.calibration_from_points(
                _read(board, plain, lo), lo, _read(board, plain, hi), hi
            )
            cal = measure.BlockVoltage(variant_id, offset, gain, vadc=fe.VADC_ADS1219)
            num, den = fe.frontend(variant_id).divider_ratio(fe.VADC_ADS1219)
            inl_block_uv = sim.ADS1219_INL_FSR * 2 * fe.ADC_VREF_UV * num / den
            for k in range(1, 4):
                uv = lo + (hi - lo) * k // 4
                err = abs(_read(board, cal, uv) - uv)
                # INL (twice: the two points tilt the line too) plus noise and rounding
                assert err <= 2 * inl_block_uv + 20 * num / den + 5, (variant_id, seed, uv, err)


def test_a_simulated_site_runs_on_ads1219_boards() -> None:
    """modules.vadc = "ads1219": every module of the site has the converter, is
    commissioned through it and reports its block within the 0.1 % goal."""
    sc = scn.load_text(
        '{"name": "ads", "duration": "1h", "battery": {"blocks": 6}, '
        '"modules": {"vadc": "ads1219"}}',
        "ads.json",
    )
    assert sc.vadc == "ads1219"
    sim = engine.Simulation(sc)
    sim.run(600)
    true_v = sim._v(sim.bank.terminal_v)
    for m in sim.modules:
        assert m.board.vadc == fe.VADC_ADS1219 and m.core.vadc == fe.VADC_ADS1219
        v = true_v[m.string, m.block]
        assert abs(m.core.state.voltage_uv / 1e6 - v) <= v * 0.001, (m.index, v)
    with pytest.raises(scn.ScenarioError, match="modules.vadc.*ads1219"):
        scn.load_text('{"name": "x", "modules": {"vadc": "ads1115"}}', "x.json")


def test_the_ads1219_board_has_the_res21a_divider_network() -> None:
    # ratio within the published +-0.05 %, ratio tempco within (1 - gain) x 2 ppm/K, and
    # the MCU board keeps its discrete pair (the same seed's draws as before)
    for variant_id in range(5):
        top, bottom = fe.frontend(variant_id).ext_divider
        nominal = bottom / (top + bottom)
        tcs = []
        for seed in range(16):
            b = SimBoard(variant_id, seed, vadc=fe.VADC_ADS1219)
            assert abs(b.divider_gain / nominal - 1) <= sim.RES21A_RATIO_TOL * (1 - nominal) + 1e-12
            assert abs(b.divider_tc) <= sim.RES21A_TCR_RATIO * (1 - nominal) + 1e-15
            assert b.divider_bottom_ohm == bottom
            tcs.append(abs(b.divider_tc))
            mcu = SimBoard(variant_id, seed)
            front = fe.frontend(variant_id)
            plain = front.divider_bottom_ohm / (front.divider_top_ohm + front.divider_bottom_ohm)
            assert abs(mcu.divider_gain / plain - 1) < 0.002
            assert mcu.ads1219.inl_bow_v == b.ads1219.inl_bow_v  # its own generator
        # the draws use the published range, not a sliver of it
        assert max(tcs) > 0.5 * sim.RES21A_TCR_RATIO * (1 - nominal), variant_id
