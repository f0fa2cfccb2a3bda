"""Balancing as a band: the `mixed` scenario over the uncertain parameters and seeds.

One balancing figure of one string at one guess of the interface capacitance says
little: that capacitance (docs/simulation.md, "interface capacitance") is an estimate
from surface areas, the least certain parameter, and sets how fast a bled block
falls.  This benchmark runs the `mixed` scenario (the reference string's oxygen-cycle
spread plus one block 3 % short of charge) with the real firmware in the loop for
every interface factor in FACTORS and every seed in SEEDS (different strings drawn
from the same spread), and reports the median and the worst over the runs:

sim.converge_h.band.*: hours until every block stays within +-10 mV of its string's
target (truth).  sim.converge_ratio.band.*: that time divided by the greedy
reference's on the same string (full bleed on every block above the average, perfect
knowledge): how close the firmware comes to what the bleed current allows.  A run
that never settles counts as its run length (a lower bound) and is named in the
progress lines.

sim.greedy_limited_converge_h.band.*: the same greedy policy on boards that heat: each
module's duty capped by the firmware's own derating law (shared/balance.py) on its
board's thermal model (boards/sim/frontend.py), as every real board must.  Not the
yardstick of the ratio (that stays the unlimited greedy); it says how much of the
ratio is the boards' thermal limit (docs/simulation.md, "Balancing as a band").
sim.bound_converge_h.band.* and sim.bound_ratio.band.*: a lower bound for any policy on
those boards with perfect knowledge (bound_h: the latest of each high block's fastest
fall and the lowest block's fastest rise), and that bound over the greedy time: the
least ratio any policy could reach (loose at small C: docs/simulation.md).

The runs are independent and go to a process pool (as many workers as cores, at most
MAX_WORKERS); each run lasts twice its greedy time plus HOLD_H, at least MIN_RUN_H
(past the daily Ri round).
Only `make bench` / `stringcare bench sim_band` runs it: 24 runs of 64 firmware
modules, ~100 min of CPU (55 min of wall on 2 cores, 2026-12-04: 2-4 min a firmware
run, the rest the physics-only references).  STRINGCARE_BAND_QUICK=1 runs one seed at
factors 1 and 30 on 16 blocks (a development check, not the figure).  A documented
subset of the band (every factor, fewer seeds, a shorter string): STRINGCARE_BAND_SEEDS=4,1 and
STRINGCARE_BAND_BLOCKS=16 (the low block stays the string's last when the string is
shorter than 41 blocks); the progress lines name the subset run.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

FACTORS = (1.0, 3.0, 10.0, 30.0)
SEEDS = (1, 2, 3, 4, 5, 6)
MAX_WORKERS = 4
HOLD_H = 6.0  # a run goes on this long past twice the greedy time ...
# ... and at least this long: past the daily Ri round (the first from 0.25 h, the next
# from ~25.0 h, 64 modules 39 s apart: ~42 min), so every run holds one round after it
# settles; with 12 h, runs of 22-25 h ended before it and others in it
# (docs/simulation.md, "the runs' length")
MIN_RUN_H = 27.0
MAX_RUN_H = 96.0

METRICS = {
    "sim.converge_h.band.median": (
        "h",
        None,
        "mixed scenario, interface C x {1, 3, 10, 30} x 6 seeds: median hours until all "
        "64 blocks stay in +-10 mV",
    ),
    "sim.converge_h.band.worst": ("h", None, "the same, worst run"),
    "sim.converge_ratio.band.median": (
        "ratio",
        "<= 1.25",
        "median over the band of converge_h / greedy reference on the same string",
    ),
    "sim.converge_ratio.band.worst": ("ratio", "<= 1.5", "worst run of the band"),
    "sim.greedy_converge_h.band.median": ("h", None, "greedy reference over the band, median"),
    "sim.greedy_converge_h.band.worst": ("h", None, "greedy reference over the band, worst"),
    "sim.settled_swing_mv.band.worst": (
        "mV",
        "<= 2",
        "largest peak-to-peak swing of one block over the last quarter of its run, worst run",
    ),
    "sim.band.runs_unsettled": ("runs", "== 0", "runs that never stayed in the band"),
    "sim.greedy_limited_converge_h.band.median": (
        "h",
        None,
        "greedy with each board's thermal derating (not the yardstick), median; a run "
        "that never settles counts as MAX_RUN_H",
    ),
    "sim.greedy_limited_converge_h.band.worst": ("h", None, "the same, worst run"),
    "sim.bound_converge_h.band.median": (
        "h",
        None,
        "a lower bound for any policy on boards that heat (bound_h; not the yardstick), "
        "median; a run that never gets there counts as MAX_RUN_H",
    ),
    "sim.bound_converge_h.band.worst": ("h", None, "the same, worst run"),
    "sim.bound_ratio.band.median": (
        "ratio",
        None,
        "median over the band of that bound / the greedy reference on the same string: "
        "the least sim.converge_ratio any policy on these boards could reach",
    ),
    "sim.bound_ratio.band.worst": ("ratio", None, "the same, worst run"),
}


def _thermal_run(
    factor: float,
    seed: int,
    blocks: int,
    bleeds: Callable[[Any], Any],
    done: Callable[[Any], bool],
    dt_s: float = 5.0,
) -> float | None:
    """The physics of one point with perfect knowledge: every block `bleeds(v)` marks
    bleeds at full current, each module's duty capped by shared/balance.py's derating
    law on its board's true temperature (boards/sim/frontend.py SimBoard.heat: the
    two-node model, the module's supply included); hours until `done(v)`, None if not
    within MAX_RUN_H."""
    import numpy as np

    from shared import balance as bal
    from stringcare.sim import engine
    from stringcare.sim import physics as phy

    sim = engine.Simulation(_scenario(blocks), seed=seed, interface_factor=factor)
    engine.apply_board_rth_from_env(sim)
    bank = phy.StringBank(sim.bank.params, sim.bank.charger, None, ambient_c=sim.sc.ambient_c)
    bank.settle_float()
    boards = [m.board for m in sim.modules]  # one string: block order
    var = sim.modules[0].core.variant
    stop_c = (var.board_temp_limit_mc - bal.BOARD_MARGIN_MC) / 1000.0
    band_k = bal.DERATE_BAND_MC / 1000.0
    full_a = sim.block_type.module_bleed_a
    duty = np.zeros(len(boards))
    t = 0.0
    while t < MAX_RUN_H * 3600:
        v = bank.terminal_v[0]
        if done(v):
            return t / 3600
        on = bleeds(v)
        for i, bd in enumerate(boards):
            cap = (stop_c - bd.thermal.temp_c) / band_k
            duty[i] = (1.0 if cap > 1.0 else cap if cap > 0.0 else 0.0) if on[i] else 0.0
        bank.step(dt_s, (full_a * duty).reshape(bank.terminal_v.shape))
        for i, bd in enumerate(boards):
            bd.heat(dt_s, float(v[i]), int(duty[i] * 1000), sim.sc.ambient_c)
        t += dt_s
    return None


def greedy_limited_h(factor: float, seed: int, blocks: int = 0) -> float | None:
    """The greedy reference on boards that heat: full bleed on every block above its
    string's average, each duty thermally capped (_thermal_run); hours until every
    block is first within +-10 mV, None if not within MAX_RUN_H."""
    from stringcare.sim import engine

    return _thermal_run(
        factor,
        seed,
        blocks,
        lambda v: v > v.mean(),
        lambda v: float(abs(v - v.mean()).max()) <= engine.BAND_V,
    )


def bound_h(factor: float, seed: int, blocks: int = 0) -> float | None:
    """A lower bound for any policy on these boards (perfect knowledge, each duty
    thermally capped): the latest of first-passage times, each the fastest any policy
    can make it.  The charger holds the string voltage, so the average is fixed and the
    band a fixed voltage window.
      Each block that starts above the band: it alone bleeds (capped) - the string
      current its bleed must overcome is then the least any policy leaves it - until
      it is first inside the band.
      The lowest block: every other block bleeds (capped) - the string current that
      charges it is then the most any policy gives it - until it is first inside.
    Assumed, not proven: bleed on the others never speeds a high block's fall nor
    slows a low block's rise.  Loose where the low block's voltage reaches the band long
    before its charge is back (small C).  None if a side does not finish within
    MAX_RUN_H."""
    import numpy as np

    from stringcare.sim import engine

    band = engine.BAND_V

    def side(which: int) -> float | None:
        mask: list[Any] = []

        def bleeds(v: Any) -> Any:
            if not mask:
                m = np.zeros(len(v), dtype=bool)
                if which >= 0:
                    m[which] = True
                else:
                    m[:] = True
                    m[int(np.argmin(v))] = False
                mask.append(m)
            return mask[0]

        def done(v: Any) -> bool:
            if not mask:
                return False
            i = which if which >= 0 else int(np.argmax(~mask[0]))
            dev = float(v[i] - v.mean())
            return dev <= band if which >= 0 else dev >= -band

        return _thermal_run(factor, seed, blocks, bleeds, done)

    from stringcare.sim import physics as phy

    sim = engine.Simulation(_scenario(blocks), seed=seed, interface_factor=factor)
    bank = phy.StringBank(sim.bank.params, sim.bank.charger, None, ambient_c=sim.sc.ambient_c)
    bank.settle_float()
    v0 = bank.terminal_v[0]
    times = [side(-1)] + [side(int(i)) for i in np.nonzero(v0 > v0.mean() + band)[0]]
    if any(t is None for t in times):
        return None
    return max(t for t in times if t is not None)


def _scenario(blocks: int) -> Any:
    from stringcare.sim import scenario as scn

    sc = scn.load("mixed")
    if blocks:
        sc.blocks = blocks
        sc.overrides = [dict(ov, block=min(ov["block"], blocks)) for ov in sc.overrides]
    return sc


def one_run(factor: float, seed: int, blocks: int = 0) -> dict[str, Any]:
    """The firmware run and the greedy reference for one point of the band."""
    from stringcare.sim import engine

    sim = engine.Simulation(_scenario(blocks), seed=seed, interface_factor=factor)
    engine.apply_board_rth_from_env(sim)
    greedy = engine.greedy_converge_h(sim, limit_h=MAX_RUN_H / 2)
    run_h = MAX_RUN_H if greedy is None else max(MIN_RUN_H, min(MAX_RUN_H, 2 * greedy + HOLD_H))
    t0 = time.monotonic()
    sim.swing_from_s = run_h * 3600 * 0.75  # the settled swing: the last quarter
    sim.run(run_h * 3600)
    conv = sim.converge_h()
    r = sim.report()
    return {
        "factor": factor,
        "seed": seed,
        "run_h": run_h,
        "greedy_h": greedy,
        "converge_h": conv,
        "swing_mv": r["settled_swing_mv"],
        "wall_s": round(time.monotonic() - t0, 1),
        "greedy_limited_h": greedy_limited_h(factor, seed, blocks),
        "bound_h": bound_h(factor, seed, blocks),
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, float]:
    conv = [r["converge_h"] if r["converge_h"] is not None else r["run_h"] for r in runs]
    greedy = [r["greedy_h"] for r in runs if r["greedy_h"]]
    ratios = [
        (r["converge_h"] if r["converge_h"] is not None else r["run_h"]) / r["greedy_h"]
        for r in runs
        if r["greedy_h"]
    ]
    swings = [r["swing_mv"] for r in runs if r["swing_mv"] is not None]
    out = {
        "sim.converge_h.band.median": round(statistics.median(conv), 3),
        "sim.converge_h.band.worst": round(max(conv), 3),
        "sim.band.runs_unsettled": sum(1 for r in runs if r["converge_h"] is None),
    }
    if ratios:
        out["sim.converge_ratio.band.median"] = round(statistics.median(ratios), 2)
        out["sim.converge_ratio.band.worst"] = round(max(ratios), 2)
    if greedy:
        out["sim.greedy_converge_h.band.median"] = round(statistics.median(greedy), 3)
        out["sim.greedy_converge_h.band.worst"] = round(max(greedy), 3)
    if swings:
        out["sim.settled_swing_mv.band.worst"] = round(max(swings), 2)
    limited = [r.get("greedy_limited_h", 0) or MAX_RUN_H for r in runs if "greedy_limited_h" in r]
    if limited:
        out["sim.greedy_limited_converge_h.band.median"] = round(statistics.median(limited), 3)
        out["sim.greedy_limited_converge_h.band.worst"] = round(max(limited), 3)
    bound = [r.get("bound_h") or MAX_RUN_H for r in runs if "bound_h" in r]
    if bound:
        out["sim.bound_converge_h.band.median"] = round(statistics.median(bound), 3)
        out["sim.bound_converge_h.band.worst"] = round(max(bound), 3)
        rb = [(r.get("bound_h") or MAX_RUN_H) / r["greedy_h"] for r in runs if r["greedy_h"]]
        if rb:
            out["sim.bound_ratio.band.median"] = round(statistics.median(rb), 2)
            out["sim.bound_ratio.band.worst"] = round(max(rb), 2)
    return out


def _fmt(v: float | None) -> str:
    return "never" if v is None else "%.2f h" % v


def run(progress: Callable[[str], None]) -> dict[str, float]:
    quick = os.environ.get("STRINGCARE_BAND_QUICK") == "1"
    points = [(f, s) for f in FACTORS for s in SEEDS]
    blocks = 0
    if quick:
        points = [(1.0, 4), (30.0, 4)]
        blocks = 16
    seeds = os.environ.get("STRINGCARE_BAND_SEEDS")
    if seeds:
        points = [(f, int(x)) for x in seeds.split(",") for f in FACTORS]
    if os.environ.get("STRINGCARE_BAND_BLOCKS"):
        blocks = int(os.environ["STRINGCARE_BAND_BLOCKS"])
    if seeds or blocks:
        progress(
            "a subset of the band: seeds %s, %s blocks"
            % (",".join(str(s) for s in sorted({p[1] for p in points})), blocks or 64)
        )
    from stringcare.sim import engine

    rth = engine.board_rth_scale_from_env()  # a bad value stops here, before any run
    if rth is not None:
        progress(engine.board_rth_note(rth))
    workers = max(1, min(MAX_WORKERS, os.cpu_count() or 1, len(points)))
    progress("%d runs on %d workers" % (len(points), workers))
    runs: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(one_run, f, s, blocks) for f, s in points]
        for fut in futures:
            r = fut.result()
            runs.append(r)
            ratio = (
                (r["converge_h"] if r["converge_h"] is not None else r["run_h"]) / r["greedy_h"]
                if r["greedy_h"]
                else math.nan
            )
            progress(
                "C x %g seed %d: firmware %s, greedy %s (thermally limited %s, bound %s), "
                "ratio %.2f, swing %s mV (%.0f s)"
                % (
                    r["factor"],
                    r["seed"],
                    _fmt(r["converge_h"]),
                    _fmt(r["greedy_h"]),
                    _fmt(r["greedy_limited_h"]),
                    _fmt(r["bound_h"]),
                    ratio,
                    r["swing_mv"],
                    r["wall_s"],
                )
            )
    return summarise(runs)
