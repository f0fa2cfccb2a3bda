# The string current sensor (docs/protocol.md §5 CURRENT_READ): a Hall-effect current
# transducer read by a 16-bit ADC, string number 1..8 from its DIP switches.  Sans-I/O
# core: the same code runs on the RP2040 sensor board (boards/rp2040_current), on the
# virtual board (boards/unix_current) and in the simulator (boards/sim/devices.py).
#
# The shell feeds ADC codes (sample) or a failed conversion (sample_fault); the core
# averages the last SAMPLES codes, scales them with the board's integer ratio
# ma_per_code_num / ma_per_code_den (transducer sensitivity and ADC step, board.json)
# and sets the flags of the reply:
#   bit 0 sensor fault: the last conversion failed, or no conversion for STALE_MS
#   bit 1 over range:   |current| above the transducer's measuring range (range_ma)
# Positive current = charging (wire the transducer's arrow towards the battery's +).

from array import array

from shared import protocol as p
from shared.busdevice import BusDevice
from shared.compat import const, div_round, ticks_diff

SAMPLES = const(16)  # averaged codes: 125 ms at the ADS1115's 128 samples/s
STALE_MS = const(1000)
FLAG_FAULT = const(1)
FLAG_OVER_RANGE = const(2)


class CurrentSensorCore(BusDevice):
    """One string current sensor.  `current_ma` and `flags` are what CURRENT_READ
    answers (the simulator may set them directly)."""

    device_type = p.DEVICE_CURRENT_SENSOR

    def __init__(
        self,
        string_no: int,
        uid,
        hw_rev: int = 1,
        ma_per_code_num: int = 10,
        ma_per_code_den: int = 1,
        range_ma: int = 300000,
        zero_code: int = 0,
    ) -> None:
        if not 1 <= string_no <= 8:
            raise ValueError("current sensor: string %d is not 1..8 (DIP switches)" % string_no)
        if ma_per_code_num <= 0 or ma_per_code_den <= 0:
            raise ValueError("current sensor: ma_per_code_num/den must be positive")
        BusDevice.__init__(self, p.ADDR_CURRENT_SENSOR_BASE + string_no, uid, hw_rev)
        self.string_no = string_no
        self.num = ma_per_code_num
        self.den = ma_per_code_den
        self.range_ma = range_ma
        self.zero_code = zero_code
        self.codes = array("i", [0] * SAMPLES)
        self.code_sum = 0
        self.count = 0  # codes in the window (< SAMPLES until it is full)
        self.pos = 0
        self.current_ma = 0  # positive charging, negative discharging
        self.flags = FLAG_FAULT  # nothing measured yet
        self.sample_ms = 0
        self.reads = 0

    def sample(self, code: int, now_ms: int) -> None:
        """One ADC conversion (signed code, transducer output minus its reference)."""
        code -= self.zero_code
        i = self.pos
        self.code_sum += code - self.codes[i]
        self.codes[i] = code
        self.pos = i + 1 if i + 1 < SAMPLES else 0
        if self.count < SAMPLES:
            self.count += 1
        ma = div_round(self.code_sum * self.num, self.den * self.count)
        self.current_ma = ma
        self.sample_ms = now_ms
        flags = 0
        if ma > self.range_ma or ma < -self.range_ma:
            flags |= FLAG_OVER_RANGE
        self.flags = flags

    def sample_fault(self, now_ms: int) -> None:
        """A conversion failed (the ADC does not answer, the reference is off)."""
        self.flags |= FLAG_FAULT

    def tick(self, now_ms: int) -> None:
        if self.count and ticks_diff(now_ms, self.sample_ms) >= STALE_MS:
            self.flags |= FLAG_FAULT

    def handle_own(self, frame, now_ms: int) -> int:
        if frame.cmd != p.CMD_CURRENT_READ:
            return self._nak(frame, p.ERR_UNKNOWN_COMMAND)
        if frame.length != 0:
            return self._nak(frame, p.ERR_BAD_LENGTH)
        self.reads += 1
        p.put_i32(self.tx, 8, self.current_ma)
        self.tx[12] = self.string_no
        self.tx[13] = self.flags
        return self._reply(frame, p.CMD_CURRENT_READ | p.REPLY, 6)
