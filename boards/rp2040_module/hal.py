# Hardware shell of the RP2040 module board (boards/rp2040_module/README.md): the HAL
# module_fw/main.py drives.  Pins and constants come from board.json, which the bundle
# carries as stringcare_bundle.BOARD.
#
# Converter use:
#   * block voltage: the ADC free-runs on ADC0 at 10.24 kHz and one DMA channel moves
#     1024 samples (100 ms) into voltage_buf; the loop polls dma.active();
#   * temperatures: between two bursts, 64 reads of ADC4 (die sensor) and of ADC2 with
#     the SPDT switch on the probe (the shunt amplifier shares ADC2, see README);
#   * Ri: round robin ADC1 (v) / ADC2 (i) at twice the plan's rate into two DMA
#     buffers that chain to each other (no gap), de-interleaved and streamed into the
#     evaluator while the other fills; the excitation switches at slot boundaries
#     (step: from the DMA position, < 0.1 ms late, inside the Hann window's zero;
#     AC: a 275 Hz PWM started with the converter, same crystal).
import time
from array import array

import machine
import rp2
from machine import ADC, I2C, PWM, Pin
from micropython import const

from boards.rp2040_bus import Rp2040Bus
from module_fw.store import FileSlots
from module_fw.vadc import Ads1219Frames
from shared import frontend as fe
from shared import variants

_ADC_BASE = const(0x4004C000)
_ADC_CS = const(0x4004C000)
_ADC_FCS = const(0x4004C008)
_ADC_FIFO = const(0x4004C00C)
_ADC_DIV = const(0x4004C010)
_CS_EN = const(1)
_CS_START_MANY = const(8)
_FCS_EN = const(1)
_FCS_DREQ_EN = const(8)
_FCS_ERR_OVER_UNDER = const(0xC00)
_DREQ_ADC = const(36)
_ADC_CLOCK_HZ = const(48000000)
_CHUNK = const(256)  # sample pairs per Ri DMA buffer


