# StringCare module bus, the frame layer: the frame's constants, its CRC-16, reading
# its little-endian fields, the received Frame, and the Deframer that cuts a byte stream
# into frames (with Endpoint, the bus device built on it).  Sans-I/O.  The messages the
# frames carry (commands, payload layouts, slot timing, encoding) are shared/protocol.py,
# which also names everything here (protocol.X); docs/protocol.md is the contract.
#
# Frame (all multi-byte fields little-endian):
#   0      SYNC    0xA5
#   1      VERLEN  bits 7..6 protocol version (2), bits 5..0 payload length n (0..63)
#   2..3   DST     destination address
#   4..5   SRC     source address
#   6      CMD     command; bit 7 set in replies
#   7      SEQ     sequence number, echoed in replies
#   8..    PAYLOAD n bytes
#   8+n    CRC     CRC-16/IBM-3740 over bytes 1 .. 7+n (VERLEN through payload), LE
#
# The Deframer copies received bytes into its own preallocated buffer and hands out one
# reusable Frame: nothing allocates on the receive path.

from shared.compat import IS_MICROPYTHON, const

SYNC = const(0xA5)
VERSION = const(2)
HEADER_LEN = const(8)
CRC_LEN = const(2)
OVERHEAD = const(10)
PAYLOAD_MAX = const(63)
FRAME_MAX = const(73)
REPLY = const(0x80)


# --------------------------------------------------------------------------- CRC
# CRC-16/IBM-3740 (a.k.a. CRC-16/CCITT-FALSE): width 16, poly 0x1021, init 0xFFFF,
# no reflection, xorout 0, check("123456789") = 0x29B1.

CRC_INIT = const(0xFFFF)


def _make_table():
    from array import array

    table = array("H", bytes(512))
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table[i] = crc & 0xFFFF
    return table


_TABLE = _make_table()


def crc16_py(buf, start: int, end: int, crc: int = CRC_INIT) -> int:
    """CRC-16/IBM-3740 of buf[start:end] in plain Python (no slicing, no allocation)."""
    table = _TABLE
    for i in range(start, end):
        crc = ((crc << 8) & 0xFF00) ^ table[((crc >> 8) ^ buf[i]) & 0xFF]
    return crc


def copy_bytes_py(dst, doff: int, src, soff: int, n: int) -> None:
    """dst[doff:doff+n] = src[soff:soff+n] without slicing (slices allocate)."""
    for i in range(n):
        dst[doff + i] = src[soff + i]


crc16 = crc16_py
copy_bytes = copy_bytes_py

if not IS_MICROPYTHON:
    # CPython (host tools, the simulator): binascii.crc_hqx is CRC-16/CCITT computed in
    # C with the caller's initial value, i.e. exactly CRC-16/IBM-3740 from 0xFFFF; and
    # slices may allocate here.  Same results as the loops above (tests compare).
    from binascii import crc_hqx as _crc_hqx

    def crc16(buf, start: int, end: int, crc: int = CRC_INIT) -> int:
        """CRC-16/IBM-3740 of buf[start:end] (C implementation on CPython)."""
        return _crc_hqx(memoryview(buf)[start:end], crc)

    def copy_bytes(dst, doff: int, src, soff: int, n: int) -> None:
        dst[doff : doff + n] = memoryview(src)[soff : soff + n]


if IS_MICROPYTHON:
    # On MicroPython the same loop compiled by the viper emitter to machine code
    # (Thumb on the boards, x64 in the tests): the CRC is a third of a module's work
    # per request in plain bytecode.  Results are identical (a dual test compares).
    import micropython

    @micropython.viper
    def _crc16_viper(buf: ptr8, start: int, end: int, crc: int, table: ptr16) -> int:  # type: ignore[name-defined] # noqa: F821
        i = start
        while i < end:
            crc = ((crc << 8) & 0xFF00) ^ table[((crc >> 8) ^ buf[i]) & 0xFF]
            i += 1
        return crc

    def crc16(buf, start: int, end: int, crc: int = CRC_INIT) -> int:
        """CRC-16/IBM-3740 of buf[start:end] (viper; no slicing, no allocation)."""
        return int(_crc16_viper(buf, start, end, crc, _TABLE))

    @micropython.viper
    def copy_bytes(dst: ptr8, doff: int, src: ptr8, soff: int, n: int):  # type: ignore[name-defined] # noqa: F821
        i = 0
        while i < n:
            dst[doff + i] = src[soff + i]
            i += 1


