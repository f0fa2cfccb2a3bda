"""Run the scenario library (docs/scenarios.md): every scenario, its verdict, the figures.

``run_scenario(name)`` runs one library scenario for its full duration and returns its
verdict (every expectation, passed or not, with what was seen) and the raw figures the
bench aggregates: the trip and the hottest block at the trip, false trips, Ri outliers
and whether they were flagged within their first Ri day, bleed energy per string per
day, low-voltage warnings during a recharge.  ``short=True`` runs a shortened version
(at most SHORT_BLOCKS blocks per string, SHORT_S of simulated time) that only proves the
scenario builds and runs with bounded physics: `make test` runs those.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from stringcare.sim import engine, judge
from stringcare.sim import scenario as scn

SHORT_BLOCKS = 6
SHORT_S = 600.0
# Full runs tick every 10 s (the modules get a voltage frame per tick and size their
# filters for it; what the library judges moves over minutes and hours).
TICK_S = 10.0
RI_OUTLIER_RATIO = 1.30  # SPEC §3: +30 % above the string's median
RI_DAY_S = 25 * 3600.0  # first Ri 15 min after start, then daily: flagged within a day
RECHARGE_WINDOW_S = 12 * 3600.0


def shortened(sc: scn.Scenario) -> scn.Scenario:
    """The short version: fewer blocks, SHORT_S long, events and expectations that
    refer to blocks or times beyond it dropped."""
    sc.blocks = min(sc.blocks, SHORT_BLOCKS)
    sc.impaired_blocks = min(sc.impaired_blocks, sc.blocks)
    sc.duration_s = min(sc.duration_s, SHORT_S)

    def fits(args: dict[str, Any]) -> bool:
        return args.get("block", 1) <= sc.blocks

    sc.overrides = [ov for ov in sc.overrides if fits(ov)]
    sc.without_probe = [(s, b) for s, b in sc.without_probe if b <= sc.blocks]
    sc.events = [e for e in sc.events if fits(e.args) and e.at_s <= sc.duration_s]
    sc.expect = []
    return sc


def healthy(sc: scn.Scenario) -> scn.Scenario:
    """The same string with nothing wrong: no block overrides, no scenario events, no
    expectations (what balancing a sound string costs: balance.bleed_wh_day.healthy)."""
    sc.name = sc.name + " (healthy)"
    sc.category = "healthy"
    sc.overrides = []
    sc.events = []
    sc.expect = []
    return sc


def run_scenario(name: str, short: bool = False, sound: bool = False) -> dict[str, Any]:
    """sound: run the scenario's string without its faults (healthy())."""
    sc = scn.load(name)
    if sound:
        sc = healthy(sc)
    if short:
        sc = shortened(sc)
    t0 = time.monotonic()
    sim = engine.Simulation(sc, tick_s=5.0 if short else TICK_S)
    try:
        sim.run(sc.duration_s)
    finally:
        sim.close()
    wall = time.monotonic() - t0
    out = sim.outcome
    verdict = judge.verdict(sc, out, sim.t_s)
    v = sim._v(sim.bank.terminal_v)
    cells = float(sim.block_type.n_cells)
    result: dict[str, Any] = {
        "name": sc.name,
        "category": sc.category,
        "duration_h": round(sim.t_s / 3600, 3),
        "blocks": sc.strings * sc.blocks,
        "wall_s": round(wall, 1),
        "passed": all(x["passed"] for x in verdict),
        "expectations": verdict,
        "trip_h": None if out.trip_s is None else round(out.trip_s / 3600, 3),
        "block_temp_at_trip_c": out.block_temp_at_trip_c,
        "max_block_temp_c": round(float(sim.max_block_temp_c.max()), 2),
        "min_block_v_per_cell": round(float(v.min()) / cells, 3),
        "max_block_v_per_cell": round(float(v.max()) / cells, 3),
    }
    onset = next((t for t, kind in out.scenario_events if kind == "thermal_runaway"), None)
    if onset is not None and out.trip_s is not None and out.trip_s >= onset:
        result["detect_min"] = round((out.trip_s - onset) / 60, 1)
    result["ri_outliers"] = _ri_outliers(sim, out)
    end = sim.t_s
    wh_day = judge.bleed_wh_per_day(out, max(0.0, end - 86400.0), end) if end >= 43200 else []
    result["bleed_wh_day"] = [round(x, 1) for x in wh_day]
    result["balance_warned"] = any(
        "balance" in judge.tags(c, a, x) for _, c, a, _, _, _, x in out.events
    )
    result["low_warnings_in_recharge"] = _recharge_warnings(out)
    result["recharges"] = sum(1 for _, kind in out.scenario_events if kind == "mains_restore")
    return result


