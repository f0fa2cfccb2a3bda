"""Manager core: heap and CPU in MicroPython for 600 modules, start-up census, discharge
detection speed.

The core runs where it runs on a board, in the MicroPython unix port with a 192 KB heap
(tools/bench/mp/manager_core.py, code compiled by mpy-cross); this process simulates the
site around it on the virtual bus: 600 module responders in 10 strings, 8 string
current sensors and a relay/IO box (boards/sim), and passes the bus bytes over
stdin/stdout pipes with their virtual times.  Wire time is counted on the virtual bus;
CPU is the core's own time (ticks_us around every call into it, nothing of the pipe
or the simulation), reported per measurement cycle and as a ratio to the cycle's wire
time measured in the same run.

Discharge detection speed runs the core in CPython on the same 600-module site (virtual
time, so the figure does not depend on the machine).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from boards.sim.bus import ResponderNode
from boards.sim.devices import CurrentSensor, RelayBox
from boards.sim.manager_shell import ManagerBus
from module_fw.responder import Responder
from module_fw.state import ModuleState
from stringcare.dev import layout

HEAP_KB = 192
# kept free while the code loads (tools/bench/mp/manager_core.py): the heap less what the
# code and the configuration take (about 72 KB) and a margin
RESERVE_LESS_KB = 96
LAST_GROUP_FIRST = 541  # the POLL_GROUP of the last string ends a cycle
CYCLES = 8  # measured cycles after the census (the first two are left out of the CPU)

METRICS = {
    "manager.heap_peak_kb.600": (
        "KB", "<= 96", "MicroPython heap the manager core needs while polling 600 modules in "
        "10 strings: peak live data, code frozen as on a board"),
    "manager.heap_code_kb": (
        "KB", None, "heap the manager code and configuration take, code run in place from "
        "a ROMFS image (as frozen or ROMFS code on a board)"),
    "manager.heap_code_mpy_kb": (
        "KB", None, "the same code loaded from .mpy files into the heap instead"),
    "manager.heap_total_kb.600": (
        "KB", None, "peak live heap with the code loaded as .mpy (heap_peak + heap_code)"),
    "manager.min_heap_kb.600": (
        "KB", "<= 192", "smallest -X heapsize (step 8 KB) that runs 600 modules, code as "
        ".mpy, the heap collecting itself (fragmentation included)"),
    "manager.cycle_cpu_ms.600": (
        "ms", None, "MicroPython CPU time of the core for one full 600-module cycle on this "
        "host (least of six cycles)"),
    "manager.cycle_cpu_ratio.600": (
        "ratio", "<= 0.5", "that CPU time divided by the cycle's wire time (0.987 s)"),
    "manager.cycle_kinstr.600": (
        "k instr", None, "x86-64 instructions of the core's work for one 600-module cycle in "
        "MicroPython (callgrind, no bus simulation counted)"),
    "manager.cycle_wire_s.600": (
        "s", "<= 1.0", "wire time of the cycle the CPU figure belongs to"),
    "manager.census_s.600": (
        "s", None, "virtual time from power-on to polling: 3 s WAKE preamble + INFO census"),
    "manager.discharge_detect_s.ups": (
        "s", None, "UPS 'on battery' input to discharge detected (board input), 600 modules"),
    "manager.discharge_detect_s.ups_box": (
        "s", None, "the same through a relay/IO box input"),
    "manager.discharge_detect_s.current": (
        "s", None, "string current sensor reading a discharge to discharge detected"),
    "manager.discharge_detect_s.voltage": (
        "s", None, "all blocks of a string below the float band to discharge detected"),
}  # fmt: skip


def site_config() -> dict[str, Any]:
    strings = []
    for k in range(10):
        s: dict[str, Any] = {"modules": 60}
        if k < 8:
            s["current_sensor"] = k + 1
        strings.append(s)
    return {
        "site": "benchmark: 600 modules",
        "strings": strings,
        "io": {
            "breaker_trip": [{"box": 1, "relay": 1}],
            "alarm_relay": {"box": 1, "relay": 2},
            "ups_input": {"source": "box", "box": 1, "input": 1},
        },
    }


class Site:
    """The 600 modules, sensors and the box on the virtual bus; the manager is remote."""

    def __init__(self) -> None:
        self.bus = ManagerBus(115200, seed=3)
        self.rx: list[tuple[int, bytes]] = []
        self.bus.attach(self)
        self.bus.manager = self
        self.modules = []
        for a in range(1, 601):
            m = ModuleState(bytes([0x5C, 0xA1, 0, 0, a >> 8, a & 0xFF, 0x42, a & 0x7F]), 3)
            m.address = a
            m.voltage_uv = (13600 + (a * 7) % 40) * 1000
            m.temp_mc = (2200 + (a * 13) % 150) * 10
            m.key = b"StringCare-test!"  # the published test key
            m.balance_pct = a % 30
            self.modules.append(m)
            self.bus.attach(ResponderNode(Responder(m)))
        for k in range(8):
            self.bus.attach(ResponderNode(CurrentSensor(k + 1, 150)))
        self.bus.attach(ResponderNode(RelayBox(1, key=b"StringCare-test!")))

    def on_bus_bytes(self, data: Any, end_us: int, bus: Any) -> None:
        self.rx.append((end_us, bytes(data)))


def mpy_tree() -> Path:
    root = layout.repo_root()
    out = root / "build" / "bench" / "mpy-manager"
    sources = [s for pkg in ("shared", "manager_fw") for s in sorted((root / pkg).rglob("*.py"))]
    errors = layout.compile_mpy(root, sources, out, arch="x64", prune=True)
    if errors:
        raise RuntimeError("mpy-cross failed:\n" + "\n".join(errors))
    return out


def romfs_image() -> Path:
    """shared/ and manager_fw/ as .mpy in a ROMFS image (mpremote romfs build)."""
    tree = mpy_tree()
    image = tree.parent / "manager-romfs.img"
    mpremote = str(Path(sys.executable).parent / "mpremote")
    proc = subprocess.run([mpremote, "romfs", "--no-mpy", "-o", str(image), "build", str(tree)],
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0 or not image.exists():
        raise RuntimeError("mpremote romfs build failed: %s" % (proc.stderr or proc.stdout))
    return image


def run_core(heap_kb: int, cycles: int, plain: bool = False) -> dict[str, Any]:
    """The core in MicroPython against the simulated site; its figures, or an "error"."""
    exe = str(Path(sys.executable).parent / "micropython")
    image = romfs_image()
    image_kb = (image.stat().st_size + 1023) // 1024 + 1  # the image's heap block
    with tempfile.TemporaryDirectory() as tmp:
        site_json = Path(tmp) / "site.json"
        site_json.write_text(json.dumps(site_config()))
        cmd = [exe, "-X", "heapsize=%dk" % (heap_kb + image_kb),
               str(layout.repo_root() / "tools/bench/mp/manager_core.py"),
               str(image), str(site_json), tmp]  # fmt: skip
        cmd += ["plain" if plain else "measure", str(max(0, heap_kb - RESERVE_LESS_KB))]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, bufsize=1)  # fmt: skip
        assert proc.stdin is not None and proc.stdout is not None
        site = Site()
        bus = site.bus
        seen_cycles = 0
        try:
            answer = _ask(proc, "S 0")
            while True:
                wake = -1
                if answer.startswith("TX "):
                    bus.transmit(site, bytes.fromhex(answer[3:]), bus.now_us)
                    wake = bus.now_us
                elif answer.startswith("WAIT "):
                    d = int(answer[5:])
                    wake = bus.now_us + d if d >= 0 else -1
                else:
                    raise RuntimeError("unexpected line from MicroPython: %r" % answer)
                if wake == bus.now_us:
                    answer = _ask(proc, "S %d" % bus.now_us)
                    continue
                t = bus.now_us + 10000  # the core's step interval
                nxt = bus.next_event_us()
                if 0 <= nxt < t:
                    t = nxt
                if wake > bus.now_us and wake < t:
                    t = wake
                bus.advance(t)
                if site.rx:
                    end, data = site.rx.pop(0)
                    answer = _ask(proc, "R %d %s" % (end, data.hex()))
                    while site.rx:  # several deliveries at the same time: one by one
                        if answer.startswith("TX "):
                            bus.transmit(site, bytes.fromhex(answer[3:]), bus.now_us)
                        end, data = site.rx.pop(0)
                        answer = _ask(proc, "R %d %s" % (end, data.hex()))
                else:
                    answer = _ask(proc, "S %d" % bus.now_us)
                if answer.startswith("TX ") and _is_last_poll(answer[3:]):
                    seen_cycles += 1
                if seen_cycles > cycles:
                    break
            proc.stdin.write("Q\n")
            proc.stdin.flush()
            out = proc.stdout.read()
            proc.wait(timeout=60)
        except (BrokenPipeError, RuntimeError) as exc:
            proc.kill()
            rest = proc.stdout.read() + (proc.stderr.read() if proc.stderr else "")
            return {"error": "%s %s" % (exc, rest.strip()[-400:])}
        line = [x for x in out.splitlines() if x.startswith("F ")]
        if not line:
            return {"error": (out + (proc.stderr.read() if proc.stderr else ""))[-500:]}
        return dict(json.loads(line[0][2:]))


def _is_last_poll(frame_hex: str) -> bool:
    f = bytes.fromhex(frame_hex)
    return len(f) == 13 and f[6] == 0x03 and f[8] | f[9] << 8 == LAST_GROUP_FIRST


def _ask(proc: subprocess.Popen[str], line: str) -> str:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    answer = proc.stdout.readline()
    if not answer:
        raise RuntimeError("MicroPython stopped")
    return answer.rstrip("\n")


CODE_PROBE = """
import gc, sys
sys.path[:] = [sys.argv[1]]
gc.collect()
a = gc.mem_alloc()
import manager_fw.core, manager_fw.history_store, manager_fw.ri_schedule, manager_fw.runaway
import manager_fw.blockdev
gc.collect()
print(gc.mem_alloc() - a)
"""


def code_heap_from_mpy() -> int:
    """Heap taken by importing the manager's modules from .mpy files (no ROMFS)."""
    exe = str(Path(sys.executable).parent / "micropython")
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.py"
        probe.write_text(CODE_PROBE)
        proc = subprocess.run([exe, "-X", "heapsize=1M", str(probe), str(mpy_tree())],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError("code probe failed: %s" % proc.stderr)
    return int(proc.stdout.split()[-1])


def cycle_instructions(cycles: int = 5) -> float:
    """x86 instructions of one cycle of core work (tools/bench/mp/manager_cycle.py)."""
    import re
    import shutil

    if shutil.which("valgrind") is None:
        subprocess.run([str(layout.repo_root() / "tools/sh/need-deb.sh"), "valgrind",
                        "valgrind", "instruction counts for the manager benchmark"],
                       check=True)  # fmt: skip
    exe = str(Path(sys.executable).parent / "micropython")
    script = str(layout.repo_root() / "tools/bench/mp/manager_cycle.py")
    counts = []
    for n in (0, cycles):
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", exe,
             "-X", "heapsize=2M", script, str(mpy_tree()), str(n)],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        m = re.search(r"Collected : (\d+)", proc.stdout + proc.stderr)
        if proc.returncode != 0 or not m:
            raise RuntimeError("callgrind run failed:\n" + (proc.stderr or proc.stdout)[-1500:])
        counts.append(int(m.group(1)))
    return (counts[1] - counts[0]) / cycles


