"""History store density: bytes per module record in float charge, and what that
means in days of history on a Pico's filesystem and on a 16 MB flash.

Deterministic (no timing): a seeded generator (stringcare.historygen) produces
realistic slowly-varying float-charge values; the real writer (manager_fw.history_store)
stores them; the figure is everything the ring used up (frames, CRCs, key frames,
segment headers and abandoned segment tails) divided by module records.  The heap
figures are measured in the MicroPython unix port (gc.mem_free around construction).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from manager_fw.history_store import DEFAULT_SEGMENT_SIZE, HistoryWriter
from stringcare import historygen
from stringcare.dev import layout

MODULE_COUNTS = (10, 50, 100, 330, 600)
HEADLINE_MODULES = 100
RECORDS_PER_DAY = 72  # every 20 min in float charge
CAPACITIES = {"1_4mb": 1441792, "16mb": 16 * 1024 * 1024}  # Pico filesystem, 16 MB flash

METRICS = {
    "history.bytes_per_module_record": (
        "B",
        "<= 8",
        "float charge, 100 modules in 2 strings, all overhead included",
    ),
    "history.bytes_per_module_record.m10": ("B", "<= 8", "the same, 10 modules"),
    "history.bytes_per_module_record.m50": ("B", "<= 8", "the same, 50 modules"),
    "history.bytes_per_module_record.m100": ("B", "<= 8", "the same, 100 modules"),
    "history.bytes_per_module_record.m330": ("B", "<= 8", "the same, 330 modules"),
    "history.bytes_per_module_record.m600": ("B", "<= 8", "the same, 600 modules"),
    "history.bytes_per_module_record.discharge": (
        "B",
        None,
        "100 modules, 10-s records during a 30-min discharge",
    ),
    "history.days_1_4mb.m10": (
        "days",
        None,
        "history kept on a 1.4 MB Pico filesystem, 10 modules",
    ),
    "history.days_1_4mb.m50": (
        "days",
        None,
        "history kept on a 1.4 MB Pico filesystem, 50 modules",
    ),
    "history.days_1_4mb.m100": (
        "days",
        None,
        "history kept on a 1.4 MB Pico filesystem, 100 modules",
    ),
    "history.days_1_4mb.m330": (
        "days",
        None,
        "history kept on a 1.4 MB Pico filesystem, 330 modules",
    ),
    "history.days_1_4mb.m600": (
        "days",
        None,
        "history kept on a 1.4 MB Pico filesystem, 600 modules",
    ),
    "history.days_16mb.m10": ("days", None, "history kept on a 16 MB flash, 10 modules"),
    "history.days_16mb.m50": ("days", None, "history kept on a 16 MB flash, 50 modules"),
    "history.days_16mb.m100": ("days", None, "history kept on a 16 MB flash, 100 modules"),
    "history.days_16mb.m330": ("days", None, "history kept on a 16 MB flash, 330 modules"),
    "history.days_16mb.m600": ("days", None, "history kept on a 16 MB flash, 600 modules"),
    "history.writer_heap_bytes.m600": (
        "B",
        None,
        "MicroPython heap of the history writer's state, 600 modules",
    ),
    "history.alarms_heap_bytes.m600": (
        "B",
        None,
        "MicroPython heap of the threshold evaluator, 600 modules in 10 strings",
    ),
}


def float_density(modules: int, strings: int, days: float, seed: int = 1) -> float:
    dev = historygen.RamDevice(8 * 1024 * 1024)
    plant = historygen.StringPlant(modules, strings, seed)
    writer = HistoryWriter(dev, plant.string_sizes, segment_size=DEFAULT_SEGMENT_SIZE)
    records = historygen.write_float_days(writer, plant, days)
    return writer.ring.consumed / (records * modules)


def discharge_density(modules: int, strings: int, seed: int = 2) -> float:
    dev = historygen.RamDevice(8 * 1024 * 1024)
    plant = historygen.StringPlant(modules, strings, seed)
    writer = HistoryWriter(dev, plant.string_sizes)
    historygen.write_float_days(writer, plant, 1)
    before = writer.ring.consumed
    records = historygen.write_discharge(writer, plant)
    return (writer.ring.consumed - before) / (records * modules)


def days_of_history(capacity: int, bytes_per_module_record: float, modules: int) -> float:
    """Days the ring keeps: all segments but the one being rewritten hold history."""
    history_bytes = (capacity // DEFAULT_SEGMENT_SIZE - 1) * DEFAULT_SEGMENT_SIZE
    return history_bytes / (bytes_per_module_record * modules * RECORDS_PER_DAY)


HEAP_SCRIPT = """
import gc, sys
sys.path[:0] = [%r]
from shared.history import SnapshotEncoder
from shared.thresholds import AlarmEvaluator, ThresholdSet
from manager_fw.history_store import HistoryWriter
gc.collect(); a = gc.mem_free()
enc = SnapshotEncoder([60] * 10)
gc.collect(); b = gc.mem_free()
ev = AlarmEvaluator([60] * 10, ThresholdSet())
gc.collect(); c = gc.mem_free()
print(a - b, b - c)
"""


def micropython_heap(root: Path) -> tuple[int, int]:
    exe = Path(sys.executable).parent / "micropython"
    proc = subprocess.run(
        [str(exe), "-X", "heapsize=512k", "-c", HEAP_SCRIPT % str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise RuntimeError("micropython heap probe failed: " + proc.stderr)
    writer, alarms = proc.stdout.split()
    return int(writer), int(alarms)


def run(progress: Callable[[str], None]) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in MODULE_COUNTS:
        strings = 1 if m <= 10 else (2 if m <= 100 else 10)
        days = 60 if m <= 50 else (14 if m <= 100 else 4)
        bpr = float_density(m, strings, days)
        out["history.bytes_per_module_record.m%d" % m] = round(bpr, 3)
        if m == HEADLINE_MODULES:
            out["history.bytes_per_module_record"] = round(bpr, 3)
        for cap, size in CAPACITIES.items():
            out["history.days_%s.m%d" % (cap, m)] = round(days_of_history(size, bpr, m))
        progress(
            "%d modules in %d strings, %g days of 20-min records: %.3f B per module record"
            % (m, strings, days, bpr)
        )
    d = discharge_density(HEADLINE_MODULES, 2)
    out["history.bytes_per_module_record.discharge"] = round(d, 3)
    progress("discharge, 10-s records: %.3f B per module record" % d)
    writer_heap, alarms_heap = micropython_heap(layout.repo_root())
    out["history.writer_heap_bytes.m600"] = writer_heap
    out["history.alarms_heap_bytes.m600"] = alarms_heap
    progress(
        "MicroPython heap for 600 modules: writer %d B, alarms %d B" % (writer_heap, alarms_heap)
    )
    return out
