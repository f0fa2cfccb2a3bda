# The module's shell loop for real (and virtual) boards: drives ModuleCore with the
# inputs and outputs of a board's hardware abstraction (boards/<board>/hal.py).
#
#   from module_fw.main import run
#   run(hal)            # never returns on a board (Ctrl-C on the console: REPL)
#
# The HAL a board provides (boards/rp2040_module/hal.py is the reference):
#
#   hal.uid                      8 bytes, the chip's unique id folded to 8 bytes
#   hal.adc_kind                 shared.frontend.ADC_RP2040 / ADC_STM32G4
#   hal.hw_rev, hal.baud         hardware revision byte, bus baud rate
#   hal.variant_id               the board's default variant (settings.json / board.json)
#   hal.slots                    persistence slots (module_fw.store.FileSlots on flash)
#   hal.ticks_us()               free-running µs counter of the port
#   hal.ticks_diff_us(a, b)      a - b on that counter's circle
#   hal.bus_rx(buf) -> n         bytes waiting on the bus UART (non-blocking, <= len(buf))
#   hal.bus_tx(buf, n)           drive DE, send buf[:n], wait for the last stop bit,
#                                release DE (half-duplex RS-485)
#   hal.voltage_start()          start a burst of VOLTAGE_FRAME_SAMPLES block-voltage
#                                samples spread over 100 ms into hal.voltage_buf (DMA/timer)
#   hal.voltage_ready() -> bool  the burst is complete
#   hal.vadc (optional)          frontend.VADC_ADS1219 on a board with the external
#                                block-voltage converter: voltage_ready() is then its
#                                module_fw.vadc poll and hal.voltage_total the frame
#   hal.temp_read(int_buf, probe_buf) -> bool   TEMP_FRAME_SAMPLES of the die sensor and
#                                of the probe input (False: the board has no probe input)
#   hal.button() -> bool         the button is pressed (level, the core debounces)
#   hal.set_led(bits)            bit 0 red, bit 1 green
#   hal.set_duty(permille)       bleed PWM duty, 0..1000
#   hal.ri_capture(plan, core)   run one Ri capture of `plan`, streaming sample chunks
#                                into core.ri_feed(v, i, n); False when it was aborted.
#                                Any plan.sample_rate_hz (the probe before each capture
#                                runs at 8801 Hz with the excitation off throughout:
#                                plan.method 2, plan.excitation_on(k) always False)
#   hal.feed_watchdog()
#   hal.sleep_until_bus(ms)      light sleep until bus traffic or ms elapsed
#   hal.idle_until_bus(ms)       (optional) nothing is due on the bus before its next
#                                byte (no reply queued, no frame half-received): wait up
#                                to ms for one, less when the next burst falls due.  A
#                                virtual board on a host (boards/unix_module) gives its
#                                CPU back this way; a board's HAL leaves it out and the
#                                loop polls the UART without pause.
#   hal.started(text)            tell the console the firmware runs (one line)
#   hal.shutdown()               loads off (bleed, excitation); the loop is leaving
#
# Timing (docs/protocol.md §4): a reply is sent core.tx_delay_us after the end of the
# request (0: at once).  The end of a request is the moment its last byte was read, so
# the loop polls the UART at least every ~0.5 ms; POLL_GROUP slots are kept by holding
# the reply until its due time while the loop goes on, and an iteration whose work
# (measured, a decaying max) would run past that time is put off until the reply is
# out: the slot comes first (host_tests/hil/test_firmware.py checks every reply
# against its slot in the board's own time).  The line is "idle" after 2
# character times without a byte: the core then settles cut frames.
# An Ri capture holds the loop for its duration (the manager knows it: RI_START's
# reply); its evaluation then runs in bounded steps, one per iteration (core.ri_pending,
# counted in the iteration's work), so the module answers the bus meanwhile.
# Per iteration nothing is allocated on the bus path and the measurement path; replies,
# Ri captures and persistence (rare) may allocate.

from array import array

from module_fw import store as sto
from module_fw.core import ModuleCore
from shared import frontend as fe
from shared import protocol as p
from shared import version
from shared.compat import const, ticks_diff, ticks_ms