def _recharges(r: dict[str, Any]) -> int:
    """Recharges the run had (a verdict saved before the field: from its scenario)."""
    if "recharges" in r:
        return int(r["recharges"])
    try:
        return sum(1 for e in scn.load(r["name"]).events if e.type == "mains_restore")
    except scn.ScenarioError:
        return 0


def _ri_outliers(sim: engine.Simulation, out: judge.Outcome) -> list[dict[str, Any]]:
    """Blocks at >= +30 % of their string's median R0 at the end, and whether an Ri
    event named them within a day of becoming one (the start, or the event that made
    them so)."""
    r0 = sim._v(sim.bank.params.r0_ohm)
    found = []
    for s in range(r0.shape[0]):
        median = float(np.median(r0[s]))
        for b in range(r0.shape[1]):
            ratio = float(r0[s, b]) / median
            if ratio < RI_OUTLIER_RATIO:
                continue
            since = 0.0
            for t, kind in out.scenario_events:
                if kind in ("block_aged", "block_replaced"):
                    since = max(since, t) if t <= sim.t_s else since
            flagged = any(
                "ri" in judge.tags(code, arg, extra)
                and (es, eb) == (s + 1, b + 1)
                and since <= t <= since + RI_DAY_S
                for t, code, arg, es, eb, _value, extra in out.events
            )
            decided = sim.t_s >= since + RI_DAY_S or flagged
            found.append(
                {
                    "string": s + 1,
                    "block": b + 1,
                    "ratio": round(ratio, 3),
                    "flagged": flagged,
                    "decided": decided,
                }
            )
    return found


def _recharge_warnings(out: judge.Outcome) -> int:
    """Low-voltage warnings within RECHARGE_WINDOW_S after the mains returned (a
    runaway's own sag in that window is not the recharge's: see summary())."""
    count = 0
    for t_restore, kind in out.scenario_events:
        if kind != "mains_restore":
            continue
        for t, code, arg, _s, _b, _value, extra in out.events:
            if t_restore <= t <= t_restore + RECHARGE_WINDOW_S:
                if "voltage-low" in judge.tags(code, arg, extra):
                    count += 1
    return count


def summary(results: list[dict[str, Any]]) -> dict[str, float]:
    """The bench's judge.* / runaway.* / ri.* / balance.* / discharge.* figures; a
    figure is left out when no scenario it is about ran (a 0 over nothing is no
    figure)."""
    figures: dict[str, float] = {
        "judge.scenarios_total": len(results),
        "judge.scenarios_passed": sum(1 for r in results if r["passed"]),
    }
    runaway = [r for r in results if r["category"] == "runaway"]
    temps = [r["block_temp_at_trip_c"] for r in runaway if r["block_temp_at_trip_c"] is not None]
    # a runaway never tripped counts as the hottest the block got
    temps += [r["max_block_temp_c"] for r in runaway if r["block_temp_at_trip_c"] is None]
    if temps:
        figures["runaway.block_temp_at_trip_c.max"] = round(max(temps), 1)
    detect = [r.get("detect_min") for r in runaway]
    if detect and all(d is not None for d in detect):
        figures["runaway.detect_min.max"] = max(d for d in detect if d is not None)
    if runaway:
        figures["runaway.undetected"] = sum(1 for d in detect if d is None)
    false = [r for r in results if r["category"] == "false-alarm"]
    if false:
        figures["runaway.false_trips"] = sum(1 for r in false if r["trip_h"] is not None)
        figures["runaway.false_alarm_hours"] = round(sum(r["duration_h"] for r in false), 1)
    outliers = [o for r in results for o in r["ri_outliers"] if o["decided"]]
    if outliers:
        flagged = sum(1 for o in outliers if o["flagged"])
        figures["ri.outliers_flagged_pct"] = round(100.0 * flagged / len(outliers), 1)
    unbal = [r for r in results if r["category"] == "balance"]
    days = [max(r["bleed_wh_day"]) for r in unbal if r["bleed_wh_day"]]
    if days:
        figures["balance.bleed_wh_day.unbalanceable"] = round(max(days), 1)
        figures["balance.unbalanceable_warned"] = sum(1 for r in unbal if r["balance_warned"])
    recharged = [r for r in results if r["category"] != "runaway" and _recharges(r)]
    if recharged:
        figures["discharge.warnings_during_recharge"] = sum(
            r["low_warnings_in_recharge"] for r in recharged
        )
    return figures
