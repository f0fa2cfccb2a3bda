# Virtual string current sensor: the HAL of shared/busdevice.DeviceShell for the
# MicroPython unix port (tools/stringcare/vboard.py).  Runs the real firmware
# (firmware/current/main.py, shared/currentsensor.py); the made-up hardware:
#   * bus UART: TCP to the virtual bus hub (config "bus"), as boards/unix_iobox;
#   * DIP switches: config "string" (1..8, default 1); uid: config "uid";
#   * the transducer and ADC: config "current_ma" (positive = charging) becomes ADC
#     codes at the board's scale every 8 ms; "adc_fault": true makes conversions fail.
import time

from boards.unix_iobox.hal import UnixDeviceHal

SAMPLE_MS = 8


class UnixCurrentHal(UnixDeviceHal):
    def __init__(self, board: dict, settings: dict) -> None:
        UnixDeviceHal.__init__(self, board, settings)
        sensor = board["sensor"]
        self.ma_per_code_num = sensor["ma_per_code_num"]
        self.ma_per_code_den = sensor["ma_per_code_den"]
        self.range_ma = sensor["range_ma"]
        self.zero_code = settings.get("zero_code", sensor["zero_code"])
        self.string_no = int(self.env.get("string", 1))
        self._next_ms = self.ticks_ms()

    def update(self, core, now_ms: int) -> None:
        self.reload_due(now_ms)
        if self.ticks_diff_us(now_ms, self._next_ms) < 0:
            return
        self._next_ms = time.ticks_add(now_ms, SAMPLE_MS)
        if self.env.get("adc_fault"):
            core.sample_fault(now_ms)
            return
        ma = int(self.env.get("current_ma", 0))
        code = ma * self.ma_per_code_den // self.ma_per_code_num + self.zero_code
        core.sample(max(-32768, min(32767, code)), now_ms)

    def shutdown(self, operator: bool) -> None:
        pass


def make_hal(board: dict, settings: dict) -> UnixCurrentHal:
    return UnixCurrentHal(board, settings)
