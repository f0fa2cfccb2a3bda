# A power-loss-safe ring of frames on a block device: the storage under the history
# store (manager_fw/history_store.py) and the event log (manager_fw/events.py).
#
# The device is split into segments of `segment_size` bytes (whole erase blocks).
# Every segment starts with a segment-header frame (ring type, geometry, sequence
# number) followed by data frames.  Segments are filled in index order; when the last
# one is full the oldest is erased and reused.  Reading goes by sequence number.
#
# Frame (docs/history.md has the byte table):
#   0  u8    commit mark: 0xFF while the frame is written, MARK_COMMITTED once complete
#   1  u8    kind
#   2  u16   payload length N, little-endian
#   4  u32   time, StringCare seconds, little-endian
#   8  N     payload
#   8+N u16  CRC-16/CCITT-FALSE of bytes 1 .. 8+N-1, little-endian
# The commit mark is programmed last (flash allows clearing its bits later), so a
# frame whose writing was cut at any byte is never taken for a complete one; the CRC
# catches a frame damaged later.  After a power cut the writer never programs behind
# a torn frame: it closes that segment and continues in the next, so a power cut loses
# at most the frame being written.


from shared.compat import const
from shared.protocol import crc16

MARK_COMMITTED = const(0xA5)
ERASED = const(0xFF)
HEADER_SIZE = const(8)
TRAILER_SIZE = const(2)
FRAME_OVERHEAD = const(10)

KIND_SEGMENT = const(0x53)  # 'S'
SEGMENT_MAGIC = b"SCRG"
RING_FORMAT = const(1)
SEGMENT_PAYLOAD_SIZE = const(20)
SEGMENT_HEADER_SIZE = const(30)  # FRAME_OVERHEAD + SEGMENT_PAYLOAD_SIZE

RING_HISTORY = const(1)
RING_EVENTS = const(2)
RING_NAMES = ("?", "history store", "event log")

MAX_PAYLOAD = const(0xFFFF)
# Geometry a reader accepts (a crafted header may name anything).
MAX_SEGMENTS = const(65536)
MAX_SEGMENT_SIZE = const(16777216)


# The bus protocol's CRC-16/IBM-3740 (= CRC-16/CCITT-FALSE), viper-compiled on boards.


def get_u16(buf, i):
    return buf[i] | (buf[i + 1] << 8)


def get_u32(buf, i):
    return buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24)


def put_u16(buf, i, v):
    buf[i] = v & 0xFF
    buf[i + 1] = (v >> 8) & 0xFF


def put_u32(buf, i, v):
    buf[i] = v & 0xFF
    buf[i + 1] = (v >> 8) & 0xFF
    buf[i + 2] = (v >> 16) & 0xFF
    buf[i + 3] = (v >> 24) & 0xFF


class StoreFormatError(Exception):
    """The device holds a ring of another type or geometry, or none at all."""


def check_geometry(device, segment_size):
    es = device.erase_size
    if segment_size <= 0 or segment_size % es:
        raise ValueError(
            "segment size %d must be a positive multiple of the device's erase size %d"
            % (segment_size, es)
        )
    count = device.size // segment_size
    if count < 2:
        raise ValueError(
            "a ring needs at least 2 segments: %d-byte device, %d-byte segments; use "
            "smaller segments or a larger device" % (device.size, segment_size)
        )
    return count


