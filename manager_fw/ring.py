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
#
# This file is the format and the writer; reading (host tools, the history and event
# readers) is manager_fw/ring_reader.py, a store in a file (set aside when foreign)
# manager_fw/ring_file.py.


from shared.compat import const
from shared.protocol_frame import crc16

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
        # blocks of segment prep_seg already erased ahead of the frame that opens it
        # (erase_step(): a shell erases one block per call, outside the core's step)
        self.prep_seg = -1
        self.prep_blocks = 0
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

    def _upcoming(self):
        """The segment the next new segment will be: the current one again while it
        holds no data frame (seg_fresh), else the next one."""
        if self.seg_fresh and self.seg >= 0:
            return self.seg
        return (self.seg + 1) % self.count

    def erase_pending(self, frame_size):
        """Erase blocks still to do before a frame of frame_size bytes can be written."""
        if not self.would_start_segment(frame_size):
            return 0
        if self.prep_seg != self._upcoming():
            return self.blocks_per_segment
        return self.blocks_per_segment - self.prep_blocks

    def erase_step(self):
        """Erase one block of the segment the next new segment opens (first block first:
        a cut leaves what a cut during an erase leaves today).  True while more remain."""
        k = self._upcoming()
        if self.prep_seg != k:
            self.prep_seg = k
            self.prep_blocks = 0
        if self.prep_blocks < self.blocks_per_segment:
            self.device.erase(k * self.blocks_per_segment + self.prep_blocks)
            self.prep_blocks += 1
        return self.prep_blocks < self.blocks_per_segment

    def drain(self, q, max_ops, store):
        """Write the frames of q (a manager_fw.persist.FrameQueue) into the ring: at
        most max_ops device operations (one block erase or one frame each), so that a
        shell writes and erases outside the manager's time-critical step.  Returns the
        frames still queued.

        store (the history store, the event log) decides per frame:
        store._drop(kind, size) True gives the head frame up unwritten; store._written(
        kind) counts a frame stored; store._failed() when a write raises: that frame is
        given up and the exception goes on to the caller."""
        if q is None:
            raise ValueError("no queue: call enable_queue() first")
        ops = 0
        while ops < max_ops and q.peek():
            ops += 1
            kind = q.kind
            size = FRAME_OVERHEAD + q.length
            if store._drop(kind, size):
                q.pop()
                continue
            if self.erase_pending(size):
                self.erase_step()
                continue
            try:
                self.begin(kind, q.time_s, q.length)
                q.copy_to(self)
                self.end()
            except Exception:
                q.pop()
                store._failed()
                raise
            q.pop()
            store._written(kind)
        return q.frames

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
        done = self.prep_blocks if self.prep_seg == k else 0
        self.prep_seg = -1  # it holds a header from here on: erased again next time
        for b in range(done, self.blocks_per_segment):
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
