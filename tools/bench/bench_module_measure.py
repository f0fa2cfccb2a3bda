"""Module measurement accuracy on the simulated board (docs/ri.md, docs/frontend.md).

Ri: the benchmark capture set of boards/sim/riset.py (every variant's whole Ri range,
three charger-ripple conditions with off-nominal mains frequency, RC pair, drift,
sense-loop coupling, board temperature 15-40 degC, RP2040 converter), each board
calibrated once with a reference resistor; errors are against the block's R0.
Voltage: two-point calibration at 25 degC, then the nominal range at 10/25/40 degC
with ripple.  Filter and temperature figures from the firmware's own code.
Deterministic (seeded); nothing here is a timing.
"""

from __future__ import annotations

import math
import random
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from boards.sim import riset
from boards.sim.frontend import Ripple, SimBoard
from shared import frontend as fe
from shared import measure, ri, variants
from stringcare.dev import layout

METRICS = {
    "module.ri.err_median_pct": ("%", "<= 1.0", "median |Ri error| over the benchmark set"),
    "module.ri.err_p95_pct": ("%", "<= 2.0", "95th percentile |Ri error| over the set"),
    "module.ri.err_max_pct": ("%", None, "largest |Ri error| over the set"),
    "module.ri.repeat_sigma_pct": (
        "%",
        "<= 0.5",
        "worst relative standard deviation of 10 repeated measurements of one block",
    ),
    "module.ri.seconds": (
        "s",
        None,
        "time the battery is under test per Ri measurement (mean, incl. low-range retries)",
    ),
    "module.ri.failed_cases": ("cases", "<= 0", "set cases that gave no number"),
    "ri.method_agreement_pct.p95": (
        "%",
        "<= 3",
        "|step / ac - 1| on blocks with a charge-transfer arc, 95th percentile",
    ),
    "ri.method_agreement_pct.median": ("%", None, "the same, median"),
    "ri.ac_vs_r0_pct.p95": ("%", None, "|ac / R0 - 1| on the arc set (Ri is R0: docs/ri.md)"),
    "ri.step_vs_r0_pct.p95": ("%", None, "|step / R0 - 1| on the arc set"),
    "ri.switching.silent_error_cases": (
        "cases",
        "<= 0",
        "switching-ripple cases with a value more than 3 % off R0",
    ),
    "ri.switching.refused_cases": ("cases", None, "switching-ripple cases refused (saturated)"),
    "module.ri.err_p95_uncal_pct": (
        "%",
        None,
        "95th percentile |Ri error| without the per-board reference calibration",
    ),
    "module.ri.eval_heap_bytes": (
        "bytes",
        None,
        "heap allocated by one Ri evaluation in MicroPython (plan, evaluator, result, garbage)",
    ),
    "module.voltage.err_pct": (
        "%",
        "<= 0.1",
        "largest |voltage error| (% of reading) after calibration, nominal range, 10-40 degC",
    ),
    "module.voltage.err_uncal_pct": ("%", None, "the same before calibration"),
    "module.filter.noise_reduction": (
        "x",
        None,
        "noise sigma in / out of the voltage filter (white noise)",
    ),
    "module.filter.step_frames_small": (
        "frames",
        None,
        "100 ms frames to 90 % of a small step (below the re-seed threshold)",
    ),
    "module.filter.step_frames_big": ("frames", None, "frames to 90 % of a large step"),
    "module.temp.probe_err_c": (
        "degC",
        "<= 1.0",
        "largest |probe temperature error| 0-50 degC (NTC, beta, pull-up tolerances)",
    ),
    "module.adc.enob_rp2040": ("bits", None, "effective bits of the modelled RP2040 converter"),
}


