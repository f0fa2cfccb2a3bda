"""The simulator's built-in event scenarios at full length (docs/simulation.md): the
figures the host tests used to check on the full runs, which now check the same
properties on short runs (host_tests/host/test_sim.py).

scenarios.runaway_trip_h: `thermal-runaway` (32 blocks, a soft short in block 17 at
1 h): hours from the short to the breaker trip (12 h deadline).
scenarios.discharge_detect_s: `discharge` (32 blocks, 6 kW UPS load at 2 h for 20 min):
seconds from the mains failure to the manager's discharge start.
scenarios.discharge_deepest_mv.min/max: the lowest and highest of the 32 blocks'
deepest points the manager kept.
scenarios.lost_module_alarm_s: `lost-module` (2 x 12 blocks, one cable pulled at 30 min,
back at 50 min): seconds from the pull to the silent-module alarm (SPEC: 240 s after
its last answer).
scenarios.lost_module_back_s: seconds from the replug to "module back".
scenarios.float16_*: the `float` string shortened to 16 blocks, 8 h with balancing on
(what the host test ran before its 2 h version): hours to stay within +-10 mV, worst
block at the end.
"""

from __future__ import annotations

from collections.abc import Callable

from stringcare.sim import engine
from stringcare.sim import scenario as scn

METRICS = {
    "scenarios.runaway_trip_h": ("h", "<= 11", "thermal-runaway: soft short to breaker trip"),
    "scenarios.discharge_detect_s": ("s", "<= 10", "discharge: mains failure to detection"),
    "scenarios.discharge_deepest_mv.min": ("mV", ">= 10000", "discharge: lowest deepest point"),
    "scenarios.discharge_deepest_mv.max": ("mV", "<= 12800", "discharge: highest deepest point"),
    "scenarios.lost_module_alarm_s": ("s", None, "lost-module: cable pulled to silent alarm"),
    "scenarios.lost_module_back_s": ("s", "<= 3", "lost-module: replug to module back"),
    "scenarios.float16_converge_h": ("h", "<= 8", "float, 16 blocks, 8 h: stays in +-10 mV"),
    "scenarios.float16_final_max_dev_mv": ("mV", "<= 10", "float, 16 blocks: worst block at 8 h"),
}


def _first(sim: engine.Simulation, text: str) -> float | None:
    return next((e.t_s for e in sim.timeline if text in e.text), None)


def run(progress: Callable[[str], None]) -> dict[str, float]:
    out: dict[str, float] = {}
    sim = engine.Simulation(scn.load("thermal-runaway"))
    sim.run(12 * 3600, should_stop=lambda: sim.breaker_open)
    onset, trip = _first(sim, "thermal_runaway"), _first(sim, "thermal runaway: breaker")
    if onset is not None and trip is not None:
        out["scenarios.runaway_trip_h"] = round((trip - onset) / 3600, 3)
    progress("thermal-runaway: trip %s h after the short" % out.get("scenarios.runaway_trip_h"))

    sim = engine.Simulation(scn.load("discharge"))
    sim.run(16 * 3600, should_stop=lambda: _first(sim, "discharge end") is not None)
    fail, start = _first(sim, "mains_fail"), _first(sim, "discharge start")
    if fail is not None and start is not None:
        out["scenarios.discharge_detect_s"] = round(start - fail, 1)
    deepest = [sim.manager.discharge.deepest_mv[a] for a in range(1, sim.sc.blocks + 1)]
    out["scenarios.discharge_deepest_mv.min"] = min(deepest)
    out["scenarios.discharge_deepest_mv.max"] = max(deepest)
    progress("discharge: detected after %s s" % out.get("scenarios.discharge_detect_s"))

    sim = engine.Simulation(scn.load("lost-module"))
    sim.run(2 * 3600, should_stop=lambda: _first(sim, "module back") is not None)
    gone, silent = _first(sim, "module_unplugged"), _first(sim, "module silent")
    replugged, back = _first(sim, "module_replugged"), _first(sim, "module back")
    if gone is not None and silent is not None:
        out["scenarios.lost_module_alarm_s"] = round(silent - gone, 1)
    if replugged is not None and back is not None:
        out["scenarios.lost_module_back_s"] = round(back - replugged, 1)
    progress("lost-module: alarm after %s s" % out.get("scenarios.lost_module_alarm_s"))

    sc = scn.load("float")
    sc.blocks, sc.duration_s = 16, 8 * 3600
    sim = engine.Simulation(sc)
    sim.run(8 * 3600)
    r = sim.report()
    if r["converge_h"] is not None:
        out["scenarios.float16_converge_h"] = r["converge_h"]
    out["scenarios.float16_final_max_dev_mv"] = r["final_max_dev_mv"]
    progress("float16: converged after %s h" % r["converge_h"])
    return out