def min_heap_kb(progress: Callable[[str], None]) -> int:
    lo, hi = 64, HEAP_KB  # hi runs (checked by the caller)
    while hi - lo > 8:
        mid = (lo + hi) // 2 // 8 * 8
        result = run_core(mid, 3, plain=True)
        ok = "error" not in result and result.get("mode") == "running"
        progress("heap %d KB: %s" % (mid, "runs" if ok else "fails"))
        if ok:
            hi = mid
        else:
            lo = mid
    return hi


def discharge_speeds() -> dict[str, float]:
    """Detection latency per source on the 600-module site, core in CPython."""
    sys.path.insert(0, str(layout.repo_root() / "host_tests" / "dual"))
    from corefixture import Site as CoreSite  # type: ignore[import-not-found]

    out = {}
    for source in ("ups", "ups_box", "current", "voltage"):
        cfg = site_config()
        if source == "ups":
            cfg["io"]["ups_input"] = {"source": "board"}
        cfg["ri"] = {"enabled": False}
        site = CoreSite(sizes=(60,) * 10, config=cfg, fast_bus=True, voltage_mv=13620)
        site.shell.step_us = 10000
        site.start(limit_s=60)
        site.run_s(5)
        core = site.core
        t0 = site.bus.now_us
        if source == "ups":
            core.set_ups_input(True)
        elif source == "ups_box":
            site.boxes[1].inputs = 1
        elif source == "current":
            site.sensors[0].current_ma = -40000
        else:
            for m in site.modules[:60]:
                m.voltage_mv = 12500
        while not core.discharge.active[0] and site.bus.now_us - t0 < 30_000_000:
            site.shell.run_ms(10)
        out[source] = round((site.bus.now_us - t0) / 1e6, 2)
    return out