class Ring:
    """The writer side: open (scan), then begin/write/end one frame at a time.

    begin() reserves room for a whole frame (starting a new segment when the current
    one cannot hold it) and writes its header; write() streams the payload; end()
    writes the CRC and then the commit mark, and syncs.  Nothing allocates per frame.
    """

    def __init__(self, device, ring_type, segment_size, erase_foreign=False):
        self.device = device
        self.ring_type = ring_type
        self.segment_size = segment_size
        self.count = check_geometry(device, segment_size)
        self.blocks_per_segment = segment_size // device.erase_size
        self.hdr = bytearray(HEADER_SIZE)
        self.one = bytearray(1)
        self.scratch = bytearray(64)
        self.seg = -1
        self.seq = 0
        self.pos = 0
        self.sealed = True  # no writable tail: the next frame opens a new segment
        self.frame_start = 0
        self.wpos = 0
        self.crc = 0
        self.remaining = -1
        self.consumed = 0  # bytes used up: frames, segment headers, abandoned tails
        self.frames_written = 0
        self.segments_started = 0
        # no data frame committed in the current segment yet: after a failed write the
        # next frame reuses it instead of erasing the oldest (a device that keeps
        # failing never eats the history segment by segment)
        self.seg_fresh = False
        # offsets of segments whose header was committed but is damaged (bad CRC, bad
        # magic or length): their frames cannot be read in order any more
        self.damaged = []
        self._open(erase_foreign)

    # -- opening ------------------------------------------------------------------

    def _read_segment_header(self, k):
        """Sequence number of segment k's valid header, 0 if none; raises on a foreign one."""
        start = k * self.segment_size
        buf = self.scratch
        self.device.read(start, buf, SEGMENT_HEADER_SIZE)
        if buf[0] != MARK_COMMITTED:
            # erased, or a header whose writing was cut (power loss); but a committed
            # frame behind it means the header was complete once: damaged since
            if buf[0] != ERASED:
                self.device.read(start + SEGMENT_HEADER_SIZE, self.one, 1)
                if self.one[0] == MARK_COMMITTED:
                    self.damaged.append(start)
            return 0
        p = HEADER_SIZE
        if (
            buf[1] != KIND_SEGMENT
            or get_u16(buf, 2) != SEGMENT_PAYLOAD_SIZE
            or crc16(buf, 1, HEADER_SIZE + SEGMENT_PAYLOAD_SIZE)
            != get_u16(buf, HEADER_SIZE + SEGMENT_PAYLOAD_SIZE)
            or bytes(buf[p : p + 4]) != SEGMENT_MAGIC
        ):
            self.damaged.append(start)
            return 0
        if (
            buf[p + 4] != RING_FORMAT
            or buf[p + 5] != self.ring_type
            or get_u32(buf, p + 12) != self.segment_size
            or get_u32(buf, p + 16) != self.count
        ):
            kind = buf[p + 5]
            raise StoreFormatError(
                "segment %d at 0x%x belongs to a %s (format %d) of %d segments of %d bytes; "
                "expected a %s of %d segments of %d bytes: erase the store (erase_foreign) "
                "or open it with its own geometry"
                % (
                    k,
                    start,
                    RING_NAMES[kind] if kind < len(RING_NAMES) else "ring type %d" % kind,
                    buf[p + 4],
                    get_u32(buf, p + 16),
                    get_u32(buf, p + 12),
                    RING_NAMES[self.ring_type],
                    self.count,
                    self.segment_size,
                )
            )
        return get_u32(buf, p + 8)

    def _open(self, erase_foreign):
        best = -1
        best_seq = 0
        for k in range(self.count):
            try:
                seq = self._read_segment_header(k)
            except StoreFormatError:
                if not erase_foreign:
                    raise
                self._erase_all()
                best = -1
                break
            if seq > best_seq:
                best_seq = seq
                best = k
        if best < 0:
            self.seg = self.count - 1  # the first frame opens segment 0
            self.seq = 0
            self.sealed = True
            self.seg_fresh = False
            return
        self.seg = best
        self.seq = best_seq
        start = best * self.segment_size
        end = start + self.segment_size
        pos = start + SEGMENT_HEADER_SIZE
        hdr = self.hdr
        dev = self.device
        while pos + FRAME_OVERHEAD <= end:
            dev.read(pos, hdr, HEADER_SIZE)
            if hdr[0] != MARK_COMMITTED:
                break
            size = FRAME_OVERHEAD + get_u16(hdr, 2)
            if pos + size > end:
                break
            pos += size
        self.pos = pos
        self.sealed = not self._erased(pos, end)
        self.seg_fresh = pos == start + SEGMENT_HEADER_SIZE
        # what this segment already holds counts as used
        self.consumed = pos - start

    def _erased(self, start, end):
        buf = self.scratch
        dev = self.device
        pos = start
        while pos < end:
            n = end - pos
            if n > len(buf):
                n = len(buf)
            dev.read(pos, buf, n)
            i = 0
            while i < n:
                if buf[i] != ERASED:
                    return False
                i += 1
            pos += n
        return True

    def _erase_all(self):
        blocks = self.device.size // self.device.erase_size
        for b in range(blocks):
            self.device.erase(b)

    # -- writing ------------------------------------------------------------------

    def would_start_segment(self, frame_size):
        """True when a frame of frame_size bytes would go into a new segment."""
        return self.sealed or self.pos + frame_size > (self.seg + 1) * self.segment_size

    def begin(self, kind, time_s, length):
        size = FRAME_OVERHEAD + length
        if length > MAX_PAYLOAD or size > self.segment_size - SEGMENT_HEADER_SIZE:
            raise ValueError(
                "a frame of %d bytes can never fit a %d-byte segment: use larger segments"
                % (size, self.segment_size)
            )
        if self.would_start_segment(size):
            self._next_segment(time_s)
        self._begin_at(self.pos, kind, time_s, length)

    def _begin_at(self, pos, kind, time_s, length):
        hdr = self.hdr
        # sealed until end(): a frame cut short leaves no writable tail behind it
        self.sealed = True
        hdr[0] = kind
        put_u16(hdr, 1, length)
        put_u32(hdr, 3, time_s)
        self.frame_start = pos
        self.device.program(pos + 1, hdr, HEADER_SIZE - 1)
        self.crc = crc16(hdr, 0, HEADER_SIZE - 1)
        self.wpos = pos + HEADER_SIZE
        self.remaining = length

    def write(self, buf, n):
        if n > self.remaining:
            raise ValueError(
                "frame payload overrun: %d bytes written with %d left" % (n, self.remaining)
            )
        self.device.program(self.wpos, buf, n)
        self.crc = crc16(buf, 0, n, self.crc)
        self.wpos += n
        self.remaining -= n

    def end(self):
        if self.remaining != 0:
            raise ValueError("frame ended with %d payload bytes missing" % self.remaining)
        hdr = self.hdr
        put_u16(hdr, 0, self.crc)
        self.device.program(self.wpos, hdr, TRAILER_SIZE)
        self.one[0] = MARK_COMMITTED
        self.device.program(self.frame_start, self.one, 1)
        self.device.sync()
        size = self.wpos + TRAILER_SIZE - self.frame_start
        self.pos = self.wpos + TRAILER_SIZE
        self.remaining = -1
        self.sealed = False
        self.seg_fresh = False
        self.consumed += size
        self.frames_written += 1

    def _next_segment(self, time_s):
        if self.seg_fresh:
            # the current segment holds no data frame (a write in it failed or was cut
            # right after its header): start it again rather than erase the oldest
            k = self.seg
            self.consumed -= self.pos - k * self.segment_size
        else:
            seg_start = (self.seg + 1) * self.segment_size if self.seg >= 0 else 0
            if self.seg >= 0 and self.pos > self.seg * self.segment_size:
                # the unused tail of the segment we leave is used up too
                self.consumed += seg_start - self.pos
            k = (self.seg + 1) % self.count
        first = k * self.blocks_per_segment
        for b in range(self.blocks_per_segment):
            self.device.erase(first + b)
        start = k * self.segment_size
        self.seg = k
        self.seq += 1
        self.pos = start
        self.sealed = True
        self.seg_fresh = True
        buf = self.scratch
        buf[0] = SEGMENT_MAGIC[0]
        buf[1] = SEGMENT_MAGIC[1]
        buf[2] = SEGMENT_MAGIC[2]
        buf[3] = SEGMENT_MAGIC[3]
        buf[4] = RING_FORMAT
        buf[5] = self.ring_type
        buf[6] = 0
        buf[7] = 0
        put_u32(buf, 8, self.seq)
        put_u32(buf, 12, self.segment_size)
        put_u32(buf, 16, self.count)
        self._begin_at(start, KIND_SEGMENT, time_s, SEGMENT_PAYLOAD_SIZE)
        self.write(buf, SEGMENT_PAYLOAD_SIZE)
        self.end()
        self.seg_fresh = True
        self.frames_written -= 1
        self.segments_started += 1


