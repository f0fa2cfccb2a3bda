# The device boards' loop (shared/busdevice.DeviceShell, run): replies on the bus's
# timing, the core's relays on the pins, the chip watchdog fed every pass, outputs
# released on every way out.  The HAL here is a board on a virtual clock: bytes arrive
# when the test says, time moves as the loop reads it.
from shared import auth
from shared import busdevice as bd
from shared import protocol as p
from shared import protocol_layouts as lay
from shared import relaybox as rb

UID = bytes([0x5C, 0xB0, 0, 0, 0, 0, 0, 1])
BOX = p.ADDR_RELAY_BOX_BASE + 1
KEY = b"StringCare-test!"  # the published test key


def relay_set(mask, state):
    """The manager's RELAY_SET, signed under the site key (docs/protocol.md §5a)."""
    return lay.encode_request(BOX, p.CMD_RELAY_SET, 9, {"mask": mask, "state": state},
                              auth.Signer(KEY))  # fmt: skip


class ClockHal:
    baud = 115200

    def __init__(self):
        self.now_us = 0
        self.rx = b""
        self.sent = []  # (time_us, frame bytes)
        self.pins = 0
        self.feeds = 0
        self.shutdowns = []
        self.fail_at_us = -1

    def ticks_us(self):
        self.now_us += 20  # every look at the clock costs a little time
        return self.now_us

    def ticks_ms(self):
        return self.now_us // 1000

    def ticks_diff_us(self, a, b):
        return a - b

    def bus_rx(self, buf):
        n = len(self.rx)
        if n > len(buf):
            n = len(buf)
        for i in range(n):
            buf[i] = self.rx[i]
        self.rx = self.rx[n:]
        if n:
            self.rx_us = self.now_us
        return n

    def bus_tx(self, buf, n):
        self.sent.append((self.now_us, bytes(buf[:n])))

    def update(self, core, now_ms):
        if 0 <= self.fail_at_us <= self.now_us:
            raise OSError("the I2C expander does not answer")
        if core.relays != self.pins:
            self.pins_ms = now_ms  # the loop's time when the pins changed
        self.pins = core.relays

    def feed_watchdog(self):
        self.feeds += 1

    def wait_us(self, us):
        self.now_us += 10000  # an idle board sleeps a while between passes

    def started(self, text):
        self.banner = text

    def shutdown(self, operator):
        self.pins = 0
        self.shutdowns.append(operator)


def test_reply_after_the_turnaround_and_the_relays_on_the_pins():
    hal = ClockHal()
    core = rb.RelayBoxCore(1, UID, key=KEY)
    shell = bd.DeviceShell(hal, core)
    hal.rx = relay_set(3, 3)
    passes = 0
    while not hal.sent and passes < 100:
        shell.step()
        passes += 1
    at_us, reply = hal.sent[0]
    assert p.decode_frame(reply).cmd == p.CMD_RELAY_SET | p.REPLY
    assert p.wire_us(2, hal.baud) <= at_us - hal.rx_us < 5000  # 2 Tc .. the 5 ms deadline
    assert hal.pins == 3 and hal.feeds == passes


def test_a_silent_bus_releases_the_pins_at_the_watchdog_time():
    hal = ClockHal()
    core = rb.RelayBoxCore(1, UID, watchdog_ms=3000, key=KEY)
    shell = bd.DeviceShell(hal, core)
    hal.rx = relay_set(1, 1)
    shell.step()
    fed_ms = core.fed_ms
    while hal.pins or hal.now_us < 1000000:
        shell.step()
        assert hal.now_us < 10000000, "never released"
    assert 3000 <= hal.pins_ms - fed_ms <= 3011  # one idle pass late at most


def test_every_way_out_of_the_loop_releases_the_outputs_first():
    hal = ClockHal()
    core = rb.RelayBoxCore(1, UID, key=KEY)
    hal.rx = relay_set(15, 15)
    hal.fail_at_us = 50000
    try:
        bd.run(hal, core, "stringcare: iobox test")
        raise AssertionError("run() returned")
    except OSError as exc:
        assert "expander" in str(exc)
    assert hal.shutdowns == [False] and hal.pins == 0  # an error: no operator at the REPL

    class CtrlC(ClockHal):
        def feed_watchdog(self):
            ClockHal.feed_watchdog(self)
            if self.feeds == 5:
                raise KeyboardInterrupt

    hal = CtrlC()
    try:
        bd.run(hal, rb.RelayBoxCore(1, UID, key=KEY), "stringcare: iobox test")
    except KeyboardInterrupt:
        pass
    assert hal.shutdowns == [True] and hal.banner == "stringcare: iobox test"


def test_the_shell_writes_the_key_file_when_the_core_asks():
    hal = ClockHal()
    core = rb.RelayBoxCore(1, UID)
    core.set_key(KEY)  # a new key over USB: to be kept
    written = []

    def store(c):
        buf = bytearray(rb.KEY_FILE_LEN)
        c.store_bytes(buf)
        written.append(bytes(buf))

    shell = bd.DeviceShell(hal, core, store)
    for _ in range(5):
        shell.step()
    assert len(written) == 1 and written[0][4:20] == KEY
