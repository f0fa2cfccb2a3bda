# Hardware shell of the RP2040 relay/IO box (boards/rp2040_iobox/README.md): the HAL
# shared/busdevice.DeviceShell drives around shared/relaybox.RelayBoxCore.  Pins and
# the fail-safe settings come from board.json (stringcare_bundle.BOARD), overridden by
# stringcare_settings.SETTINGS.
#   * bus: UART0 + isolated transceiver, DE raised for a reply, dropped after the last
#     stop bit;
#   * relays: 4 GPIOs into a ULN2003A driving the relay coils (high = energised); at
#     power-up and after any reset (the chip's watchdog included) the RP2040 pads are
#     inputs with pull-downs, so every coil is off until the core sets it;
#   * inputs: 4 optocouplers (PC817) pulling a GPIO low when the contact is closed;
#   * box number 1..15: 4 DIP switches to ground (switch on = bit set), read at boot;
#   * LED: steady while the manager feeds the box, blinking when its watchdog has
#     released the fail-safe relays (or nothing has been heard since power-up);
#   * the chip's watchdog (machine.WDT, 2 s) is armed at the loop's first feed: a hung
#     loop resets the chip and so releases every relay.
import time

import machine
from machine import UART, WDT, Pin

from shared import relaybox as rb

CHIP_WATCHDOG_MS = 2000


class Rp2040IoboxHal:
    def __init__(self, board: dict, settings: dict) -> None:
        pins = board["pins"]
        self.hw_rev = board["hw_rev"]
        self.baud = settings.get("baud", board["baud"])
        self.watchdog_ms, self.failsafe_mask = rb.settings_of(board, settings)
        self.relay_pins = [Pin(n, Pin.OUT, value=0) for n in pins["relays"]]
        self.input_pins = [Pin(n, Pin.IN, Pin.PULL_UP) for n in pins["inputs"]]
        box = 0
        for k, n in enumerate(pins["box_dip"]):
            if Pin(n, Pin.IN, Pin.PULL_UP).value() == 0:
                box |= 1 << k
        self.box = box
        self.uid = bytes(machine.unique_id()[:8])
        self.uart = UART(
            pins["bus_uart"], self.baud, tx=Pin(pins["bus_tx"]), rx=Pin(pins["bus_rx"]),
            rxbuf=1024, txbuf=128, timeout=0,
        )  # fmt: skip
        self.de = Pin(pins["bus_de"], Pin.OUT, value=0)
        self.led = Pin(pins["led"], Pin.OUT, value=0)
        self.ticks_us = time.ticks_us
        self.ticks_ms = time.ticks_ms
        self.ticks_diff_us = time.ticks_diff
        self._changes = -1
        self.wdt = None  # type: WDT | None

    def bus_rx(self, buf) -> int:
        if not self.uart.any():
            return 0
        return self.uart.readinto(buf) or 0

    def bus_tx(self, buf, n: int) -> None:
        self.de(1)
        self.uart.write(memoryview(buf)[:n])
        self.uart.flush()
        self.de(0)

    def update(self, core, now_ms: int) -> None:
        inputs = 0
        for k in range(4):
            if self.input_pins[k].value() == 0:
                inputs |= 1 << k
        core.set_inputs(inputs, now_ms)
        if core.changes != self._changes:
            self._changes = core.changes
            relays = core.relays
            for k in range(4):
                self.relay_pins[k].value((relays >> k) & 1)
        self.led.value(1 if core.fed else (now_ms >> 9) & 1)

    def feed_watchdog(self) -> None:
        wdt = self.wdt
        if wdt is None:
            wdt = self.wdt = WDT(timeout=CHIP_WATCHDOG_MS)  # armed by the loop, never before
        wdt.feed()

    def wait_us(self, us: int) -> None:
        pass  # polling keeps the reply latency far below the 5 ms deadline

    def started(self, text: str) -> None:
        print(text)

    def shutdown(self, operator: bool) -> None:
        for pin in self.relay_pins:
            pin.value(0)
        self.led.value(0)
        if operator and self.wdt is not None:
            # Ctrl-C for the REPL (mpremote, deploy): the RP2040's watchdog cannot be
            # stopped, so a timer feeds it while the REPL is in use.  After an error it
            # is left to reset the chip, which starts the box again.
            wdt = self.wdt
            self._repl_feeder = machine.Timer(-1, period=1000, callback=lambda t: wdt.feed())


def make_hal(board: dict, settings: dict) -> Rp2040IoboxHal:
    return Rp2040IoboxHal(board, settings)
