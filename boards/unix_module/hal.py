# Virtual module board: the HAL of module_fw/main.py for the MicroPython unix port
# (tools/stringcare/vboard.py launches it behind a pty).  Runs the real firmware; only
# the hardware is made up:
#   * bus UART: a TCP connection to the virtual bus hub (config "bus": "host:port");
#   * converter: ADC frames synthesised from the configured block (integers, the
#     variant's divider, an ideal converter with +-1 LSB of deterministic dither):
#     "block_uv", "temp_mc" (die), "probe_temp_mc" (absent: probe input open),
#     "volt_tc_ppb" (the voltage channel's tempco in ppb/K from 25 degC; default 0);
#   * Ri: a capture synthesised for "ri_nohm" (square steps on both channels);
#   * button: "button": true while pressed; LED and bleed duty are reported in the
#     status file <config>.status.json (what an operator would see on the board);
#   * bus timing: the status file also lists, for the last replies, the board's own
#     time from the read that completed the request to the reply's first byte
#     ("reply_delays_us"), so a test checks each reply against its slot without the
#     host's scheduling in the figure; "reply_late_us" (default 0) makes the board's
#     line driver start that much late (the fault that shows the slot check works).
# The config file (VBOARD_CONFIG) is re-read when it changes.
import json
import os
import select
import socket
import time
from array import array

from module_fw.store import FileSlots
from shared import frontend as fe
from shared import variants
from shared.measure import tempco_correction_uv


