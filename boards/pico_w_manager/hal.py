# Hardware shell of the Pico W manager (boards/pico_w_manager/README.md), the HAL
# manager_fw/main.py drives.  Pins come from board.json (stringcare_bundle.BOARD).
#   * bus: UART0 with the transceiver's DE on a GPIO, raised for the frame and dropped
#     after the last stop bit (txdone);
#   * history and events: a 16 MB JEDEC SPI NOR (W25Q128) on SPI1, as two block
#     devices (manager_fw/blockdev.py interface: read / program / erase / sync);
#   * alarm outputs: buzzer, alarm LED, alarm relay (energised while all is well);
#     mute button and the UPS "on battery" input with pull-ups (active low);
#   * clock: the RTC, set by NTP when settings give Wi-Fi credentials (wifi_ssid,
#     wifi_password); the same Wi-Fi serves the web interface (web_port,
#     manager_fw/web/board.py);
#   * the chip's watchdog (machine.WDT, 8 s): armed and fed by the main loop only.
import time

import machine
from machine import SPI, UART, WDT, Pin

from manager_fw.blockdev import BlockDevice
from manager_fw.config_store import OsFiles

EPOCH_2020 = 1577836800
HISTORY_BYTES = 14 * 1024 * 1024
EVENTS_OFFSET = 15 * 1024 * 1024
EVENTS_BYTES = 1024 * 1024
ERASE = 4096
PAGE = 256
WATCHDOG_MS = 8000  # the RP2040's longest is 8.3 s: the contact drops within it


class SpiNor(BlockDevice):
    """A window [base, base + size) of a JEDEC SPI NOR flash (4 KB sectors, 256 B pages)."""

    def __init__(self, spi, cs, base: int, size: int) -> None:
        self.spi = spi
        self.cs = cs
        self.base = base
        self.size = size
        self.erase_size = ERASE
        self.page_size = PAGE
        self._cmd = bytearray(4)
        self._st = bytearray(1)

    def _addr_cmd(self, op: int, addr: int) -> None:
        c = self._cmd
        c[0] = op
        c[1] = (addr >> 16) & 0xFF
        c[2] = (addr >> 8) & 0xFF
        c[3] = addr & 0xFF
        self.spi.write(c)

    def _wait(self) -> None:
        while True:
            self.cs(0)
            self.spi.write(b"\x05")
            self.spi.readinto(self._st)
            self.cs(1)
            if not self._st[0] & 1:
                return

    def _write_enable(self) -> None:
        self.cs(0)
        self.spi.write(b"\x06")
        self.cs(1)

    def read(self, addr, buf, n):
        self._check(addr, n)
        self.cs(0)
        self._addr_cmd(0x03, self.base + addr)
        self.spi.readinto(memoryview(buf)[:n])
        self.cs(1)

    def program(self, addr, buf, n):
        self._check(addr, n)
        done = 0
        while done < n:
            a = self.base + addr + done
            chunk = PAGE - (a % PAGE)
            if chunk > n - done:
                chunk = n - done
            self._write_enable()
            self.cs(0)
            self._addr_cmd(0x02, a)
            self.spi.write(memoryview(buf)[done : done + chunk])
            self.cs(1)
            self._wait()
            done += chunk

    def erase(self, block):
        self._write_enable()
        self.cs(0)
        self._addr_cmd(0x20, self.base + block * ERASE)
        self.cs(1)
        self._wait()


