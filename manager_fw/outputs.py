# Alarm outputs (SPEC §3): buzzer with mute button, alarm LED, potential-free alarm
# contact.  Pure: the board shell drives the pins from `buzzer`, `led`, `relay`.
#
# The contact is fail-safe: its relay is energised while everything is fine and drops
# on an alarm, so a dead or unpowered manager also signals an alarm.  Energised = all
# well, on every manager: the board's own relay (a Pico W manager's relay drops when its
# machine.WDT resets the chip, boards/pico_w_manager/README.md) and a relay/IO box's
# alarm relay (io.alarm_relay), which the core sets from `relay_energised` and polls at
# least every 2 s (core.BOX_FEED_MS): the box's communication watchdog releases it by
# itself when the manager stops (docs/protocol.md §5.1, shared/relaybox.py).
# Muting silences the buzzer only; a new alarm sounds it again.

from shared.compat import const

LED_OFF = const(0)
LED_BLINK = const(1)  # warnings only
LED_ON = const(2)  # an alarm


class AlarmOutputs:
    def __init__(self) -> None:
        self.buzzer = False
        self.led = LED_OFF
        self.relay_energised = True
        self.muted = False

    def mute(self) -> None:
        """The mute button: silence the buzzer until a new alarm arrives."""
        self.muted = True
        self.buzzer = False

    def update(self, alarms: int, warnings: int, contact: bool, new_alarm: bool) -> None:
        """alarms/warnings: how many are active; contact: alarms that drive the contact
        now (silent-module alarms join it only after their extra delay); new_alarm: an
        alarm was raised since the last update."""
        if new_alarm:
            self.muted = False  # a new alarm sounds again
        self.buzzer = alarms > 0 and not self.muted
        self.led = LED_ON if alarms else (LED_BLINK if warnings else LED_OFF)
        self.relay_energised = not contact