class TcpBus:
    """The virtual bus hub (tools/stringcare/vboard.BusHub) as a board's bus UART: a
    non-blocking TCP connection; sending takes the bytes' time on the wire.

    rx() never waits.  A board's loop polls its UART without pause; a host process doing
    that would take a whole core per virtual board, so the loop that owns the bus says
    when nothing can be due before the line's next byte (the module shell:
    hal.idle_until_bus; the manager loop: hal.wait_us) and wait() then blocks in poll()
    on the socket: the first byte ends it at once, so reply timing stays the firmware's
    own (host_tests/hil/test_firmware.py checks every reply against its slot)."""

    def __init__(self, address: str, baud: int) -> None:
        host, port = address.split(":")
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect(socket.getaddrinfo(host, int(port))[0][-1])
        s.setblocking(False)
        self.sock = s
        self.baud = baud
        self.poller = select.poll()
        self.poller.register(s, select.POLLIN)
        self.last_rx_us = time.ticks_us()
        self.late_us = 0
        self.delays_us: list = []  # board time from the request's last read to each reply
        self.replies = 0

    def rx(self, buf) -> int:
        try:
            n = self.sock.readinto(buf)
        except OSError:
            return 0
        if n:
            self.last_rx_us = time.ticks_us()
        return n or 0

    def tx(self, buf, n: int) -> None:
        if self.late_us:
            due = time.ticks_add(time.ticks_us(), self.late_us)
            while time.ticks_diff(due, time.ticks_us()) > 0:
                pass
        delays = self.delays_us
        delays.append(time.ticks_diff(time.ticks_us(), self.last_rx_us))
        self.replies += 1
        if len(delays) > 64:
            delays.pop(0)
        data = bytes(buf[:n])
        while data:
            try:
                sent = self.sock.send(data)
            except OSError:
                time.sleep_ms(1)
                continue
            data = data[sent:]
        time.sleep_us(n * 10000000 // self.baud)  # the bytes' time on the wire

    def wait(self, ms: int) -> None:
        """Block until bus bytes arrive or ms elapsed."""
        self.poller.poll(ms)


class UnixModuleHal:
    def __init__(self, board: dict, settings: dict) -> None:
        self.config_path = os.getenv("VBOARD_CONFIG") or ""
        self.env: dict = {}
        self._mtime = -1
        self._reload()
        uid_hex = self.env.get("uid", "5354524e47000001")
        self.uid = bytes(int(uid_hex[k : k + 2], 16) for k in range(0, 16, 2))
        self.adc_kind = fe.ADC_KIND_NAMES.index(board.get("adc_kind", "stm32g4"))
        self.hw_rev = board["hw_rev"]
        self.baud = settings.get("baud", board["baud"])
        self.variant_id = variants.by_code(settings.get("variant", board["variant_default"])).id
        self.slots = FileSlots("stringcare")
        bus = self.env.get("bus")
        self.bus = TcpBus(bus, self.baud) if bus else None
        self.voltage_buf = array("H", [0] * fe.VOLTAGE_FRAME_SAMPLES)
        self._burst_ms = time.ticks_ms()
        self._seed = 12345
        self.led = 0
        self.duty = 0
        self._status_ms = time.ticks_ms()
        self._status_dirty = True
        self.ri_captures = 0
        self.ticks_us = time.ticks_us
        self.ticks_diff_us = time.ticks_diff

    def _reload(self) -> None:
        if not self.config_path:
            return
        try:
            mtime = os.stat(self.config_path)[8]
        except OSError:
            return
        if mtime != self._mtime:
            self._mtime = mtime
            try:
                with open(self.config_path) as f:
                    self.env = json.load(f)
            except (OSError, ValueError):
                pass  # being rewritten: next time

    def _noise(self) -> int:
        self._seed = (self._seed * 1103515245 + 12345) & 0x7FFFFFFF
        return (self._seed >> 16) % 3 - 1

    def _fill(self, buf, n: int, code_x16: int) -> None:
        base = code_x16 >> 4
        frac = code_x16 & 15
        for j in range(n):
            c = (base + 1 if (j & 15) < frac else base) + self._noise()
            buf[j] = 0 if c < 0 else (fe.ADC_MAX_CODE if c > fe.ADC_MAX_CODE else c)

    # -- bus ----------------------------------------------------------------------

    def bus_rx(self, buf) -> int:
        return 0 if self.bus is None else self.bus.rx(buf)

    def bus_tx(self, buf, n: int) -> None:
        if self.bus is not None:
            self.bus.late_us = self.env.get("reply_late_us", 0)
            self.bus.tx(buf, n)
            self._status_dirty = True

    # -- converter ------------------------------------------------------------------

    def voltage_start(self) -> None:
        self._burst_ms = time.ticks_ms()

    def voltage_ready(self) -> bool:
        if time.ticks_diff(time.ticks_ms(), self._burst_ms) < fe.VOLTAGE_FRAME_MS:
            return False
        self._reload()
        num, den = fe.frontend(self.variant_id).divider_ratio()
        block_uv = self.env.get("block_uv", variants.by_id(self.variant_id).float_uv)
        tc = self.env.get("volt_tc_ppb", 0)
        if tc:  # the board reads high (tc > 0) when warm, as its divider and reference do
            block_uv += tempco_correction_uv(block_uv, tc, self.env.get("temp_mc", 25000) - 25000)
        code_x16 = block_uv * den * fe.ADC_CODES * 16 // (num * fe.ADC_VREF_UV)
        self._fill(self.voltage_buf, fe.VOLTAGE_FRAME_SAMPLES, code_x16)
        return True

    def temp_read(self, int_buf, probe_buf) -> bool:
        ref_uv, ref_mc, slope = fe.INTERNAL_SENSOR[self.adc_kind]
        uv = ref_uv + (self.env.get("temp_mc", 25000) - ref_mc) * slope // 1000
        self._fill(int_buf, fe.TEMP_FRAME_SAMPLES, uv * fe.ADC_CODES * 16 // fe.ADC_VREF_UV)
        probe = self.env.get("probe_temp_mc")
        if probe is None:
            code_x16 = fe.ADC_MAX_CODE * 16  # open input: reads the pull-up
        else:
            table = fe.NTC_TABLE_CODE_X16
            k = (probe - fe.NTC_TABLE_FIRST_MC) // fe.NTC_TABLE_STEP_MC
            k = 0 if k < 0 else (len(table) - 2 if k > len(table) - 2 else k)
            rest = probe - fe.NTC_TABLE_FIRST_MC - k * fe.NTC_TABLE_STEP_MC
            code_x16 = table[k] - (table[k] - table[k + 1]) * rest // fe.NTC_TABLE_STEP_MC
        self._fill(probe_buf, fe.TEMP_FRAME_SAMPLES, code_x16)
        return True

    # -- outputs --------------------------------------------------------------------

    def button(self) -> bool:
        return bool(self.env.get("button", False))

    def set_led(self, bits: int) -> None:
        if bits != self.led:
            self.led = bits
            self._status_dirty = True

    def set_duty(self, permille: int) -> None:
        if permille != self.duty:
            self.duty = permille
            self._status_dirty = True

    def feed_watchdog(self) -> None:
        now = time.ticks_ms()
        if self._status_dirty and time.ticks_diff(now, self._status_ms) >= 200:
            self._status_ms = now
            self._status_dirty = False
            if self.config_path:
                tmp = self.config_path + ".status.tmp"
                with open(tmp, "w") as f:
                    status = {"led": self.led, "duty": self.duty, "ri": self.ri_captures}
                    if self.bus is not None:
                        status["reply_delays_us"] = self.bus.delays_us
                        status["replies"] = self.bus.replies
                    json.dump(status, f)
                os.rename(tmp, self.config_path + ".status.json")

    def sleep_until_bus(self, ms: int) -> None:
        if self.bus is None:
            time.sleep_ms(ms)
        else:
            self.bus.wait(ms)

    def idle_until_bus(self, ms: int) -> None:
        # the shell has nothing due on the bus: wait for its next byte, but no later
        # than the end of the running burst (voltage_ready() then becomes true)
        left = fe.VOLTAGE_FRAME_MS - time.ticks_diff(time.ticks_ms(), self._burst_ms)
        if left < ms:
            ms = left
        if ms > 0:
            self.sleep_until_bus(ms)

    def started(self, text: str) -> None:
        print(text)

    def shutdown(self) -> None:
        self.set_duty(0)
        self._status_ms = time.ticks_add(time.ticks_ms(), -1000)
        self.feed_watchdog()

    # -- internal resistance -------------------------------------------------------------

    def ri_capture(self, plan, core) -> bool:
        self.ri_captures += 1
        self._reload()
        front = fe.frontend(self.variant_id)
        ri_nohm = self.env.get("ri_nohm", 5000000)
        current_ma = plan.excitation_ma
        # codes * 16 of the two channels with the excitation on
        dv_uv = current_ma * ri_nohm // 1000000 * plan.v_gain  # mA * nOhm = pV
        dv_x16 = dv_uv * fe.ADC_CODES * 16 // fe.ADC_VREF_UV
        ref_x16 = fe.SHUNT_REF_OFFSET_UV * fe.ADC_CODES * 16 // fe.ADC_VREF_UV
        di_uv = current_ma * front.shunt_uohm * plan.shunt_gain // 1000
        di_x16 = di_uv * fe.ADC_CODES * 16 // fe.ADC_VREF_UV
        chunk = 256
        v = array("H", [0] * chunk)
        i = array("H", [0] * chunk)
        done = 0
        while done < plan.samples:
            n = chunk if plan.samples - done >= chunk else plan.samples - done
            for j in range(n):
                on = plan.excitation_on((done + j) // plan.slot_samples)
                v[j] = (fe.ADC_MID_CODE * 16 + (dv_x16 if on else 0)) // 16 + self._noise()
                i[j] = (ref_x16 + (di_x16 if on else 0)) // 16 + self._noise()
            core.ri_feed(v, i, n)
            done += n
        return True


def make_hal(board: dict, settings: dict) -> UnixModuleHal:
    return UnixModuleHal(board, settings)
