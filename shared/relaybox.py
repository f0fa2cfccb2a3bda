# The relay/IO box (docs/protocol.md §5 IO_READ / RELAY_SET, §5.1 the communication
# watchdog): 4 relays (1 = energised), 4 digital inputs (1 = closed), box number 1..15
# from its DIP switches.  Sans-I/O core: the same code runs on the RP2040 box
# (boards/rp2040_iobox), on the virtual board (boards/unix_iobox) and in the simulator
# (boards/sim/devices.py).
#
# Authentication (docs/protocol.md §5a, §5.1): RELAY_SET carries the counter and MAC of
# the module commands, under the same site key; the box learns the key only over USB
# (`stringcare deploy --site-key`, physical presence) and keeps it with its counter
# floor in a small file (KEY_FILE, written by the shell when `store_due`: at a new key,
# then at most hourly when the floor moved - no flash write per command).  A RELAY_SET
# with a wrong or missing MAC, from a box without a key, or with a counter not above
# the floor changes nothing, is answered NAK 6 and counted (`auth_refused`, INFO).
#
# Fail-safe (the alarm contact): the box de-energises every relay of `failsafe_mask`
# when it has not been fed for `watchdog_ms`, and at power-up they are de-energised
# until the manager sets them.  Only an accepted (authenticated, fresh) RELAY_SET feeds
# the watchdog: a device that forges the manager's address, replays its frames or
# sends anything else keeps nothing energised.  After an expiry the fail-safe relays
# stay de-energised (as after power-up) until the manager's next RELAY_SET; the manager
# sends one to every box at least every 2 s (manager_fw/jobs/io.py).

# Inputs: boxes count relays and inputs 1..4, the core uses bits 0..3; input levels are
# debounced (INPUT_DEBOUNCE_MS) before IO_READ reports them.

from shared import auth
from shared import protocol as p
from shared.busdevice import BusDevice
from shared.compat import const, ticks_diff

