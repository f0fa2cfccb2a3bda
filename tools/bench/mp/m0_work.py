# Workloads for tools/bench/bench_m0.py, run on the emulated Cortex-M0 (MicroPython's
# qemu port, tools/m0/) from the ROMFS image, code in place as frozen code on a board.
#
# mark() executes the marker instruction `mov r11, r11`; QEMU's insncount plugin
# (tools/m0/insncount.c) logs the exact number of instructions executed before it.  The
# host takes differences between marks and subtracts the cost of an empty mark pair.
import gc

import micropython


@micropython.asm_thumb
def mark():
    data(2, 0x46DB)  # noqa: F821 - the inline assembler's directive


def empty():
    mark()
    mark()


# --------------------------------------------------------------------------- module


def module_setup():
    from adcsynth import internal_frame, temp_frame, voltage_frame

    from module_fw import store as sto
    from module_fw.core import ModuleCore
    from shared import auth
    from shared import frontend as fe
    from shared import protocol as p
    from shared import protocol_layouts as lay

    v12 = 3
    core = ModuleCore(b"BENCHMOD", v12, fe.ADC_RP2040, sto.MemorySlots())
    core.state.address = 7
    key = b"StringCare-test!"  # the published test key (docs/protocol-vectors.json)
    core.responder.set_key(key)
    setup = lay.encode_request(p.ADDR_BROADCAST, p.CMD_SET_TARGET, 1, {
        "first": 1, "last": 64, "target_10uv": 1360000, "flags": p.TARGET_EQUALISE,
        "timeout_s": 30}, auth.Signer(key))  # fmt: skip
    core.bus_bytes(setup, len(setup), 0)
    vframe = voltage_frame(v12, 13800000)
    tint = internal_frame(25000, fe.ADC_RP2040)
    tprobe = temp_frame(2000 * 16)
    t = 0
    for i in range(100):
        if i % 10 == 0:
            core.temperature_frame(tint, tprobe, t)
        core.voltage_frame(vframe, t)
        core.tick(t, False)
        t += 100
    polls = []
    for seq in range(2, 8):
        polls.append(
            p.encode_bytes(p.ADDR_BROADCAST, p.ADDR_MANAGER, p.CMD_POLL_GROUP, seq, b"\x01\x00\x40")
        )
    return core, polls, t


def module_reply(state, k):
    """One POLL_GROUP frame in, the module's MEAS reply out (deframe, handle, encode)."""
    core, polls, t = state
    poll = polls[k]
    n = len(poll)
    gc.collect()
    gc.disable()  # what stays allocated after the call: garbage a collection must find
    before = gc.mem_alloc()
    mark()
    reply = core.bus_bytes(poll, n, t + k)
    mark()
    after = gc.mem_alloc()
    gc.enable()
    print("@@REPLY", reply, after - before)


# --------------------------------------------------------------------------- Ri


def _feed_marked(plan, synth, ev, size):
    """The capture of `plan` from `synth`, made beforehand, fed to `ev` in chunks of
    `size` sample pairs, one mark pair around each feed; returns the chunk count."""
    from array import array

    chunks = []
    vbuf = array("H", [0] * size)
    ibuf = array("H", [0] * size)
    while len(chunks) * size < plan.samples:
        synth.fill(vbuf, ibuf, size)
        chunks.append((bytes(vbuf), bytes(ibuf)))
    gc.collect()
    for cv, ci in chunks:
        for j in range(size):  # copy outside the counted part, as a DMA would
            vbuf[j] = cv[2 * j] | cv[2 * j + 1] << 8
            ibuf[j] = ci[2 * j] | ci[2 * j + 1] << 8
        mark()
        ev.feed(vbuf, ibuf, size)
        mark()
    return len(chunks)


def ri_probe(find_mains):
    """The probe before a step capture (shared/ri_probe.py): 16 chunks of 440 samples
    fed with one mark pair each; find_mains False leaves out the mains lock's sums (as
    for an AC capture) to show what they cost."""
    from ri_synth import Synth

    from shared import ri
    from shared.variants import by_code

    plan = ri.plan_for(by_code("12v").id, ri.RI_METHOD_PROBE)
    ev = ri.evaluator(plan)
    ev.find_mains = find_mains
    _feed_marked(plan, Synth(plan, 0, ripple_codes=200, ripple_mhz=100300), ev, 440)
    print("@@PROBE %d %s" % (plan.samples, ev.mains_ppm()))


def ri_capture():
    """A module's whole Ri evaluation: a step capture fed in 250-sample chunks (one mark
    pair each), then the finishing work step by step (one mark pair each)."""
    from ri_synth import Synth

    from shared import ri
    from shared.variants import by_code

    plan = ri.plan_for(by_code("12v").id, ri.RI_METHOD_STEP)
    ev = ri.evaluator(plan)
    total = _feed_marked(plan, Synth(plan, 5000000, ripple_codes=200), ev, 250)
    # the finishing work in the steps the module core runs across its loop turns
    # (one mark pair each: the host takes the largest after the first, which runs in
    # ri_done() right after the capture: RiSequence.finishing)
    work = ev.steps()
    steps = 0
    while True:
        mark()
        try:
            next(work)
        except StopIteration:
            mark()
            break
        mark()
        steps += 1
    result = ev.outcome
    print("@@RI", total, steps, plan.samples, result.status, result.ri_nohm)


