# One module's history on a manager board, for the module page (manager_fw/web/app.py):
# its voltage, temperature and Ri at every key frame of the history store
# (manager_fw/history_store.py), read in small steps through one 256-byte buffer:
# never the whole store, nor a snapshot of every module, in RAM.
#
#   h = ModuleHistory(hal.history_device, module, core.layout.module_count)
#   for _ in h.steps():          # a step: one segment header, or one frame
#       ...                      # the caller's chance to give the bus loop its turn
#   h.rows()  /  h.json_pieces() # [[time_s, ri_nohm, voltage_mv, temp_cc], ...]
#
# Why key frames only: a key frame holds every module's absolute values at a fixed bit
# position (shared/history.py, docs/history.md), so a module's 68 bits are read on their
# own; a delta needs every module in front of it decoded, which a board cannot afford
# for 600 modules over a 14 MB store.  Key frames come at least every
# DEFAULT_KEY_INTERVAL snapshots (a day in float charge) and every DEFAULT_KEY_SPACING
# bytes (more often during a discharge); the deltas between them are skipped by their
# length.  A key frame counts only when its CRC is right; the Linux manager and
# `stringcare history` decode every snapshot instead.
#
# Values in history units (mV, centi-°C, nΩ with 0 = not measured yet).  At most
# `points` points are kept (every 2nd, 4th, ... key frame once there are more; the
# newest always), in four arrays allocated once.  Key frames of another layout (the
# modules were counted differently then, so index `module` was another block) are
# skipped and counted.  What is damaged is said in `problems`; reading goes on in the
# next segment.  A segment the writer reuses while it is read is left out.

from manager_fw.ring import (
    ERASED,
    FRAME_OVERHEAD,
    HEADER_SIZE,
    KIND_SEGMENT,
    MARK_COMMITTED,
    MAX_SEGMENT_SIZE,
    MAX_SEGMENTS,
    RING_HISTORY,
    SEGMENT_HEADER_SIZE,
    SEGMENT_MAGIC,
    SEGMENT_PAYLOAD_SIZE,
    get_u16,
    get_u32,
)
from shared.compat import const
from shared.history import FORMAT_VERSION, KIND_KEY, RI_BITS, BitReader, zeros
from shared.protocol import crc16

POINTS = const(128)
CHUNK = const(256)  # bytes read at once to check a key frame's CRC
THRESHOLD_BITS = const(244)  # one string's thresholds in a key frame (shared/history.py)
MODULE_BITS = const(68)  # voltage 15, temperature 16, balance 7, state 4, Ri 26
MAX_PROBLEMS = const(4)


