# Reading a ring of frames (manager_fw/ring.py describes the format): every valid frame
# in order, and what was wrong with the rest.  Used by the history and event readers
# (host tools, status pages), never by the writer on a board.

from manager_fw.ring import (
    ERASED,
    FRAME_OVERHEAD,
    HEADER_SIZE,
    KIND_SEGMENT,
    MARK_COMMITTED,
    MAX_SEGMENT_SIZE,
    MAX_SEGMENTS,
    RING_NAMES,
    SEGMENT_HEADER_SIZE,
    SEGMENT_MAGIC,
    SEGMENT_PAYLOAD_SIZE,
    TRAILER_SIZE,
    StoreFormatError,
    get_u16,
    get_u32,
)
from shared.compat import const
from shared.protocol_frame import crc16

ERASED_CHUNK = const(1024)


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
        self._chunk = None
        self._ff = b""
        first = self._find_first_header()
        if first < 0:
            raise StoreFormatError(
                "no StringCare segment header in the %d bytes of this store: it is empty, "
                "erased, or not a StringCare history/event file" % device.size
            )
        self._take_geometry(first, ring_type)
        self.segments = self._scan_segments()

    def _take_geometry(self, first, ring_type):
        """Type and geometry from the first valid segment header; refused when absurd."""
        device = self.device
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

    def _scan_segments(self):
        """(sequence number, segment index) of every segment with a valid header, in
        order; a truncated image is reported."""
        device = self.device
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
        return segments

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
        # one chunk and its erased image per reader, allocated on first use: a board
        # reading its own log has no room for 8 KB of temporaries per call
        chunk = self._chunk
        if chunk is None:
            chunk = self._chunk = bytearray(ERASED_CHUNK)
            self._ff = b"\xff" * ERASED_CHUNK
        ff = self._ff
        p = start
        while p < end:
            n = end - p if end - p < ERASED_CHUNK else ERASED_CHUNK
            self.device.read(p, chunk, n)
            if n == ERASED_CHUNK:
                if chunk != ff:
                    return False
            else:
                for i in range(n):
                    if chunk[i] != ERASED:
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
                self._no_frame_left(pos, end, seq)
                break
            else:
                if end == dev_size and pos < end and not self._erased(pos, end):
                    self.problems.append(
                        "frame at 0x%x (segment %d) is cut off by the end of the file at 0x%x"
                        % (pos, seq, dev_size)
                    )

    def _no_frame_left(self, pos, end, seq):
        """Say why nothing valid follows pos in segment seq: a frame cut by a power cut
        (a note), bytes in the free space, or a damaged frame (problems)."""
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
