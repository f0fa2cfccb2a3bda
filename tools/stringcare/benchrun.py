"""Run the benchmarks under tools/bench/ and collect one flat JSON object of figures.

A benchmark is a module ``tools/bench/bench_<topic>.py`` with

    METRICS = {"topic.metric": ("unit", "<= 1.0" or None, "one-line meaning"), ...}
    def run(progress) -> dict[str, float]

``progress(text)`` prints a progress line.  ``run`` returns figures for (a subset of)
its METRICS; benchmarks measure and report, they never assert timings.  Goals are
shown beside the figures in the table; docs/benchmarks.md explains every metric.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from stringcare.dev import layout


def bench_modules(root: Path) -> list[Path]:
    return sorted((root / "tools" / "bench").glob("bench_*.py"))


def load(path: Path) -> ModuleType:
    """Import a benchmark by its path.  It is registered in sys.modules under its name,
    so its functions can be handed to worker processes (a process pool pickles a
    function by module and name; bench_sim_band runs its points so)."""
    name = "stringcare_bench_" + path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError("cannot load benchmark %s" % path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def goal_met(value: float, goal: str | None) -> str:
    if not goal:
        return ""
    op, _, limit_text = goal.partition(" ")
    limit = float(limit_text)
    ok = {"<=": value <= limit, ">=": value >= limit, "==": value == limit}.get(op)
    if ok is None:
        return "?"
    return "met" if ok else "MISSED"


def format_value(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return "%d" % value
    if abs(value) >= 100:
        return "%.1f" % value
    return "%.4g" % value


def run_all(
    root: Path,
    only: list[str] | None,
    out_path: Path,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, float], list[str]]:
    results: dict[str, float] = {}
    meta: dict[str, Any] = {}
    failures: list[str] = []
    paths = bench_modules(root)
    if only:
        paths = [p for p in paths if any(p.stem.removeprefix("bench_").startswith(o) for o in only)]
        if not paths:
            raise ValueError(
                "no benchmark matches %s; available: %s"
                % (
                    ", ".join(only),
                    ", ".join(p.stem.removeprefix("bench_") for p in bench_modules(root)),
                )
            )
    for index, path in enumerate(paths, 1):
        name = path.stem.removeprefix("bench_")
        log("[%d/%d] %s ..." % (index, len(paths), name))
        start = time.monotonic()
        try:
            module = load(path)
            figures = module.run(lambda text, _n=name: log("    %s: %s" % (_n, text)))
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others
            failures.append(name)
            log(traceback.format_exc())
            continue
        declared = getattr(module, "METRICS", {})
        for key, value in figures.items():
            if key not in declared:
                failures.append("%s: metric %s is not declared in METRICS" % (name, key))
                continue
            results[key] = value
            meta[key] = declared[key]
        log("    done in %.1f s" % (time.monotonic() - start))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    log("")
    log(table(results, meta))
    return results, failures


def table(results: dict[str, float], meta: dict[str, Any]) -> str:
    rows = [("metric", "value", "unit", "goal", "")]
    for key in sorted(results):
        unit, goal, _desc = meta[key]
        rows.append(
            (key, format_value(results[key]), unit, goal or "", goal_met(results[key], goal))
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main_bench(only: list[str] | None, out: str | None) -> int:
    root = layout.repo_root()
    out_path = Path(out) if out else root / "build" / "bench" / "results.json"
    results, failures = run_all(root, only, out_path)
    print("\nwrote %d figures to %s" % (len(results), out_path))
    if failures:
        print("benchmarks that failed: %s" % ", ".join(failures), file=sys.stderr)
        return 1
    return 0
