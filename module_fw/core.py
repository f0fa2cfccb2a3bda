# The battery module's functional core: no I/O, no clock of its own.
#
# A board shell (boards/<board>/, or the simulator) feeds it and carries out what it
# decides:
#
#   core = ModuleCore(uid, board_variant_id, adc_kind, store_slots)
#   loop:
#     n = core.bus_bytes(rx, count, now_ms)   # > 0: send core.tx[:n] at the end of the
#                                             # request + core.tx_delay_us
#     core.bus_idle(now_ms)                   # the line was quiet for >= 2 characters
#     core.voltage_frame(sum_x2, now_ms)      # every 100 ms: frontend.frame_sum_x2 of
#                                             # the block-voltage burst
#     core.temperature_frame(int_x2, probe_x2_or_None, now_ms)   # every second
#     core.tick(now_ms, button_pressed)       # every loop (~10 ms): button, LED, timers
#     set the bleed PWM to core.duty (per mille) and the LED to core.led (bit 0 red,
#     bit 1 green)
#     plan = core.ri_pending(now_ms)          # a capture to run (balancing is paused)
#       ... core.ri_feed(v, i, n) per DMA chunk; then plan = core.ri_done(now_ms)
#       (another plan: acquire it too; None: finished).  Each measurement is a probe
#       (plan.method ri.RI_METHOD_PROBE: excitation off, another sample rate) then
#       the capture, per gain range (shared/ri_probe.py RiSequence; docs/ri.md)
#     With core.ri_in_steps set (a shell with a loop), ri_done() only begins the
#     evaluation; each later ri_pending() does one bounded step of it (~1 ms on a
#     Cortex-M0+) and hands the next plan after the last: the loop answers the bus
#     meanwhile, RI_READ says busy.
#
# Safety (SPEC §1): the bleed duty comes only from the balancing controller
# (shared/balance.py), which stops on a stale target, a discharge, outside the
# equalising window, below the variant's minimum voltage, on a hot board or battery,
# and without a valid measurement; on top of that the core forces it to 0 while
# unaddressed, in the 12 s reset hold, in addressing mode, asleep, and during an Ri
# capture, and when voltage frames stop arriving for a second.  Nothing the manager
# sends can raise the duty past what the controller allows.  The measurement/balancing
# path allocates nothing.

from module_fw import state as st
from module_fw import store as sto
from module_fw import ui
from module_fw.responder import Responder
from shared import balance as bal
from shared import frontend as fe
from shared import measure, ri, ri_feed, ri_probe, variants
from shared import protocol as p
from shared.compat import const, ticks_diff

SLEEP_AFTER_MS = const(600000)  # bus silent 10 min: sleep
FRAME_STALE_MS = const(1000)  # no voltage frame this long: stop bleeding
COUNTER_SAVE_MS = const(3600000)  # persist the counters hourly (flash wear)

# Ri statuses of shared/ri -> RI_READ states of the protocol (saturated by out-of-band
# ripple is an amplifier saturated: clipped on the bus)
_RI_STATE = (p.RI_OK, p.RI_LOW_SIGNAL, p.RI_CLIPPED, p.RI_NOISY, p.RI_NO_EXCITATION,
             p.RI_INCOMPLETE, p.RI_CLIPPED)  # fmt: skip


