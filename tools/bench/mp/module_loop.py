# Workload for tools/bench/bench_module_core.py, run by host_tests/mp_runner.py in the
# MicroPython unix port with the module's 64 KB budget (code frozen, as on a board).
# run() boots a module core from an empty store, has it addressed and balancing,
# then counts the heap bytes 1000 iterations of its loop allocate (bus traffic each
# second, a voltage frame every 100 ms, a temperature frame each second, ticks).
import gc

from adcsynth import internal_frame, temp_frame, voltage_frame

from module_fw import store as sto
from module_fw.core import ModuleCore
from shared import frontend as fe
from shared import protocol as p
from shared import protocol_layouts as lay

V12 = 3


def run():
    core = ModuleCore(b"BENCHMOD", V12, fe.ADC_STM32G4, sto.MemorySlots())
    core.state.address = 7
    target = lay.pack(p.CMD_SET_TARGET, False, {"first": 1, "last": 64, "target_mv": 13600,
                      "flags": p.TARGET_EQUALISE, "timeout_s": 30,
                      "target_10uv": 0})  # fmt: skip
    traffic = p.encode_bytes(p.ADDR_BROADCAST, p.ADDR_MANAGER, p.CMD_SET_TARGET, 1, target)
    traffic += p.encode_bytes(p.ADDR_BROADCAST, p.ADDR_MANAGER, p.CMD_POLL_GROUP, 2,
                              b"\x01\x00\x40")  # fmt: skip
    vframe = voltage_frame(V12, 13800000)
    tint = internal_frame(25000, fe.ADC_STM32G4)
    tprobe = temp_frame(4094 * 16)
    t = loop(core, vframe, tint, tprobe, traffic, 0, 300)  # settle, first allocations
    gc.collect()
    before = gc.mem_alloc()
    loop(core, vframe, tint, tprobe, traffic, t, 1000)
    after = gc.mem_alloc()
    print("@@BENCH loop_alloc_bytes", after - before)
    print("@@BENCH duty", core.duty)


def loop(core, vframe, tint, tprobe, traffic, t, n):
    size = len(traffic)
    for i in range(n):
        if i % 10 == 0:
            core.bus_bytes(traffic, size, t)
            core.temperature_frame(tint, tprobe, t)
        core.voltage_frame(vframe, t)
        core.tick(t, False)
        t += 100
    return t