class ModuleHistory:
    def __init__(self, device, module, module_count=0, points=POINTS):
        self.device = device
        self.module = module
        self.module_count = module_count  # the layout in use (0: any)
        self.cap = points
        self.time_s = zeros("i", points + 1)  # + 1: the newest, kept at the end
        self.ri_nohm = zeros("i", points + 1)
        self.voltage_mv = zeros("H", points + 1)
        self.temp_cc = zeros("h", points + 1)
        self.n = 0  # points kept
        self.stride = 1  # every stride-th key frame is kept
        self.keys = 0  # key frames of this layout read, in time order
        self.other_layout = 0  # key frames of another layout, skipped
        self.problems = []
        self.buf = bytearray(CHUNK)
        self.reader = BitReader()
        self._last_t = -1  # the newest point, and whether it is not kept yet
        self._last_ri = 0
        self._last_mv = 0
        self._last_cc = 0
        self._last_out = False
        self.segment_size = 0
        self.count = 0

    # -- reading ------------------------------------------------------------------------

    def steps(self):
        """Read the store; yields None after every small piece of work."""
        dev = self.device
        step = dev.erase_size
        first = -1
        addr = 0
        while addr + SEGMENT_HEADER_SIZE <= dev.size:
            if self._header(addr) > 0:
                first = addr
                break
            addr += step
            yield None
        if first < 0:
            return  # nothing stored yet
        if not self._geometry(first):
            return
        size = self.segment_size
        present = dev.size // size
        if present > self.count:
            present = self.count
        oldest = -1
        oldest_seq = 0
        for k in range(present):  # the oldest segment: reading starts there
            seq = self._header(k * size)
            if seq > 0 and (oldest < 0 or seq < oldest_seq):
                oldest, oldest_seq = k, seq
            yield None
        last_seq = oldest_seq - 1
        for j in range(present):
            k = (oldest + j) % present
            seq = self._header(k * size)
            if seq <= last_seq or (j == 0 and seq != oldest_seq):
                continue  # erased, damaged, or reused while this was read
            last_seq = seq
            yield from self._segment(k * size, k * size + size)
        if self._last_out:  # the newest point, always
            self._put(self.n, self._last_t, self._last_ri, self._last_mv, self._last_cc)
            self.n += 1
            self._last_out = False

    def _segment(self, start, end):
        """The frames of the segment at [start, end); yields None after each."""
        dev = self.device
        pos = start + SEGMENT_HEADER_SIZE
        while pos + FRAME_OVERHEAD <= end:
            b = self.buf
            dev.read(pos, b, HEADER_SIZE)
            if b[0] == ERASED:
                break  # the segment's free tail (or a frame being written)
            length = get_u16(b, 2)
            kind = b[1]
            if (
                b[0] != MARK_COMMITTED
                or kind == KIND_SEGMENT
                or pos + FRAME_OVERHEAD + length > end
            ):
                self._problem("damaged bytes at 0x%x: the rest of that segment is left out" % pos)
                break
            if kind == KIND_KEY and not self._key(pos, length, get_u32(b, 4)):
                self._problem(
                    "key frame at 0x%x: bad CRC; the rest of that segment is left out" % pos
                )
                break
            pos += FRAME_OVERHEAD + length
            yield None

    def _problem(self, text):
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    def _header(self, start):
        """The sequence number of a valid segment header of this ring at start, else 0."""
        dev = self.device
        if start + SEGMENT_HEADER_SIZE > dev.size:
            return 0
        b = self.buf
        dev.read(start, b, SEGMENT_HEADER_SIZE)
        if b[0] != MARK_COMMITTED or b[1] != KIND_SEGMENT or get_u16(b, 2) != SEGMENT_PAYLOAD_SIZE:
            return 0
        end = HEADER_SIZE + SEGMENT_PAYLOAD_SIZE
        if crc16(b, 1, end) != get_u16(b, end):
            return 0
        p = HEADER_SIZE
        for i in range(4):
            if b[p + i] != SEGMENT_MAGIC[i]:
                return 0
        if b[p + 5] != RING_HISTORY:
            return 0
        if self.segment_size and (
            get_u32(b, p + 12) != self.segment_size or get_u32(b, p + 16) != self.count
        ):
            return 0
        return get_u32(b, p + 8)

    def _geometry(self, first):
        """The ring's geometry from its first header (left in self.buf); False if absurd."""
        b = self.buf
        size = get_u32(b, HEADER_SIZE + 12)
        count = get_u32(b, HEADER_SIZE + 16)
        if (
            size <= 0
            or size % self.device.erase_size
            or size > MAX_SEGMENT_SIZE
            or count < 2
            or count > MAX_SEGMENTS
            or first % size
        ):
            self._problem("the history store's first header names an impossible geometry")
            return False
        self.segment_size = size
        self.count = count
        return True

    def _bits(self, payload, bit, nbits):
        """The reader at bit `bit` of the payload starting at device address payload,
        with the nbits (<= 68) from there in its window."""
        off = bit & 7
        n = (off + nbits + 7) >> 3
        self.device.read(payload + (bit >> 3), self.buf, n)
        r = self.reader
        r.reset(self.buf, n)
        r.pos = off
        return r

    def _key(self, pos, length, time_s):
        """Read one key frame: its CRC, then this module's values; False: a bad CRC."""
        dev = self.device
        b = self.buf
        crc_end = pos + HEADER_SIZE + length
        addr = pos + 1
        crc = 0xFFFF
        while addr < crc_end:
            n = crc_end - addr
            if n > CHUNK:
                n = CHUNK
            dev.read(addr, b, n)
            crc = crc16(b, 0, n, crc)
            addr += n
        dev.read(crc_end, b, 2)
        if crc != get_u16(b, 0):
            return False
        payload = pos + HEADER_SIZE
        total = 8 * length
        if total < 48:
            self._problem("key frame at 0x%x is too short" % pos)
            return True
        r = self._bits(payload, 0, 40)
        version = r.get(8)
        r.get(8)  # mode
        m = r.get(16)
        strings = r.get(8)
        if version != FORMAT_VERSION or m == 0 or strings == 0:
            self._problem("key frame at 0x%x: format %d, %d modules in %d strings" % (
                pos, version, m, strings))  # fmt: skip
            return True
        if (self.module_count and m != self.module_count) or self.module >= m:
            self.other_layout += 1
            return True
        bit = 40 + 16 * strings
        flags = self._bits(payload, bit, 8).get(8)
        bit += 8
        if flags & 1:
            for s in range(strings):  # each string: "the same as the one before", or its own
                if bit >= total:
                    break
                same = self._bits(payload, bit, 1).get(1)
                bit += 1
                if not same or s == 0:
                    bit += THRESHOLD_BITS
        bit += 24 * strings + MODULE_BITS * self.module
        if bit + MODULE_BITS > total:
            self._problem("key frame at 0x%x is shorter than its layout" % pos)
            return True
        r = self._bits(payload, bit, MODULE_BITS)
        mv = r.get(15)
        cc = r.get_signed(16)
        r.get(7 + 4)  # balance level, state
        ri = r.get_wide(RI_BITS)
        self._point(time_s, ri, mv, cc)
        return True

    # -- the points ---------------------------------------------------------------------

    def _put(self, k, t, ri, mv, cc):
        self.time_s[k] = t
        self.ri_nohm[k] = ri
        self.voltage_mv[k] = mv
        self.temp_cc[k] = cc

    def _point(self, t, ri, mv, cc):
        if t < self._last_t:
            return  # out of order: a segment reused while it was read
        self._last_t = t
        self._last_ri = ri
        self._last_mv = mv
        self._last_cc = cc
        self._last_out = True
        k = self.keys
        self.keys += 1
        if k % self.stride:
            return
        if self.n == self.cap:  # keep every other one, from now on every 2*stride-th
            half = 0
            i = 0
            while i < self.n:
                self._put(half, self.time_s[i], self.ri_nohm[i], self.voltage_mv[i],
                          self.temp_cc[i])  # fmt: skip
                half += 1
                i += 2
            self.n = half
            self.stride *= 2
            if k % self.stride:
                return
        self._put(self.n, t, ri, mv, cc)
        self.n += 1
        self._last_out = False

    # -- the answer ---------------------------------------------------------------------

    def rows(self):
        return [
            [self.time_s[k], self.ri_nohm[k], self.voltage_mv[k], self.temp_cc[k]]
            for k in range(self.n)
        ]

    def json_pieces(self, per_piece=16):
        """The rows as JSON text in pieces (a list of lists), never all of it at once."""
        yield "["
        k = 0
        while k < self.n:
            end = k + per_piece if k + per_piece < self.n else self.n
            yield ",".join(
                "[%d,%d,%d,%d]"
                % (
                    self.time_s[j],
                    self.ri_nohm[j],
                    self.voltage_mv[j],
                    self.temp_cc[j],
                )  # fmt: skip
                for j in range(k, end)
            ) + ("," if end < self.n else "")
            k = end
        yield "]"
