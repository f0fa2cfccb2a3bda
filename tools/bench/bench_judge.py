"""The scenario library (docs/scenarios.md): every scenario at full length, its verdict.

Each scenario says what must happen by when and what must not ([[expect]] tables,
written from the physics and the SPEC).  The figures aggregate them:

judge.scenarios_total / judge.scenarios_passed: library scenarios with a saved verdict /
with every expectation met.
judge.verdicts_other_commits: of those verdicts, how many were measured on a commit other
than the checkout's (0: every figure is of this commit).
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

Saved verdicts: every run is written, as it ends, to build/bench/judge-verdicts/<name>.json
with the commit it ran on (and whether the tree had uncommitted changes), the sha256 of
the scenario file, and the CPU seconds it took.  The figures are assembled from the saved
verdict of every library scenario whose file is unchanged since (a verdict of an earlier
version of a scenario is not a verdict of it: it is dropped and named); the table printed
at the end gives each scenario's verdict and commit.  build/bench/judge-scenarios.json is
the assembled library (every verdict used, every expectation with what was seen).

    stringcare bench judge    # (make bench) runs every scenario without a verdict of
                              # this commit (clean tree) and this scenario file: from an
                              # empty build/, all of them; after a stop, the rest
    STRINGCARE_JUDGE_ONLY=a,b stringcare bench judge   # runs a and b (again), in that
                              # order; the other scenarios' saved verdicts are reused
    STRINGCARE_JUDGE_ONLY=none stringcare bench judge  # runs nothing: assembles
    STRINGCARE_JUDGE_SOUND=0  # leaves out the balance scenarios' sound strings

The whole library is ~470 simulated hours: about 25 minutes of CPU serially (1363 CPU s
at b804df0, ~3 CPU s per simulated hour of a 16-block string).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stringcare.sim import library
from stringcare.sim import scenario as scn

METRICS = {
    "judge.scenarios_total": ("count", ">= 15", "library scenarios with a verdict"),
    "judge.scenarios_passed": ("count", None, "of them, with every expectation met"),
    "judge.verdicts_other_commits": ("count", None, "verdicts not measured on this commit"),
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

BENCH_DIR = Path("build") / "bench"
SOUND = ".sound"  # file suffix of a balance scenario's string run without its faults


def verdict_dir(root: Path = BENCH_DIR) -> Path:
    return root / "judge-verdicts"


def scenario_sha(name: str) -> str:
    return hashlib.sha256(scn.scenario_path(name).read_bytes()).hexdigest()


def checkout() -> tuple[str, bool]:
    """The commit of the code being measured and whether tracked files differ from it
    ("unknown" outside a git checkout)."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=7", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown", True
    return head, bool(dirty)


def save(result: dict[str, Any], name: str, sound: bool, root: Path = BENCH_DIR) -> Path:
    """Write one run's verdict (result as library.run_scenario returns it, with
    commit, dirty, scenario_sha, cpu_s) as it ends."""
    d = verdict_dir(root)
    d.mkdir(parents=True, exist_ok=True)
    path = d / (name + (SOUND if sound else "") + ".json")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def saved(name: str, sound: bool, root: Path = BENCH_DIR) -> dict[str, Any] | None:
    path = verdict_dir(root) / (name + (SOUND if sound else "") + ".json")
    if not path.exists():
        return None
    try:
        r: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return r


def current(r: dict[str, Any] | None, sha: str, commit: str | None = None) -> bool:
    """Is r a verdict of this scenario file (and, with commit, of that clean commit)?"""
    if r is None or r.get("scenario_sha") != sha:
        return False
    if commit is None:
        return True
    return r.get("commit") == commit and not r.get("dirty", True)


