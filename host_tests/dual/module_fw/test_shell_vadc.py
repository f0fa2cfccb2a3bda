# module_fw/main.py Shell with the external block-voltage converter (a HAL with
# vadc = VADC_ADS1219): the loop takes the driver's frame (hal.voltage_total), the core
# scales it as ADS1219 units, and the reported block voltage is the block's.
from ads1219sim import SimAds1219

from module_fw import store as sto
from module_fw.core import ModuleCore
from module_fw.main import Shell
from module_fw.vadc import Ads1219Frames
from shared import frontend as fe

UID = b"\x01\x02\x03\x04\x05\x06\x07\x09"
V12 = 3
CONVERSION_US = 50000  # 20 SPS
LOOP_TICK_US = 100


class Ads1219Board:
    """A module HAL whose block voltage comes from a (simulated) ADS1219."""

    def __init__(self, block_uv):
        self.uid = UID
        self.variant_id = V12
        self.adc_kind = fe.ADC_RP2040
        self.vadc = fe.VADC_ADS1219
        self.hw_rev = 2
        self.baud = 115200
        self.slots = sto.MemorySlots()
        seed = ModuleCore(UID, V12, fe.ADC_RP2040, self.slots)
        seed.state.address = 9
        seed.store.save(seed.state)
        self.dev = SimAds1219()
        self.ads = Ads1219Frames(self.dev)
        self.ads.start()
        num, den = fe.frontend(V12).divider_ratio(fe.VADC_ADS1219)
        # the block through an exact divider, converted against a 3.000 V reference
        self.code = block_uv * den // num * (1 << 23) // fe.ADC_VREF_UV
        self.voltage_total = 0
        self.t = 0
        self.next_conv_us = CONVERSION_US

    def ticks_us(self):
        self.t += LOOP_TICK_US
        return self.t

    def ticks_diff_us(self, a, b):
        return a - b

    def bus_rx(self, buf):
        return 0

    def bus_tx(self, buf, n):
        pass

    def voltage_start(self):
        pass

    def voltage_ready(self):
        if self.t >= self.next_conv_us:
            self.next_conv_us += CONVERSION_US
            self.dev.convert(self.code)
        if not self.ads.poll():
            return False
        self.voltage_total = self.ads.total
        return True

    def temp_read(self, int_buf, probe_buf):
        for k in range(fe.TEMP_FRAME_SAMPLES):
            int_buf[k] = 876  # the die sensor near 25 degC
        return False

    def button(self):
        return False

    def set_led(self, bits):
        pass

    def set_duty(self, permille):
        pass

    def feed_watchdog(self):
        pass

    def sleep_until_bus(self, ms):
        self.t += ms * 1000


def test_the_loop_reads_the_block_through_the_ads1219():
    board = Ads1219Board(13600000)
    shell = Shell(board)
    assert shell.core.vadc == fe.VADC_ADS1219
    assert shell.core.voltage.vadc == fe.VADC_ADS1219
    while board.t < 3000000:  # 3 s: 30 frames of two conversions
        shell.step()
    assert board.ads.frames >= 25, board.ads.frames
    assert shell.frames == board.ads.frames
    # the code's truncation and the 2.86 uV unit: within 30 uV of the block
    got = shell.core.state.voltage_uv
    assert 0 <= 13600000 - got <= 30, got
