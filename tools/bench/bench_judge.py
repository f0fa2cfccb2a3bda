"""The scenario library (docs/scenarios.md): every scenario at full length, its verdict.

Each scenario says what must happen by when and what must not ([[expect]] tables,
written from the physics and the SPEC).  The figures aggregate them:

judge.scenarios_total / judge.scenarios_passed: scenarios run / with every expectation met.
runaway.block_temp_at_trip_c.max: the hottest block at the breaker trip, over the runaway
scenarios (a runaway never tripped counts with the hottest temperature its block reached).
runaway.detect_min.max: minutes from the onset (the soft short) to the trip, worst case.
runaway.false_trips: trips over the false-alarm scenarios (each >= 24 h simulated).
ri.outliers_flagged_pct: blocks >= +30 % over their string's median R0 that an Ri event
named within their first Ri day.
balance.bleed_wh_day.unbalanceable: bleed energy of the worst string per day, over the
last day of the scenarios with a block balancing cannot help (dry-out, shorted cell).
balance.bleed_wh_day.healthy: the same over the last day of those scenarios' strings run
without their faults (what balancing a sound string costs; not a library scenario).
discharge.warnings_during_recharge: low-voltage warnings within 12 h after the mains
returned, over every scenario with a discharge.
Every scenario's verdict is written to build/bench/judge-scenarios.json, rewritten after
each scenario (a long run stopped part-way keeps what it judged).

The whole library is ~460 simulated hours: about an hour of CPU (4-8 CPU s per
simulated hour of a 16-block string), serially.  STRINGCARE_JUDGE_ONLY=name,name,...
runs those scenarios only, in that order (the figures then cover only them:
judge.scenarios_total says how many); STRINGCARE_JUDGE_SOUND=0 leaves out the balance
scenarios' sound strings.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stringcare.sim import library
from stringcare.sim import scenario as scn

METRICS = {
    "judge.scenarios_total": ("count", ">= 15", "library scenarios run at full length"),
    "judge.scenarios_passed": ("count", None, "of them, with every expectation met"),
    "runaway.block_temp_at_trip_c.max": ("°C", "<= 60", "hottest block at the trip"),
    "runaway.detect_min.max": ("min", None, "onset to trip, worst runaway scenario"),
    "runaway.undetected": ("count", "== 0", "runaway scenarios without a trip"),
    "runaway.false_trips": ("count", "== 0", "trips in the false-alarm scenarios"),
    "runaway.false_alarm_hours": ("h", None, "simulated hours of false-alarm scenarios"),
    "ri.outliers_flagged_pct": ("%", "== 100", "+30 % Ri outliers warned within a Ri day"),
    "balance.bleed_wh_day.unbalanceable": ("Wh/day", "<= 50", "worst string, unbalanceable"),
    "balance.unbalanceable_warned": ("count", None, "unbalanceable scenarios with a warning"),
    "balance.bleed_wh_day.healthy": ("Wh/day", None, "worst string, the same strings sound"),
    "discharge.warnings_during_recharge": ("count", "== 0", "low-voltage warnings in recharge"),
}

OUT = Path("build") / "bench" / "judge-scenarios.json"


def selected() -> list[str]:
    """The library's scenarios, or those STRINGCARE_JUDGE_ONLY names (unknown names are
    refused with the list of known ones)."""
    names = scn.library_names()
    only = os.environ.get("STRINGCARE_JUDGE_ONLY", "").strip()
    if not only:
        return names
    picked = [x.strip() for x in only.split(",") if x.strip()]
    unknown = [x for x in picked if x not in names]
    if unknown:
        raise ValueError(
            "STRINGCARE_JUDGE_ONLY: %s not in the scenario library; known: %s"
            % (", ".join(unknown), ", ".join(names))
        )
    return picked


def _write(runs: list[dict[str, Any]]) -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(runs, indent=1, default=str) + "\n", encoding="utf-8")


def run(progress: Callable[[str], None]) -> dict[str, float]:
    results: list[dict[str, Any]] = []
    for name in selected():
        r = library.run_scenario(name)
        failed = [x for x in r["expectations"] if not x["passed"]]
        progress(
            "%-32s %s  %5.1f h in %5.0f s%s"
            % (
                name,
                "pass" if r["passed"] else "FAIL",
                r["duration_h"],
                r["wall_s"],
                "".join(
                    "\n      missed: %s: %s (%s)" % (x["why"], x["seen"], x["what"]) for x in failed
                ),
            )
        )
        results.append(r)
        _write(results)
    sound: list[dict[str, Any]] = []
    for r in results:
        if r["category"] == "balance" and os.environ.get("STRINGCARE_JUDGE_SOUND") != "0":
            h = library.run_scenario(r["name"], sound=True)
            progress("%-32s %s Wh/day (%.0f s)" % (h["name"], h["bleed_wh_day"], h["wall_s"]))
            sound.append(h)
            _write(results + sound)
    figures = library.summary(results)
    days = [max(h["bleed_wh_day"]) for h in sound if h["bleed_wh_day"]]
    if days:
        figures["balance.bleed_wh_day.healthy"] = round(max(days), 1)
    return figures