def assemble(
    names: list[str], shas: dict[str, str], root: Path = BENCH_DIR
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """The saved verdicts of the library: (scenario runs, sound-string runs, names
    without a usable verdict and why)."""
    results: list[dict[str, Any]] = []
    sound: list[dict[str, Any]] = []
    missing: list[str] = []
    for name in names:
        r = saved(name, False, root)
        if r is None:
            missing.append("%s (never run)" % name)
            continue
        if not current(r, shas[name]):
            missing.append("%s (its verdict is of an earlier version of the scenario)" % name)
            continue
        results.append(r)
        if r["category"] == "balance":
            h = saved(name, True, root)
            if current(h, shas[name]) and h is not None:
                sound.append(h)
    return results, sound, missing


def figures(
    results: list[dict[str, Any]], sound: list[dict[str, Any]], commit: str
) -> dict[str, float]:
    out = library.summary(results)
    out["judge.verdicts_other_commits"] = sum(
        1 for r in results + sound if r.get("commit") != commit or r.get("dirty", True)
    )
    days = [max(h["bleed_wh_day"]) for h in sound if h["bleed_wh_day"]]
    if days:
        out["balance.bleed_wh_day.healthy"] = round(max(days), 1)
    return out


def _measure(name: str, sound: bool, commit: str, dirty: bool, sha: str) -> dict[str, Any]:
    cpu0 = time.process_time()
    r = library.run_scenario(name, sound=sound)
    r.update(
        commit=commit,
        dirty=dirty,
        scenario_sha=sha,
        cpu_s=round(time.process_time() - cpu0, 1),
        measured=time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    )
    return r


def to_run(names: list[str], shas: dict[str, str], commit: str, dirty: bool) -> list[str]:
    """STRINGCARE_JUDGE_ONLY's names (unknown ones refused with the list of known ones;
    "none": nothing), or every scenario without a verdict of this clean commit and
    scenario file."""
    only = os.environ.get("STRINGCARE_JUDGE_ONLY", "").strip()
    if only.lower() == "none":
        return []
    if only:
        picked = [x.strip() for x in only.split(",") if x.strip()]
        unknown = [x for x in picked if x not in names]
        if unknown:
            raise ValueError(
                "STRINGCARE_JUDGE_ONLY: %s not in the scenario library; known: %s "
                "(or 'none': assemble the saved verdicts only)"
                % (", ".join(unknown), ", ".join(names))
            )
        return picked
    if dirty:
        return list(names)
    return [x for x in names if not current(saved(x, False), shas[x], commit)]


def run(progress: Callable[[str], None]) -> dict[str, float]:
    names = scn.library_names()
    shas = {x: scenario_sha(x) for x in names}
    commit, dirty = checkout()
    with_sound = os.environ.get("STRINGCARE_JUDGE_SOUND") != "0"
    for name in to_run(names, shas, commit, dirty):
        r = _measure(name, False, commit, dirty, shas[name])
        save(r, name, False)
        failed = [x for x in r["expectations"] if not x["passed"]]
        progress(
            "%-32s %s  %5.1f h in %5.0f CPU s%s"
            % (
                name,
                "pass" if r["passed"] else "FAIL",
                r["duration_h"],
                r["cpu_s"],
                "".join(
                    "\n      missed: %s: %s (%s)" % (x["why"], x["seen"], x["what"]) for x in failed
                ),
            )
        )
        if r["category"] == "balance" and with_sound:
            h = _measure(name, True, commit, dirty, shas[name])
            save(h, name, True)
            progress("%-32s %s Wh/day (%.0f CPU s)" % (h["name"], h["bleed_wh_day"], h["cpu_s"]))
    results, sound, missing = assemble(names, shas)
    out = BENCH_DIR / "judge-scenarios.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results + sound, indent=1, default=str) + "\n", encoding="utf-8")
    progress("verdicts (this checkout: %s%s):" % (commit, ", uncommitted changes" if dirty else ""))
    for r in results + sound:
        progress(
            "  %-40s %-4s  %s%s  %5.1f h  %s CPU s"
            % (
                r["name"],
                "pass" if r["passed"] else "FAIL",
                r.get("commit", "?"),
                "+" if r.get("dirty", True) else " ",
                r["duration_h"],
                r.get("cpu_s", "?"),
            )
        )
    for m in missing:
        progress("  no verdict: %s" % m)
    return figures(results, sound, commit)
