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
#   (bus, ticks and the chip's watchdog: boards/rp2040_device.py)
import machine
from machine import Pin

from boards.rp2040_device import Rp2040BusDevice
from shared import relaybox as rb


class Rp2040IoboxHal(Rp2040BusDevice):
    def __init__(self, board: dict, settings: dict) -> None:
        Rp2040BusDevice.__init__(self, board, settings)
        pins = board["pins"]
        self.watchdog_ms, self.failsafe_mask = rb.settings_of(board, settings)
        self.relay_pins = [Pin(n, Pin.OUT, value=0) for n in pins["relays"]]
        self.input_pins = [Pin(n, Pin.IN, Pin.PULL_UP) for n in pins["inputs"]]
        box = 0
        for k, n in enumerate(pins["box_dip"]):
            if Pin(n, Pin.IN, Pin.PULL_UP).value() == 0:
                box |= 1 << k
        self.box = box
        self.uid = bytes(machine.unique_id()[:8])
        self._changes = -1

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

    def shutdown(self, operator: bool) -> None:
        for pin in self.relay_pins:
            pin.value(0)
        self.led.value(0)
        self.keep_watchdog_fed_at_the_repl(operator)


def make_hal(board: dict, settings: dict) -> Rp2040IoboxHal:
    return Rp2040IoboxHal(board, settings)
