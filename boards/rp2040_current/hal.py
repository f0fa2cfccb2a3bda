# Hardware shell of the RP2040 string current sensor (boards/rp2040_current/README.md):
# the HAL shared/busdevice.DeviceShell drives around shared/currentsensor.py.  Pins and
# the transducer's scale come from board.json (stringcare_bundle.BOARD).
#   * bus: UART0 + isolated transceiver, DE raised for a reply, dropped after the last
#     stop bit;
#   * current: a LEM HASS Hall transducer (galvanically isolated by its principle), its
#     OUT and REF halved by dividers into an ADS1115 (differential AIN0 - AIN1,
#     +-1.024 V, 128 samples/s, continuous) on I2C0; a conversion is read every 8 ms;
#   * string number 1..8: 3 DIP switches to ground (switch on = bit set; all off = 8);
#   * LED: on while conversions succeed, blinking on a sensor fault;
#   * the chip's watchdog (machine.WDT, 2 s) is armed at the loop's first feed
#     (bus, ticks and the chip's watchdog: boards/rp2040_device.py).
import machine
from machine import I2C, Pin

from boards.rp2040_device import Rp2040BusDevice
from shared.compat import ticks_diff

SAMPLE_MS = 8  # 128 samples/s
# ADS1115 config: OS start, MUX AIN0-AIN1, PGA +-1.024 V, continuous, 128 SPS, no comparator
_ADS_CONFIG = b"\x86\x83"
_ADS_REG_CONV = 0
_ADS_REG_CONFIG = 1


class Rp2040CurrentHal(Rp2040BusDevice):
    def __init__(self, board: dict, settings: dict) -> None:
        Rp2040BusDevice.__init__(self, board, settings)
        pins = board["pins"]
        sensor = board["sensor"]
        self.ma_per_code_num = sensor["ma_per_code_num"]
        self.ma_per_code_den = sensor["ma_per_code_den"]
        self.range_ma = sensor["range_ma"]
        self.zero_code = settings.get("zero_code", sensor["zero_code"])
        string_no = 0
        for k, n in enumerate(pins["string_dip"]):
            if Pin(n, Pin.IN, Pin.PULL_UP).value() == 0:
                string_no |= 1 << k
        self.string_no = string_no or 8
        self.uid = bytes(machine.unique_id()[:8])
        self.i2c = I2C(pins["adc_i2c"], sda=Pin(pins["adc_sda"]), scl=Pin(pins["adc_scl"]),
                       freq=400000)  # fmt: skip
        self.adc_address = pins["adc_address"]
        self.conv = bytearray(2)
        self.adc_ok = False
        self._start_adc()
        self._last_ms = -SAMPLE_MS

    def _start_adc(self) -> None:
        try:
            self.i2c.writeto_mem(self.adc_address, _ADS_REG_CONFIG, _ADS_CONFIG)
            self.adc_ok = True
        except OSError:
            self.adc_ok = False  # retried at the next sample time

    def update(self, core, now_ms: int) -> None:
        if ticks_diff(now_ms, self._last_ms) < SAMPLE_MS:
            return
        self._last_ms = now_ms
        if not self.adc_ok:
            self._start_adc()
        try:
            self.i2c.readfrom_mem_into(self.adc_address, _ADS_REG_CONV, self.conv)
        except OSError:
            self.adc_ok = False
            core.sample_fault(now_ms)
        else:
            code = (self.conv[0] << 8) | self.conv[1]
            core.sample(code - 0x10000 if code & 0x8000 else code, now_ms)
        self.led.value(1 if not core.flags & 1 else (now_ms >> 8) & 1)

    def shutdown(self, operator: bool) -> None:
        self.led.value(0)
        self.keep_watchdog_fed_at_the_repl(operator)


def make_hal(board: dict, settings: dict) -> Rp2040CurrentHal:
    return Rp2040CurrentHal(board, settings)
