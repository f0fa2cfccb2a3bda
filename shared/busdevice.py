# Bus devices that are not battery modules (docs/protocol.md §5, 0x40-0x42): what the
# string current sensor (shared/currentsensor.py) and the relay/IO box
# (shared/relaybox.py) have in common.  Sans-I/O: the core gets received bytes and the
# time in ms and returns the length of a reply in core.tx; the board's shell
# (DeviceShell below, driven by boards/<board>/hal.py) moves the bytes and drives pins.
# The simulator (boards/sim/devices.py) wraps the same cores.
#
# Shell contract (what a device core offers):
#   core.bus_bytes(buf, n, now_ms) -> reply length   bytes received from the bus
#   core.bus_idle(now_ms) -> reply length            the line went quiet (>= 2 Tc)
#   core.handle(frame, now_ms) -> reply length       one CRC-valid frame (simulator)
#   core.tick(now_ms)                                time passes (watchdogs)
#   core.tx, core.tx_delay_us                        the reply and when to send it
# The framing (bus_bytes, bus_idle) is protocol.Endpoint's, shared with the battery
# module's core (module_fw/core.py).  Nothing here allocates per frame.

from shared import protocol as p
from shared import version
from shared.compat import const

RX_CHUNK = const(64)  # bytes taken from the UART per loop pass


class BusDevice(p.Endpoint):
    """Identity (DISCOVER, INFO), NAK and framing for one non-module bus device."""

    device_type = 0
    store_due = False  # a device with persistent settings sets it (shell: `store`)

    def __init__(self, address: int, uid, hw_rev: int = 1) -> None:
        self.address = address
        self.uid = bytes(uid)
        self.hw_rev = hw_rev
        self.tx = bytearray(p.FRAME_MAX)
        self.tx_delay_us = 0
        self.requests = 0  # requests addressed to this device (any command)
        self.deframer = p.Deframer()

    def tick(self, now_ms: int) -> None:
        """Time passes (a device with timers overrides this)."""

    # -- frames --------------------------------------------------------------------------

    def _reply(self, frame, cmd: int, length: int) -> int:
        self.tx_delay_us = 0
        return p.encode_frame(self.tx, frame.src, self.address, cmd, frame.seq, length)

    def _nak(self, frame, error: int) -> int:
        self.tx[8] = frame.cmd
        self.tx[9] = error
        return self._reply(frame, p.CMD_NAK, 2)

    def handle(self, frame, now_ms: int) -> int:
        """One CRC-valid frame; returns the reply length (0: none).  Broadcasts and
        replies are ignored: no device of this kind answers a broadcast."""
        self.tick(now_ms)
        if frame.cmd & p.REPLY or frame.dst != self.address:
            return 0
        self.requests += 1
        self.request_seen(frame, now_ms)
        tx = self.tx
        if frame.cmd == p.CMD_DISCOVER or frame.cmd == p.CMD_INFO:
            tx[8] = self.device_type
            tx[9] = self.hw_rev
            tx[10] = version.VERSION_MAJOR
            tx[11] = version.VERSION_MINOR
            tx[12] = version.VERSION_PATCH
            tx[13] = 0
            if frame.cmd == p.CMD_DISCOVER:
                for i in range(8):
                    tx[14 + i] = self.uid[i]
                return self._reply(frame, frame.cmd | p.REPLY, 14)
            tx[14] = 0
            tx[15] = 0
            for i in range(8):
                tx[16 + i] = self.uid[i]
            self.auth_fields(tx, 24)  # INFO's last 9 bytes (docs/protocol.md §5)
            return self._reply(frame, frame.cmd | p.REPLY, 25)
        return self.handle_own(frame, now_ms)

    def auth_fields(self, tx, at: int) -> None:
        """INFO's key_state, auth_refused, auth_ctr: none here (a device that takes
        authenticated commands overrides it: shared/relaybox.py)."""
        for i in range(9):
            tx[at + i] = 0

    def request_seen(self, frame, now_ms: int) -> None:
        """A CRC-valid request addressed to this device (before it is answered)."""

    def handle_own(self, frame, now_ms: int) -> int:
        return self._nak(frame, p.ERR_UNKNOWN_COMMAND)


