"""The storage hand-off (docs/manager.md, "Storage hand-off"): how much flash work one
core.persist() call does at most, against what one core.step did before when a history
snapshot opened a new segment (16 block erases inside the step).

Deterministic (no timing): a seeded 600-module site (stringcare.historygen) writes a
day of float charge and a 30-min discharge of 10-s snapshots into the real history
writer on a 2 MB device of 4 KB blocks and 64 KB segments (it wraps), once through
queue() + service(1) as the manager does, once through the synchronous append().  Each
call's device operations are counted; the flash time is estimated from a typical SPI
NOR chip (W25Q16JV datasheet: 45 ms per 4 KB sector erase, 0.4 ms per 256-byte page
program), the Pico W's flash.  The RAM figure is what the core queues for 600 modules.
"""

from __future__ import annotations

from collections.abc import Callable

from manager_fw import events as ev
from manager_fw.history_store import HistoryWriter, queue_bytes
from manager_fw.store_faults import EVENT_QUEUE_SPARE
from stringcare import historygen

MODULES = 600
STRINGS = 10
ERASE_MS = 45.0
PAGE_MS = 0.4

METRICS = {
    "persist.longest_call_erases.m600": (
        "erases",
        "<= 1",
        "block erases in the longest core.persist() call (per store), 600 modules",
    ),
    "persist.longest_call_ops.m600": (
        "ops",
        None,
        "device operations (program, erase, sync) in the longest persist call",
    ),
    "persist.longest_call_flash_ms.m600": (
        "ms",
        "<= 100",
        "estimated flash time of the longest persist call (45 ms/erase, 0.4 ms/page)",
    ),
    "persist.step_flash_ms_before.m600": (
        "ms",
        None,
        "the same for the synchronous write that opened a segment inside core.step",
    ),
    "persist.queue_ram_bytes.m600": (
        "B",
        None,
        "RAM of the history and event queues the core allocates for 600 modules",
    ),
}


class Counting(historygen.RamDevice):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.ops = self.erases = self.pages = 0

    def program(self, addr: int, buf, n: int) -> None:
        self.ops += 1
        self.pages += (addr + n - 1) // 256 - addr // 256 + 1
        super().program(addr, buf, n)

    def erase(self, block: int) -> None:
        self.ops += 1
        self.erases += 1
        super().erase(block)

    def sync(self) -> None:
        self.ops += 1


def _worst(dev: Counting, call: Callable[[], object], worst: list[float]) -> None:
    ops, erases, pages = dev.ops, dev.erases, dev.pages
    call()
    d_ops, d_erases, d_pages = dev.ops - ops, dev.erases - erases, dev.pages - pages
    ms = d_erases * ERASE_MS + d_pages * PAGE_MS
    if ms > worst[3]:
        worst[:] = [d_ops, d_erases, d_pages, ms]


def _feed(plant: historygen.StringPlant, record: Callable[[], None]) -> None:
    for _ in range(72):  # a day of float charge
        plant.step_float(1200)
        record()
    for k in range(1, 181):  # a 30-min discharge
        plant.step_discharge(10, k * 10, 1800, 80)
        record()


def run(progress: Callable[[str], None]) -> dict[str, float]:
    progress("persist: 600 modules through queue() + service(1)")
    plant = historygen.StringPlant(MODULES, STRINGS, seed=7)
    dev = Counting(2 * 1024 * 1024)
    w = HistoryWriter(dev, plant.string_sizes)
    w.enable_queue(queue_bytes(MODULES, STRINGS))
    worst = [0.0, 0.0, 0.0, 0.0]
    most_erases = [0]

    def deferred() -> None:
        assert w.queue(plant.time_s, plant.mode, *plant.arrays())
        while w.pending():
            before = dev.erases
            _worst(dev, lambda: w.service(1), worst)
            most_erases[0] = max(most_erases[0], dev.erases - before)

    _feed(plant, deferred)
    progress("persist: the same through the synchronous append()")
    plant = historygen.StringPlant(MODULES, STRINGS, seed=7)
    dev2 = Counting(2 * 1024 * 1024)
    w2 = HistoryWriter(dev2, plant.string_sizes)
    before = [0.0, 0.0, 0.0, 0.0]
    _feed(plant, lambda: _worst(dev2, lambda: w2.append(plant.time_s, plant.mode,
                                                         *plant.arrays()), before))  # fmt: skip
    ram = queue_bytes(MODULES, STRINGS) + ev.QUEUED_EVENT_SIZE * (MODULES + EVENT_QUEUE_SPARE)
    return {
        "persist.longest_call_erases.m600": most_erases[0],
        "persist.longest_call_ops.m600": worst[0],
        "persist.longest_call_flash_ms.m600": round(worst[3], 1),
        "persist.step_flash_ms_before.m600": round(before[3], 1),
        "persist.queue_ram_bytes.m600": ram,
    }
