"""The simulator: balancing convergence of the reference string, and its speed.

sim.converge_h.float64: the `float` scenario (64 x 12 V 40 Ah, 5 years, +1.7 V spread),
balancing on, 24 h: hours until every block *stays* within +-10 mV of its string's
target (the true voltages of the physics, not the modules' readings).
sim.first_in_band_h.float64: hours until every block is first within the band.
sim.converge_ratio.float64: converge_h divided by the hours a greedy policy with
perfect knowledge (full bleed on every block above the average) first reaches the
band on the same string: how close the firmware comes to the bleed current's limit.
sim.settled_swing_mv.float64: the largest peak-to-peak swing of one block's deviation
from its target over the second half of the 24 h run: "without oscillation after
convergence" as a figure (the modules' reading resolution is 1 mV).
sim.wall_s.*: wall time of the 24 h runs at maximum speed on this machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from stringcare.sim import engine
from stringcare.sim import scenario as scn

METRICS = {
    "sim.converge_h.float64": ("h", "<= 24", "float scenario: until all 64 blocks stay in +-10 mV"),
    "sim.first_in_band_h.float64": ("h", None, "float scenario: until all are first in +-10 mV"),
    "sim.greedy_converge_h.float64_reference": (
        "h",
        None,
        "greedy full bleed with perfect knowledge: first in +-10 mV",
    ),
    "sim.converge_ratio.float64": ("ratio", "<= 1.25", "converge_h / greedy reference"),
    "sim.final_max_dev_mv.float64": ("mV", "<= 10", "worst block's distance from target at 24 h"),
    "sim.settled_swing_mv.float64": (
        "mV",
        "<= 2",
        "largest peak-to-peak swing of one block, 12-24 h",
    ),
    "sim.bleed_energy_wh.float64": ("Wh", None, "energy the 64 modules bled in 24 h"),
    "sim.wall_s.64x24h": ("s", "<= 120", "wall time of the float scenario, 24 h, max speed"),
    "sim.wall_s.600x24h": ("s", None, "wall time of 10 strings x 60 blocks, 24 h, max speed"),
}


def run(progress: Callable[[str], None]) -> dict[str, float]:
    sc = scn.load("float")
    sim = engine.Simulation(sc)
    rth = engine.apply_board_rth_from_env(sim)
    if rth is not None:
        progress(engine.board_rth_note(rth))
    t0 = time.monotonic()
    sim.run(24 * 3600, progress=lambda s: None)
    wall64 = time.monotonic() - t0
    r = sim.report()
    first = next(
        (
            t
            for t, d in zip(sim.series.t_s, sim.series.max_dev_v, strict=True)
            if d <= engine.BAND_V
        ),
        None,
    )
    greedy = engine.greedy_converge_h(sim)
    conv = r["converge_h"]
    progress(
        "float64: converged %.2f h (first in band %.2f h), greedy %.2f h, %.0f s wall"
        % (conv if conv is not None else -1, (first or 0) / 3600, greedy or -1, wall64)
    )
    out: dict[str, float] = {
        "sim.wall_s.64x24h": round(wall64, 1),
        "sim.final_max_dev_mv.float64": r["final_max_dev_mv"],
        "sim.bleed_energy_wh.float64": r["bleed_energy_wh"],
    }
    if r["settled_swing_mv"] is not None:
        out["sim.settled_swing_mv.float64"] = r["settled_swing_mv"]
    if conv is not None:
        out["sim.converge_h.float64"] = conv
    if first is not None:
        out["sim.first_in_band_h.float64"] = round(first / 3600, 3)
    if greedy:
        out["sim.greedy_converge_h.float64_reference"] = round(greedy, 3)
        if conv is not None:
            out["sim.converge_ratio.float64"] = round(conv / greedy, 2)
    big = scn.load("float")
    big.strings, big.blocks = 10, 60
    sim600 = engine.Simulation(big)
    t0 = time.monotonic()
    last = [t0]

    def tell(s: engine.Simulation) -> None:
        if time.monotonic() - last[0] > 60:
            last[0] = time.monotonic()
            progress("600 blocks: %.1f h of 24 simulated" % (s.t_s / 3600))

    sim600.run(24 * 3600, progress=tell)
    out["sim.wall_s.600x24h"] = round(time.monotonic() - t0, 1)
    return out