def _div(rate_mhz: int) -> int:
    """ADC DIV register for a total sample rate in milli-hertz (INT.FRAC, 8 fractional
    bits: ~0.4 ppm steps at 5 kHz, fine enough to follow the mains, RiPlan.lock_to_mains)."""
    x256 = (_ADC_CLOCK_HZ * 256000 + rate_mhz // 2) // rate_mhz - 256
    return x256


class Rp2040ModuleHal(Rp2040Bus):
    def __init__(self, board: dict, settings: dict) -> None:
        pins = board["pins"]
        self.uid = bytes(machine.unique_id()[:8])
        self.adc_kind = fe.ADC_RP2040
        self.hw_rev = board["hw_rev"]
        self.variant_id = variants.by_code(settings.get("variant", board["variant_default"])).id
        self.slots = FileSlots("stringcare")
        self.open_bus(board, settings, 1024, 128)
        # ADC pads (GP26 + channel) configured as analog inputs by machine.ADC
        self._adc_pads = [
            ADC(Pin(26 + pins[k])) for k in ("adc_voltage", "adc_ri", "adc_shunt_probe")
        ]
        self.adc_voltage_ch = pins["adc_voltage"]
        self.adc_ri_ch = pins["adc_ri"]
        self.adc_shunt_ch = pins["adc_shunt_probe"]
        self.adc_internal = ADC(pins["adc_internal"])
        self.adc_probe = self._adc_pads[2]
        self.probe_select = Pin(pins["probe_select"], Pin.OUT, value=1)
        self.excitation = Pin(pins["excitation"], Pin.OUT, value=0)
        self.low_gain = Pin(pins["ri_low_gain"], Pin.OUT, value=0)
        self.pwm = PWM(Pin(pins["bleed_pwm"]))
        self.pwm.freq(pins["bleed_pwm_hz"])
        self.pwm.duty_u16(0)
        self.excitation_pin_no = pins["excitation"]
        self.led_red = Pin(pins["led_red"], Pin.OUT, value=0)
        self.led_green = Pin(pins["led_green"], Pin.OUT, value=0)
        self.btn = Pin(pins["button"], Pin.IN, Pin.PULL_UP)
        self.voltage_buf = array("H", [0] * fe.VOLTAGE_FRAME_SAMPLES)
        # Board option "vadc": "ads1219" (README, "External block-voltage converter"):
        # the block voltage from the ADS1219 on I2C, not from ADC0.
        self.vadc = fe.VADC_NAMES.index(board.get("vadc", "mcu"))
        self.voltage_total = 0
        self._ads: Ads1219Frames | None = None
        if self.vadc == fe.VADC_ADS1219:
            i2c = I2C(pins["i2c"], scl=Pin(pins["i2c_scl"]), sda=Pin(pins["i2c_sda"]), freq=400000)
            self._ads = Ads1219Frames(i2c)
            self._ads.start()
        self.dma = rp2.DMA()
        self.dma2 = rp2.DMA()
        self._ri_bufs = (array("H", [0] * (2 * _CHUNK)), array("H", [0] * (2 * _CHUNK)))
        self._v = array("H", [0] * _CHUNK)
        self._i = array("H", [0] * _CHUNK)
        self.ticks_us = time.ticks_us
        self.ticks_diff_us = time.ticks_diff
        self.wdt = None
        if settings.get("watchdog", True):
            self.wdt = machine.WDT(timeout=8000)
        self._repl_feeder: object = None

    # -- bus: bus_rx, bus_tx (boards/rp2040_bus.py) -----------------------------------

    # -- converter ------------------------------------------------------------------

    def _adc_stop(self) -> None:
        machine.mem32[_ADC_CS] = _CS_EN
        while machine.mem32[_ADC_FCS] & 0xF0000:  # drain the FIFO
            machine.mem32[_ADC_FIFO]
        machine.mem32[_ADC_FCS] = _FCS_ERR_OVER_UNDER  # clear sticky flags, FIFO off

    def _adc_run(self, ainsel: int, rrobin: int, rate_mhz: int) -> None:
        machine.mem32[_ADC_DIV] = _div(rate_mhz)
        machine.mem32[_ADC_FCS] = _FCS_EN | _FCS_DREQ_EN | (1 << 24)
        machine.mem32[_ADC_CS] = _CS_EN | (ainsel << 12) | (rrobin << 16) | _CS_START_MANY

    def voltage_start(self) -> None:
        if self._ads is not None:
            return  # the ADS1219 converts continuously
        self._adc_stop()
        ctrl = self.dma.pack_ctrl(size=1, inc_read=False, inc_write=True, treq_sel=_DREQ_ADC)
        self.dma.config(
            read=_ADC_FIFO, write=self.voltage_buf, count=fe.VOLTAGE_FRAME_SAMPLES,
            ctrl=ctrl, trigger=True,
        )  # fmt: skip
        self._adc_run(self.adc_voltage_ch, 0, fe.VOLTAGE_FRAME_SAMPLES * 10000)

    def voltage_ready(self) -> bool:
        if self._ads is not None:
            if not self._ads.poll():
                return False
            self.voltage_total = self._ads.total
            return True
        if self.dma.active():
            return False
        self._adc_stop()
        return True

    def temp_read(self, int_buf, probe_buf) -> bool:
        self.probe_select.value(1)
        internal = self.adc_internal.read_u16
        probe = self.adc_probe.read_u16
        for j in range(fe.TEMP_FRAME_SAMPLES):
            int_buf[j] = internal() >> 4
            probe_buf[j] = probe() >> 4
        return True

    # -- outputs --------------------------------------------------------------------

    def button(self) -> bool:
        return self.btn.value() == 0

    def set_led(self, bits: int) -> None:
        self.led_red.value(bits & 1)
        self.led_green.value((bits >> 1) & 1)

    def set_duty(self, permille: int) -> None:
        self.pwm.duty_u16((permille * 65535) // 1000)

    def feed_watchdog(self) -> None:
        if self.wdt is not None:
            self.wdt.feed()

    def sleep_until_bus(self, ms: int) -> None:
        # Light sleep keeps the UART's FIFO; a received byte ends the wait early (the
        # loop polls again).  machine.lightsleep would stop the UART clock on the RP2040,
        # so this is an idle wait with the CPU clock lowered.
        deadline = time.ticks_add(time.ticks_ms(), ms)
        machine.freq(48000000)
        try:
            while time.ticks_diff(deadline, time.ticks_ms()) > 0 and not self.uart.any():
                machine.idle()
        finally:
            machine.freq(125000000)

    def started(self, text: str) -> None:
        print(text)

    def shutdown(self) -> None:
        self.pwm.duty_u16(0)
        self.excitation.value(0)
        self.set_led(0)
        self._adc_stop()
        if self.wdt is not None:
            # Leaving for the REPL (Ctrl-C): the hardware watchdog cannot be stopped on
            # the RP2040, so a timer keeps feeding it while the REPL is in use.
            wdt = self.wdt
            self._repl_feeder = machine.Timer(-1, period=1000, callback=lambda t: wdt.feed())

    # -- internal resistance -------------------------------------------------------------

    def ri_capture(self, plan, core) -> bool:
        """Round robin v/i into two chained DMA buffers, streamed to the evaluator."""
        self.low_gain.value(plan.gain_range)
        self.probe_select.value(0)  # ADC2 on the shunt amplifier
        self._adc_stop()
        bufs = self._ri_bufs
        ch = (self.dma, self.dma2)
        for k in (0, 1):
            ctrl = ch[k].pack_ctrl(
                size=1, inc_read=False, inc_write=True, treq_sel=_DREQ_ADC,
                chain_to=ch[1 - k].channel,  # type: ignore[attr-defined]
            )  # fmt: skip
            ch[k].config(read=_ADC_FIFO, write=bufs[k], count=2 * _CHUNK, ctrl=ctrl, trigger=k == 0)
        ac = plan.method == 1
        pwm = None
        if ac:
            pwm = PWM(Pin(self.excitation_pin_no))
            pwm.freq(plan.sample_rate_hz // (2 * plan.slot_samples))
            pwm.duty_u16(32768)
        else:
            self.excitation.value(1 if plan.excitation_on(0) else 0)
        self._adc_run(
            self.adc_ri_ch,
            (1 << self.adc_ri_ch) | (1 << self.adc_shunt_ch),
            2 * plan.sample_rate_mhz,  # the plan's clock, locked to the mains or not
        )
        done = 0
        k = 0
        ok = True
        v = self._v
        i = self._i
        slot_samples = plan.slot_samples
        try:
            while done < plan.samples:
                # wait for buffer k, switching the step excitation at slot boundaries
                while ch[k].active():
                    if not ac:
                        pos = done + (2 * _CHUNK - ch[k].count) // 2  # type: ignore[attr-defined]
                        self.excitation.value(1 if plan.excitation_on(pos // slot_samples) else 0)
                    self.feed_watchdog()
                if machine.mem32[_ADC_FCS] & _FCS_ERR_OVER_UNDER:
                    ok = False  # the FIFO overflowed: samples lost
                    break
                b = bufs[k]
                n = _CHUNK if plan.samples - done >= _CHUNK else plan.samples - done
                for j in range(n):
                    v[j] = b[2 * j] & 0xFFF
                    i[j] = b[2 * j + 1] & 0xFFF
                # re-arm buffer k; the other channel triggers it when it finishes
                ch[k].write = b  # type: ignore[attr-defined]
                ch[k].count = 2 * _CHUNK  # type: ignore[attr-defined]
                core.ri_feed(v, i, n)
                done += n
                k = 1 - k
        finally:
            self._adc_stop()
            ch[0].active(0)
            ch[1].active(0)
            if pwm is not None:
                pwm.deinit()
            self.excitation.init(Pin.OUT, value=0)
            self.low_gain.value(0)
            self.probe_select.value(1)
            self.voltage_start()  # a fresh 100 ms frame, nothing of the capture in it
        return ok


def make_hal(board: dict, settings: dict) -> Rp2040ModuleHal:
    return Rp2040ModuleHal(board, settings)
