# Authentication of bus commands (docs/protocol.md, "Authentication"), both sides.
#
# An authenticated request ends with a trailer of protocol.AUTH_LEN bytes:
#   counter  u48 LE   strictly increasing over every authenticated frame the manager
#                     sends (one counter for the whole bus, broadcasts included)
#   mac      6 bytes  the first MAC_LEN bytes of HMAC-SHA256(site key, M), where M is
#                     the frame from VERLEN through the counter (header, payload fields
#                     and counter: the length, addresses, command and sequence are bound)
#
# HMAC is built here over hashlib.sha256 where the interpreter has it (the unix port, the
# RP2040 port, STM32 images from MicroPython 1.27) and over shared/sha256.py where it
# does not (the stock NUCLEO_G474RE image of 1.22-1.26); MicroPython has no `hmac`
# module.  The pads are computed once per key.  With hashlib a verify allocates two hash
# objects and two digests; with shared/sha256 the key's pad blocks are hashed once
# (midstates) and a verify runs two blocks into preallocated buffers, allocating
# nothing.  It runs only for authenticated commands (a SET_TARGET per string and cycle),
# not per poll.

# Counters are carried as two small ints (high and low 24 bits) so that nothing above
# 2**30 ever appears on a Cortex-M0+ (no big-int allocation).

from shared import protocol as p
from shared.compat import const

try:
    from hashlib import sha256
except ImportError:  # a MicroPython image without hashlib: the Python SHA-256
    sha256 = None  # type: ignore[assignment]

# CPython's hash objects copy their state; MicroPython's do not (same results either way)
_HAS_COPY = sha256 is not None and hasattr(sha256(), "copy")
HASHLIB = sha256 is not None  # False: every MAC runs on shared/sha256.py
_LAST: list = [None]  # CPython: (key, data, digest) of the last HMAC
CTR_HALF = const(0x1000000)  # 2**24: one counter half
CTR_MASK = const(0xFFFFFF)


def _pads(key):
    k = bytearray(64)
    for i in range(len(key)):
        k[i] = key[i]
    ipad = bytearray(64)
    opad = bytearray(64)
    for i in range(64):
        ipad[i] = k[i] ^ 0x36
        opad[i] = k[i] ^ 0x5C
    return bytes(ipad), bytes(opad)


def hmac_sha256(key, data) -> bytes:
    """HMAC-SHA256 (RFC 2104) of data under key (up to 64 bytes); allocates."""
    if len(key) > 64:
        raise ValueError("HMAC key longer than 64 bytes: hash it first")
    ipad, opad = _pads(key)
    new = sha256
    if new is None:
        from shared.sha256 import Sha256 as new
    h = new(ipad)
    h.update(data)
    inner = h.digest()
    h = new(opad)
    h.update(inner)
    return h.digest()


def ctr_newer(hi: int, lo: int, last_hi: int, last_lo: int) -> bool:
    """Is counter (hi, lo) greater than (last_hi, last_lo)?"""
    return hi > last_hi or (hi == last_hi and lo > last_lo)


def ctr_lo(buf, off: int) -> int:
    """The low 24 bits of the u48 counter at buf[off] (no tuple: nothing allocated)."""
    return buf[off] | (buf[off + 1] << 8) | (buf[off + 2] << 16)


def ctr_hi(buf, off: int) -> int:
    """The high 24 bits of the u48 counter at buf[off]."""
    return buf[off + 3] | (buf[off + 4] << 8) | (buf[off + 5] << 16)


def get_ctr(buf, off: int):
    """The u48 counter at buf[off] as (high 24 bits, low 24 bits); allocates a tuple."""
    return ctr_hi(buf, off), ctr_lo(buf, off)


def put_ctr(buf, off: int, hi: int, lo: int) -> None:
    if not (0 <= hi <= CTR_MASK and 0 <= lo <= CTR_MASK):
        raise p.ProtocolError("counter halves %d/%d outside 0..%d" % (hi, lo, CTR_MASK))
    buf[off] = lo & 0xFF
    buf[off + 1] = (lo >> 8) & 0xFF
    buf[off + 2] = lo >> 16
    buf[off + 3] = hi & 0xFF
    buf[off + 4] = (hi >> 8) & 0xFF
    buf[off + 5] = hi >> 16