def _ri_figures(progress: Callable[[str], None]) -> dict[str, float]:
    bench = riset.Bench(fe.ADC_RP2040)
    errors: list[float] = []
    uncal: list[float] = []
    seconds: list[float] = []
    failed = 0
    cases = list(riset.accuracy_cases())
    for n, case in enumerate(cases):
        result, secs, gain_range = bench.measure(case)
        seconds.append(secs)
        if result.ri_nohm is None:
            failed += 1
            progress("no value: %s: %s" % (case.name, result))
            continue
        truth = case.r0_ohm * 1e9
        errors.append(abs(result.ri_nohm / truth - 1) * 100)
        # the same capture's value without this board's calibration
        method = variants.by_id(case.variant_id).ri_method
        cal = bench.calibration_ppm(case.variant_id, case.board_seed, method, gain_range)
        uncal.append(abs(result.ri_nohm / (1 + cal / 1e6) / truth - 1) * 100)
        if (n + 1) % 30 == 0:
            progress("accuracy set: %d/%d" % (n + 1, len(cases)))
    worst_sigma = 0.0
    for group in riset.repeat_groups():
        values = []
        for case in group:
            result, _secs, _range = bench.measure(case)
            if result.ri_nohm is None:
                failed += 1
                continue
            values.append(result.ri_nohm)
        if len(values) >= 3:
            sigma = statistics.stdev(values) / statistics.mean(values) * 100
            worst_sigma = max(worst_sigma, sigma)
    progress("repeatability groups done")
    return {
        "module.ri.err_median_pct": round(statistics.median(errors), 4),
        "module.ri.err_p95_pct": round(riset.percentile(errors, 95), 4),
        "module.ri.err_max_pct": round(max(errors), 4),
        "module.ri.repeat_sigma_pct": round(worst_sigma, 4),
        "module.ri.seconds": round(statistics.mean(seconds), 2),
        "module.ri.failed_cases": failed,
        "module.ri.err_p95_uncal_pct": round(riset.percentile(uncal, 95), 4),
    }