def run(progress: Callable[[str], None]) -> dict[str, float]:
    figures: dict[str, float] = {}
    progress("600 modules, heap %d KB, %d cycles (gc.collect after every message)" % (
        HEAP_KB, CYCLES))  # fmt: skip
    r = run_core(HEAP_KB, CYCLES)
    if "error" in r:
        raise RuntimeError("the manager core did not run in %d KB: %s" % (HEAP_KB, r["error"]))
    if r["mode"] != "running":
        raise RuntimeError("the manager core is %s: %s" % (r["mode"], r["refusal"]))
    code = r["imports"] - r["empty"]
    data = r["peak"] - r["imports"]
    figures["manager.heap_code_kb"] = round(code / 1024, 1)
    figures["manager.heap_code_mpy_kb"] = round(code_heap_from_mpy() / 1024, 1)
    figures["manager.heap_peak_kb.600"] = round(data / 1024, 1)
    figures["manager.heap_total_kb.600"] = round((r["peak"] - r["empty"]) / 1024, 1)
    cpu = r["cpu_us"][2:]
    cpu_ms = min(cpu) / 1000  # interference only ever adds time: the least is the most repeatable
    wire_s = r["cycle_us"] / 1e6
    figures["manager.cycle_cpu_ms.600"] = round(cpu_ms, 1)
    figures["manager.cycle_wire_s.600"] = round(wire_s, 4)
    figures["manager.cycle_cpu_ratio.600"] = round(cpu_ms / 1000 / wire_s, 3)
    figures["manager.census_s.600"] = round(r["census_us"] / 1e6, 2)
    progress("heap: code %.1f KB, data peak %.1f KB; cycle CPU %.1f ms (%s) for %.3f s wire"
             % (code / 1024, data / 1024, cpu_ms, ", ".join("%.0f" % (c / 1000) for c in cpu),
                wire_s))  # fmt: skip
    # x86 instructions for comparison; the Cortex-M0 count (exact, on the emulated
    # core) and its time are bench_m0.py's mcu.m0.manager_cycle_* figures
    kinstr = cycle_instructions() / 1000
    figures["manager.cycle_kinstr.600"] = round(kinstr)
    progress("one cycle: %.0f k x86 instructions" % kinstr)
    figures["manager.min_heap_kb.600"] = min_heap_kb(progress)
    for source, seconds in discharge_speeds().items():
        figures["manager.discharge_detect_s.%s" % source] = seconds
        progress("discharge from %s detected after %.2f s" % (source, seconds))
    return figures
