# Workload for tools/bench/bench_module_core.py, run by host_tests/mp_runner.py in the
# MicroPython unix port with the module's 64 KB budget (code frozen, as on a board).
# run() boots a module core from an empty store (its Ri arrays reserved, as the shell
# does), has it addressed and balancing,
# then counts the heap bytes 1000 iterations of its loop allocate (bus traffic each
# second, a voltage frame every 100 ms, a temperature frame each second, ticks).  The
# bus traffic is what a manager sends: a signed SET_TARGET (a fresh counter each
# second; its MAC check allocates, shared/auth.py) and a POLL_GROUP.
import gc

from adcsynth import internal_frame, temp_frame, voltage_frame

from module_fw import store as sto
from module_fw.core import ModuleCore
from shared import auth
from shared import frontend as fe
from shared import protocol as p
from shared import protocol_layouts as lay

V12 = 3


def run():
    core = ModuleCore(b"BENCHMOD", V12, fe.ADC_STM32G4, sto.MemorySlots())
    core.reserve_ri()  # as the board's shell does at boot (module_fw/main.py)
    core.state.address = 7
    key = b"StringCare-test!"  # the published test key
    core.responder.set_key(key)
    signer = auth.Signer(key)
    poll = p.encode_bytes(p.ADDR_BROADCAST, p.ADDR_MANAGER, p.CMD_POLL_GROUP, 2,
                          b"\x01\x00\x40")  # fmt: skip
    traffic = []
    for _ in range(140):  # one per second, never repeated (a repeat is a replay)
        target = lay.encode_request(p.ADDR_BROADCAST, p.CMD_SET_TARGET, 1, {
            "first": 1, "last": 64, "target_10uv": 1360000, "flags": p.TARGET_EQUALISE,
            "timeout_s": 30}, signer)  # fmt: skip
        traffic.append(target + poll)
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
    for i in range(n):
        if i % 10 == 0:
            data = traffic[(t // 1000) % len(traffic)]
            core.bus_bytes(data, len(data), t)
            core.temperature_frame(tint, tprobe, t)
        core.voltage_frame(vframe, t)
        core.tick(t, False)
        t += 100
    return t