RELAYS = const(4)
RELAY_MASK = const(0x0F)
WATCHDOG_MS_DEFAULT = const(10000)
WATCHDOG_MS_MIN = const(3000)  # the manager feeds every box at least every 2 s
WATCHDOG_MS_MAX = const(60000)
INPUT_DEBOUNCE_MS = const(50)  # an input change counts once stable this long
RELAY_SET_LEN = const(14)  # mask, state and the 12-byte authentication trailer
FLOOR_SAVE_MS = const(3600000)  # the counter floor reaches the key file at most hourly
KEY_FILE = "stringcare_boxkey.bin"  # "SCBK", key (16), floor (u48 LE), CRC-16 (2 B)
KEY_FILE_LEN = const(28)


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
        key=None,
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
        # over shared/sha256 even where hashlib exists: a verify then allocates nothing
        # (~1.3 ms on an RP2040, estimated; one RELAY_SET every 2 s, 5 ms to reply)
        self.mac = auth.Mac(key, pure=True)
        self.ctr_hi = 0  # the counter floor: the last authenticated counter accepted
        self.ctr_lo = 0
        self.auth_refused = 0  # RELAY_SETs refused (saturating at 0xFFFF)
        self.store_due = False  # the key file should be written (store_bytes)
        self._floor_dirty = False
        self._saved_ms = 0

    # -- the key and its file ------------------------------------------------------------

    def set_key(self, key, now_ms: int = 0) -> None:
        """A new site key (over USB, `stringcare deploy --site-key`): floor back to 0."""
        self.mac.set_key(key)
        self.ctr_hi = 0
        self.ctr_lo = 0
        self.store_due = True
        self._saved_ms = now_ms

    def store_bytes(self, buf) -> int:
        """The key file's bytes into buf (KEY_FILE_LEN); clears store_due."""
        key = self.mac.key
        if key is None:
            raise ValueError("relay box: no site key to store")
        buf[0:4] = b"SCBK"
        for i in range(p.KEY_LEN):
            buf[4 + i] = key[i]
        auth.put_ctr(buf, 20, self.ctr_hi, self.ctr_lo)
        crc = p.crc16(buf, 0, 26)
        buf[26] = crc >> 8
        buf[27] = crc & 0xFF
        self.store_due = False
        self._floor_dirty = False
        return KEY_FILE_LEN

    def load_store(self, data) -> bool:
        """Key and floor from the key file's bytes; False (nothing taken) when damaged."""
        if len(data) != KEY_FILE_LEN or bytes(data[0:4]) != b"SCBK":
            return False
        if p.crc16(data, 0, 26) != (data[26] << 8) | data[27]:
            return False
        self.mac.set_key(bytes(data[4:20]))
        self.ctr_hi, self.ctr_lo = auth.get_ctr(data, 20)
        return True

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
        if self._floor_dirty and ticks_diff(now_ms, self._saved_ms) >= FLOOR_SAVE_MS:
            self._saved_ms = now_ms
            self.store_due = True

    def auth_fields(self, tx, at: int) -> None:
        """INFO's key_state, auth_refused and auth_ctr (the floor) at tx[at:at + 9]."""
        tx[at] = 1 if self.mac.key is not None else 0
        tx[at + 1] = self.auth_refused & 0xFF
        tx[at + 2] = self.auth_refused >> 8
        auth.put_ctr(tx, at + 3, self.ctr_hi, self.ctr_lo)

    def handle_own(self, frame, now_ms: int) -> int:
        cmd = frame.cmd
        if cmd == p.CMD_RELAY_SET:
            if frame.length != RELAY_SET_LEN:
                return self._nak(frame, p.ERR_BAD_LENGTH)
            ok = auth.check_request(self.mac, frame, self.ctr_hi, self.ctr_lo)
            if ok != 1:  # forged, replayed, or this box has no key: nothing changes
                if self.auth_refused < 0xFFFF:
                    self.auth_refused += 1
                return self._nak(frame, p.ERR_NOT_AUTHENTIC)
            b = frame.buf
            at = frame.off + RELAY_SET_LEN - p.AUTH_LEN  # the counter: the new floor
            self.ctr_lo = b[at] | (b[at + 1] << 8) | (b[at + 2] << 16)
            self.ctr_hi = b[at + 3] | (b[at + 4] << 8) | (b[at + 5] << 16)
            self._floor_dirty = True
            self.fed = True  # only the manager holds the key: it is still there
            self.fed_ms = now_ms
            mask = frame.u8(0)
            if mask & 0xF0:
                return self._nak(frame, p.ERR_BAD_VALUE)
            self._set((self.relays & ~mask) | (frame.u8(1) & mask), now_ms)
        elif cmd != p.CMD_IO_READ:
            return self._nak(frame, p.ERR_UNKNOWN_COMMAND)
        elif frame.length != 0:
            return self._nak(frame, p.ERR_BAD_LENGTH)
        self.tx[8] = self.relays
        self.tx[9] = self.inputs
        return self._reply(frame, cmd | p.REPLY, 2)


# -- the key file (the shell's side: firmware/iobox/main.py) -----------------------------


def load_key_file(core, path=KEY_FILE):
    """Key and floor from the key file; returns what to print, or None when fine."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return "no site key (%s): every RELAY_SET is refused and the fail-safe relays stay " \
            "released; deploy with --site-key over USB" % path  # fmt: skip
    if not core.load_store(data):
        return "%s is damaged: no site key; deploy with --site-key over USB" % path
    return None


def save_key_file(core, path=KEY_FILE) -> None:
    """Write the key file aside and rename it over the old one."""
    buf = bytearray(KEY_FILE_LEN)
    core.store_bytes(buf)
    with open(path + ".tmp", "wb") as f:
        f.write(buf)
    import os

    os.rename(path + ".tmp", path)


def provision_key(core, provision: dict) -> bool:
    """`stringcare deploy --site-key` (stringcare_provision.PROVISION): set the key."""
    k = str(provision.get("site_key", ""))
    if not k:
        return False
    if len(k) != 2 * p.KEY_LEN:
        raise ValueError("provision: site_key needs %d hex digits" % (2 * p.KEY_LEN))
    core.set_key(bytes(int(k[i : i + 2], 16) for i in range(0, len(k), 2)))
    return True