# --------------------------------------------------------------------------- fields


def get_u16(buf, off: int) -> int:
    return buf[off] | (buf[off + 1] << 8)


def get_i16(buf, off: int) -> int:
    v = buf[off] | (buf[off + 1] << 8)
    return v - 0x10000 if v & 0x8000 else v


def get_u32(buf, off: int) -> int:
    return buf[off] | (buf[off + 1] << 8) | (buf[off + 2] << 16) | (buf[off + 3] << 24)


def get_i32(buf, off: int) -> int:
    v = buf[off] | (buf[off + 1] << 8) | (buf[off + 2] << 16)
    top = buf[off + 3]
    if top & 0x80:
        return v + ((top - 256) << 24)
    return v + (top << 24)


def get_u24(buf, off: int) -> int:
    return buf[off] | (buf[off + 1] << 8) | (buf[off + 2] << 16)


# --------------------------------------------------------------------------- decode


class Frame:
    """A received frame; fields are plain ints, the payload stays in `buf`.

    The payload is buf[off : off + length].  A Frame handed out by a Deframer stays
    valid until the next call to that Deframer's feed().
    """

    def __init__(self, buf) -> None:
        self.buf = buf
        self.off = HEADER_LEN
        self.version = 0
        self.length = 0
        self.dst = 0
        self.src = 0
        self.cmd = 0
        self.seq = 0

    def u8(self, i: int) -> int:
        return self.buf[self.off + i]

    def u16(self, i: int) -> int:
        b = self.buf
        o = self.off + i
        return b[o] | (b[o + 1] << 8)

    def i16(self, i: int) -> int:
        b = self.buf
        o = self.off + i
        v = b[o] | (b[o + 1] << 8)
        return v - 0x10000 if v & 0x8000 else v

    def u32(self, i: int) -> int:
        return get_u32(self.buf, self.off + i)

    def i32(self, i: int) -> int:
        return get_i32(self.buf, self.off + i)

    def is_reply(self) -> bool:
        return bool(self.cmd & REPLY)

    def payload(self) -> bytes:
        """The payload as a new bytes object (allocates; host code and tests)."""
        return bytes(self.buf[self.off : self.off + self.length])


# The Deframer's state lives in one array, so the byte work (copy in, hunt for SYNC,
# check the length and CRC) is one call of native code on MicroPython: a bytecode loop
# costs tens of instructions per byte and every call several hundred (docs/benchmarks.md,
# "Emulated Cortex-M0").  _feed and _poll below exist twice, in plain Python (CPython)
# and for the viper emitter (MicroPython), with identical results (dual tests).
_ST_START = const(0)  # first byte not yet parsed
_ST_FILL = const(1)  # bytes held
_ST_IDLE = const(2)  # the line went quiet since the last feed
_ST_GARBAGE = const(3)
_ST_CRC_ERRORS = const(4)
_ST_VERSION_ERRORS = const(5)
_ST_LAST_VERSION = const(6)
_ST_FRAMES = const(7)
_ST_LEN = const(8)
_BUF_LEN = const(256)


def _feed_py(buf, st, data, start: int, end: int) -> int:
    """Copy data[start:end] in after moving the unparsed tail to the front; return the
    number of bytes taken (0 when the buffer is full: its oldest candidate is dropped)."""
    st[_ST_IDLE] = 0
    s = st[_ST_START]
    fill = st[_ST_FILL]
    if s:
        fill -= s
        buf[0:fill] = buf[s : s + fill]
        st[_ST_START] = 0
        st[_ST_FILL] = fill
    room = _BUF_LEN - fill
    if room == 0:
        # Full of bytes that never made a frame: only possible with garbage whose fake
        # LEN fields keep us waiting.  Drop the oldest candidate.
        st[_ST_START] = 1
        st[_ST_GARBAGE] += 1
        return 0
    take = end - start
    if take > room:
        take = room
    buf[fill : fill + take] = data[start : start + take]
    st[_ST_FILL] = fill + take
    return take


