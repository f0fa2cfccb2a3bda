"""bench_judge assembles the library's figures from saved verdicts (docs/benchmarks.md,
"Scenario library"): the latest verdict of each scenario, dropped when its scenario file
changed since, counted when it is of another commit.  No simulation runs here: the
verdicts are written as a run writes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stringcare import benchrun
from stringcare.dev import layout

BENCH = benchrun.load(layout.repo_root() / "tools" / "bench" / "bench_judge.py")


def _verdict(name: str, category: str, commit: str, sha: str, **kw: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "name": name,
        "category": category,
        "duration_h": 24.0,
        "passed": True,
        "expectations": [],
        "trip_h": None,
        "block_temp_at_trip_c": None,
        "max_block_temp_c": 30.0,
        "ri_outliers": [],
        "bleed_wh_day": [],
        "balance_warned": False,
        "low_warnings_in_recharge": 0,
        "recharges": 0,
        "commit": commit,
        "dirty": False,
        "scenario_sha": sha,
        "cpu_s": 100.0,
    }
    r.update(kw)
    return r


def test_figures_come_from_the_saved_verdicts_of_unchanged_scenarios(tmp_path: Path) -> None:
    names = ["false-a", "runaway-b", "balance-c", "ri-d", "ri-e"]
    shas = {x: "sha-" + x for x in names}
    BENCH.save(
        _verdict("false-a", "false-alarm", "aaaaaaa", "sha-false-a"), "false-a", False, tmp_path
    )
    BENCH.save(
        _verdict(
            "runaway-b", "runaway", "bbbbbbb", "sha-runaway-b",
            trip_h=3.5, block_temp_at_trip_c=43.8, detect_min=150.0,
        ),
        "runaway-b", False, tmp_path,
    )  # fmt: skip
    BENCH.save(
        _verdict("balance-c", "balance", "aaaaaaa", "sha-balance-c", bleed_wh_day=[38.6]),
        "balance-c", False, tmp_path,
    )  # fmt: skip
    BENCH.save(
        _verdict("balance-c (healthy)", "healthy", "aaaaaaa", "sha-balance-c", bleed_wh_day=[31.0]),
        "balance-c", True, tmp_path,
    )  # fmt: skip
    # a verdict of an earlier version of the scenario file is not a verdict of it
    BENCH.save(_verdict("ri-d", "ri", "aaaaaaa", "old-sha", passed=False), "ri-d", False, tmp_path)
    results, sound, missing = BENCH.assemble(names, shas, tmp_path)
    assert [r["name"] for r in results] == ["false-a", "runaway-b", "balance-c"]
    assert [h["name"] for h in sound] == ["balance-c (healthy)"]
    assert missing == [
        "ri-d (its verdict is of an earlier version of the scenario)",
        "ri-e (never run)",
    ]
    f = BENCH.figures(results, sound, "aaaaaaa")
    assert f["judge.scenarios_total"] == 3 and f["judge.scenarios_passed"] == 3
    assert f["judge.verdicts_other_commits"] == 1  # runaway-b ran on bbbbbbb
    assert f["runaway.block_temp_at_trip_c.max"] == 43.8
    assert f["runaway.false_trips"] == 0 and f["runaway.false_alarm_hours"] == 24.0
    assert f["balance.bleed_wh_day.unbalanceable"] == 38.6
    assert f["balance.bleed_wh_day.healthy"] == 31.0
    # figures about scenarios that did not run are left out, not 0 over nothing
    assert "discharge.warnings_during_recharge" not in f and "ri.outliers_flagged_pct" not in f
    f = BENCH.figures(results[1:], [], "aaaaaaa")
    assert "runaway.false_trips" not in f and "runaway.false_alarm_hours" not in f
    assert BENCH.figures(results[:1], [], "aaaaaaa").keys().isdisjoint({"runaway.undetected"})
    # a rerun replaces the saved verdict; a failing one counts as failed
    BENCH.save(
        _verdict("false-a", "false-alarm", "aaaaaaa", "sha-false-a", trip_h=5.0, passed=False),
        "false-a", False, tmp_path,
    )  # fmt: skip
    results, sound, _ = BENCH.assemble(names, shas, tmp_path)
    f = BENCH.figures(results, sound, "aaaaaaa")
    assert f["judge.scenarios_passed"] == 2 and f["runaway.false_trips"] == 1


def test_a_verdict_counts_as_of_this_commit_only_from_a_clean_tree() -> None:
    r = _verdict("x", "ri", "aaaaaaa", "s")
    assert BENCH.current(r, "s", "aaaaaaa")
    assert not BENCH.current(r, "s", "bbbbbbb")
    assert not BENCH.current(dict(r, dirty=True), "s", "aaaaaaa")
    assert not BENCH.current(r, "t")
    assert not BENCH.current(None, "s")


def test_only_names_unknown_scenarios_and_none_runs_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = ["a", "b"]
    monkeypatch.setenv("STRINGCARE_JUDGE_ONLY", "none")
    assert BENCH.to_run(names, {}, "c", False) == []
    monkeypatch.setenv("STRINGCARE_JUDGE_ONLY", "b, a")
    assert BENCH.to_run(names, {}, "c", False) == ["b", "a"]
    monkeypatch.setenv("STRINGCARE_JUDGE_ONLY", "a,zz")
    with pytest.raises(ValueError, match="zz not in the scenario library; known: a, b"):
        BENCH.to_run(names, {}, "c", False)
