"""MCU cost on an emulated Cortex-M0, in exact instruction counts.

The firmware runs on MicroPython's qemu port built for an ARMv6-M Cortex-M0 like the
RP2040 port (tools/m0/, docs/development.md), code in place from a ROMFS image as
frozen code on a board.  A QEMU TCG plugin (tools/m0/insncount.c, built here with the
host C compiler) counts every executed guest instruction and logs the count whenever
the guest executes a marker instruction (tools/bench/mp/m0_work.py: mark()); QEMU runs
with -icount shift=0 so the 1 kHz SysTick interrupt lands on the same instruction
each run and the counts are reproducible to the instruction.  Each figure is the
difference between two marks less the cost of an empty mark pair.  Interrupts that
fall inside a counted span are counted: a board takes them too.

Time on an RP2040 is estimated from the count at 125 MHz and 1.3 cycles per
instruction (Cortex-M0+: 1 cycle for most instructions, 2 for loads/stores and
taken branches; MicroPython's interpreter is heavy in both, and the flash cache
misses of XIP code add more: 1.3 is an assumption, not a measurement).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from stringcare.dev import layout, m0

M0_HZ = 125_000_000
CYCLES_PER_INSTR = 1.3
WARM_CYCLES = 2
COUNTED_CYCLES = 3
WORK = Path("tools") / "bench" / "mp" / "m0_work.py"
PLUGIN_SRC = Path("tools") / "m0" / "insncount.c"

METRICS = {
    "mcu.m0.module_reply_kinstr": (
        "k instr", None, "Cortex-M0 instructions for a module to take one POLL_GROUP "
        "frame off the bus and have its MEAS reply encoded (deframe, handle, encode)"),
    "mcu.m0.module_reply_ms": (
        "ms", "<= 2.0", "that at 125 MHz and 1.3 cycles per instruction; must fit in the "
        "2 ms group lead"),
    "mcu.m0.ri_eval_kinstr": (
        "k instr", None, "a module's whole Ri evaluation (Thue-Morse step capture of the "
        "12 V variant fed in 250-sample chunks, then the result)"),
    "mcu.m0.ri_probe_instr_per_sample": (
        "instr", None, "the probe before a step capture (8801 Hz, 7040 samples, 440-sample "
        "chunks): instructions a sample pair, the mains lock's sums included"),
    "mcu.m0.ri_probe_core_pct": (
        "%", None, "that share of a 125 MHz core at 8801 samples a second and 1.3 cycles "
        "per instruction (the feed runs while the DMA fills the next chunk)"),
    "mcu.m0.ri_probe_lock_instr_per_sample": (
        "instr", None, "of that, the mains lock's sums (the same probe without them, as "
        "before an AC capture, subtracted)"),
    "mcu.m0.ri_finish_kinstr": (
        "k instr", None, "of that, the finishing work after the last sample (the arc fit, "
        "the noise channels, the result), which the module core runs in steps across its "
        "loop turns"),
    "mcu.m0.ri_step_max_kinstr": (
        "k instr", None, "the largest of those steps after the first (the module answers "
        "the bus between them; the first, with the arc fit's import, runs in ri_done() "
        "right after the capture)"),
    "mcu.m0.ri_step_max_ms": (
        "ms", "<= 2.0", "that at 125 MHz and 1.3 cycles per instruction: a poll that "
        "arrives during a step waits this long at most, like a frame sum"),
    "mcu.m0.ri_seq_step_max_kinstr": (
        "k instr", None, "the largest step of the module's whole procedure on the arrays "
        "it reserved at boot (RiSequence: the probe, then the step capture), the first "
        "step after each acquisition left out, and the heap's collections (one is "
        "measured apart); the step that ends the probe builds the capture's evaluator"),
    "mcu.m0.ri_seq_step_max_ms": (
        "ms", "<= 2.0", "that at 125 MHz and 1.3 cycles per instruction (a poll waits "
        "this long at most)"),
    "mcu.m0.manager_cycle_kinstr.600": (
        "k instr", None, "Cortex-M0 instructions for one 600-module cycle as the shell "
        "drives it: bus master, replies, line idle, core stepped every 50 ms with history "
        "and event log on flash, Ri schedule and runaway judgement (mean of 3 steady "
        "cycles)"),
    "mcu.m0.manager_cycle_ms.600": (
        "ms", None, "that at 125 MHz and 1.3 cycles per instruction"),
    "mcu.m0.manager_cycle_ratio.600": (
        "ratio", "<= 0.75", "that time over the cycle's wire time (protocol group timing, "
        "115200 Bd)"),
    "mcu.m0.manager_wire_s.600": (
        "s", None, "the wire time of that cycle (the ratio's denominator)"),
    "mcu.m0.loop_alloc_bytes": (
        "bytes", "== 0", "heap a steady 600-module manager cycle leaves allocated (collector "
        "off; the most of the counted cycles)"),
    "mcu.m0.manager_heap_kb.600": (
        "KB", None, "live heap of the manager core for 600 modules after set-up (code in "
        "place from ROMFS; the RAM copies of the two flash stores excluded)"),
}  # fmt: skip


def plugin(root: Path) -> Path:
    out = root / "build" / "m0" / "insncount.so"
    src = root / PLUGIN_SRC
    if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
        return out
    if shutil.which("gcc") is None:
        subprocess.run([str(root / "tools/sh/need-deb.sh"), "gcc", "gcc",
                        "the QEMU instruction-count plugin"], check=True)  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(out), str(src)], check=True)
    return out


class Counter:
    def __init__(self, root: Path, romfs: Path) -> None:
        so = plugin(root)
        self.log = root / "build" / "m0" / "marks.txt"
        if self.log.exists():
            self.log.unlink()
        self.emu = m0.Emulator(
            root, romfs, icount=True, extra_args=["-plugin", "%s,out=%s" % (so, self.log)]
        )
        self.seen = 0
        self._used = False
        self.fresh()

    def fresh(self) -> None:
        """A new interpreter and heap (soft reset), nothing imported yet."""
        if self._used:
            self.emu.soft_reset()
        self._used = True
        self.emu.mount(["/rom", "/rom/host_tests", "/rom/host_tests/dual", "/rom/tools/bench/mp"])

    def run(self, code: str, timeout_s: float = 600) -> tuple[str, list[int]]:
        """Run code; what it printed and the instruction counts it marked."""
        out, err = self.emu.exec_raw(code, timeout_s)
        if err:
            raise RuntimeError("on the emulated M0: %s\n%s" % (code.strip(), err))
        # the plugin writes (and flushes) each mark before the guest goes on
        deadline = time.monotonic() + 10
        marks: list[int] = []
        while time.monotonic() < deadline:
            lines = self.log.read_text().split() if self.log.exists() else []
            marks = [int(x) for x in lines[self.seen :]]
            if len(marks) % 2 == 0:
                break
            time.sleep(0.05)
        self.seen += len(marks)
        return out, marks

    def close(self) -> None:
        self.emu.close()


def spans(marks: list[int], base: int) -> list[int]:
    return [marks[i + 1] - marks[i] - base for i in range(0, len(marks), 2)]


def run(progress: Callable[[str], None]) -> dict[str, float]:
    root = layout.repo_root()
    reason = m0.missing(root)
    if reason:
        progress("skipped: emulated Cortex-M0 not available: " + reason)
        return {}
    figures: dict[str, float] = {}
    romfs = m0.build_romfs(root, extra=[root / WORK])
    c = Counter(root, romfs)
    try:
        _, marks = c.run("import m0_work\nfor _ in range(3):\n    m0_work.empty()\n")
        empties = spans(marks, 0)
        if len(set(empties)) != 1:
            raise RuntimeError("an empty mark pair costs different counts: %s" % empties)
        base = empties[0]
        progress("an empty mark pair: %d instructions (subtracted)" % base)

        c.run("st = m0_work.module_setup()\n")
        out, marks = c.run("for k in range(6):\n    m0_work.module_reply(st, k)\n")
        replies = spans(marks, base)
        progress("module replies (length, bytes allocated): %s"
                 % re.findall(r"@@REPLY (\d+) (\d+)", out))  # fmt: skip
        reply = sorted(replies)[len(replies) // 2]
        figures["mcu.m0.module_reply_kinstr"] = round(reply / 1000, 1)
        figures["mcu.m0.module_reply_ms"] = round(reply * CYCLES_PER_INSTR / M0_HZ * 1000, 3)
        progress("module reply: %s instructions" % ", ".join(str(r) for r in replies))
        c.run("del st\nimport gc\ngc.collect()\n")

        per_sample = []
        for find_mains in (True, False):
            out, marks = c.run("m0_work.ri_probe(%s)\n" % find_mains)
            samples = int(re.findall(r"@@PROBE (\d+)", out)[0])
            per_sample.append(sum(spans(marks, base)) / samples)
            progress("probe (mains lock %s): %.0f instructions a sample (%s)"
                     % (find_mains, per_sample[-1], out.strip()))  # fmt: skip
        figures["mcu.m0.ri_probe_instr_per_sample"] = round(per_sample[0])
        figures["mcu.m0.ri_probe_core_pct"] = round(
            per_sample[0] * CYCLES_PER_INSTR * 8801 / M0_HZ * 100, 1
        )
        figures["mcu.m0.ri_probe_lock_instr_per_sample"] = round(per_sample[0] - per_sample[1])
        c.run("import gc\ngc.collect()\n")

        out, marks = c.run("m0_work.ri_capture()\n")
        ri_spans = spans(marks, base)
        ri_total = sum(ri_spans)
        figures["mcu.m0.ri_eval_kinstr"] = round(ri_total / 1000)
        chunks = int(re.findall(r"@@RI (\d+)", out)[0])
        finish = ri_spans[chunks:]  # the finishing work, one span per step
        figures["mcu.m0.ri_finish_kinstr"] = round(sum(finish) / 1000)
        # the first step runs in ri_done(), in the capture's time (RiSequence.finishing)
        largest = max(finish[1:])
        figures["mcu.m0.ri_step_max_kinstr"] = round(largest / 1000, 1)
        figures["mcu.m0.ri_step_max_ms"] = round(largest * CYCLES_PER_INSTR / M0_HZ * 1000, 3)
        progress("Ri evaluation: %d instructions, finishing %d in %d steps, the first %d, "
                 "the largest after it %d (%s)" % (ri_total, sum(finish), len(finish),
                 finish[0], largest, out.strip()))  # fmt: skip

        c.run("import gc\ngc.collect()\n")
        out, marks = c.run("m0_work.ri_sequence()\n")
        seq_spans = spans(marks, base)
        collect = seq_spans.pop()  # the last pair: one collection of the heap
        largest = max(seq_spans)
        figures["mcu.m0.ri_seq_step_max_kinstr"] = round(largest / 1000, 1)
        figures["mcu.m0.ri_seq_step_max_ms"] = round(largest * CYCLES_PER_INSTR / M0_HZ * 1000, 3)
        progress("Ri procedure on kept arrays: %d steps, the largest %d instructions (step "
                 "%d), the three largest %s, a collection of the heap %d (left out) (%s)"
                 % (len(seq_spans), largest, seq_spans.index(largest), sorted(seq_spans)[-3:],
                    collect, out.strip()))  # fmt: skip

        # a fresh interpreter, so the heap figure holds every import of the manager (the
        # module and Ri work above had imported some of them: they were left out)
        c.fresh()
        out, _ = c.run("import gc, m0_work\ngc.collect()\nst = m0_work.manager_setup()\n")
        m = re.search(r"@@HEAP (-?\d+) (\d+)", out)
        if m:
            figures["mcu.m0.manager_heap_kb.600"] = round(int(m.group(1)) / 1024, 1)
        for _ in range(WARM_CYCLES):
            c.run("m0_work.manager_cycle(st, False)\n", 900)
        cycles = []
        wires = []
        allocs = []
        for _ in range(COUNTED_CYCLES):
            out, marks = c.run("m0_work.manager_cycle(st, True)\n", 900)
            cycles += spans(marks, base)
            m = re.search(r"@@CYCLE (\d+) (\d+)", out)
            if not m:
                raise RuntimeError("no cycle report from the emulated M0: %r" % out)
            wires.append(int(m.group(1)))
            allocs.append(int(m.group(2)))
        instr = sum(cycles) / len(cycles)
        wire_s = sum(wires) / len(wires) / 1e6
        ms = instr * CYCLES_PER_INSTR / M0_HZ * 1000
        figures["mcu.m0.manager_cycle_kinstr.600"] = round(instr / 1000)
        figures["mcu.m0.manager_cycle_ms.600"] = round(ms)
        figures["mcu.m0.manager_wire_s.600"] = round(wire_s, 4)
        figures["mcu.m0.manager_cycle_ratio.600"] = round(ms / 1000 / wire_s, 3)
        figures["mcu.m0.loop_alloc_bytes"] = max(allocs)
        progress("manager cycle: %s instructions, wire %.3f s, allocated %s bytes"
                 % (", ".join(str(x) for x in cycles), wire_s, allocs))  # fmt: skip
    finally:
        c.close()
        if romfs.exists():
            romfs.unlink()
    return figures