class DeviceShell:
    """The loop of a device board: bytes in, replies out on time, the core's outputs to
    the pins.  The HAL (boards/rp2040_iobox/hal.py is the reference):

      hal.ticks_us(), hal.ticks_diff_us(a, b), hal.ticks_ms()   the port's counters
      hal.baud                        bus baud rate
      hal.bus_rx(buf) -> n            bytes waiting on the bus UART (non-blocking)
      hal.bus_tx(buf, n)              drive DE, send, wait for the last stop bit, release
      hal.update(core, now_ms)        read inputs into the core, drive outputs from it
      hal.feed_watchdog()             the chip's watchdog (armed by the HAL's first feed)
      hal.wait_us(us)                 idle a little (or return at once)
      hal.started(text), hal.shutdown(operator)   see run()

    step() is one iteration; tests call it directly.  Per iteration nothing is allocated.
    """

    def __init__(self, hal, core, store=None) -> None:
        self.hal = hal
        self.core = core
        self.store = store  # store(core): writes what the core asks to keep (store_due)
        self.rx = bytearray(RX_CHUNK)
        self.tx = bytearray(p.FRAME_MAX)
        self.tx_len = 0
        self.tx_due_us = 0
        self.idle_us = p.wire_us(2, hal.baud)
        self.last_rx_us = hal.ticks_us()
        self.idle_sent = True
        self.replies = 0

    def _queue_reply(self, n: int, end_us: int) -> None:
        # a unicast reply goes at least 2 character times after the request (the bus
        # turnaround), well inside the 5 ms reply deadline (docs/protocol.md §4)
        core = self.core
        p.copy_bytes(self.tx, 0, core.tx, 0, n)
        self.tx_len = n
        delay = core.tx_delay_us
        if delay < self.idle_us:
            delay = self.idle_us
        self.tx_due_us = end_us + delay

    def _send_due(self) -> None:
        hal = self.hal
        if not self.tx_len:
            return
        while hal.ticks_diff_us(self.tx_due_us, hal.ticks_us()) > 0:
            pass
        hal.bus_tx(self.tx, self.tx_len)
        self.tx_len = 0
        self.replies += 1

    def step(self) -> None:
        hal = self.hal
        core = self.core
        n = hal.bus_rx(self.rx)
        now_us = hal.ticks_us()
        now_ms = hal.ticks_ms()
        if n:
            self.last_rx_us = now_us
            self.idle_sent = False
            reply = core.bus_bytes(self.rx, n, now_ms)
            if reply:
                self._queue_reply(reply, now_us)
        elif not self.idle_sent and hal.ticks_diff_us(now_us, self.last_rx_us) >= self.idle_us:
            self.idle_sent = True
            reply = core.bus_idle(now_ms)
            if reply:
                self._queue_reply(reply, self.last_rx_us)
        self._send_due()
        core.tick(now_ms)
        if core.store_due and self.store is not None:
            self.store(core)
        hal.update(core, now_ms)
        hal.feed_watchdog()
        if not n and self.idle_sent:
            hal.wait_us(200)


def run(hal, core, banner: str, store=None) -> None:
    """A device's life on a board.  Whatever ends the loop, hal.shutdown(operator)
    releases every output first; operator is True for Ctrl-C (the REPL is wanted, keep
    the chip's watchdog fed) and False for an error (let the watchdog restart it)."""
    shell = DeviceShell(hal, core, store)
    hal.started(banner)
    operator = False
    try:
        while True:
            shell.step()
    except KeyboardInterrupt:
        operator = True
        raise
    finally:
        hal.shutdown(operator)