def _poll_py(buf, st, table) -> int:
    """Where the next complete, CRC-valid, current-version frame starts (-1: none yet);
    skips and counts what cannot be one (see Deframer)."""
    s = st[_ST_START]
    fill = st[_ST_FILL]
    idle = st[_ST_IDLE]
    while True:
        first = s
        while s < fill and buf[s] != SYNC:
            s += 1
        st[_ST_GARBAGE] += s - first
        avail = fill - s
        if avail < 2:
            if idle:
                st[_ST_GARBAGE] += avail
                s = fill
            st[_ST_START] = s
            return -1
        verlen = buf[s + 1]
        if verlen < 0x40:  # version 0 is reserved: not a frame start
            s += 1
            st[_ST_GARBAGE] += 1
            continue
        total = OVERHEAD + (verlen & 0x3F)
        if avail < total:
            if idle:  # the sender stopped: this was never a frame
                s += 1
                st[_ST_GARBAGE] += 1
                continue
            st[_ST_START] = s
            return -1
        end = s + total - CRC_LEN
        if crc16(buf, s + 1, end) != buf[end] | (buf[end + 1] << 8):  # C on CPython
            st[_ST_CRC_ERRORS] += 1
            st[_ST_GARBAGE] += 1
            s += 1
            continue
        if verlen >> 6 != VERSION:
            st[_ST_VERSION_ERRORS] += 1
            st[_ST_LAST_VERSION] = verlen >> 6
            s += total
            continue
        st[_ST_START] = s + total
        st[_ST_FRAMES] += 1
        return s


_feed = _feed_py
_poll = _poll_py

if IS_MICROPYTHON:

    @micropython.viper
    def _feed(buf: ptr8, st: ptr32, data: ptr8, start: int, end: int) -> int:  # type: ignore[name-defined] # noqa: F811,F821
        st[_ST_IDLE] = 0
        s = st[_ST_START]
        fill = st[_ST_FILL]
        if s:
            fill -= s
            i = 0
            while i < fill:  # forward copy: the overlap is safe
                buf[i] = buf[s + i]
                i += 1
            st[_ST_START] = 0
            st[_ST_FILL] = fill
        room = _BUF_LEN - fill
        if room == 0:
            st[_ST_START] = 1
            st[_ST_GARBAGE] = st[_ST_GARBAGE] + 1
            return 0
        take = end - start
        if take > room:
            take = room
        i = 0
        while i < take:
            buf[fill + i] = data[start + i]
            i += 1
        st[_ST_FILL] = fill + take
        return take

    @micropython.viper
    def _poll(buf: ptr8, st: ptr32, table: ptr16) -> int:  # type: ignore[name-defined] # noqa: F811,F821
        s = st[_ST_START]
        fill = st[_ST_FILL]
        idle = st[_ST_IDLE]
        while True:
            first = s
            while s < fill and buf[s] != SYNC:
                s += 1
            st[_ST_GARBAGE] = st[_ST_GARBAGE] + s - first
            avail = fill - s
            if avail < 2:
                if idle:
                    st[_ST_GARBAGE] = st[_ST_GARBAGE] + avail
                    s = fill
                st[_ST_START] = s
                return -1
            verlen = buf[s + 1]
            if verlen < 0x40:
                s += 1
                st[_ST_GARBAGE] = st[_ST_GARBAGE] + 1
                continue
            total = OVERHEAD + (verlen & 0x3F)
            if avail < total:
                if idle:
                    s += 1
                    st[_ST_GARBAGE] = st[_ST_GARBAGE] + 1
                    continue
                st[_ST_START] = s
                return -1
            end = s + total - CRC_LEN
            crc = CRC_INIT
            i = s + 1
            while i < end:
                crc = ((crc << 8) & 0xFF00) ^ table[((crc >> 8) ^ buf[i]) & 0xFF]
                i += 1
            if crc != buf[end] | (buf[end + 1] << 8):
                st[_ST_CRC_ERRORS] = st[_ST_CRC_ERRORS] + 1
                st[_ST_GARBAGE] = st[_ST_GARBAGE] + 1
                s += 1
                continue
            if verlen >> 6 != VERSION:
                st[_ST_VERSION_ERRORS] = st[_ST_VERSION_ERRORS] + 1
                st[_ST_LAST_VERSION] = verlen >> 6
                s += total
                continue
            st[_ST_START] = s + total
            st[_ST_FRAMES] = st[_ST_FRAMES] + 1
            return s


