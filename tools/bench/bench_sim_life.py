"""Voltage accuracy of a simulated module over its service life (docs/measurement.md,
"Error budget over a service life").

Each simulated board (boards/sim/frontend.py) carries its tolerances and the roughness
a real one has: converter INL (bow and 512-code sawtooth) and offset drift with
temperature and years, divider resistors with their own tempco and drift (they do not
track), reference ageing and thermal hysteresis, leakage across the divider, and a
divider that sits above the die sensor's temperature while the bleed resistor is hot.
It is commissioned as boards/rp2040_module/README.md says, by an engineer whose meter
has a real uncertainty (METER_*): the board sensor against a thermometer
(THERMOMETER_K), two voltage points, the tempco with the board warmed.  Then, for ages
0-10 years, ambients 10-40 °C, the board idle or bleeding hard, and five voltages over
the variant's nominal range, the calibrated module reads the block through the real
firmware (shared/measure.py) and the error is taken against the true voltage.

module.voltage.err_pct.life: the largest |error| in % of reading over all of that, 32
boards of every variant, on the board with the external ADS1219 block-voltage converter
(Ads1219Model) and its RES21A divider network (SimBoard._divider_network); the same
figures with `.mcu_adc` for the board reading the block with the RP2040's own ADC.  The
meter's own uncertainty is in it (the module can be no better than its calibration).
tools/bench/life_budget.py breaks the figure down by source.

The figure rests on one unsourced assumption, the divider network's ageing
(boards.sim.frontend.DIVIDER_AGE_REL: no published long-term ratio figure of the RES21A
was found), so the bench also reports the band over it: the same boards with a divider
that does not age (`.divider_age_x0`) and one that ages twice as much (`.divider_age_x2`).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from boards.sim import frontend as sim_fe
from boards.sim.frontend import BLEED_BODY_RTH_K_PER_W, SimBoard, meter_reading_v
from shared import frontend as fe
from shared import measure, variants
from stringcare.commands import calibrate

# Boards per variant: a batch of 32 (160 boards of each kind).  The worst of a batch is
# the figure, so the batch must be large enough to show a tail: with 8 per variant the
# worst board happened to sit at 1.6 sigma of the divider's ageing, with 32 at 2.1.
BOARDS = 32
AGES_YEARS = (0.0, 2.0, 5.0, 10.0)
AMBIENTS_C = (10.0, 25.0, 40.0)
# The engineer's meter: boards.sim.frontend.meter_reading_v (a 5 1/2-digit bench
# meter's uncertainty, one draw per reading).
# The calibration points: "near the bottom and near the top of the variant's range"
# (boards/rp2040_module/README.md), as `stringcare calibrate voltage` suggests them
# (calibrate.cal_points_uv: a tenth of the span inside its ends, 12 V: 8.8 and
# 15.3 V).  A narrower pair (the simulator's engineer, stringcare.sim.engine, takes
# 11.0 and 14.5 V on a 12 V block) extrapolates the meter's error to the range's ends.

THERMOMETER_K = 0.3  # the reference thermometer for the board sensor
FRAMES = 16
# board node above ambient when bleeding hard: the module's supply and the off-board
# resistor's share of its 2 W (boards/sim/frontend.py: at most 0.30 + 0.3 x 2.0 W at
# 22 K/W; 35 K while the resistor sat on the board, derated)
BLEED_RISE_K = 20.0
SUPPLY_RISE_K = 6.0  # board node above ambient from the module's own supply

METRICS = {
    "module.voltage.err_pct.life": (
        "%",
        "<= 0.1",
        "largest |voltage error| over 10 years, 10-40 °C ambient, idle or bleeding, "
        "nominal range, 32 boards per variant, meter uncertainty included; the module "
        "board with the ADS1219 block-voltage converter and its RES21A divider network",
    ),
    "module.voltage.err_pct.life.mcu_adc": (
        "%",
        None,
        "the same on the board reading the block voltage with the RP2040's own ADC",
    ),
    "module.voltage.err_pct.life_window.mcu_adc": (
        "%",
        None,
        "the RP2040-ADC board inside the equalising window",
    ),
    "module.voltage.err_pct.new.mcu_adc": ("%", None, "the RP2040-ADC board at year 0"),
    "module.voltage.err_pct.life_p95.mcu_adc": (
        "%",
        None,
        "the RP2040-ADC board: 95th percentile",
    ),
    "module.voltage.err_pct.life_window": (
        "%",
        None,
        "the same inside the equalising window (where balancing and judgement read)",
    ),
    "module.voltage.err_pct.new": ("%", None, "the same at commissioning age (year 0)"),
    "module.voltage.err_pct.life_p95": ("%", None, "95th percentile of those errors"),
    "module.voltage.err_pct.life_p99": ("%", None, "99th percentile of those errors"),
    "module.voltage.err_pct.life.recal5": (
        "%",
        None,
        "the ADS1219 board's worst over life when the engineer commissions it again at "
        "year 5 (the same procedure and meter): what a mid-life recalibration buys",
    ),
    "module.voltage.err_pct.life.divider_age_x2": (
        "%",
        None,
        "the ADS1219 board's worst over life with the divider network ageing twice the "
        "model's assumption (DIVIDER_AGE_REL: no published long-term ratio figure of the "
        "RES21A found): the band's upper edge",
    ),
    "module.voltage.err_pct.life.divider_age_x0": (
        "%",
        None,
        "the same with a divider that does not age at all: the band's lower edge",
    ),
    "module.voltage.bleed_err_pct.max": (
        "%",
        None,
        "largest share of an error from the divider's heating by the bleed resistor, "
        "which the die-temperature tempco correction cannot see",
    ),
}


def _top_uv(v: variants.Variant) -> int:
    return min(v.nominal_max_uv, v.measure_max_uv * 95 // 100)


def _meter(true_v: float, rng: random.Random) -> float:
    return meter_reading_v(true_v, rng)


def _board_mc(board: SimBoard, board_c: float, offset_mc: int, adc_kind: int) -> int:
    temp = measure.Temperature(adc_kind, offset_mc)
    for _ in range(8):
        temp.push_frame(board.internal_sensor_frame_sum_x2(board_c))
    return int(temp.board_temp_mc)


def _read_uv(bv: measure.BlockVoltage, board: SimBoard, v: float, board_c: float, mc: int) -> int:
    """The module's reading: the mean of FRAMES frames, tempco-corrected as
    BlockVoltage.push_frame does (without its filter's settling)."""
    total = 0
    for _ in range(FRAMES):
        total += bv.raw_uv(board.voltage_frame_sum_x2(v, 0.0, board_c))
    uv = total // FRAMES
    if bv.tempco_ppb:
        uv -= measure.tempco_correction_uv(uv, bv.tempco_ppb, mc - bv.tempco_ref_mc)
    return uv


def _reported(uv: int) -> int:
    """A reading as the bus reports it and `stringcare calibrate` takes it (MEAS: 10 uV)."""
    return (uv + 5) // 10 * 10


def commission(board: SimBoard, rng: random.Random) -> tuple[int, int, int, int, int]:
    """(offset_uv, gain_ppm, sensor offset m°C, tempco ref m°C, tempco ppb/K)."""
    v = board.variant
    kind = board.adc_kind
    vadc = board.vadc
    # 1. the board sensor against the thermometer, still air at 25 °C
    thermo = 25.0 + rng.uniform(-THERMOMETER_K, THERMOMETER_K)
    sensor_mc = int(thermo * 1000) - _board_mc(board, 25.0, 0, kind)
    # 2. two voltage points, the supply read by the meter
    bv = measure.BlockVoltage(v.id, vadc=vadc)
    raws = []
    refs = []
    for uv in calibrate.cal_points_uv(v):
        total = 0
        for _ in range(FRAMES):
            total += _reported(bv.raw_uv(board.voltage_frame_sum_x2(uv / 1e6, 0.0, 25.0)))
        raws.append(total // FRAMES)
        refs.append(int(round(_meter(uv / 1e6, rng) * 1e6)))
    offset, gain = measure.calibration_from_points(raws[0], refs[0], raws[1], refs[1])
    # 3. the tempco: one steady voltage, the board cold then warmed 30 K (heat gun:
    # board and divider alike), readings as reported (10 uV) against the meter
    cal = measure.BlockVoltage(v.id, offset, gain, vadc=vadc)
    tempco_v = v.float_uv / 1e6
    meter_mv = _meter(tempco_v, rng) * 1000
    points = []
    for board_c in (25.0, 55.0):
        mc = _board_mc(board, board_c, sensor_mc, kind)
        total_uv = 0
        for _ in range(10):
            total_uv += _reported(cal.raw_uv(board.voltage_frame_sum_x2(tempco_v, 0.0, board_c)))
        points.append((total_uv / 10 / 1000, meter_mv, mc))
    tc = calibrate.tempco_fit(points[0], points[1], points[0][2], 0)
    return offset, gain, sensor_mc, points[0][2], tc


def board_errors(
    variant_id: int,
    seed: int,
    bleed: list[float] | None = None,
    vadc: int = fe.VADC_MCU,
    recal_years: float | None = None,
) -> list[tuple[float, float, bool]]:
    """(age, |error| %, inside the equalising window) of one board over its life.

    bleed, if given, receives |reading bleeding - the same with the divider at the
    board's temperature| in % of reading: what the divider's own heating adds.
    recal_years: the engineer commissions the board again (the same procedure, another
    meter reading) at that age; older readings use the new calibration."""
    board = SimBoard(variant_id, seed, vadc=vadc)
    v = board.variant
    rng = random.Random(("engineer", variant_id, seed).__repr__())
    offset, gain, sensor_mc, ref_mc, tc = commission(board, rng)
    recal = None
    if recal_years is not None:
        board.age_years = recal_years
        recal = commission(board, random.Random(("recal", variant_id, seed).__repr__()))
    top = _top_uv(v)
    points = [v.nominal_min_uv + (top - v.nominal_min_uv) * k // 4 for k in range(5)]
    points += [v.eq_min_uv + (v.eq_max_uv - v.eq_min_uv) * k // 4 for k in range(5)]
    window = set(points[5:])
    out = []
    for age in AGES_YEARS:
        board.age_years = age
        if recal is not None and recal_years is not None and age > recal_years:
            offset, gain, sensor_mc, ref_mc, tc = recal
        for ambient in AMBIENTS_C:
            for bleeding in (False, True):
                board_c = ambient + (BLEED_RISE_K if bleeding else SUPPLY_RISE_K)
                # the divider sees part of the hot bleed resistor's rise (two-node
                # model: ~2 W on its body when bleeding hard)
                hot_rise = 2.0 * BLEED_BODY_RTH_K_PER_W if bleeding else 0.0
                board.divider_rise_k = board.divider_rise_for(hot_rise)
                mc = _board_mc(board, board_c, sensor_mc, board.adc_kind)
                for uv in points:
                    bv = measure.BlockVoltage(v.id, offset, gain, vadc=vadc)
                    bv.set_tempco(ref_mc, tc)
                    noise = board.noise.getstate()
                    got = _read_uv(bv, board, uv / 1e6, board_c, mc)
                    out.append((age, abs(got - uv) / uv * 100, uv in window))
                    if bleeding and bleed is not None:
                        # (the same noise draws: the headline figures stay as they were)
                        rise = board.divider_rise_k
                        after = board.noise.getstate()
                        board.divider_rise_k = 0.0
                        board.noise.setstate(noise)
                        cool = _read_uv(bv, board, uv / 1e6, board_c, mc)
                        board.divider_rise_k = rise
                        board.noise.setstate(after)
                        bleed.append(abs(got - cool) / uv * 100)
        board.divider_rise_k = 0.0
    return out


def _figures(vadc: int, progress: Callable[[str], None]) -> dict[str, float]:
    errs: list[tuple[float, float, bool]] = []
    bleed: list[float] = []
    for v in variants.VARIANTS:
        worst = 0.0
        for seed in range(BOARDS):
            e = board_errors(v.id, seed, bleed, vadc)
            errs.extend(e)
            worst = max(worst, max(x for _, x, _ in e))
        progress("%s, %s: worst %.4f %% over life" % (fe.VADC_NAMES[vadc], v.code, worst))
    allv = sorted(x for _, x, _ in errs)
    return {
        "life": round(allv[-1], 4),
        "life_window": round(max(x for _, x, w in errs if w), 4),
        "new": round(max(x for a, x, _ in errs if a == 0.0), 4),
        "life_p95": round(allv[int(0.95 * (len(allv) - 1))], 4),
        "life_p99": round(allv[int(0.99 * (len(allv) - 1))], 4),
        "bleed": round(max(bleed), 4),
    }


def recal_worst(vadc: int, recal_years: float) -> float:
    """The worst |error| % over life of the bench's boards, recommissioned at
    recal_years."""
    worst = 0.0
    for v in variants.VARIANTS:
        for seed in range(BOARDS):
            e = board_errors(v.id, seed, None, vadc, recal_years)
            worst = max(worst, max(x for _, x, _ in e))
    return round(worst, 4)


def divider_age_worst(vadc: int, factor: float) -> float:
    """The worst |error| % over life of the bench's boards with the divider's ageing
    (boards.sim.frontend.DIVIDER_AGE_REL, an assumption) scaled by factor."""
    saved = sim_fe.DIVIDER_AGE_REL
    sim_fe.DIVIDER_AGE_REL = saved * factor
    try:
        worst = 0.0
        for v in variants.VARIANTS:
            for seed in range(BOARDS):
                e = board_errors(v.id, seed, None, vadc)
                worst = max(worst, max(x for _, x, _ in e))
    finally:
        sim_fe.DIVIDER_AGE_REL = saved
    return round(worst, 4)


def run(progress: Callable[[str], None]) -> dict[str, float]:
    ext = _figures(fe.VADC_ADS1219, progress)
    recal5 = recal_worst(fe.VADC_ADS1219, 5.0)
    progress("ads1219, recommissioned at year 5: worst %.4f %% over life" % recal5)
    band = {k: divider_age_worst(fe.VADC_ADS1219, k) for k in (0.0, 2.0)}
    progress(
        "ads1219, divider ageing x0 / x1 / x2: worst %.4f / %.4f / %.4f %% over life"
        % (band[0.0], ext["life"], band[2.0])
    )
    mcu = _figures(fe.VADC_MCU, progress)
    return {
        "module.voltage.err_pct.life.recal5": recal5,
        "module.voltage.err_pct.life.divider_age_x2": band[2.0],
        "module.voltage.err_pct.life.divider_age_x0": band[0.0],
        "module.voltage.err_pct.life": ext["life"],
        "module.voltage.err_pct.life_window": ext["life_window"],
        "module.voltage.err_pct.new": ext["new"],
        "module.voltage.err_pct.life_p95": ext["life_p95"],
        "module.voltage.err_pct.life_p99": ext["life_p99"],
        "module.voltage.bleed_err_pct.max": ext["bleed"],
        "module.voltage.err_pct.life.mcu_adc": mcu["life"],
        "module.voltage.err_pct.life_window.mcu_adc": mcu["life_window"],
        "module.voltage.err_pct.new.mcu_adc": mcu["new"],
        "module.voltage.err_pct.life_p95.mcu_adc": mcu["life_p95"],
    }