TEMP_PERIOD_MS = const(1000)
RX_CHUNK = const(64)
# Sleep after the core decided to (SLEEP or a silent bus): wake at least this often to
# keep the watchdog fed and the LED flashing.
SLEEP_SLICE_MS = const(500)
# Slack between the end of an iteration's work and a queued reply's due time: the
# loop's own latency to get back to the UART.
WORK_MARGIN_US = const(1000)
# hal.idle_until_bus: wake at least this often, so that tick() keeps the button's
# debounce (module_fw/ui.py DEBOUNCE_MS) and the LED's resolution.
IDLE_SLICE_MS = const(10)


class Shell:
    """The loop's state; `step()` is one iteration (tests call it directly)."""

    def __init__(self, hal, core=None) -> None:
        self.hal = hal
        if core is None:
            core = ModuleCore(
                hal.uid, hal.variant_id, hal.adc_kind, hal.slots, hal.hw_rev, hal.baud,
                vadc=getattr(hal, "vadc", fe.VADC_MCU),
            )  # fmt: skip
        self.core = core
        core.ri_in_steps = True  # an Ri evaluation finishes across the loop's turns
        core.reserve_ri()  # its arrays now, while the heap has large free blocks
        self.rx = bytearray(RX_CHUNK)
        self.tx = bytearray(p.FRAME_MAX)
        self.tx_len = 0
        self.tx_due_us = 0
        self.char_us = p.wire_us(1, hal.baud)
        self.idle_us = 2 * self.char_us
        self.last_rx_us = hal.ticks_us()
        self.idle_sent = True
        self.int_buf = array("H", [0] * fe.TEMP_FRAME_SAMPLES)
        self.probe_buf = array("H", [0] * fe.TEMP_FRAME_SAMPLES)
        self.last_temp_ms = ticks_ms()
        self.frames = 0
        self.replies = 0
        # How long one iteration's work (measurement frames, tick, LED, watchdog) took
        # lately, µs: a max that fades by 1/16 per measurement frame.
        self.work_us = 0
        self.idle_wait = getattr(hal, "idle_until_bus", None)
        hal.voltage_start()

    def _queue_reply(self, n: int, end_us: int) -> None:
        core = self.core
        p.copy_bytes(self.tx, 0, core.tx, 0, n)
        self.tx_len = n
        delay = core.tx_delay_us
        if delay < self.idle_us:
            delay = self.idle_us  # the bus turnaround: >= 2 characters after the request
        self.tx_due_us = end_us + delay

    def _send_due(self) -> None:
        hal = self.hal
        if not self.tx_len:
            return
        wait = hal.ticks_diff_us(self.tx_due_us, hal.ticks_us())
        if wait > 1000:
            return  # not yet: the loop comes back well before
        while wait > 0:
            wait = hal.ticks_diff_us(self.tx_due_us, hal.ticks_us())
        hal.bus_tx(self.tx, self.tx_len)
        self.tx_len = 0
        self.replies += 1

    def poll_bus(self) -> None:
        hal = self.hal
        core = self.core
        n = hal.bus_rx(self.rx)
        now_us = hal.ticks_us()
        if n:
            self.last_rx_us = now_us
            self.idle_sent = False
            reply = core.bus_bytes(self.rx, n, ticks_ms())
            if reply:
                self._queue_reply(reply, now_us)
        elif not self.idle_sent and hal.ticks_diff_us(now_us, self.last_rx_us) >= self.idle_us:
            self.idle_sent = True
            reply = core.bus_idle(ticks_ms())
            if reply:
                self._queue_reply(reply, self.last_rx_us)
        self._send_due()

    def step(self) -> None:
        hal = self.hal
        core = self.core
        self.poll_bus()
        if self.tx_len:
            wait = hal.ticks_diff_us(self.tx_due_us, hal.ticks_us())
            if wait <= self.work_us + WORK_MARGIN_US:
                # A queued reply falls due before this iteration's work could end (a
                # frame sum takes milliseconds on a Cortex-M0+, and a POLL_GROUP reply
                # must start within 1 Tc of its slot): the reply comes first, the work
                # waits for an iteration after it.
                return
        work_from_us = hal.ticks_us()
        now_ms = ticks_ms()
        if hal.voltage_ready():
            if core.vadc == fe.VADC_MCU:
                total = fe.frame_sum_x2(hal.voltage_buf, fe.VOLTAGE_FRAME_SAMPLES, core.adc_kind)
            else:  # an external converter: the HAL summed the frame's conversions
                total = hal.voltage_total
            # the converter is free between two bursts: the temperature channels now
            if ticks_diff(now_ms, self.last_temp_ms) >= TEMP_PERIOD_MS:
                self.last_temp_ms = now_ms
                has_probe = hal.temp_read(self.int_buf, self.probe_buf)
                hal.voltage_start()
                n = fe.TEMP_FRAME_SAMPLES
                int_sum = fe.frame_sum_x2(self.int_buf, n, core.adc_kind)
                probe_sum = fe.frame_sum_x2(self.probe_buf, n, core.adc_kind) if has_probe else None
                core.temperature_frame(int_sum, probe_sum, now_ms)
            else:
                hal.voltage_start()
            core.voltage_frame(total, now_ms)
            self.frames += 1
            self.work_us -= self.work_us >> 4  # the max fades over ~16 frames
            self.poll_bus()
        core.tick(now_ms, hal.button())
        hal.set_duty(core.duty)
        hal.set_led(core.led)
        hal.feed_watchdog()
        # a new capture's plan, or (an evaluation finishing) one bounded step of it,
        # counted in this iteration's work like a frame sum
        plan = core.ri_pending(now_ms)
        took = hal.ticks_diff_us(hal.ticks_us(), work_from_us)
        if took > self.work_us:
            self.work_us = took
        while plan is not None:
            hal.set_duty(0)
            if not hal.ri_capture(plan, core):
                core.ri_abort(ticks_ms())
                break
            plan = core.ri_done(ticks_ms())
            hal.feed_watchdog()
        if self.tx_len:
            return  # a reply is queued: back to the UART at once (its slot comes first)
        if core.state.sleeping:
            hal.set_duty(0)
            hal.sleep_until_bus(SLEEP_SLICE_MS)
        elif self.idle_sent and self.idle_wait is not None and not core.ri_finishing:
            self.idle_wait(IDLE_SLICE_MS)  # the line is idle: wait for its next byte


