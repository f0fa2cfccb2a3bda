# The module's persistent settings: address, variant, calibration, counters.
#
# Two slots, each a complete 101-byte record with a sequence number and a CRC.  A save
# writes the slot that does *not* hold the newest valid record, so a power cut in the
# middle of a write can only damage the older copy: the newest good record survives.
# This works the same on littlefs, FAT and raw flash (no reliance on atomic rename).
# A missing or corrupt store never stops the module: it starts unaddressed with
# defaults and reports it (INFO `store`, MEAS flag DEFAULTS) until the next save.
#
# Record (little-endian), format 3:
#   0 magic "SCMS" | 4 format u8 (3) | 5 seq u16 | 7 address u16 | 9 variant u8
#   10 ri_method u8 | 11 reserved u8 | 12 baud u32 | 16 cal_offset i32 x6
#   40 cal_gain_ppm i32 x6 | 64 boot_count u32 | 68 bleed_s u32 | 72 overtemp_events u16
#   74 ri_count u16 | 76 key_state u8 (0 none, 1 site key) | 77 key 16 bytes
#   93 counter floor u48 (the last authenticated counter accepted) | 99 crc u16
#   (CRC-16/IBM-3740 over bytes 0..98)
# The site key is kept with the address (docs/protocol.md, "Authentication").  The
# counter floor is written with every save (settings changes, the hourly counters): no
# extra flash writes for authentication.
# Format 2 (before authentication: 78 bytes, crc at 76) and format 1 (before the
# voltage tempco, channel 5: 70 bytes) are still read - no key, floor 0, channel 5 zero
# for format 1 - so a firmware update keeps address and calibration; the next save
# writes format 3 into the other slot.  A module updated from format 2 has no key until
# it learns one (docs/protocol.md, "Authentication").

from module_fw import state as st
from shared import auth
from shared import protocol as p
from shared.compat import const

RECORD_LEN = const(101)
FORMAT = const(3)
AUTH_PART = const(23)  # key_state, key, counter floor
MAGIC = b"SCMS"

STORE_OK = const(0)
STORE_MISSING = const(1)  # no record at all: first start
STORE_CORRUPT = const(2)  # records present but none valid
STORE_UNWRITABLE = const(3)  # the last save failed


class Counters:
    def __init__(self) -> None:
        self.boot_count = 0
        self.bleed_s = 0
        self.overtemp_events = 0
        self.ri_count = 0


def _channels(fmt: int) -> int:
    """Calibration channels in a record of format fmt (0: not a format we know)."""
    if fmt == FORMAT or fmt == 2:
        return st.CAL_CHANNELS
    if fmt == 1:
        return 5
    return 0


def _length(fmt: int) -> int:
    n = 16 + 8 * _channels(fmt) + 14
    return n + AUTH_PART if fmt == FORMAT else n


def encode(s: st.ModuleState, c: Counters, seq: int, buf) -> None:
    for i in range(4):
        buf[i] = MAGIC[i]
    buf[4] = FORMAT
    p.put_u16(buf, 5, seq)
    p.put_u16(buf, 7, s.address)
    buf[9] = s.variant_id
    buf[10] = s.ri_method
    buf[11] = 0
    p.put_u32(buf, 12, s.baud)
    n = st.CAL_CHANNELS
    for ch in range(n):
        p.put_i32(buf, 16 + 4 * ch, s.cal_offset[ch])
        p.put_i32(buf, 16 + 4 * n + 4 * ch, s.cal_gain_ppm[ch])
    at = 16 + 8 * n
    p.put_u32(buf, at, c.boot_count)
    p.put_u32(buf, at + 4, c.bleed_s)
    p.put_u16(buf, at + 8, c.overtemp_events)
    p.put_u16(buf, at + 10, c.ri_count)
    key = s.key
    buf[at + 12] = 1 if key is not None else 0
    for i in range(p.KEY_LEN):
        buf[at + 13 + i] = key[i] if key is not None else 0
    auth.put_ctr(buf, at + 29, s.ctr_hi, s.ctr_lo)
    p.put_u16(buf, at + 35, p.crc16(buf, 0, at + 35))


def valid(buf) -> bool:
    """A complete, CRC-correct record (format 2, or 1) with every field in its range."""
    if buf is None or len(buf) < 16 or buf[0:4] != MAGIC:
        return False
    n = _channels(buf[4])
    end = _length(buf[4]) - 2
    if n == 0 or len(buf) != end + 2:
        return False
    if p.crc16(buf, 0, end) != p.get_u16(buf, end):
        return False
    if p.get_u16(buf, 7) > p.ADDR_MODULE_MAX or buf[9] > 4 or not 1 <= buf[10] <= 2:
        return False
    if buf[4] == FORMAT and buf[_length(FORMAT) - 25] > 1:
        return False  # key_state
    baud = p.get_u32(buf, 12)
    if baud < 1200 or baud > 1000000:
        return False
    for ch in range(n):
        g = p.get_i32(buf, 16 + 4 * n + 4 * ch)
        if not -p.CAL_GAIN_PPM_LIMIT <= g <= p.CAL_GAIN_PPM_LIMIT:
            return False
        o = p.get_i32(buf, 16 + 4 * ch)
        if not -p.CAL_OFFSET_LIMIT <= o <= p.CAL_OFFSET_LIMIT:
            return False
    return True