class Mac:
    """HMAC-SHA256 under one site key, truncated to protocol.MAC_LEN bytes.  pure=True
    (or an interpreter without hashlib) computes it with shared/sha256.py."""

    def __init__(self, key=None, pure: bool = False) -> None:
        self._ipad = b""
        self._opad = b""
        self.key: bytes | None = None
        self.pure = pure or sha256 is None
        if key is not None:
            self.set_key(key)

    def set_key(self, key) -> None:
        if len(key) != p.KEY_LEN:
            raise ValueError("site key must be %d bytes, got %d" % (p.KEY_LEN, len(key)))
        self.key = bytes(key)
        self._ipad, self._opad = _pads(key)
        if self.pure:  # the pad blocks hashed once; a MAC is two more blocks
            from shared.sha256 import Sha256

            self._pure_inner = Sha256(self._ipad)
            self._pure_outer = Sha256(self._opad)
            self._work = Sha256()
            self._d = bytearray(32)
        elif _HAS_COPY:  # CPython: hash the pads once, copy the states per MAC
            self._inner = sha256(self._ipad)
            self._outer = sha256(self._opad)

    def has_key(self) -> bool:
        return self.key is not None

    def digest(self, buf, start: int, end: int) -> bytes | bytearray:
        """The full 32-byte HMAC of buf[start:end] (pure: a buffer reused by the next MAC)."""
        if self.pure:
            w = self._work
            out = self._d
            w.reset_to(self._pure_inner)
            w.update_from(buf, start, end)
            w.finish_into(out, 0)
            w.reset_to(self._pure_outer)
            w.update_from(out, 0, 32)
            w.finish_into(out, 0)
            return out
        if _HAS_COPY:
            # CPython (simulator, host tools): the last HMAC computed under this key is
            # remembered, since a simulated string's modules all check the same frame
            # (a pure function: the result is the same, only cheaper)
            data = bytes(memoryview(buf)[start:end])
            last = _LAST[0]
            if last is not None and last[0] == self.key and last[1] == data:
                return last[2]
            h = self._inner.copy()
            h.update(data)
            o = self._outer.copy()
            o.update(h.digest())
            d = o.digest()
            _LAST[0] = (self.key, data, d)
            return d
        h = sha256(self._ipad)
        h.update(memoryview(buf)[start:end])
        inner = h.digest()
        h = sha256(self._opad)
        h.update(inner)
        return h.digest()

    def sign(self, buf, start: int, end: int) -> None:
        """Write the MAC of buf[start:end] at buf[end:end + MAC_LEN]."""
        d = self.digest(buf, start, end)
        for i in range(p.MAC_LEN):
            buf[end + i] = d[i]

    def check(self, buf, start: int, end: int) -> bool:
        """Does buf[end:end + MAC_LEN] hold the MAC of buf[start:end]?  Compares every
        byte whatever the first difference (no timing hint for a forger)."""
        if self.key is None:
            return False
        d = self.digest(buf, start, end)
        diff = 0
        for i in range(p.MAC_LEN):
            diff |= d[i] ^ buf[end + i]
        return diff == 0


class Signer:
    """The manager's side: a counter and the key; signs requests in place."""

    def __init__(self, key=None, pure: bool = False) -> None:
        self.mac = Mac(key, pure)  # pure: signs without allocating (Mac)
        self.ctr_hi = 0
        self.ctr_lo = 0

    def has_key(self) -> bool:
        return self.mac.has_key()

    def advance_past(self, hi: int, lo: int, margin: int = 0x10000) -> None:
        """Make the next counter exceed (hi, lo) + margin (a module's floor)."""
        lo += margin
        if lo > CTR_MASK:
            hi += 1
            lo -= CTR_HALF
        if ctr_newer(hi, lo, self.ctr_hi, self.ctr_lo):
            self.ctr_hi = hi
            self.ctr_lo = lo

    def sign_request(self, tx, length: int) -> None:
        """tx holds a request whose header (with the final length, fields + AUTH_LEN)
        is encoded (protocol.encode_header) and whose fields are in tx[8:8+length]:
        write the next counter and the MAC after the fields."""
        lo = self.ctr_lo + 1
        hi = self.ctr_hi
        if lo > CTR_MASK:
            lo = 0
            hi += 1
        self.ctr_hi = hi
        self.ctr_lo = lo
        at = p.HEADER_LEN + length
        put_ctr(tx, at, hi, lo)
        self.mac.sign(tx, 1, at + p.CTR_LEN)


def check_request(mac: Mac, frame, floor_hi: int, floor_lo: int) -> int:
    """Verify the trailer of an authenticated request held in a Deframer Frame.

    Returns 1 when the MAC is right and the counter is newer than the floor, 0 when the
    MAC is wrong (or the module has no key), -1 when the MAC is right but the counter is
    not fresh (a replay).  The frame's bytes VERLEN..counter start at frame.off - 7.
    """
    end = frame.off + frame.length - p.MAC_LEN
    if not mac.check(frame.buf, frame.off - 7, end):
        return 0
    at = end - p.CTR_LEN
    if not ctr_newer(ctr_hi(frame.buf, at), ctr_lo(frame.buf, at), floor_hi, floor_lo):
        return -1
    return 1
