"""The module core in MicroPython: allocation in its loop, and its heap.

Runs tools/bench/mp/module_loop.py through the test harness's MicroPython runner
(host_tests/mp_runner.py), with its code frozen as on a board: the figures are run-time
RAM, not bytecode.  The heap figure is the smallest budget (1 KB steps, by bisection)
in which the module boots, is addressed, balances and runs 1300 loop iterations with
bus traffic: what it needs, garbage collection included.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from stringcare.dev import layout

BUDGET_KB = 64

METRICS = {
    "module.loop_alloc_bytes": (
        "B", "<= 0", "heap allocated by 1000 iterations of the module loop (bus, frames, ticks)"),
    "module.heap_peak_kb": (
        "KB", "<= 64", "smallest run-time heap the module core runs in (frozen code)"),
}  # fmt: skip


def _attempt(root: Path, tree: Path, bench: Path, budget_kb: int) -> dict[str, int] | None:
    exe = str(Path(sys.executable).parent / "micropython")
    cmd = [
        exe, "-X", "heapsize=%dk" % (budget_kb + 256), str(root / "host_tests/mp_runner.py"),
        "module_loop", "run", str(budget_kb * 1024), str(bench / "tools/bench/mp"), str(tree),
        str(tree / "host_tests"), str(tree / "host_tests/dual"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=root)
    out = proc.stdout
    if proc.returncode != 0 or "@@STRINGCARE-PASS@@" not in out:
        if "MemoryError" in out:
            return None
        raise RuntimeError("module loop failed in MicroPython:\n" + out + proc.stderr)
    figures: dict[str, int] = {}
    for line in out.splitlines():
        if line.startswith("@@BENCH"):
            parts = line.split()
            figures[parts[1]] = int(parts[2])
    if not figures.get("duty"):
        raise RuntimeError("the module was not balancing during the measurement")
    return figures


def run(progress: Callable[[str], None]) -> dict[str, float]:
    root = layout.repo_root()
    tree = root / "build" / "mpy-test"
    bench = root / "build" / "mpy-bench"
    errors = layout.compile_mpy(root, layout.firmware_test_sources(root), tree, "x64", prune=True)
    errors += layout.compile_mpy(
        root, [root / "tools/bench/mp/module_loop.py"], bench, "x64", prune=False
    )
    if errors:
        raise RuntimeError("mpy-cross failed:\n" + "\n".join(errors))
    full = _attempt(root, tree, bench, BUDGET_KB)
    if full is None:
        raise RuntimeError("the module core does not run in its %d KB budget" % BUDGET_KB)
    low, high = 1, BUDGET_KB  # high runs, low - 1 assumed not
    while low < high:
        mid = (low + high) // 2
        if _attempt(root, tree, bench, mid) is None:
            low = mid + 1
        else:
            high = mid
        progress("bisecting the heap: %d..%d KB" % (low, high))
    progress("loop allocated %d B over 1000 iterations; runs in %d KB" % (
        full["loop_alloc_bytes"], high))  # fmt: skip
    return {"module.loop_alloc_bytes": full["loop_alloc_bytes"], "module.heap_peak_kb": high}
