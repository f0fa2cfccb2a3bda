"""Module bus: wire time of a full measurement cycle, and the CPU cost of a frame.

Cycle wire time is counted, not clocked: the manager's real scheduler (manager_fw)
polls real module responders (module_fw) over the virtual bus (boards/sim/bus.py),
which times every byte at 115200 baud; the figure is the virtual time from the first
request of a cycle to the end of its last reply window, gaps included.

CPU costs run in the MicroPython unix port.  Instruction counts come from callgrind
(work done N times minus the same program with N = 0): they do not depend on what else
the machine is doing.  The µs figure is the minimum of 7 timed repeats.
"""

from __future__ import annotations

from collections.abc import Callable

from boards.sim.bus import MasterNode, ResponderNode, VirtualBus
from boards.sim.bus import run as run_bus
from manager_fw.bus import BusMaster
from manager_fw.poller import ST_OK, Poller
from module_fw.responder import Responder
from module_fw.state import ModuleState
from stringcare.dev import layout
from stringcare.dev.mpbench import collected, need_valgrind, run_mp

SITES = {16: [16], 64: [64], 256: [64] * 4, 600: [60] * 10}
KEY = b"StringCare-test!"  # the published test key (docs/protocol-vectors.json)
# RP2040 cycles per x86-64 instruction of the same interpreter work (docs/protocol.md §4)
RP2040_CYCLES_PER_X86_INSTR = 2.5
RP2040_HZ = 125_000_000

METRICS = {
    **{
        "bus.cycle_wire_s.%d" % n: (
            "s",
            "<= 1.0" if n == 600 else None,
            "wire time of one measurement cycle of %d modules (%d strings) at 115200 baud"
            % (n, len(s)),
        )
        for n, s in SITES.items()
    },
    "bus.decode_kinstr_per_frame.micropython": (
        "k instr", None, "manager: deframe and read one MEAS reply, MicroPython, callgrind"),
    "bus.decode_us_per_frame.micropython": (
        "µs", None, "the same on this host, minimum of 7 timed repeats of 2000 frames"),
    "bus.module_reply_kinstr": (
        "k instr", None, "module: receive a POLL_GROUP, decide the slot, encode the reply"),
    "bus.mac_verify_kinstr": (
        "k instr", None, "module: verify the MAC and counter of an authenticated SET_TARGET "
        "(HMAC-SHA256 over hashlib.sha256), MicroPython, callgrind"),
    "bus.mac_verify_est_ms.rp2040": (
        "ms", None, "that work on a 125 MHz RP2040 at 2.5 cycles per x86 instruction"),
    "bus.module_reply_est_ms.rp2040": (
        "ms", "<= 2.0", "that work on a 125 MHz RP2040 at 2.5 cycles per x86 instruction; "
        "must fit the 2 ms group lead"),
}  # fmt: skip


def cycle_seconds(sizes: list[int], baud: int = 115200) -> float:
    bus = VirtualBus(baud, seed=1)
    strings = []
    first = 1
    for n in sizes:
        strings.append((first, first + n - 1))
        first += n
    master = BusMaster(baud, KEY)
    poller = Poller(strings, baud)
    master.poller = poller
    node = MasterNode(master)
    bus.attach(node)
    for addr in range(1, first):
        state = ModuleState(bytes([0, 0, 0, 0, 0, 0, addr >> 8, addr & 0xFF]), 3)
        state.address = addr
        state.key = KEY
        state.voltage_uv = 13500000
        bus.attach(ResponderNode(Responder(state)))
    while poller.cycle < 2:
        run_bus(bus, node, bus.now_us + 10_000)
    missing = [a for a in range(1, first) if poller.state[a] != ST_OK]
    if missing:
        raise RuntimeError("modules did not answer: %s" % missing[:10])
    return poller.last_cycle_us / 1e6


def _mp(args: list[str], valgrind: bool = False) -> str:
    return run_mp("bus_work.py", [str(layout.repo_root()), *args], valgrind)


def instructions_per_item(what: str, n: int = 2000) -> float:
    counts = []
    for count in (0, n):
        counts.append(collected(_mp([what, str(count)], valgrind=True)))
    return (counts[1] - counts[0]) / n


def run(progress: Callable[[str], None]) -> dict[str, float]:
    out: dict[str, float] = {}
    for n, sizes in SITES.items():
        s = cycle_seconds(sizes)
        out["bus.cycle_wire_s.%d" % n] = round(s, 4)
        progress("%d modules: %.4f s per cycle" % (n, s))
    out["bus.decode_us_per_frame.micropython"] = round(float(_mp(["decode", "2000", "t"])), 2)
    need_valgrind("instruction counts for the bus benchmark")
    decode = instructions_per_item("decode")
    module = instructions_per_item("module")
    mac = instructions_per_item("mac", 20)  # few: no garbage collection inside the count
    out["bus.mac_verify_kinstr"] = round(mac / 1000, 1)
    out["bus.mac_verify_est_ms.rp2040"] = round(
        mac * RP2040_CYCLES_PER_X86_INSTR / RP2040_HZ * 1000, 2)  # fmt: skip
    out["bus.decode_kinstr_per_frame.micropython"] = round(decode / 1000, 1)
    out["bus.module_reply_kinstr"] = round(module / 1000, 1)
    est_ms = module * RP2040_CYCLES_PER_X86_INSTR / RP2040_HZ * 1000
    out["bus.module_reply_est_ms.rp2040"] = round(est_ms, 2)
    progress("decode %.1f k instr, module reply %.1f k instr (~%.2f ms on an RP2040)"
             % (decode / 1000, module / 1000, est_ms))  # fmt: skip
    return out
