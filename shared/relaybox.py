# The relay/IO box (docs/protocol.md §5 IO_READ / RELAY_SET, §5.1 the communication
# watchdog): 4 relays (1 = energised), 4 digital inputs (1 = closed), box number 1..15
# from its DIP switches.  Sans-I/O core: the same code runs on the RP2040 box
# (boards/rp2040_iobox), on the virtual board (boards/unix_iobox) and in the simulator
# (boards/sim/devices.py).
#
# Fail-safe (the alarm contact): the box de-energises every relay of `failsafe_mask`
# when it has heard no valid manager frame for `watchdog_ms`, and at power-up they are
# de-energised until the manager sets them.  A "valid manager frame" feeds the watchdog:
#   * CRC-valid, current protocol version (the Deframer yields nothing else);
#   * a request (CMD bit 7 clear) from the manager's address 0xFFFE;
#   * addressed to this box (DST = its address), any command, even one it NAKs.
# Broadcasts, replies of other devices, frames for other addresses and frames that fail
# their CRC do not feed it: only a manager that is still talking to this box keeps its
# alarm contact in the "all well" state.
# After an expiry the fail-safe relays stay de-energised (as after power-up) until the
# manager's next RELAY_SET; the manager sees them dropped in IO_READ and sets them again.
#
# Inputs: boxes count relays and inputs 1..4, the core uses bits 0..3; input levels are
# debounced (INPUT_DEBOUNCE_MS) before IO_READ reports them.

from shared import protocol as p
from shared.busdevice import BusDevice
from shared.compat import const, ticks_diff

RELAYS = const(4)
RELAY_MASK = const(0x0F)
WATCHDOG_MS_DEFAULT = const(10000)
WATCHDOG_MS_MIN = const(3000)  # the manager feeds every box at least every 2 s
WATCHDOG_MS_MAX = const(60000)
INPUT_DEBOUNCE_MS = const(50)  # an input change counts once stable this long


def check_watchdog_ms(watchdog_ms: int) -> int:
    if not WATCHDOG_MS_MIN <= watchdog_ms <= WATCHDOG_MS_MAX:
        raise ValueError(
            "relay box: watchdog_ms %d outside %d..%d (the manager feeds a box every 2 s)"
            % (watchdog_ms, WATCHDOG_MS_MIN, WATCHDOG_MS_MAX)
        )
    return watchdog_ms


def failsafe_mask_of(relays) -> int:
    """A list of relay numbers 1..4 (board.json / settings "failsafe_relays") -> mask."""
    mask = 0
    for r in relays:
        if not 1 <= r <= RELAYS:
            raise ValueError("relay box: failsafe_relays: relay %r is not 1..4" % (r,))
        mask |= 1 << (r - 1)
    return mask


def settings_of(board: dict, settings: dict) -> tuple:
    """(watchdog_ms, failsafe_mask) of a box: stringcare_settings.SETTINGS, else its
    board.json, else the defaults.  ValueError names a bad value."""
    watchdog_ms = settings.get("watchdog_ms", board.get("watchdog_ms", WATCHDOG_MS_DEFAULT))
    relays = settings.get("failsafe_relays", board.get("failsafe_relays", [1, 2, 3, 4]))
    return check_watchdog_ms(int(watchdog_ms)), failsafe_mask_of(relays)


class RelayBoxCore(BusDevice):
    """One relay/IO box.  The shell writes `inputs` and drives the coils from `relays`."""

    device_type = p.DEVICE_RELAY_BOX

    def __init__(
        self,
        box: int,
        uid,
        hw_rev: int = 1,
        watchdog_ms: int = WATCHDOG_MS_DEFAULT,
        failsafe_mask: int = RELAY_MASK,
    ) -> None:
        if not 1 <= box <= 15:
            raise ValueError("relay box: box number %d is not 1..15 (DIP switches)" % box)
        BusDevice.__init__(self, p.ADDR_RELAY_BOX_BASE + box, uid, hw_rev)
        self.box = box
        self.watchdog_ms = check_watchdog_ms(watchdog_ms)
        self.failsafe_mask = failsafe_mask & RELAY_MASK
        self.relays = 0  # what the coils get: de-energised at power-up
        self.inputs = 0  # debounced (set_inputs); the simulator may set it directly
        self._raw_inputs = 0
        self._raw_since_ms = 0
        self.fed = False  # a manager frame within watchdog_ms (False at power-up)
        self.fed_ms = 0
        self.expiries = 0  # how often the watchdog released the fail-safe relays
        self.changes = 0  # relay changes (the shell drives the pins when this moves)
        self.last_change_ms = 0

    def _set(self, relays: int, now_ms: int) -> None:
        if relays != self.relays:
            self.relays = relays
            self.changes += 1
            self.last_change_ms = now_ms

    def set_inputs(self, raw: int, now_ms: int) -> None:
        """The input pins as read now (bit k = input k+1 closed).  IO_READ reports a
        change once the levels have held INPUT_DEBOUNCE_MS: contact bounce and a
        glitch on a long UPS wire do not reach the manager."""
        raw &= RELAY_MASK
        if raw != self._raw_inputs:
            self._raw_inputs = raw
            self._raw_since_ms = now_ms
        elif raw != self.inputs and ticks_diff(now_ms, self._raw_since_ms) >= INPUT_DEBOUNCE_MS:
            self.inputs = raw

    def tick(self, now_ms: int) -> None:
        if self.fed and ticks_diff(now_ms, self.fed_ms) >= self.watchdog_ms:
            self.fed = False
            self.expiries += 1
            self._set(self.relays & ~self.failsafe_mask, now_ms)

    def request_seen(self, frame, now_ms: int) -> None:
        if frame.src == p.ADDR_MANAGER:
            self.fed = True
            self.fed_ms = now_ms

    def handle_own(self, frame, now_ms: int) -> int:
        cmd = frame.cmd
        if cmd == p.CMD_RELAY_SET:
            if frame.length != 2:
                return self._nak(frame, p.ERR_BAD_LENGTH)
            mask = frame.u8(0)
            if mask & 0xF0:
                return self._nak(frame, p.ERR_BAD_VALUE)
            new = (self.relays & ~mask) | (frame.u8(1) & mask)
            if not self.fed:  # not from the manager: fail-safe relays stay released
                new &= ~self.failsafe_mask
            self._set(new, now_ms)
        elif cmd != p.CMD_IO_READ:
            return self._nak(frame, p.ERR_UNKNOWN_COMMAND)
        elif frame.length != 0:
            return self._nak(frame, p.ERR_BAD_LENGTH)
        self.tx[8] = self.relays
        self.tx[9] = self.inputs
        return self._reply(frame, cmd | p.REPLY, 2)