def _eval_heap_bytes() -> int:
    """Heap held by one evaluation, measured in the MicroPython unix port (imported
    from source here, so the heap is larger than a board's; only the difference
    around the evaluation counts).  The capture responds to its excitation, so the
    step method's arc fit runs too."""
    script = """
import gc, sys
sys.path.insert(0, %r)
from shared import ri, ri_ac, ri_arc, ri_step  # imported on first use: before the window
from array import array
v = array('H', [2048] * 256)
i = array('H', [2048] * 256)
worst = 0
for method, variant in ((0, 3), (1, 0)):
    gc.collect()
    before = gc.mem_alloc()
    plan = ri.plan_for(variant, method)
    ev = ri.evaluator(plan)
    left = plan.samples
    k = 0
    while left:
        n = 256 if left > 256 else left
        for j in range(n):  # a response to the excitation, so that every step runs
            on = plan.excitation_on((k + j) // plan.slot_samples)
            v[j] = 2148 if on else 2048
            i[j] = 2448 if on else 2048
        ev.feed(v, i, n)
        left -= n
        k += n
    r = ev.result()
    worst = max(worst, gc.mem_alloc() - before)  # garbage included: no collection
    ev = plan = r = None
print(worst)
""" % str(layout.repo_root())
    exe = Path(sys.executable).parent / "micropython"
    proc = subprocess.run(
        [str(exe), "-X", "heapsize=512k", "-c", script], capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        raise RuntimeError("MicroPython evaluation failed: %s" % (proc.stdout + proc.stderr))
    return int(proc.stdout.strip().splitlines()[-1])


def _measure_voltage(board: SimBoard, volts: float, board_c: float, bv=None, frames: int = 4):
    bv = bv or measure.BlockVoltage(board.variant.id)
    cells = board.variant.cells
    ripple = Ripple(50.0, [(2, 0.004 * cells, 0.3), (6, 0.002 * cells, 1.0)], 0.003)
    for k in range(frames):
        codes = board.voltage_frame(volts, ripple, board_c, t0=k * 0.1)
        bv.push_frame(fe.frame_sum_x2(codes, len(codes), board.adc_kind))
    return bv.voltage_uv


def _voltage_figures(progress: Callable[[str], None]) -> dict[str, float]:
    worst = 0.0
    worst_uncal = 0.0
    for v in variants.VARIANTS:
        top = v.measure_max_uv * 95 // 100
        points = [v.nominal_min_uv + (top - v.nominal_min_uv) * k // 4 for k in range(5)]
        for seed in range(4):
            board = SimBoard(v.id, seed)
            lo, hi = v.eq_min_uv, v.measure_max_uv * 9 // 10
            offset, gain = measure.calibration_from_points(
                _measure_voltage(board, lo / 1e6, 25.0),
                lo,
                _measure_voltage(board, hi / 1e6, 25.0),
                hi,
            )
            for uv in points:
                for board_c in (10.0, 25.0, 40.0):
                    got = _measure_voltage(
                        board, uv / 1e6, board_c, measure.BlockVoltage(v.id, offset, gain)
                    )
                    worst = max(worst, abs(got - uv) / uv * 100)
                    raw = _measure_voltage(board, uv / 1e6, board_c)
                    worst_uncal = max(worst_uncal, abs(raw - uv) / uv * 100)
        progress("voltage: %s done" % v.code)
    return {
        "module.voltage.err_pct": round(worst, 4),
        "module.voltage.err_uncal_pct": round(worst_uncal, 4),
    }


def _filter_figures() -> dict[str, float]:
    rng = random.Random(5)
    f = measure.OutlierLowPass(3, noise_floor=1)
    sigma = 200.0
    ins = []
    outs = []
    for n in range(20000):
        x = 1000000 + int(round(rng.gauss(0.0, sigma)))
        y = f.push(x)
        if n > 100:
            ins.append(x)
            outs.append(y)
    reduction = statistics.pstdev(ins) / statistics.pstdev(outs)

    def frames_to_90(step: int, floor: int) -> int:
        g = measure.OutlierLowPass(3, noise_floor=floor)
        for _ in range(10):
            g.push(0)
        n = 0
        while g.push(step) < step * 9 // 10:
            n += 1
        return n + 1

    # floor = the block-voltage channel's (1 LSB of the frame mean, in frame-sum units)
    floor = 2 << fe.VOLTAGE_FRAME_LOG2
    return {
        "module.filter.noise_reduction": round(reduction, 2),
        "module.filter.step_frames_small": frames_to_90(2 * floor, floor),
        "module.filter.step_frames_big": frames_to_90(50 * floor, floor),
    }


def _temperature_figures() -> dict[str, float]:
    worst = 0.0
    for seed in range(8):
        board = SimBoard(3, seed)
        for battery_c in range(0, 51, 5):
            t = measure.Temperature(fe.ADC_RP2040)
            for _ in range(5):
                internal = board.internal_sensor_frame(30.0)
                probe = board.probe_frame(float(battery_c))
                t.push_frame(
                    fe.frame_sum_x2(internal, len(internal), fe.ADC_RP2040),
                    fe.frame_sum_x2(probe, len(probe), fe.ADC_RP2040),
                )
            assert t.battery_temp_mc is not None
            worst = max(worst, abs(t.battery_temp_mc / 1000.0 - battery_c))
    return {"module.temp.probe_err_c": round(worst, 3)}


def _arc_figures(progress: Callable[[str], None]) -> dict[str, float]:
    """Both methods on blocks with a charge-transfer arc, and the switching-ripple set."""
    bench = riset.Bench(fe.ADC_RP2040)
    agree: list[float] = []
    ac_err: list[float] = []
    step_err: list[float] = []
    for case in riset.arc_cases():
        step, _s, _r = bench.measure(case, ri.RI_METHOD_STEP)
        ac, _s, _r = bench.measure(case, ri.RI_METHOD_AC)
        if step.ri_nohm is None or ac.ri_nohm is None:
            progress("arc set, no value: %s: step %s, ac %s" % (case.name, step, ac))
            continue
        truth = case.r0_ohm * 1e9
        agree.append(abs(step.ri_nohm / ac.ri_nohm - 1) * 100)
        ac_err.append(abs(ac.ri_nohm / truth - 1) * 100)
        step_err.append(abs(step.ri_nohm / truth - 1) * 100)
    silent = 0
    refused = 0
    for case in riset.switching_cases():
        result, _s, _r = bench.measure(case)
        if result.ri_nohm is None:
            refused += 1
        elif abs(result.ri_nohm / (case.r0_ohm * 1e9) - 1) > 0.03:
            silent += 1
            progress("switching ripple, silent error: %s: %s" % (case.name, result))
    progress("arc set: %d cases, switching set done" % len(agree))
    return {
        "ri.method_agreement_pct.p95": round(riset.percentile(agree, 95), 2),
        "ri.method_agreement_pct.median": round(statistics.median(agree), 2),
        "ri.ac_vs_r0_pct.p95": round(riset.percentile(ac_err, 95), 2),
        "ri.step_vs_r0_pct.p95": round(riset.percentile(step_err, 95), 2),
        "ri.switching.silent_error_cases": silent,
        "ri.switching.refused_cases": refused,
    }


def run(progress: Callable[[str], None]) -> dict[str, float]:
    out: dict[str, float] = {}
    out.update(_filter_figures())
    progress("filter: noise / %.2f" % out["module.filter.noise_reduction"])
    out.update(_temperature_figures())
    out["module.adc.enob_rp2040"] = round(
        statistics.mean(SimBoard(3, s).effective_bits() for s in range(4)), 2
    )
    out.update(_voltage_figures(progress))
    out["module.ri.eval_heap_bytes"] = _eval_heap_bytes()
    out.update(_ri_figures(progress))
    out.update(_arc_figures(progress))
    if not math.isfinite(out["module.ri.err_p95_pct"]):
        raise RuntimeError("no Ri figures")
    return out
