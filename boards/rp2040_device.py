# What the RP2040 bus devices (boards/rp2040_current, boards/rp2040_iobox) share: the
# RS-485 bus (boards/rp2040_bus.py), the port's tick counters, the chip's watchdog
# armed at the loop's first feed and kept fed by a timer when Ctrl-C leaves the loop
# for the REPL.  Each board's HAL subclasses it and adds its own pins, update() and
# shutdown() (the DeviceShell contract, shared/busdevice.py).
import time

import machine
from machine import WDT, Pin

from boards.rp2040_bus import Rp2040Bus

CHIP_WATCHDOG_MS = 2000


class Rp2040BusDevice(Rp2040Bus):
    def __init__(self, board: dict, settings: dict) -> None:
        pins = board["pins"]
        self.hw_rev = board["hw_rev"]
        self.open_bus(board, settings, 1024, 128)
        self.led = Pin(pins["led"], Pin.OUT, value=0)
        self.ticks_us = time.ticks_us
        self.ticks_ms = time.ticks_ms
        self.ticks_diff_us = time.ticks_diff
        self.wdt = None  # type: WDT | None

    def feed_watchdog(self) -> None:
        wdt = self.wdt
        if wdt is None:
            wdt = self.wdt = WDT(timeout=CHIP_WATCHDOG_MS)  # armed by the loop, never before
        wdt.feed()

    def wait_us(self, us: int) -> None:
        pass  # polling keeps the reply latency far below the 5 ms deadline

    def started(self, text: str) -> None:
        print(text)

    def keep_watchdog_fed_at_the_repl(self, operator: bool) -> None:
        """After Ctrl-C (operator) the REPL is wanted (mpremote, deploy): the RP2040's
        watchdog cannot be stopped, so a timer feeds it.  After an error it is left to
        reset the chip, which starts the device again."""
        if operator and self.wdt is not None:
            wdt = self.wdt
            self._repl_feeder = machine.Timer(-1, period=1000, callback=lambda t: wdt.feed())
