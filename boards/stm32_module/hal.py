# Hardware shell of the STM32 module board: NUCLEO-G474RE + the StringCare front end
# (boards/stm32_module/README.md).  The HAL module_fw/main.py drives; pins from
# board.json (carried as stringcare_bundle.BOARD).
#
# Converter use (pyb: the stm32 port's ADC and timers):
#   * block voltage: a timer at 10.24 kHz whose callback (hard IRQ, allocation-free)
#     reads one sample into voltage_buf; the loop sees the burst complete after 100 ms
#     and keeps serving the bus meanwhile;
#   * temperatures: the die sensor through ADCAll, the probe on its own input;
#   * Ri: ADC.read_timed_multi samples v and i together (the G4's two converters: no
#     skew between the channels) in chunks: one chunk per 100 ms slot for the step
#     method (excitation switched between chunks, at the slot boundary); for the AC
#     method chunks of 8 excitation periods, each started in phase with a 550 Hz
#     toggle timer.  Gaps between AC chunks cost ripple rejection (README: limits).
import time
from array import array

import machine
import pyb
from machine import UART, Pin
from micropython import const

from module_fw.store import FileSlots
from shared import frontend as fe
from shared import variants

_AC_CHUNK = const(256)  # 8 periods of 32 samples


class Stm32ModuleHal:
    def __init__(self, board: dict, settings: dict) -> None:
        pins = board["pins"]
        uid = machine.unique_id()  # 12 bytes on the STM32: fold to 8
        folded = bytearray(8)
        for j in range(len(uid)):
            folded[j & 7] ^= uid[j]
        self.uid = bytes(folded)
        self.adc_kind = fe.ADC_STM32G4
        self.hw_rev = board["hw_rev"]
        self.baud = settings.get("baud", board["baud"])
        self.variant_id = variants.by_code(settings.get("variant", board["variant_default"])).id
        self.slots = FileSlots("stringcare")
        self.uart = UART(pins["bus_uart"], self.baud, rxbuf=1024, timeout=0)
        self.de = Pin(pins["bus_de"], Pin.OUT, value=0)
        self.adc_v = pyb.ADC(pyb.Pin(pins["adc_voltage"]))
        self.adc_ri = pyb.ADC(pyb.Pin(pins["adc_ri"]))
        self.adc_shunt = pyb.ADC(pyb.Pin(pins["adc_shunt"]))
        self.adc_probe = pyb.ADC(pyb.Pin(pins["adc_probe"]))
        self.adc_all = pyb.ADCAll(12, 0)
        self.temp_channel = pins.get("adc_temp_channel", 16)
        self.excitation = Pin(pins["excitation"], Pin.OUT, value=0)
        self.low_gain = Pin(pins["ri_low_gain"], Pin.OUT, value=0)
        bleed_timer = pyb.Timer(pins["bleed_timer"], freq=pins["bleed_pwm_hz"])
        bleed_pin = pyb.Pin(pins["bleed_pwm"])
        self.pwm = bleed_timer.channel(
            pins["bleed_channel"], pyb.Timer.PWM, pin=bleed_pin, pulse_width_percent=0
        )
        self.led_red = Pin(pins["led_red"], Pin.OUT, value=0)
        self.led_green = Pin(pins["led_green"], Pin.OUT, value=0)
        self.btn = Pin(pins["button"], Pin.IN)
        self.btn_active = 0 if pins.get("button_active_low", False) else 1
        self.voltage_buf = array("H", [0] * fe.VOLTAGE_FRAME_SAMPLES)
        self._pos = fe.VOLTAGE_FRAME_SAMPLES
        self._read_v = self.adc_v.read
        self.sample_timer = pyb.Timer(pins["sample_timer"], freq=fe.VOLTAGE_FRAME_SAMPLES * 10)
        self.sample_timer.callback(self._sample)
        self.toggle_timer = pyb.Timer(7)
        self._v = array("H", [0] * _AC_CHUNK)
        self._i = array("H", [0] * _AC_CHUNK)
        self.ticks_us = time.ticks_us
        self.ticks_diff_us = time.ticks_diff
        self.wdt = machine.WDT(timeout=8000) if settings.get("watchdog", True) else None

    def _sample(self, timer) -> None:
        pos = self._pos
        if pos < fe.VOLTAGE_FRAME_SAMPLES:
            self.voltage_buf[pos] = self._read_v()
            self._pos = pos + 1

    # -- bus ----------------------------------------------------------------------

    def bus_rx(self, buf) -> int:
        if not self.uart.any():
            return 0
        return self.uart.readinto(buf) or 0

    def bus_tx(self, buf, n: int) -> None:
        self.de.value(1)
        self.uart.write(memoryview(buf)[:n])
        self.uart.flush()
        self.de.value(0)

    # -- converter ------------------------------------------------------------------

    def voltage_start(self) -> None:
        self._pos = 0

    def voltage_ready(self) -> bool:
        return self._pos >= fe.VOLTAGE_FRAME_SAMPLES

    def temp_read(self, int_buf, probe_buf) -> bool:
        read_probe = self.adc_probe.read
        for j in range(fe.TEMP_FRAME_SAMPLES):
            int_buf[j] = self.adc_all.read_channel(self.temp_channel)
            probe_buf[j] = read_probe()
        return True

    # -- outputs --------------------------------------------------------------------

    def button(self) -> bool:
        return self.btn.value() == self.btn_active

    def set_led(self, bits: int) -> None:
        self.led_red.value(bits & 1)
        self.led_green.value((bits >> 1) & 1)

    def set_duty(self, permille: int) -> None:
        self.pwm.pulse_width_percent(permille // 10)

    def feed_watchdog(self) -> None:
        if self.wdt is not None:
            self.wdt.feed()

    def sleep_until_bus(self, ms: int) -> None:
        deadline = time.ticks_add(time.ticks_ms(), ms)
        while time.ticks_diff(deadline, time.ticks_ms()) > 0 and not self.uart.any():
            pyb.wfi()  # any interrupt (UART RX, SysTick) wakes

    def started(self, text: str) -> None:
        print(text)

    def shutdown(self) -> None:
        self.sample_timer.callback(None)
        self.pwm.pulse_width_percent(0)
        self.excitation.value(0)
        self.toggle_timer.deinit()
        self.set_led(0)
        if self.wdt is not None:
            wdt = self.wdt
            self.sample_timer.callback(lambda t: wdt.feed())  # keeps the REPL usable

    # -- internal resistance -------------------------------------------------------------

    def _toggle(self, timer) -> None:
        self.excitation.value(not self.excitation.value())

    def ri_capture(self, plan, core) -> bool:
        self.low_gain.value(plan.gain_range)
        ac = plan.method == 1
        # the step method switches per slot (a chunk each); the AC method and the probe
        # (plan.method 2, excitation off at its own rate) stream fixed chunks
        chunk = plan.slot_samples if plan.method == 0 else _AC_CHUNK
        if chunk > _AC_CHUNK:
            self._v = array("H", [0] * chunk)
            self._i = array("H", [0] * chunk)
        v = self._v
        i = self._i
        self._pos = fe.VOLTAGE_FRAME_SAMPLES  # no voltage burst during the capture
        timer = pyb.Timer(8, freq=plan.sample_rate_mhz / 1000)  # locked to the mains or not
        done = 0
        slot = 0
        ok = True
        try:
            while done < plan.samples:
                n = chunk if plan.samples - done >= chunk else plan.samples - done
                vm = memoryview(v)[:n]
                im = memoryview(i)[:n]
                if ac:
                    self.excitation.value(1)
                    self.toggle_timer.init(freq=2 * plan.sample_rate_hz // (2 * plan.slot_samples))
                    self.toggle_timer.callback(self._toggle)
                else:
                    self.excitation.value(1 if plan.excitation_on(slot) else 0)
                if not pyb.ADC.read_timed_multi((self.adc_ri, self.adc_shunt), (vm, im), timer):
                    ok = False  # a sample came late: the capture is not evenly spaced
                if ac:
                    self.toggle_timer.callback(None)
                    self.excitation.value(0)
                self.feed_watchdog()
                if not ok:
                    break
                core.ri_feed(v, i, n)
                done += n
                slot += 1
        finally:
            timer.deinit()
            self.toggle_timer.deinit()
            self.excitation.value(0)
            self.low_gain.value(0)
            self.voltage_start()  # a fresh 100 ms frame, nothing of the capture in it
        return ok


def make_hal(board: dict, settings: dict) -> Stm32ModuleHal:
    return Stm32ModuleHal(board, settings)
