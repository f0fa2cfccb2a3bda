"""boards/sim: the simulated module board's converter, channels and thermal model,
checked against the firmware's own measurement code."""

from __future__ import annotations

import math

import pytest

from boards.sim.frontend import BoardThermal, SimBoard
from shared import frontend as fe
from shared import measure, variants


def test_ntc_table_matches_the_beta_model() -> None:
    for n, code_x16 in enumerate(fe.NTC_TABLE_CODE_X16):
        t = (fe.NTC_TABLE_FIRST_MC + n * fe.NTC_TABLE_STEP_MC) / 1000 + 273.15
        r = fe.NTC_R25_OHM * math.exp(fe.NTC_BETA_K * (1 / t - 1 / 298.15))
        assert code_x16 == round(16 * fe.ADC_CODES * r / (r + fe.NTC_PULLUP_OHM))


def test_converter_effective_bits() -> None:
    # RP2040 datasheet: 8.7 ENOB measured (9 designed); the model lands there
    enob = [SimBoard(3, seed=s).effective_bits() for s in range(3)]
    assert all(8.4 <= e <= 9.1 for e in enob), enob
    assert SimBoard(3, seed=0, adc_kind=fe.ADC_STM32G4).effective_bits() > 10.0


def test_boards_are_reproducible_and_differ() -> None:
    a = SimBoard(3, seed=7).voltage_frame(13.5)
    b = SimBoard(3, seed=7).voltage_frame(13.5)
    c = SimBoard(3, seed=8).voltage_frame(13.5)
    assert a == b
    assert a != c


def _measure(board: SimBoard, volts: float, frames: int = 4, bv=None) -> int:
    bv = bv or measure.BlockVoltage(board.variant.id)
    for _ in range(frames):
        codes = board.voltage_frame(volts)
        bv.push_frame(fe.frame_sum_x2(codes, len(codes), board.adc_kind))
    return bv.voltage_uv


def test_block_voltage_before_and_after_calibration() -> None:
    for vid in (0, 3, 4):
        board = SimBoard(vid, seed=3)
        v = variants.by_id(vid)
        # uncalibrated: divider, reference and converter tolerances, < 1 %
        raw = _measure(board, v.float_uv / 1e6)
        assert abs(raw - v.float_uv) / v.float_uv < 0.01
        lo, hi = v.eq_min_uv, v.measure_max_uv * 9 // 10
        offset, gain = measure.calibration_from_points(
            _measure(board, lo / 1e6), lo, _measure(board, hi / 1e6), hi
        )
        bv = measure.BlockVoltage(vid, offset, gain)
        got = _measure(board, v.float_uv / 1e6, frames=6, bv=bv)
        assert abs(got - v.float_uv) / v.float_uv < 0.001, (vid, got)


def test_fast_frame_sum_agrees_with_sample_by_sample() -> None:
    board = SimBoard(3, seed=5)
    for volts in (12.0, 13.5, 15.7):
        exact = [fe.frame_sum_x2(c, len(c), fe.ADC_RP2040) for c in
                 (board.voltage_frame(volts) for _ in range(4))]  # fmt: skip
        fast = [board.voltage_frame_sum_x2(volts) for _ in range(4)]
        mean_exact = sum(exact) / len(exact)
        mean_fast = sum(fast) / len(fast)
        # same mean within a tenth of an LSB of the frame mean (2048 units per LSB)
        assert abs(mean_exact - mean_fast) < 0.1 * 2 * fe.VOLTAGE_FRAME_SAMPLES


def test_temperature_channels_through_the_firmware() -> None:
    board = SimBoard(3, seed=2)
    t = measure.Temperature(fe.ADC_RP2040)
    for _ in range(4):
        internal = board.internal_sensor_frame(35.0)
        probe = board.probe_frame(None)
        t.push_frame(fe.frame_sum_x2(internal, len(internal), 0), fe.frame_sum_x2(probe, 64, 0))
    assert not t.probe_present and t.battery_temp_mc is None
    # uncalibrated internal sensor: within its per-chip error (about +-3 K)
    assert abs(t.board_temp_mc - 35000) < 5000
    for _ in range(4):
        internal = board.internal_sensor_frame(35.0)
        probe = board.probe_frame(22.0)
        t.push_frame(fe.frame_sum_x2(internal, len(internal), 0), fe.frame_sum_x2(probe, 64, 0))
    assert t.probe_present
    # probe: NTC 1 %, beta 1 %, pull-up 0.1 %: well inside 1 K at room temperature
    assert abs(t.temp_mc - 22000) < 1000
    assert t.source == measure.TEMP_SOURCE_PROBE


def test_board_thermal_model() -> None:
    th = BoardThermal(22.0, 600.0, ambient_c=25.0)
    th.step(600.0, 2.0)
    assert th.temp_c == pytest.approx(25 + 44 * (1 - math.exp(-1)), abs=1e-9)
    for _ in range(100):
        th.step(600.0, 2.0)
    assert th.temp_c == pytest.approx(69.0, abs=1e-6)
    th.step(1e6, 0.0, ambient_c=30.0)
    assert th.temp_c == pytest.approx(30.0)