class RingReader:
    """The reader side: every valid frame in order, and what was wrong with the rest.

    Works on read-only and truncated images.  frames() yields
    (offset, kind, time_s, payload, length, gap) with payload a reused bytearray;
    gap is True for the first frame of a segment and after skipped bytes (a decoder
    that builds on earlier frames must restart there).  `problems` collects damage
    (corrupt or missing bytes, with offsets); `notes` collects what a power cut leaves
    (one incomplete frame at the end of a segment), which loses nothing else.
    """

    def __init__(self, device, ring_type=None, kinds=None):
        self.device = device
        self.problems = []
        self.notes = []
        self.kinds = kinds
        self.buf = bytearray(256)
        first = self._find_first_header()
        if first < 0:
            raise StoreFormatError(
                "no StringCare segment header in the %d bytes of this store: it is empty, "
                "erased, or not a StringCare history/event file" % device.size
            )
        b = self.buf
        found_type = b[HEADER_SIZE + 5]
        self.ring_type = found_type
        self.segment_size = get_u32(b, HEADER_SIZE + 12)
        self.count = get_u32(b, HEADER_SIZE + 16)
        if ring_type is not None and found_type != ring_type:
            raise StoreFormatError(
                "this is a %s, not a %s"
                % (
                    RING_NAMES[found_type] if found_type < len(RING_NAMES) else "?",
                    RING_NAMES[ring_type],
                )
            )
        if self.segment_size <= 0 or self.segment_size % device.erase_size:
            raise StoreFormatError(
                "segment header at 0x%x names segments of %d bytes, not a multiple of %d"
                % (first, self.segment_size, device.erase_size)
            )
        if (
            self.count < 2
            or self.count > MAX_SEGMENTS
            or self.segment_size > MAX_SEGMENT_SIZE
            or first % self.segment_size
        ):
            # a crafted or corrupted header with a valid CRC: refuse at once rather than
            # walk billions of segments that are not there
            raise StoreFormatError(
                "segment header at 0x%x names an impossible geometry: %d segments of %d "
                "bytes (a StringCare store has 2..%d segments of at most %d bytes, the "
                "first header at a multiple of the segment size); not a StringCare store "
                "or its first header is forged" % (
                    first, self.count, self.segment_size, MAX_SEGMENTS, MAX_SEGMENT_SIZE
                )
            )  # fmt: skip
        expected = self.segment_size * self.count
        if device.size < expected:
            missing = (expected - device.size + self.segment_size - 1) // self.segment_size
            self.problems.append(
                "store is truncated: %d bytes, its geometry says %d (%d segments of %d); "
                "the last %d segment(s) are missing or cut short"
                % (device.size, expected, self.count, self.segment_size, missing)
            )
        segments = []
        present = (device.size + self.segment_size - 1) // self.segment_size
        if present > self.count:
            present = self.count
        for k in range(present):
            start = k * self.segment_size
            if start + SEGMENT_HEADER_SIZE > device.size:
                continue
            seq = self._segment_seq(start)
            if seq > 0:
                segments.append((seq, k))
        segments.sort()
        self.segments = segments

    def _read(self, addr, n):
        if n > len(self.buf):
            self.buf = bytearray(n + 256)
        self.device.read(addr, self.buf, n)
        return self.buf

    def _valid_header_frame(self, start):
        if start + SEGMENT_HEADER_SIZE > self.device.size:
            return False
        b = self._read(start, SEGMENT_HEADER_SIZE)
        if b[0] != MARK_COMMITTED or b[1] != KIND_SEGMENT:
            return False
        if get_u16(b, 2) != SEGMENT_PAYLOAD_SIZE:
            return False
        crc = crc16(b, 1, HEADER_SIZE + SEGMENT_PAYLOAD_SIZE)
        if crc != get_u16(b, HEADER_SIZE + SEGMENT_PAYLOAD_SIZE):
            return False
        return bytes(b[HEADER_SIZE : HEADER_SIZE + 4]) == SEGMENT_MAGIC

    def _find_first_header(self):
        step = self.device.erase_size
        addr = 0
        while addr + SEGMENT_HEADER_SIZE <= self.device.size:
            if self._valid_header_frame(addr):
                return addr
            addr += step
        return -1

    def _segment_seq(self, start):
        if not self._valid_header_frame(start):
            self._invalid_header(start)
            return 0
        b = self.buf
        p = HEADER_SIZE
        if (
            b[p + 5] != self.ring_type
            or get_u32(b, p + 12) != self.segment_size
            or get_u32(b, p + 16) != self.count
        ):
            self.problems.append(
                "segment at 0x%x has another ring's header (type %d, %d x %d bytes); skipped"
                % (start, b[p + 5], get_u32(b, p + 16), get_u32(b, p + 12))
            )
            return 0
        return get_u32(b, p + 8)

    def _invalid_header(self, start):
        """Say what a segment without a valid header holds: nothing (erased), what a
        power cut leaves (a header or an erase cut short: nothing lost), or frames
        behind a damaged header (a problem: they cannot be placed in time)."""
        end = start + self.segment_size
        if end > self.device.size:
            end = self.device.size
        b = self._read(start, SEGMENT_HEADER_SIZE)
        header_erased = True
        for i in range(SEGMENT_HEADER_SIZE):
            if b[i] != ERASED:
                header_erased = False
                break
        if self._erased(start + SEGMENT_HEADER_SIZE, end):
            if not header_erased:
                self.notes.append(
                    "segment at 0x%x: power was lost while its header was written; it holds "
                    "nothing" % start
                )
            return
        if header_erased:
            self.notes.append(
                "segment at 0x%x: power was lost while it was erased for reuse; what is "
                "left of its old frames is given up on purpose" % start
            )
            return
        self.problems.append(
            "segment at 0x%x has a damaged header (bad commit mark, CRC, magic or length) "
            "in front of frames: those frames cannot be placed in time and are skipped" % start
        )

    def _frame_at(self, pos, end):
        """Length of a valid frame at pos (its payload left in self.buf[8:]), else -1.

        -2: a committed frame that runs past the end of the (truncated) device.
        """
        dev_size = self.device.size
        if pos + FRAME_OVERHEAD > end:
            return -1
        b = self._read(pos, HEADER_SIZE)
        if b[0] != MARK_COMMITTED:
            return -1
        kind = b[1]
        if kind == KIND_SEGMENT or (self.kinds is not None and kind not in self.kinds):
            return -1
        length = get_u16(b, 2)
        size = FRAME_OVERHEAD + length
        if pos + size > end:
            if pos + size > dev_size and end == dev_size:
                return -2
            return -1
        b = self._read(pos, size)
        if crc16(b, 1, size - TRAILER_SIZE) != get_u16(b, size - 2):
            return -1
        return length

    def _resync(self, pos, end):
        """Offset of the next valid frame after pos, or -1."""
        p = pos + 1
        chunk = bytearray(256)
        while p + FRAME_OVERHEAD <= end:
            n = end - p
            if n > len(chunk):
                n = len(chunk)
            self.device.read(p, chunk, n)
            i = 0
            while i < n:
                if chunk[i] == MARK_COMMITTED and self._frame_at(p + i, end) >= 0:
                    return p + i
                i += 1
            p += n
        return -1

    def _erased(self, start, end):
        chunk = bytearray(4096)
        ff = b"\xff" * 4096
        p = start
        while p < end:
            n = end - p if end - p < 4096 else 4096
            self.device.read(p, chunk, n)
            if n == 4096:
                if chunk != ff:
                    return False
            elif bytes(chunk[:n]) != ff[:n]:
                return False
            p += n
        return True

    def frames(self):
        dev_size = self.device.size
        for seq, k in self.segments:
            start = k * self.segment_size
            end = start + self.segment_size
            if end > dev_size:
                end = dev_size
            pos = start + SEGMENT_HEADER_SIZE
            gap = True
            while pos + FRAME_OVERHEAD <= end:
                length = self._frame_at(pos, end)
                if length >= 0:
                    b = self.buf
                    payload = bytearray(b[HEADER_SIZE : HEADER_SIZE + length])
                    yield (pos, b[1], get_u32(b, 4), payload, length, gap)
                    gap = False
                    pos += FRAME_OVERHEAD + length
                    continue
                if length == -2:
                    self.problems.append(
                        "frame at 0x%x (segment %d) is cut off by the end of the file at 0x%x"
                        % (pos, seq, dev_size)
                    )
                    break
                if self._erased(pos, end):
                    break  # the segment's free tail
                nxt = self._resync(pos, end)
                if nxt >= 0:
                    self.problems.append(
                        "damaged bytes 0x%x-0x%x in segment %d hold no valid frame; skipped, "
                        "reading resumes at 0x%x" % (pos, nxt - 1, seq, nxt)
                    )
                    pos = nxt
                    gap = True
                    continue
                b = self._read(pos, 2)
                if b[0] != MARK_COMMITTED and (b[0] != ERASED or b[1] != ERASED):
                    # a frame whose writing was cut: its first bytes are programmed
                    self.notes.append(
                        "incomplete frame at 0x%x (segment %d): power was lost while it was "
                        "written; it is ignored" % (pos, seq)
                    )
                elif b[0] == ERASED:
                    self.problems.append(
                        "bytes in the free space 0x%x-0x%x of segment %d are not erased "
                        "(damage or a foreign write); no frame was lost to it" % (pos, end - 1, seq)
                    )
                else:
                    self.problems.append(
                        "damaged frame at 0x%x (segment %d): bad CRC or length; the rest of "
                        "the segment (0x%x-0x%x) holds no valid frame" % (pos, seq, pos, end - 1)
                    )
                break
            else:
                if end == dev_size and pos < end and not self._erased(pos, end):
                    self.problems.append(
                        "frame at 0x%x (segment %d) is cut off by the end of the file at 0x%x"
                        % (pos, seq, dev_size)
                    )