class PicoWManagerHal:
    def __init__(self, board: dict, settings: dict) -> None:
        pins = board["pins"]
        self.baud = settings.get("baud", board["baud"])
        self.window_slack_us = 0  # replies come straight off the RS-485 line
        self.uart = UART(pins["bus_uart"], self.baud, tx=Pin(pins["bus_tx"]),
                         rx=Pin(pins["bus_rx"]), rxbuf=2048, txbuf=128, timeout=0)  # fmt: skip
        self.de = Pin(pins["bus_de"], Pin.OUT, value=0)
        spi = SPI(pins["history_spi"], 20000000, sck=Pin(pins["history_sck"]),
                  mosi=Pin(pins["history_mosi"]), miso=Pin(pins["history_miso"]))  # fmt: skip
        cs = Pin(pins["history_cs"], Pin.OUT, value=1)
        self.history_device = SpiNor(spi, cs, 0, HISTORY_BYTES)
        self.event_device = SpiNor(spi, cs, EVENTS_OFFSET, EVENTS_BYTES)
        self.config_files = OsFiles()
        self.buzzer = Pin(pins["buzzer"], Pin.OUT, value=0)
        self.alarm_led = Pin(pins["alarm_led"], Pin.OUT, value=0)
        self.relay = Pin(pins["alarm_relay"], Pin.OUT, value=0)
        self.mute = Pin(pins["mute_button"], Pin.IN, Pin.PULL_UP)
        self.ups = Pin(pins["ups_discharge_in"], Pin.IN, Pin.PULL_UP)
        self.ticks_us = time.ticks_us
        self.ticks_diff_us = time.ticks_diff
        self._blink = 0
        self._epoch_offset = time.mktime((2020, 1, 1, 0, 0, 0, 0, 0))
        self.wlan = None
        ssid = settings.get("wifi_ssid")
        if ssid:
            self._wifi(ssid, settings.get("wifi_password", ""), settings.get("web_port"))
        self.wdt = None  # type: WDT | None

    def _wifi(self, ssid: str, password: str, web_port) -> None:
        """Join the site's Wi-Fi (settings wifi_ssid / wifi_password), set the clock by
        NTP and say on the console where the web interface is.  Without a network the
        manager runs all the same (the bus needs none); the chip keeps retrying."""
        import network
        import ntptime

        wlan = network.WLAN(network.STA_IF)
        self.wlan = wlan  # type: ignore[assignment]
        wlan.active(True)
        wlan.connect(ssid, password)
        for _ in range(100):  # 10 s at most, before the watchdog is armed
            if wlan.isconnected():
                try:
                    ntptime.settime()
                except OSError:
                    pass
                if web_port:
                    print("stringcare: Wi-Fi %s joined: web interface http://%s:%d/"
                          % (ssid, wlan.ifconfig()[0], web_port))  # fmt: skip
                return
            time.sleep_ms(100)
        print("stringcare: Wi-Fi %s not joined yet (status %d): the manager runs on"
              % (ssid, wlan.status()))  # fmt: skip

    def now_s(self) -> int:
        return int(time.time()) - self._epoch_offset

    def bus_rx(self, buf) -> int:
        n = self.uart.readinto(buf)
        return n or 0

    def bus_tx(self, buf, n: int) -> None:
        self.de(1)
        self.uart.write(memoryview(buf)[:n])
        while not self.uart.txdone():
            pass
        self.de(0)

    def mute_pressed(self) -> bool:
        return self.mute() == 0

    def ups_on_battery(self) -> bool:
        return self.ups() == 0

    def set_outputs(self, buzzer: bool, led: int, relay_energised: bool) -> None:
        self.buzzer(1 if buzzer else 0)
        self._blink ^= 1
        self.alarm_led(1 if led == 2 or (led == 1 and self._blink) else 0)
        self.relay(1 if relay_energised else 0)

    def status(self, core, now_s: int) -> None:
        pass  # the web/Modbus/MQTT services read the core directly

    def feed_watchdog(self) -> None:
        # Armed at the main loop's first feed, fed only there (manager_fw/main.py, every
        # 50 ms step): start-up (config, history scan, Wi-Fi/NTP) cannot trip it, and a
        # loop that stops for 8 s resets the chip, which drops the alarm relay (GP18
        # comes out of reset as an input with pull-down, the ULN2003A input has its own).
        wdt = self.wdt
        if wdt is None:
            wdt = self.wdt = WDT(timeout=WATCHDOG_MS)
        wdt.feed()

    def repl_wanted(self) -> None:
        # Ctrl-C (mpremote, deploy): the contact is already released; the watchdog cannot
        # be stopped on the RP2040, so a timer feeds it while the REPL is in use.  After
        # an error nothing feeds it and it restarts the manager.
        wdt = self.wdt
        if wdt is not None:
            self._repl_feeder = machine.Timer(-1, period=1000, callback=lambda t: wdt.feed())

    def started(self, text: str) -> None:
        print(text)

    def running(self) -> bool:
        return True


def make_hal(board: dict, settings: dict) -> PicoWManagerHal:
    return PicoWManagerHal(board, settings)


def reset() -> None:
    machine.reset()