def ri_sequence():
    """The module's whole procedure as its core runs it (shared/ri_probe.py RiSequence on
    the arrays reserved at boot, as the shell does): the probe, then the step capture,
    each fed in 256-sample chunks, then its finishing work step by step.  One mark
    pair around each step after the first of each acquisition (that one runs in
    ri_done(), in the acquisition's own time): between these the module answers the
    bus.  The step that ends the probe's work builds the capture's evaluator."""
    from array import array

    from ri_synth import Synth

    from shared import frontend as fe
    from shared import ri, ri_feed, ri_probe
    from shared.variants import by_code

    vid = by_code("12v").id
    bufs = ri_feed.Buffers()
    ri_probe.reserve(bufs, vid, ri.RI_METHOD_STEP, fe.ADC_RP2040)
    vbuf = array("H", bytes(512))
    ibuf = array("H", bytes(512))
    seq = ri_probe.RiSequence(vid, ri.RI_METHOD_STEP, fe.ADC_RP2040, 0, 0, bufs)
    plan = seq.start()
    steps = 0
    while plan is not None:
        Synth(plan, 5000000, ripple_codes=200).stream(seq.feed, vbuf, ibuf)
        seq.finishing()
        more = True
        while more:
            gc.collect()  # a collection is left out of the step (measured apart below)
            mark()
            more = seq.step()
            mark()
            steps += 1
        plan = seq.next_plan
    mark()
    gc.collect()
    mark()
    print("@@SEQ", steps, seq.result.status, seq.result.ri_nohm)


# --------------------------------------------------------------------------- manager

START_S = 200000000
SEQ = 7
STEP_MS = 50  # the shell steps the core every 50 ms (manager_fw/main.py)


def manager_setup():
    from manager_fw import config
    from manager_fw.blockdev import SimFlash
    from manager_fw.core import ManagerCore
    from shared import protocol as p

    gc.collect()
    before = gc.mem_alloc()
    cfg = config.simple_config([60] * 10, cycle_period_ms=0)
    # history and event log on NOR flash (in RAM here; on a board an external chip)
    hist = SimFlash(65536, 4096)
    events = SimFlash(16384, 4096)
    core = ManagerCore(cfg, hist, events, START_S, history_segment_size=8192,
                       site_key=b"StringCare-test!")  # fmt: skip
    for i in range(cfg.layout.module_count):  # the census found every module
        core.census[i] = 1
        core.hw_rev[i] = 1
        core.variant[i] = 3
    core._start_running(START_S)
    replies = []
    for a in range(1, 601):
        buf = bytearray(16)
        p.encode_meas(buf, p.ADDR_MANAGER, a, p.CMD_POLL_GROUP | p.REPLY, SEQ,
                      13600000 + (a % 40) * 1000, 22000 + (a % 150) * 20, a % 30, 0)  # fmt: skip
        replies.append(bytes(buf))
    gc.collect()
    flash = 65536 + 16384
    print("@@HEAP", gc.mem_alloc() - before - flash, gc.mem_free())
    return [core, replies, 0, 0]


def manager_cycle(state, counted):
    """One 600-module cycle as the shell loop drives it: the bus master every message,
    replies as they arrive, line idle, the core stepped every 50 ms of wire time
    (history, events, Ri schedule and runaway included).  Wire time is virtual."""
    from shared import protocol as p
    from shared.compat import TICKS_MAX, ticks_diff

    core, replies, now_us, next_step_us = state
    master = core.master
    reply_us = p.wire_us(16, master.baud)
    done = core.poller.cycle + 1
    start_us = now_us
    # Allocation: what the cycle leaves on the heap with the collector off.  (A call
    # whose frame is larger than 11 words takes it from the heap and frees it on
    # return; micropython.mem_total counts those, gc.mem_alloc rightly does not.)
    gc.collect()
    gc.disable()
    alloc_before = gc.mem_alloc()
    if counted:
        mark()
    while core.poller.cycle < done:
        t = now_us & TICKS_MAX
        n = master.step(t)
        if n:
            now_us += p.wire_us(n, master.baud)
            if master.tx[6] == p.CMD_POLL_GROUP:
                first = master.tx[8] | (master.tx[9] << 8)
                count = master.tx[10]
                master.seq = SEQ  # the replies were encoded with this sequence number
                # each reply at the end of its slot's frame (protocol group timing)
                for i in range(count):
                    at = now_us + p.group_slot_start_us(i, master.baud) + reply_us
                    master.receive(replies[first + i - 1], at & TICKS_MAX)
                now_us += p.group_slot_start_us(count, master.baud)
                master.line_idle(now_us & TICKS_MAX)
        elif master.waiting:
            now_us += max(1, ticks_diff(master.deadline_us, t))
        else:
            now_us += max(1, ticks_diff(master.free_at_us, t))
        while now_us >= next_step_us:
            core.step((next_step_us // 1000) & TICKS_MAX, START_S + next_step_us // 1000000)
            next_step_us += STEP_MS * 1000
        core.persist(1)  # the storage turn of manager_fw/main.py (writes what steps queued)
    if counted:
        mark()
    allocated = gc.mem_alloc() - alloc_before
    gc.enable()
    state[2] = now_us
    state[3] = next_step_us
    print("@@CYCLE", now_us - start_us, allocated)