def open_file_store(path, size, ring_type, segment_size):
    """A ring store in a file, for shells with a filesystem (Linux, the unix port, a
    board's littlefs): (device, fault).

    fault is None when the file is ready for its ring; a text when the file held a ring
    of another type or geometry (a copy from another manager or board): it is renamed
    to path.foreign (.foreign.1, ... when that exists), kept for `stringcare history`,
    and a new store is started; an exception (device None) when the file cannot be
    opened or made (EIO, ENOSPC, EROFS, EACCES).  Never raises: a manager starts and
    monitors without its store (ManagerCore.report_store says so)."""
    import os

    from manager_fw.blockdev import FileBlockDevice

    try:
        dev = FileBlockDevice(path, size)
    except Exception as e:  # noqa: BLE001 - whatever the filesystem raises
        return None, e
    try:
        Ring(dev, ring_type, segment_size)
        return dev, None
    except StoreFormatError as e:
        why = str(e)
    except Exception:  # noqa: BLE001 - unreadable: the core reports it when opening
        return dev, None
    dev.close()
    aside = path + ".foreign"
    n = 0
    while True:
        try:
            os.stat(aside)
        except OSError:
            break
        n += 1
        aside = "%s.foreign.%d" % (path, n)
    try:
        os.rename(path, aside)
        dev = FileBlockDevice(path, size)
    except Exception as e:  # noqa: BLE001
        return None, e
    return dev, (
        "%s held %s; it was kept as %s (read it with `stringcare history`) and a new "
        "store was started" % (path, why.split(";")[0].split(" belongs to ")[-1], aside)
    )