def _counter(index: int):
    """A read-only attribute of a Deframer: its state array's entry index."""
    return property(lambda self: self._st[index])


class Deframer:
    """Turns a byte stream into frames; resynchronises after noise, garbage and cuts.

    feed() copies bytes in and returns how many it took; poll() returns the next
    complete, CRC-valid, current-version Frame or None.  idle() tells it the line has
    been silent (at least 2 character times): a candidate still waiting for bytes then
    cannot be a frame, so its SYNC is skipped and the rest rescanned (this frees a real
    frame that a corrupted length field was holding back).  Nothing here raises or
    allocates.  Rejected input is counted:
      garbage       bytes skipped while hunting for SYNC (noise, cut frames)
      crc_errors    candidate frames whose CRC failed (resync one byte later)
      version_errors CRC-valid frames of another protocol version (skipped whole;
                    last_version holds the version of the last one)
    """

    BUF_LEN = _BUF_LEN

    def __init__(self) -> None:
        from array import array

        self.buf = bytearray(_BUF_LEN)
        self._st = array("i", bytes(4 * _ST_LEN))
        self.frame = Frame(self.buf)

    # the counters (read for diagnostics; the state array holds them); last_version:
    # the protocol version of the last frame skipped for it
    garbage = _counter(_ST_GARBAGE)
    crc_errors = _counter(_ST_CRC_ERRORS)
    version_errors = _counter(_ST_VERSION_ERRORS)
    last_version = _counter(_ST_LAST_VERSION)
    frames = _counter(_ST_FRAMES)

    def reset(self) -> None:
        """Drop any partial frame (the shell calls this after a silent gap)."""
        st = self._st
        st[_ST_GARBAGE] += st[_ST_FILL] - st[_ST_START]
        st[_ST_START] = 0
        st[_ST_FILL] = 0

    def pending(self) -> int:
        return self._st[_ST_FILL] - self._st[_ST_START]

    def idle(self) -> None:
        """The line has gone quiet: the next poll() settles every waiting candidate."""
        self._st[_ST_IDLE] = 1

    def feed(self, data, start: int = 0, end: int = -1) -> int:
        """Copy data[start:end] (end=-1: to the end) in; return the number taken."""
        if end < 0:
            end = len(data)
        return _feed(self.buf, self._st, data, start, end)

    def poll(self):
        s = _poll(self.buf, self._st, _TABLE)
        if s < 0:
            return None
        buf = self.buf
        frame = self.frame
        v = buf[s + 1]
        frame.version = v >> 6
        frame.length = v & 0x3F
        frame.dst = buf[s + 2] | (buf[s + 3] << 8)
        frame.src = buf[s + 4] | (buf[s + 5] << 8)
        frame.cmd = buf[s + 6]
        frame.seq = buf[s + 7]
        frame.off = s + HEADER_LEN
        return frame


class Endpoint:
    """A bus device that answers requests (the battery module's core, the current sensor,
    the relay box): bytes from the bus in, each CRC-valid frame to self.handle(frame,
    now_ms), the length of the reply it left in self.tx out (the last one, 0: none).  A
    subclass sets self.deframer (a Deframer) and defines handle()."""

    deframer: "Deframer"

    def handle(self, frame, now_ms: int) -> int:
        raise NotImplementedError

    def bus_bytes(self, data, count: int, now_ms: int) -> int:
        """Bytes from the bus; returns the length of a reply in self.tx (0: none)."""
        reply = 0
        pos = 0
        while pos < count:
            pos += self.deframer.feed(data, pos, count)
            n = self._frames(now_ms)
            if n:
                reply = n
        return reply

    def bus_idle(self, now_ms: int) -> int:
        """The line has been quiet: settle cut frames.  Returns a reply length too."""
        self.deframer.idle()
        return self._frames(now_ms)

    def _frames(self, now_ms: int) -> int:
        d = self.deframer
        reply = 0
        frame = d.poll()
        while frame is not None:
            n = self.handle(frame, now_ms)
            if n:
                reply = n
            frame = d.poll()
        return reply
