# The bit layer of the history record format (shared/history.py): an MSB-first bit
# writer that streams to a sink through a small buffer (nothing allocates per record),
# its reader, and the tiered variable-length code of the deltas (docs/history.md).
# Pure and dual-target: integers only.


class BitWriter:
    """MSB-first bit packer streaming to sink.write(buf, n) through a small buffer.

    With sink None it only counts (the dry run that sizes a frame before it is
    written).  put() takes at most 16 bits; no allocation.
    """

    def __init__(self, buffer_size=64):
        self.buf = bytearray(buffer_size)
        self.sink = None
        self.acc = 0
        self.nacc = 0
        self.fill = 0
        self.bits = 0

    def reset(self, sink):
        self.sink = sink
        self.acc = 0
        self.nacc = 0
        self.fill = 0
        self.bits = 0

    def put(self, value, width):
        acc = (self.acc << width) | value
        n = self.nacc + width
        self.bits += width
        while n >= 8:
            n -= 8
            if self.sink is not None:
                self.buf[self.fill] = (acc >> n) & 0xFF
                self.fill += 1
                if self.fill == len(self.buf):
                    self.sink.write(self.buf, self.fill)
                    self.fill = 0
            acc &= (1 << n) - 1
        self.acc = acc
        self.nacc = n

    def put_wide(self, value, width):
        """Up to 32 bits of a non-negative value (the high part is put first)."""
        if width > 16:
            self.put(value >> 16, width - 16)
            self.put(value & 0xFFFF, 16)
        else:
            self.put(value, width)

    def finish(self):
        """Pad with zero bits to a byte, flush; return the payload length in bytes."""
        if self.nacc:
            self.put(0, 8 - self.nacc)
        if self.sink is not None and self.fill:
            self.sink.write(self.buf, self.fill)
            self.fill = 0
        return self.bits >> 3


def put_tiered(bw, delta, tiers, abs_value, abs_bits):
    """Write delta in the tiered code, or the escape and abs_value (abs_bits wide)."""
    z = (delta << 1) if delta >= 0 else ((-delta << 1) - 1)
    base = 0
    i = 0
    n = len(tiers)
    while i < n:
        w = tiers[i]
        if z < base + (1 << w):
            bw.put(((((1 << i) - 1) << 1) << w) | (z - base), i + 1 + w)
            return
        base += 1 << w
        i += 1
    bw.put((1 << n) - 1, n)
    bw.put_wide(abs_value & ((1 << abs_bits) - 1), abs_bits)


class BitReader:
    """MSB-first reader over a payload; reading past its end raises ValueError."""

    def __init__(self):
        self.buf = b""
        self.pos = 0
        self.end = 0
        self.escaped = False

    def reset(self, buf, nbytes):
        self.buf = buf
        self.pos = 0
        self.end = nbytes * 8

    def get(self, width):
        pos = self.pos
        if pos + width > self.end:
            raise ValueError(
                "payload ends early: %d bits wanted at bit %d of %d" % (width, pos, self.end)
            )
        buf = self.buf
        v = 0
        while width > 0:
            off = pos & 7
            avail = 8 - off
            take = avail if avail < width else width
            v = (v << take) | ((buf[pos >> 3] >> (avail - take)) & ((1 << take) - 1))
            pos += take
            width -= take
        self.pos = pos
        return v

    def get_wide(self, width):
        if width > 16:
            high = self.get(width - 16)
            return (high << 16) | self.get(16)
        return self.get(width)

    def get_signed(self, width):
        v = self.get_wide(width)
        if v >= 1 << (width - 1):
            v -= 1 << width
        return v

    def get_tiered(self, tiers):
        """The delta, or 0 with self.escaped set when the absolute value follows."""
        n = len(tiers)
        i = 0
        while i < n and self.get(1):
            i += 1
        if i == n:
            self.escaped = True
            return 0
        self.escaped = False
        base = 0
        j = 0
        while j < i:
            base += 1 << tiers[j]
            j += 1
        w = tiers[i]
        z = base + (self.get(w) if w else 0)
        if z & 1:
            return -((z + 1) >> 1)
        return z >> 1