class ModuleCore(p.Endpoint):
    def __init__(
        self, uid: bytes, board_variant_id: int, adc_kind: int, slots, hw_rev: int = 1,
        baud: int = 115200, frame_ms: int = fe.VOLTAGE_FRAME_MS, vadc: int = fe.VADC_MCU,
    ) -> None:  # fmt: skip
        self.adc_kind = adc_kind
        self.vadc = vadc  # the block-voltage converter (frontend.VADC_*): a frame's units
        # Period of voltage_frame calls: sets the voltage filter's length in frames
        # (measure.filter_shift_for) so that its lag in seconds is a board's.
        self.voltage_shift = measure.filter_shift_for(frame_ms)
        self.state = st.ModuleState(uid, board_variant_id, hw_rev, baud)
        self.store = sto.Store(slots)
        self.store.load(self.state)  # never raises; defaults on a missing/corrupt store
        if self.store.status != sto.STORE_OK:
            self.state.variant_id = board_variant_id
            self.state.ri_method = self._default_method_code(board_variant_id)
        self.store.counters.boot_count += 1
        self.responder = Responder(self.state)
        self.deframer = p.Deframer()
        self.tx = self.responder.tx
        self.tx_delay_us = 0
        self.button = ui.Button()
        self.actions = ui.ButtonActions()
        self.duty = 0
        self.led = 0
        self.led_pattern = ui.LED_SLOW_RED
        self._last_frame_ms = 0
        self._started = False
        self._last_counter_save_ms = 0
        self._last_bleed_ms = 0
        self._bleed_ms = 0
        self._target_seen_ms = -1
        self._ri_seq: ri_probe.RiSequence | None = None
        # the Ri evaluators' arrays kept from boot (reserve_ri(); None: each capture
        # allocates its own)
        self._ri_bufs: ri_feed.Buffers | None = None
        self._ri_started_ms = 0
        # A shell with a loop sets this: a capture's evaluation then finishes in
        # bounded steps, one per ri_pending() (the loop answers the bus between them;
        # RI_READ says busy).  False: ri_done() evaluates at once (simulators, tests).
        self.ri_in_steps = False
        self.ri_finishing = False
        self._configure()
        if self.store.status == sto.STORE_OK:
            self.store.save(self.state)  # the boot count (never fatal)

    # -- configuration ------------------------------------------------------------

    @staticmethod
    def _default_method_code(variant_id: int) -> int:
        m = variants.by_id(variant_id).ri_method
        return p.RI_METHOD_AC if m == ri.RI_METHOD_AC else p.RI_METHOD_DC

    def _configure(self) -> None:
        """(Re)build the measurement chain for the variant and calibration (rare)."""
        s = self.state
        self.variant = variants.by_id(s.variant_id)
        s.target_min_uv = self.variant.target_min_uv
        s.target_max_uv = self.variant.target_max_uv
        self.voltage = measure.BlockVoltage(
            s.variant_id, s.cal_offset[0], s.cal_gain_ppm[0], shift=self.voltage_shift,
            vadc=self.vadc,
        )  # fmt: skip
        self.voltage.set_tempco(s.cal_offset[st.CAL_TEMPCO], s.cal_gain_ppm[st.CAL_TEMPCO])
        self.temperature = measure.Temperature(self.adc_kind, s.cal_offset[3], s.cal_offset[4])
        self.balance = bal.BalanceController(self.variant)
        self._target_seen_ms = -1
        probe_ms = ri.plan_for(s.variant_id, ri.RI_METHOD_PROBE, 0, self.adc_kind).duration_ms()
        for code in (p.RI_METHOD_DC, p.RI_METHOD_AC):
            plan = ri.plan_for(s.variant_id, self._ri_method_of(code), 0, self.adc_kind)
            s.ri_duration_ms[code] = probe_ms + plan.duration_ms()
        s.ri_duration_ms[0] = s.ri_duration_ms[s.ri_method]
        if self._ri_bufs is not None and self._ri_seq is None:
            self._reserve_ri()  # the variant's shapes (a capture under way keeps its own)

    def reserve_ri(self) -> None:
        """Allocate the Ri evaluators' arrays now, at boot, and reuse them for every
        measurement (~5.7 KB for the board's method and its probe; the other method's
        at its first capture): a capture then needs no free block larger than a few
        hundred bytes, however fragmented the heap is after days of small allocations
        (shared/ri_feed.py, Buffers).  The loop's shell calls it (module_fw/main.py)."""
        if self._ri_bufs is None:
            self._ri_bufs = ri_feed.Buffers()
        self._reserve_ri()

    def _reserve_ri(self) -> None:
        s = self.state
        method = self._ri_method_of(s.ri_method)
        ri_probe.reserve(self._ri_bufs, s.variant_id, method, self.adc_kind)

    @staticmethod
    def _ri_method_of(code: int) -> int:
        return ri.RI_METHOD_AC if code == p.RI_METHOD_AC else ri.RI_METHOD_STEP

    # -- bus ---------------------------------------------------------------------------
    # bus_bytes(data, count, now_ms) and bus_idle(now_ms) come from protocol.Endpoint
    # (shared/protocol_frame.py): they hand every frame to handle() below.

    def handle(self, frame, now_ms: int) -> int:
        """One CRC-valid frame; returns the length of a reply in core.tx (0: none)."""
        n = self.responder.handle(frame, now_ms)
        if n:
            self.tx_delay_us = self.responder.tx_delay_us
        return n

    # -- measurement -------------------------------------------------------------------

    def _measuring(self) -> bool:
        s = self.state
        return not (s.reset_hold or s.sleeping)

    def voltage_frame(self, sum_x2: int, now_ms: int) -> None:
        """One 100 ms burst of the block-voltage channel; runs the balancing step."""
        if not self._measuring():
            return
        t = self.temperature
        board = t.board_temp_mc if t.source != measure.TEMP_SOURCE_NONE else measure.TEMP_UNKNOWN
        v_uv = self.voltage.push_frame(sum_x2, board)
        self._last_frame_ms = now_ms
        s = self.state
        s.voltage_uv = v_uv if v_uv > 0 else 0
        self._balance_step(now_ms)

    def temperature_frame(self, internal_sum_x2: int, probe_sum_x2, now_ms: int) -> None:
        if not self._measuring():
            return
        t = self.temperature
        t.push_frame(internal_sum_x2, probe_sum_x2)
        s = self.state
        s.temp_mc = t.temp_mc
        s.board_temp_cc = t.board_temp_mc // 10

    def _balance_step(self, now_ms: int) -> None:
        s = self.state
        c = self.balance
        if s.target_received and s.target_rx_ms != self._target_seen_ms:
            self._target_seen_ms = s.target_rx_ms
            c.set_target(s.target_rx_ms, s.target_uv)
            timeout = s.target_timeout_ms
            limit = self.variant.target_timeout_ms
            c.target_timeout_ms = timeout if timeout < limit else limit
            c.set_enabled(bool(s.target_flags & p.TARGET_EQUALISE))
            c.set_discharge(bool(s.target_flags & p.TARGET_DISCHARGE))
        elif not s.target_received and self._target_seen_ms != -1:
            self._target_seen_ms = -1
            c.clear_target()
        t = self.temperature
        board = t.board_temp_mc if t.source != measure.TEMP_SOURCE_NONE else None
        duty = c.update(now_ms, self.voltage.voltage_uv if self.voltage.ready else None, board,
                        t.battery_temp_mc)  # fmt: skip
        if (
            s.address == p.ADDR_UNADDRESSED
            or s.addressing
            or s.reset_hold
            or s.sleeping
            or self._ri_seq is not None
        ):
            duty = 0
        self.duty = duty
        self._flags(now_ms)

    def _flags(self, now_ms: int) -> None:
        s = self.state
        c = self.balance
        t = self.temperature
        f = 0
        if self.duty:
            f |= p.FLAG_BALANCING
        if c.flags & bal.BAL_NO_TARGET:
            f |= p.FLAG_TARGET_STALE
        if c.flags & (bal.BAL_BOARD_HOT | bal.BAL_BATTERY_HOT | bal.BAL_DERATED):
            f |= p.FLAG_HOT
        if s.meas_flags & p.FLAG_RI_RESULT:
            f |= p.FLAG_RI_RESULT
        if s.attention or s.identify_confirmed:
            f |= p.FLAG_ATTENTION
        if s.store_flags:
            f |= p.FLAG_DEFAULTS
        v = self.voltage.voltage_uv
        var = self.variant
        if self.voltage.ready and (v < var.measure_min_uv or v > var.measure_max_uv):
            f |= p.FLAG_RANGE
        if t.source == measure.TEMP_SOURCE_PROBE:
            f |= p.FLAG_PROBE
        s.meas_flags = f
        x = 0
        if c.flags & bal.BAL_BOARD_HOT:
            x |= st.STATUS_BOARD_HOT
        if c.flags & bal.BAL_BATTERY_HOT:
            x |= st.STATUS_BATTERY_HOT
        if c.flags & bal.BAL_DISCHARGE:
            x |= st.STATUS_DISCHARGE
        if c.flags & bal.BAL_UNDERVOLTAGE:
            x |= st.STATUS_LOW_VOLTAGE
        if c.flags & (bal.BAL_OUTSIDE_WINDOW | bal.BAL_DISABLED):
            x |= st.STATUS_OUT_OF_WINDOW
        s.status_extra = x
        s.balance_pct = c.level_pct if self.duty else 0

    # -- every loop ------------------------------------------------------------------------

    def tick(self, now_ms: int, button_pressed: bool) -> None:
        s = self.state
        if not self._started:
            self._started = True
            self._last_bleed_ms = now_ms
            self._last_counter_save_ms = now_ms
            s.last_rx_ms = now_ms
        ev = self.button.update(now_ms, button_pressed)
        if ev:
            self.actions.apply(s, ev)
        # The duty set at the last voltage frame holds only while nothing forbids it and
        # frames keep coming (a stalled ADC or shell must not leave the load on).
        if (
            s.reset_hold
            or s.addressing
            or s.sleeping
            or s.address == p.ADDR_UNADDRESSED
            or ticks_diff(now_ms, self._last_frame_ms) > FRAME_STALE_MS
        ):
            self.duty = 0
        # Sleep after a long silent bus; any frame for us wakes (responder).
        if not s.sleeping and ticks_diff(now_ms, s.last_rx_ms) > SLEEP_AFTER_MS:
            s.sleeping = True
            self.duty = 0
        # A manager's mark is dropped once polling has stopped for a minute.
        if s.mark and ticks_diff(now_ms, s.polled_ms) > ui.MARK_EXPIRES_MS:
            s.mark = 0
        # Bleed time counter (ms, folded into seconds)
        if self.duty:
            self._bleed_ms += ticks_diff(now_ms, self._last_bleed_ms)
            if self._bleed_ms >= 1000:
                self.store.counters.bleed_s += self._bleed_ms // 1000
                self._bleed_ms %= 1000
        self._last_bleed_ms = now_ms
        if s.dirty:
            self._persist(now_ms)
        elif ticks_diff(now_ms, self._last_counter_save_ms) > COUNTER_SAVE_MS:
            self._last_counter_save_ms = now_ms
            self.store.save(s)
        self.led_pattern = ui.led_pattern(s, now_ms)
        self.led = ui.led_outputs(self.led_pattern, now_ms)

    def _persist(self, now_ms: int) -> None:
        s = self.state
        rebuild = s.dirty & (st.DIRTY_CALIBRATION | st.DIRTY_VARIANT)

        if s.dirty & st.DIRTY_VARIANT:
            s.ri_method = self._default_method_code(s.variant_id)
        s.dirty = 0
        self._last_counter_save_ms = now_ms
        self.store.save(s)
        if rebuild:
            self._configure()

    # -- internal resistance -----------------------------------------------------------

    def ri_pending(self, now_ms: int):
        """A plan to acquire now (balancing is paused until it is done), or None.
        While an evaluation finishes (ri_in_steps), each call does one bounded step of
        it and hands the next plan (or records the result) after the last."""
        s = self.state
        seq = self._ri_seq
        if seq is not None:
            if not self.ri_finishing or seq.step():
                return None
            self.ri_finishing = False
            return self._ri_next(seq, now_ms)
        if s.ri_request < 0:
            return None
        method = s.ri_request
        s.ri_request = -1
        if (
            s.reset_hold
            or s.sleeping
            or s.address == p.ADDR_UNADDRESSED
            or (s.target_flags & p.TARGET_DISCHARGE)
        ):
            self._ri_finish(p.RI_INHIBITED, 0, 0, now_ms)
            return None
        # calibration channel 1: Ri gain in the high range, channel 2: in the low range
        seq = ri_probe.RiSequence(
            s.variant_id, self._ri_method_of(method), self.adc_kind, s.cal_gain_ppm[1],
            s.cal_gain_ppm[2], self._ri_bufs,
        )  # fmt: skip
        self._ri_seq = seq
        self._ri_started_ms = now_ms
        s.ri_busy = True
        self.duty = 0
        # the capture dips the block: the controller keeps its law until it is back
        self.balance.hold(now_ms, self.voltage.voltage_uv if self.voltage.ready else None)
        return seq.start()

    def ri_feed(self, vbuf, ibuf, count: int) -> None:
        seq = self._ri_seq
        if seq is not None:
            seq.feed(vbuf, ibuf, count)

    def ri_done(self, now_ms: int):
        """The acquisition ended; returns the next plan to acquire (the capture after
        its probe, or both again in the low gain range) or None (finished; with
        ri_in_steps: the evaluation goes on in ri_pending(), which hands the next
        plan)."""
        seq = self._ri_seq
        if seq is None or self.ri_finishing:
            return None
        seq.finishing()
        if self.ri_in_steps:
            self.ri_finishing = True
            return None
        while seq.step():
            pass
        return self._ri_next(seq, now_ms)

    def _ri_next(self, seq, now_ms: int):
        plan = seq.next_plan
        if plan is not None:
            self.duty = 0
            return plan
        res = seq.result
        if res is None:  # nothing evaluated (no plan): not a number
            self._ri_finish(p.RI_INCOMPLETE, 0, 0, now_ms)
            return None
        state = _RI_STATE[res.status] if res.status < len(_RI_STATE) else p.RI_INCOMPLETE
        self._ri_finish(state, res.ri_nohm or 0, res.quality, now_ms)
        return None

    def _ri_finish(self, state: int, ri_nohm: int, quality: int, now_ms: int) -> None:
        s = self.state
        self._ri_seq = None
        self.ri_finishing = False
        self.balance.hold_end(now_ms)  # the controller's hold ends once the block is back
        s.ri_busy = False
        s.ri_state = state
        s.ri_nohm = ri_nohm if state == p.RI_OK else 0
        s.ri_quality = quality
        s.ri_done_ms = now_ms
        s.meas_flags |= p.FLAG_RI_RESULT
        if state == p.RI_OK:
            self.store.counters.ri_count += 1

    def ri_abort(self, now_ms: int) -> None:
        """The shell could not finish the capture (e.g. a watchdog): report incomplete."""
        if self._ri_seq is not None:
            self._ri_finish(p.RI_INCOMPLETE, 0, 0, now_ms)
