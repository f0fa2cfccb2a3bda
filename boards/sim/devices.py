# Simulated bus devices that are not battery modules: the string current sensor and the
# relay/IO box (docs/protocol.md §5, 0x40-0x42).  Thin wrappers of the cores the real
# boards run (shared/currentsensor.py, shared/relaybox.py: the relay box's
# communication watchdog included), with the module Responder's interface
# (handle(frame, now_ms) -> reply length, tx, tx_delay_us), so a
# boards.sim.bus.ResponderNode puts them on the VirtualBus.  Tests and the simulator set
# their values (current_ma, inputs) and read what the manager did (relays, relay_log).

from shared.currentsensor import CurrentSensorCore
from shared.relaybox import RELAY_MASK, WATCHDOG_MS_DEFAULT, RelayBoxCore


class CurrentSensor(CurrentSensorCore):
    """A string current sensor; its string number 1..8 is its DIP-switch setting.
    `current_ma` and `flags` are set directly (no ADC behind it)."""

    def __init__(self, string_no: int, current_ma: int = 0, hw_rev: int = 1) -> None:
        uid = bytes([0x5C, 0xC5, 0, 0, 0, 0, 0, string_no])
        super().__init__(string_no, uid, hw_rev)
        self.current_ma = current_ma  # positive charging, negative discharging
        self.flags = 0  # bit 0 sensor fault, bit 1 over range


class RelayBox(RelayBoxCore):
    """A relay/IO box: 4 relays (1 = energised) and 4 digital inputs (1 = closed).

    clock_ms: the simulation's clock (ms, ticks); with it, reading `relays` first lets
    the watchdog see the time that passed, so a silent manager shows as released relays
    without another frame.  Without it the watchdog is checked at each frame."""

    def __init__(
        self,
        box: int,
        hw_rev: int = 1,
        watchdog_ms: int = WATCHDOG_MS_DEFAULT,
        failsafe_mask: int = RELAY_MASK,
        clock_ms=None,
        key=None,
    ) -> None:
        self.relay_log: list = []  # (now_ms, relays) after every change
        self.clock_ms = clock_ms
        self._relays = 0
        uid = bytes([0x5C, 0xB0, 0, 0, 0, 0, 0, box])
        super().__init__(box, uid, hw_rev, watchdog_ms, failsafe_mask, key)

    @property
    def relays(self) -> int:
        if self.clock_ms is not None:
            self.tick(self.clock_ms())
        return self._relays

    @relays.setter
    def relays(self, value: int) -> None:
        self._relays = value

    def _set(self, relays: int, now_ms: int) -> None:
        if relays != self._relays:
            self._relays = relays
            self.changes += 1
            self.last_change_ms = now_ms
            self.relay_log.append((now_ms, relays))
