# A module core under fuzz: manager commands, battery states, button presses, time
# gaps, and the safety invariants checked every 100 ms (docs in the tests that use it:
# host_tests/dual/module_fw/test_core_safety.py, host_tests/host/test_module_safety.py).
from adcsynth import internal_frame, temp_frame, voltage_frame

from module_fw import store as sto
from module_fw.core import ModuleCore
from shared import auth, variants
from shared import frontend as fe
from shared import protocol as p
from shared import protocol_layouts as lay

V12 = 3
UID = b"\x10\x20\x30\x40\x50\x60\x70\x80"
KEY = bytes.fromhex("537472696e67436172652d7465737421")  # the published test key


class Board:
    """Integer first-order thermal model of the module board (m°C, ms)."""

    def __init__(self, variant_id, ambient_mc):
        f = fe.frontend(variant_id)
        self.rth = f.board_rth_mk_per_w  # mK per W
        self.tau_ms = f.board_tau_ms
        self.bleed_mohm = f.bleed_mohm
        self.quiescent_mw = f.quiescent_mw
        self.temp_mc = ambient_mc

    def internal_frame(self):
        return internal_frame(self.temp_mc, fe.ADC_STM32G4)

    def probe_frame(self):
        return temp_frame(4094 * 16)  # no probe

    def voltage_frame(self, block_uv, exact):
        return exact

    def step(self, dt_ms, block_uv, duty, ambient_mc):
        mv = block_uv // 1000
        power_mw = mv * mv // self.bleed_mohm * duty // 1000 + self.quiescent_mw
        steady = ambient_mc + power_mw * self.rth // 1000000
        self.temp_mc += (steady - self.temp_mc) * dt_ms // self.tau_ms


def command(rng, seq, signer):
    """One random command; authenticated ones are signed by the manager's signer, or
    now and then by nobody (a rogue device: the module must refuse them)."""
    k = rng.below(12)
    if rng.below(8) == 0:
        signer = None
    if k < 4:
        flags = rng.below(4)
        target_10uv = rng.between(1200000, 1520000)  # around the 12.6-14.7 V plausible range
        values = {"first": 1, "last": 64, "target_10uv": target_10uv, "flags": flags,
                  "timeout_s": rng.below(256)}  # fmt: skip
        return lay.encode_request(p.ADDR_BROADCAST, p.CMD_SET_TARGET, seq, values, signer)
    if k < 6:
        return p.encode_bytes(p.ADDR_BROADCAST, p.ADDR_MANAGER, p.CMD_POLL_GROUP, seq,
                              b"\x01\x00\x40")  # fmt: skip
    if k == 6:
        return lay.encode_request(7, p.CMD_RI_START, seq, {"method": rng.below(3)}, signer)
    if k == 7:
        return p.encode_bytes(p.ADDR_BROADCAST, p.ADDR_MANAGER, p.CMD_ADDR_MODE, seq,
                              bytes([rng.below(2)]))  # fmt: skip
    if k == 8:
        return p.encode_bytes(p.ADDR_BROADCAST, p.ADDR_MANAGER, p.CMD_SLEEP, seq)
    if k == 9:
        return lay.encode_request(rng.below(3) * 7, p.CMD_SET_ADDRESS, seq, {"address": 7},
                                  signer)  # fmt: skip
    if k == 10:
        return p.encode_bytes(7, p.ADDR_MANAGER, p.CMD_IDENTIFY, seq, bytes([rng.below(2)]))
    return rng.bytes(rng.below(40))  # noise on the bus


class Watch:
    """The module's view of the last target, to judge the duty against."""

    def __init__(self):
        self.target_ms = None
        self.flags = 0
        self.timeout_ms = 0


def check(core, now, watch, variant, board):
    s = core.state
    if core.duty:
        assert core.voltage.voltage_uv >= variant.min_voltage_uv, "bled below the minimum"
        assert watch.target_ms is not None, "bled without a target"
        assert now - watch.target_ms <= watch.timeout_ms + 200, "bled on a stale target"
        assert watch.flags & p.TARGET_EQUALISE, "bled with equalising off"
        assert not watch.flags & p.TARGET_DISCHARGE, "bled during a discharge"
        assert s.address != 0 and not s.addressing and not s.reset_hold and not s.sleeping
        battery = core.temperature.battery_temp_mc
        assert battery is None or battery <= variant.battery_temp_limit_mc, "bled, battery hot"
    assert board.temp_mc <= variant.board_temp_limit_mc, "board at %d m°C" % board.temp_mc


def run_fuzz(rng, steps, board_factory=None):
    """Drive a fresh module through `steps` random steps chosen by rng (an LCG or
    anything with below/between/bytes); returns how many 100 ms frames it bled."""
    slots = sto.MemorySlots()
    first = ModuleCore(UID, V12, fe.ADC_STM32G4, slots)
    first.state.address = 7
    first.state.key = KEY
    first.store.save(first.state)
    signer = auth.Signer(KEY)
    core = ModuleCore(UID, V12, fe.ADC_STM32G4, slots)
    variant = variants.by_id(V12)
    ambient = 25000
    board = Board(V12, ambient) if board_factory is None else board_factory(ambient)
    watch = Watch()
    now = 1000
    block_uv = 13600000
    seq = 0
    button = False
    bled = 0
    for _ in range(steps):
        choice = rng.below(6)
        if choice == 0:
            block_uv = rng.between(9000000, 16500000)  # incl. below the 10.8 V minimum
        elif choice == 1:
            ambient = rng.between(0, 60000)
        elif choice == 2:
            button = rng.below(2) == 1
        seq = (seq + 1) & 0xFF
        data = command(rng, seq, signer)
        core.bus_bytes(data, len(data), now)
        core.bus_idle(now)
        if data[6:7] == bytes([p.CMD_SET_TARGET]) and core.state.target_rx_ms == now:
            watch.target_ms = now
            watch.flags = core.state.target_flags
            watch.timeout_ms = min(core.state.target_timeout_ms, variant.target_timeout_ms)
        if core.ri_pending(now) is not None:
            core.ri_abort(now)
        frames = rng.between(1, 40) if rng.below(8) else rng.between(300, 900)  # gaps
        vframe = voltage_frame(V12, block_uv)
        for k in range(frames):
            if k % 10 == 0:
                core.temperature_frame(board.internal_frame(), board.probe_frame(), now)
            core.voltage_frame(board.voltage_frame(block_uv, vframe), now)
            core.tick(now, button)
            check(core, now, watch, variant, board)
            board.step(100, block_uv, core.duty, ambient)
            if core.duty:
                bled += 1
            now += 100
    return bled