def seq_newer(a: int, b: int) -> bool:
    """16-bit serial-number comparison: is a newer than b?"""
    d = (a - b) & 0xFFFF
    return d != 0 and d < 0x8000


def decode(buf, s: st.ModuleState, c: Counters) -> None:
    s.address = p.get_u16(buf, 7)
    s.variant_id = buf[9]
    s.ri_method = buf[10]
    s.baud = p.get_u32(buf, 12)
    n = _channels(buf[4])
    for ch in range(st.CAL_CHANNELS):
        if ch < n:
            s.cal_offset[ch] = p.get_i32(buf, 16 + 4 * ch)
            s.cal_gain_ppm[ch] = p.get_i32(buf, 16 + 4 * n + 4 * ch)
        else:  # a channel the record's format did not have yet
            s.cal_offset[ch] = 0
            s.cal_gain_ppm[ch] = 0
    at = 16 + 8 * n
    c.boot_count = p.get_u32(buf, at)
    c.bleed_s = p.get_u32(buf, at + 4)
    c.overtemp_events = p.get_u16(buf, at + 8)
    c.ri_count = p.get_u16(buf, at + 10)
    if buf[4] == FORMAT and buf[at + 12] == 1:
        s.key = bytes(buf[at + 13 : at + 13 + p.KEY_LEN])
    else:
        s.key = None
    if buf[4] == FORMAT:
        s.ctr_hi, s.ctr_lo = auth.get_ctr(buf, at + 29)
    else:
        s.ctr_hi = 0
        s.ctr_lo = 0


class FileSlots:
    """The two slots as two small files (any MicroPython or CPython filesystem)."""

    def __init__(self, prefix: str = "stringcare") -> None:
        self.names = (prefix + "_a.bin", prefix + "_b.bin")

    def read(self, slot: int):
        try:
            with open(self.names[slot], "rb") as f:
                return f.read(RECORD_LEN + 1)
        except OSError:
            return None

    def write(self, slot: int, data) -> None:
        with open(self.names[slot], "wb") as f:
            f.write(data)


class MemorySlots:
    """Slots in RAM for tests and the simulator.  cut_after = k simulates a power cut
    during the next write: like a file opened "wb", the slot then holds only the first
    k bytes of the new record."""

    def __init__(self) -> None:
        self.data: list = [None, None]
        self.cut_after = -1
        self.writes = 0

    def read(self, slot: int):
        return self.data[slot]

    def write(self, slot: int, data) -> None:
        self.writes += 1
        if self.cut_after >= 0:
            self.data[slot] = bytes(data[: self.cut_after])
            self.cut_after = -1
            raise OSError("power cut during write")
        self.data[slot] = bytes(data)


class Store:
    def __init__(self, slots) -> None:
        self.slots = slots
        self.buf = bytearray(RECORD_LEN)
        self.seq = 0
        self.newest = -1  # slot holding the newest valid record
        self.counters = Counters()
        self.status = STORE_MISSING

    def load(self, s: st.ModuleState) -> int:
        """Fill s from the newest valid record; defaults when there is none.

        Returns and remembers the status (STORE_OK / STORE_MISSING / STORE_CORRUPT).
        Never raises: a damaged store must not crash-loop the module.
        """
        best = -1
        best_seq = 0
        present = 0
        for slot in (0, 1):
            try:
                data = self.slots.read(slot)
            except Exception:  # noqa: BLE001 - a broken filesystem reads as "missing"
                data = None
            if data:
                present += 1
            if valid(data):
                seq = p.get_u16(data, 5)
                if best < 0 or seq_newer(seq, best_seq):
                    best = slot
                    best_seq = seq
        if best < 0:
            self.status = STORE_CORRUPT if present else STORE_MISSING
            self.newest = -1
            self.seq = 0
            s.address = p.ADDR_UNADDRESSED
            s.key = None
            s.ctr_hi = 0
            s.ctr_lo = 0
            for ch in range(st.CAL_CHANNELS):
                s.cal_offset[ch] = 0
                s.cal_gain_ppm[ch] = 0
        else:
            decode(self.slots.read(best), s, self.counters)
            self.status = STORE_OK
            self.newest = best
            self.seq = best_seq
        s.store_flags = self.status
        return self.status

    def save(self, s: st.ModuleState) -> bool:
        """Write the settings to the older slot; True when it was written."""
        seq = (self.seq + 1) & 0xFFFF
        encode(s, self.counters, seq, self.buf)
        slot = 1 if self.newest == 0 else 0
        try:
            self.slots.write(slot, self.buf)
        except Exception:  # noqa: BLE001 - power cut or full filesystem: keep running
            self.status = STORE_UNWRITABLE
            s.store_flags = self.status
            return False
        self.seq = seq
        self.newest = slot
        self.status = STORE_OK
        s.store_flags = STORE_OK
        return True