def test_bleed_current_matches_the_variant_table() -> None:
    for v in variants.VARIANTS:
        board = SimBoard(v.id)
        amps = board.bleed_current_a(v.float_uv / 1e6, 1000)
        assert amps * 1000 == pytest.approx(v.bleed_ma, rel=0.05), v.code


def test_stand_in_string_balances_through_its_physics() -> None:
    from boards.sim.battery import StandInBlock, solve_string

    blocks = [StandInBlock(6, 2.25 + d, 0.1) for d in (0.0, 0.02, -0.02, 0.0)]
    charger = 4 * 13.5
    current, volts = solve_string(blocks, charger, [0.0] * 4)
    assert sum(volts) == pytest.approx(charger, abs=1e-6)
    assert volts[1] > volts[0] > volts[2]
    # the high block bleeds 0.15 A: it drops, the others rise, the sum holds
    current2, volts2 = solve_string(blocks, charger, [0.0, 0.15, 0.0, 0.0])
    assert sum(volts2) == pytest.approx(charger, abs=1e-6)
    assert volts2[1] < volts[1]
    assert all(volts2[k] > volts[k] for k in (0, 2, 3))
    assert current2 > current


def test_board_heats_with_its_bleed() -> None:
    board = SimBoard(3)
    t = 25.0
    for _ in range(12):
        t = board.heat(600.0, 13.5, 1000, 25.0)
    # 2 h of full bleed, no controller.  The resistor is off the board: only its share
    # (10-30 %, the wires and the enclosure wall) and the module's own 0.22-0.30 W heat
    # the board, x 22 K/W: 34-43 degC, well under the 63 degC where derating begins
    bleed_w = 13.5 * 13.5 / 91.0
    expected = 25.0 + (bleed_w * board.bleed_board_share + board.supply_w) * 22.0
    assert 0.1 <= board.bleed_board_share <= 0.3
    assert 34.0 < t < 43.0 and abs(t - expected) < 0.05
    # the bleed resistor's body runs 2 W x 31.8 K/W above the air: the die does not
    # see it (the controller caps the duty for it, shared/balance.py)
    assert abs(board.resistor_c - 25.0 - bleed_w * 31.8) < 0.1
    # and the module's supply current comes from its block
    assert 0.016 < board.supply_current_a(13.5) < 0.023
    # the body cools with its own time constant when the bleed stops, the board slower
    board.heat(300.0, 13.5, 0, 25.0)
    assert board.resistor_c - 25.0 == pytest.approx(bleed_w * 31.8 * math.exp(-1), rel=1e-6)


def test_memoised_converter_expectation_matches_the_direct_one():
    """The simulator's fast frames interpolate a memoised expectation: within 0.15 LSB
    of computing the 32-quantile sum directly, across the wide codes of an RP2040."""
    import numpy as np

    from boards.sim.frontend import SimBoard
    from shared import frontend as fe

    board = SimBoard(3, seed=5, adc_kind=fe.ADC_RP2040)
    for spread in (0.3, 1.0, 3.0):
        s = round(spread * 8) / 8
        for mu in np.linspace(500.0, 520.0, 97):  # across the wide code at 511/512
            direct = board._mean_x2(mu, s)
            assert abs(board._mean_x2_cached(mu, spread) - direct) <= 0.3  # x2 units


def test_a_board_drifts_over_its_life_and_has_a_real_inl() -> None:
    # Roughness of a real board (docs/measurement.md, "Error budget over a service
    # life"): several LSB of INL on some chips, and a reading that moves with the years
    # (reference ageing and hysteresis, divider drift, leakage, converter offset).
    inl = []
    moved = []
    for seed in range(16):
        board = SimBoard(3, seed)
        inl.append(max(abs(board.adc.inl_lsb(u)) for u in range(0, 4096, 8)))
        new = board._volt_pin(13.5, 25.0)
        board.age_years = 10.0
        moved.append(abs(board._volt_pin(13.5, 25.0) / new - 1.0))
    assert max(inl) > 2.0 and max(inl) < 8.0
    assert 20e-6 < max(moved) < 1e-3  # tens to hundreds of ppm, not percent
    # the divider sits above the die when the resistor is hot (the board's share of
    # its heat comes in at the bleed wires' connector): the die does not see it
    board = SimBoard(3, 1)
    for _ in range(6):
        board.heat(600.0, 13.5, 1000, 25.0)
    assert board.divider_rise_k == pytest.approx(
        board.divider_coupling * board.bleed_board_share * (board.resistor_c - 25.0)
    )
    assert board.divider_rise_k > 0


def test_flicker_noise_has_its_rms_and_a_falling_spectrum() -> None:
    import random as _random

    import numpy as np

    from boards.sim.frontend import _flicker

    x = np.array(_flicker(1 << 15, 1e-3, 50e-6, _random.Random(3)))
    assert 35e-6 < x.std() < 65e-6
    # more power below 5 Hz than between 50 and 500 Hz per Hz: 1/f, not white
    spec = np.abs(np.fft.rfft(x - x.mean())) ** 2
    f = np.fft.rfftfreq(len(x), 1e-3)
    low = spec[(f > 0.5) & (f < 5)].mean()
    high = spec[(f > 50) & (f < 500)].mean()
    assert low > 10 * high