def banner(core) -> str:
    s = core.state
    return "stringcare: module %s started, address %d, variant %d, store %d, uid %s" % (
        version.VERSION,
        s.address,
        s.variant_id,
        core.store.status,
        "".join("%02x" % b for b in s.uid),
    )


def apply_provision(slots, provision: dict, board_variant_id: int) -> None:
    """Settings written by `stringcare deploy --address/--variant/--site-key`, applied
    once into the persistent store (calibration and counters kept).  Raises ValueError
    on a bad value."""
    from module_fw import state as st

    s = st.ModuleState(b"\x00" * 8, board_variant_id)
    store = sto.Store(slots)
    store.load(s)
    if "variant" in provision:
        v = int(provision["variant"])
        if not 0 <= v <= 4:
            raise ValueError("provision: variant id %d outside 0..4" % v)
        if v != s.variant_id or store.status != sto.STORE_OK:
            s.variant_id = v
            s.ri_method = ModuleCore._default_method_code(v)
    elif store.status != sto.STORE_OK:
        s.variant_id = board_variant_id
        s.ri_method = ModuleCore._default_method_code(board_variant_id)
    if "address" in provision:
        a = int(provision["address"])
        if not 0 <= a <= p.ADDR_MODULE_MAX:
            raise ValueError("provision: address %d outside 0..%d" % (a, p.ADDR_MODULE_MAX))
        s.address = a
    if "site_key" in provision:
        # the site key over USB (physical presence): docs/protocol.md, "Authentication"
        k = str(provision["site_key"])
        if len(k) != 2 * p.KEY_LEN:
            raise ValueError("provision: site_key needs %d hex digits" % (2 * p.KEY_LEN))
        s.key = bytes(int(k[i : i + 2], 16) for i in range(0, len(k), 2))
    if not store.save(s):
        raise OSError("provision: the store could not be written")


def run(hal) -> None:
    """The module's life on a board.  Whatever ends the loop (Ctrl-C for the REPL, an
    error), the bleed load and the excitation are switched off first."""
    shell = Shell(hal)
    hal.started(banner(shell.core))
    try:
        while True:
            shell.step()
    finally:
        hal.shutdown()
