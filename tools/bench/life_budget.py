"""Error budget of bench_sim_life by source (docs/measurement.md, "Error budget over a
service life"): a diagnostic, not a benchmark (it registers no figures).

For each source of boards/sim/frontend.py's model: the worst error over life of the
same 160 boards (32 per variant) and seeds as the bench with that source switched off,
and with only that source on (the static tolerances, calibrated out, stay on in the
second column so the calibration has something to remove).  Run from the tree root:

    nice -n 10 .venv/bin/python tools/bench/life_budget.py [--mcu] [--boards N]

With ``--divider-age X [X ...]`` it prints instead the band over the divider's ageing
(boards.sim.frontend.DIVIDER_AGE_REL, unsourced) scaled by each X: the worst over life
and the 99th percentile of the same boards (docs/measurement.md's band table).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from boards.sim import frontend as sim_fe
from shared import frontend as fe
from shared import variants
from stringcare import benchrun

life: Any = benchrun.load(Path(__file__).resolve().parent / "bench_sim_life.py")


def _zero(*names: str) -> Callable[[Any], None]:
    def apply(board: Any) -> None:
        for name in names:
            obj = board
            *path, attr = name.split(".")
            for p in path:
                obj = getattr(obj, p)
            setattr(obj, attr, 0.0)

    return apply


# source -> what switches it off on a constructed board (module constants: below)
SOURCES: dict[str, Callable[[Any], None]] = {
    "calibration meter": _zero(),
    "board thermometer": _zero(),
    "ADS1219 INL": _zero("ads1219.inl_bow_v", "ads1219.inl_s_v"),
    "ADS1219 noise": _zero("ads1219.noise_v"),
    "ADS1219 drifts and ageing (assumed)": _zero(
        "ads1219.offset_tc_v_per_k",
        "ads1219.gain_tc",
        "ads1219.offset_life_v",
        "ads1219.gain_life",
    ),
    "MCU ADC INL": _zero("adc.inl_bow_lsb", "adc.inl_saw_lsb"),
    "MCU ADC offset drift and ageing": _zero("adc.offset_tc_lsb_per_k", "adc_offset_life_lsb"),
    "divider ratio tempco": _zero("divider_tc"),
    "divider ageing": _zero("divider_life_rel"),
    "divider heating by the bleed resistor": _zero("divider_coupling"),
    "leakage across the divider": _zero("leak_life_s"),
    "reference tempco": _zero("vref_tc"),
    "reference ageing": _zero("vref_age_ppm"),
    "reference thermal hysteresis": _zero("vref_hysteresis_ppm"),
}
STATIC = _zero(
    "vref_error", "buffer_offset_v", "ads1219.gain_error", "ads1219.offset_v", "adc.gain_error"
)


def _run(off: set[str], vadc: int, boards: int) -> tuple[float, float, float]:
    """(worst over life, worst at year 0, 99th percentile) with the sources in `off`
    switched off."""
    real = sim_fe.SimBoard
    saved = (sim_fe.METER_READING, sim_fe.METER_COUNTS, life.THERMOMETER_K)

    def board(*a: Any, **k: Any) -> Any:
        b = real(*a, **k)
        for name in off:
            SOURCES[name](b)
        return b

    if "calibration meter" in off:
        sim_fe.METER_READING, sim_fe.METER_COUNTS = 0.0, 0
    if "board thermometer" in off:
        life.THERMOMETER_K = 0.0
    life.SimBoard = board
    try:
        errs = []
        for v in variants.VARIANTS:
            for seed in range(boards):
                errs.extend(life.board_errors(v.id, seed, None, vadc))
    finally:
        life.SimBoard = real
        sim_fe.METER_READING, sim_fe.METER_COUNTS, life.THERMOMETER_K = saved
    allv = sorted(x for _, x, _ in errs)
    new = max(x for a, x, _ in errs if a == 0.0)
    return allv[-1], new, allv[int(0.99 * (len(allv) - 1))]


def divider_age_band(scales: list[float], vadc: int, boards: int) -> None:
    """Print the worst over life and the 99th percentile with DIVIDER_AGE_REL x each."""
    saved = sim_fe.DIVIDER_AGE_REL
    print("| divider ageing | worst over life | 99th percentile |")
    print("|---|---|---|")
    try:
        for k in scales:
            sim_fe.DIVIDER_AGE_REL = saved * k
            worst, _, p99 = _run(set(), vadc, boards)
            print("| x %g | %.4f %% | %.4f %% |" % (k, worst, p99))
            sys.stdout.flush()
    finally:
        sim_fe.DIVIDER_AGE_REL = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mcu", action="store_true", help="the RP2040-ADC board")
    ap.add_argument("--boards", type=int, default=life.BOARDS, help="boards per variant")
    ap.add_argument(
        "--divider-age",
        type=float,
        nargs="+",
        metavar="X",
        help="print the band over the divider's ageing scaled by each X instead",
    )
    args = ap.parse_args()
    vadc = fe.VADC_MCU if args.mcu else fe.VADC_ADS1219
    if args.divider_age:
        divider_age_band(args.divider_age, vadc, args.boards)
        return
    names = [n for n in SOURCES if not n.startswith("ADS1219" if args.mcu else "MCU ADC")]
    base = _run(set(), vadc, args.boards)
    print("| source | worst over life without it | with only it (and the static tolerances) |")
    print("|---|---|---|")
    print("| all sources (the bench) | %.4f %% | |" % base[0])
    for name in names:
        without = _run({name}, vadc, args.boards)
        alone = _run(set(names) - {name}, vadc, args.boards)
        print("| %s | %.4f %% | %.4f %% |" % (name, without[0], alone[0]))
        sys.stdout.flush()
    print("| none but the static tolerances | | %.4f %% |" % _run(set(names), vadc, args.boards)[0])


if __name__ == "__main__":
    main()
