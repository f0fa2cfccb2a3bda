# Hardware shell of the USB <-> RS-485 converter (boards/rp2040_converter/README.md):
# USB CDC (the MicroPython console) on one side, UART0 + isolated transceiver with a
# driver-enable pin on the other.  shared/bridge.py holds the loop and the rules.
import select
import sys
import time

import micropython
from machine import Pin

from boards.rp2040_bus import Rp2040Bus


class Rp2040ConverterIo(Rp2040Bus):
    def __init__(self, board: dict, settings: dict) -> None:
        pins = board["pins"]
        self.open_bus(board, settings, 2048, 256)
        self.status_led = Pin(pins["led"], Pin.OUT, value=0)
        self.repl_button = Pin(pins["repl_button"], Pin.IN, Pin.PULL_UP)
        self.stdin = sys.stdin.buffer  # type: ignore[attr-defined]
        self.stdout = sys.stdout.buffer  # type: ignore[attr-defined]
        self.poll = select.poll()
        self.poll.register(sys.stdin, select.POLLIN)
        self.one = bytearray(1)
        self.ticks_us = time.ticks_us
        self.ticks_diff_us = time.ticks_diff

    def repl_requested(self) -> bool:
        """The REPL button held at power-up: stay at the REPL, no bridge."""
        return self.repl_button.value() == 0

    def data_mode(self, on: bool) -> None:
        micropython.kbd_intr(-1 if on else 3)

    def usb_read(self, buf) -> int:
        n = 0
        while n < len(buf) and self.poll.poll(0):
            if not self.stdin.readinto(self.one):  # type: ignore[union-attr]
                break
            buf[n] = self.one[0]
            n += 1
        return n

    def usb_write(self, buf, n: int) -> None:
        self.stdout.write(memoryview(buf)[:n])

    bus_read = Rp2040Bus.bus_rx  # the bridge's name (shared/bridge.py); bus_tx as is

    def led(self, on: bool) -> None:
        self.status_led.value(1 if on else 0)

    def idle(self) -> None:
        pass  # polling keeps the latency at tens of microseconds


def make_io(board: dict, settings: dict) -> Rp2040ConverterIo:
    return Rp2040ConverterIo(board, settings)
