# Frames waiting for their store: the hand-off between the manager core, which makes
# history snapshots and events inside its step, and the shell, which writes and erases
# the flash outside it (docs/manager.md, "Storage hand-off").
#
# A FrameQueue is a byte FIFO in one preallocated bytearray.  Each entry is
#   0 u8   kind (the ring frame kind)
#   1 u16  payload length N, little-endian
#   3 u32  time, StringCare seconds, little-endian
#   7 N    payload
# begin()/write()/end() add one entry (write() is the sink of shared.history_bits.BitWriter,
# so a snapshot is encoded straight into the queue); a full queue refuses the entry
# (begin() returns False) and the caller counts it.  The reader side gives the head
# entry's kind/time/length and streams its payload into a ring frame through a small
# scratch buffer.  Nothing allocates after construction.

from shared.compat import const

ENTRY_OVERHEAD = const(7)
CHUNK = const(64)


class FrameQueue:
    def __init__(self, capacity):
        self.buf = bytearray(capacity)
        self.capacity = capacity
        self.head = 0  # offset of the oldest entry
        self.used = 0  # bytes held by complete entries
        self.frames = 0  # complete entries
        self.wpos = -1  # write offset of the entry being added, -1 when none
        self.wleft = 0
        self.scratch = bytearray(CHUNK)
        self.kind = 0  # of the head entry, after peek()
        self.time_s = 0
        self.length = 0

    # -- adding ---------------------------------------------------------------------

    def fits(self, length):
        return self.used + ENTRY_OVERHEAD + length <= self.capacity

    def begin(self, kind, time_s, length):
        """Start an entry; False (nothing changed) when it does not fit."""
        if not self.fits(length):
            self.wpos = -1
            return False
        self.wpos = (self.head + self.used) % self.capacity
        self.wleft = ENTRY_OVERHEAD + length
        h = self.scratch
        h[0] = kind
        h[1] = length & 0xFF
        h[2] = (length >> 8) & 0xFF
        h[3] = time_s & 0xFF
        h[4] = (time_s >> 8) & 0xFF
        h[5] = (time_s >> 16) & 0xFF
        h[6] = (time_s >> 24) & 0xFF
        self._put(h, ENTRY_OVERHEAD)
        return True

    def write(self, buf, n):
        if n > self.wleft:
            raise ValueError("queued frame overrun: %d bytes with %d left" % (n, self.wleft))
        self._put(buf, n)

    def _put(self, buf, n):
        b = self.buf
        cap = self.capacity
        w = self.wpos
        for i in range(n):
            b[w] = buf[i]
            w += 1
            if w == cap:
                w = 0
        self.wpos = w
        self.wleft -= n

    def end(self):
        """Commit the entry begun (its payload complete)."""
        if self.wleft != 0:
            raise ValueError("queued frame ended with %d bytes missing" % self.wleft)
        used = self.wpos - self.head
        if used <= 0:
            used += self.capacity
        self.used = used
        self.frames += 1
        self.wpos = -1

    # -- taking ---------------------------------------------------------------------

    def peek(self):
        """True when an entry waits: its kind, time_s and length are set."""
        if not self.frames:
            return False
        b = self.buf
        cap = self.capacity
        h = self.head
        self.kind = b[h]
        self.length = b[(h + 1) % cap] | (b[(h + 2) % cap] << 8)
        t = 0
        for i in range(4):
            t |= b[(h + 3 + i) % cap] << (8 * i)
        self.time_s = t
        return True

    def copy_to(self, sink):
        """Stream the head entry's payload to sink.write(buf, n) (a ring frame)."""
        b = self.buf
        cap = self.capacity
        r = (self.head + ENTRY_OVERHEAD) % cap
        left = self.length
        s = self.scratch
        while left:
            n = CHUNK if left > CHUNK else left
            for i in range(n):
                s[i] = b[r]
                r += 1
                if r == cap:
                    r = 0
            sink.write(s, n)
            left -= n

    def pop(self):
        """Drop the head entry (after peek())."""
        size = ENTRY_OVERHEAD + self.length
        self.head = (self.head + size) % self.capacity
        self.used -= size
        self.frames -= 1
        if not self.frames:
            self.head = 0
            self.used = 0

    def clear(self):
        """Drop every entry; returns how many there were."""
        n = self.frames
        self.head = 0
        self.used = 0
        self.frames = 0
        self.wpos = -1
        return n
