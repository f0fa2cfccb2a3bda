# SHA-256 (FIPS 180-4) for MicroPython images without hashlib, e.g. the stock
# NUCLEO_G474RE image of MicroPython 1.22 to 1.26 (its mpconfigboard.h set
# MICROPY_PY_HASHLIB to 0 until 1.27): without it the board could neither check a
# firmware bundle (shared/fwstore.py, the loader) nor a bus command's MAC (shared/auth.py).
# Used only where hashlib.sha256 is missing (`sha256` below is hashlib's when present).
#
# Two compression functions, bit-identical (host_tests/dual/shared/test_sha256.py checks
# both against hashlib and the FIPS 180-4 / NIST examples):
#   compress16  plain Python on 16-bit halves of each 32-bit word: every value stays below
#               2**20, so a Cortex-M0's 31-bit small ints never overflow into big ints and
#               a block allocates nothing; slow (bytecode), runs on any interpreter;
#   compress32  MicroPython only: the same rounds compiled by the viper emitter (machine
#               words, Thumb on the boards); used whenever the interpreter can build it.
# The interface is hashlib's (update, digest, copy), plus what HMAC needs to run without
# allocating: update_from(buf, start, end), reset_to(other) and finish_into(out, off).
#
# Self-contained on purpose (no project imports): `stringcare bundle` inlines this file
# into the loader /main.py, and deploy sends it to a board without hashlib.

import sys
from array import array

# Round constants, each 32-bit word as two 16-bit halves (high first)
_K = array(
    "H",
    (
    0x428A, 0x2F98, 0x7137, 0x4491, 0xB5C0, 0xFBCF, 0xE9B5, 0xDBA5,
    0x3956, 0xC25B, 0x59F1, 0x11F1, 0x923F, 0x82A4, 0xAB1C, 0x5ED5,
    0xD807, 0xAA98, 0x1283, 0x5B01, 0x2431, 0x85BE, 0x550C, 0x7DC3,
    0x72BE, 0x5D74, 0x80DE, 0xB1FE, 0x9BDC, 0x06A7, 0xC19B, 0xF174,
    0xE49B, 0x69C1, 0xEFBE, 0x4786, 0x0FC1, 0x9DC6, 0x240C, 0xA1CC,
    0x2DE9, 0x2C6F, 0x4A74, 0x84AA, 0x5CB0, 0xA9DC, 0x76F9, 0x88DA,
    0x983E, 0x5152, 0xA831, 0xC66D, 0xB003, 0x27C8, 0xBF59, 0x7FC7,
    0xC6E0, 0x0BF3, 0xD5A7, 0x9147, 0x06CA, 0x6351, 0x1429, 0x2967,
    0x27B7, 0x0A85, 0x2E1B, 0x2138, 0x4D2C, 0x6DFC, 0x5338, 0x0D13,
    0x650A, 0x7354, 0x766A, 0x0ABB, 0x81C2, 0xC92E, 0x9272, 0x2C85,
    0xA2BF, 0xE8A1, 0xA81A, 0x664B, 0xC24B, 0x8B70, 0xC76C, 0x51A3,
    0xD192, 0xE819, 0xD699, 0x0624, 0xF40E, 0x3585, 0x106A, 0xA070,
    0x19A4, 0xC116, 0x1E37, 0x6C08, 0x2748, 0x774C, 0x34B0, 0xBCB5,
    0x391C, 0x0CB3, 0x4ED8, 0xAA4A, 0x5B9C, 0xCA4F, 0x682E, 0x6FF3,
    0x748F, 0x82EE, 0x78A5, 0x636F, 0x84C8, 0x7814, 0x8CC7, 0x0208,
    0x90BE, 0xFFFA, 0xA450, 0x6CEB, 0xBEF9, 0xA3F7, 0xC671, 0x78F2,
    ),
)  # fmt: skip
_IV = (
    0x6A09, 0xE667, 0xBB67, 0xAE85, 0x3C6E, 0xF372, 0xA54F, 0xF53A,
    0x510E, 0x527F, 0x9B05, 0x688C, 0x1F83, 0xD9AB, 0x5BE0, 0xCD19,
)  # fmt: skip
_W = array("H", [0] * 128)  # the message schedule, in halves
_MAX_BYTES = 0x1FFFFFFF  # the bit length is encoded from a small int
_MAX_OFFSET = 0x7FFFFF  # an update's end offset (packed with a count below 2**30)


def compress16(state, block, off):
    """One SHA-256 block: block[off:off + 64] into state (array of 16 halves)."""
    w = _W
    k = _K
    for i in range(16):
        j = off + 4 * i
        w[2 * i] = (block[j] << 8) | block[j + 1]
        w[2 * i + 1] = (block[j + 2] << 8) | block[j + 3]
    for i in range(16, 64):
        xh = w[2 * i - 30]
        xl = w[2 * i - 29]
        t0h = (xh >> 7) | ((xl & 127) << 9)
        t0l = (xl >> 7) | ((xh & 127) << 9)
        t1h = (xl >> 2) | ((xh & 3) << 14)
        t1l = (xh >> 2) | ((xl & 3) << 14)
        t2h = xh >> 3
        t2l = (xl >> 3) | ((xh & 7) << 13)
        s0h = t0h ^ t1h ^ t2h
        s0l = t0l ^ t1l ^ t2l
        xh = w[2 * i - 4]
        xl = w[2 * i - 3]
        t0h = (xl >> 1) | ((xh & 1) << 15)
        t0l = (xh >> 1) | ((xl & 1) << 15)
        t1h = (xl >> 3) | ((xh & 7) << 13)
        t1l = (xh >> 3) | ((xl & 7) << 13)
        t2h = xh >> 10
        t2l = (xl >> 10) | ((xh & 1023) << 6)
        s1h = t0h ^ t1h ^ t2h
        s1l = t0l ^ t1l ^ t2l
        lo = w[2 * i - 31] + s0l + w[2 * i - 13] + s1l
        w[2 * i + 1] = lo & 0xFFFF
        w[2 * i] = (w[2 * i - 32] + s0h + w[2 * i - 14] + s1h + (lo >> 16)) & 0xFFFF
    ah = state[0]
    al = state[1]
    bh = state[2]
    bl = state[3]
    ch = state[4]
    cl = state[5]
    dh = state[6]
    dl = state[7]
    eh = state[8]
    el = state[9]
    fh = state[10]
    fl = state[11]
    gh = state[12]
    gl = state[13]
    hh = state[14]
    hl = state[15]
    for i in range(64):
        t0h = (eh >> 6) | ((el & 63) << 10)
        t0l = (el >> 6) | ((eh & 63) << 10)
        t1h = (eh >> 11) | ((el & 2047) << 5)
        t1l = (el >> 11) | ((eh & 2047) << 5)
        t2h = (el >> 9) | ((eh & 511) << 7)
        t2l = (eh >> 9) | ((el & 511) << 7)
        S1h = t0h ^ t1h ^ t2h
        S1l = t0l ^ t1l ^ t2l
        chh = (eh & fh) ^ ((eh ^ 0xFFFF) & gh)
        chl = (el & fl) ^ ((el ^ 0xFFFF) & gl)
        lo = hl + S1l + chl + k[2 * i + 1] + w[2 * i + 1]
        u1h = hh + S1h + chh + k[2 * i] + w[2 * i] + (lo >> 16)
        u1l = lo & 0xFFFF
        t0h = (ah >> 2) | ((al & 3) << 14)
        t0l = (al >> 2) | ((ah & 3) << 14)
        t1h = (ah >> 13) | ((al & 8191) << 3)
        t1l = (al >> 13) | ((ah & 8191) << 3)
        t2h = (al >> 6) | ((ah & 63) << 10)
        t2l = (ah >> 6) | ((al & 63) << 10)
        S0h = t0h ^ t1h ^ t2h
        S0l = t0l ^ t1l ^ t2l
        lo = S0l + ((al & bl) ^ (al & cl) ^ (bl & cl))
        u2h = S0h + ((ah & bh) ^ (ah & ch) ^ (bh & ch)) + (lo >> 16)
        u2l = lo & 0xFFFF
        hh = gh
        hl = gl
        gh = fh
        gl = fl
        fh = eh
        fl = el
        lo = dl + u1l
        eh = (dh + u1h + (lo >> 16)) & 0xFFFF
        el = lo & 0xFFFF
        dh = ch
        dl = cl
        ch = bh
        cl = bl
        bh = ah
        bl = al
        lo = u1l + u2l
        ah = (u1h + u2h + (lo >> 16)) & 0xFFFF
        al = lo & 0xFFFF
    _add16(state, 0, ah, al)
    _add16(state, 2, bh, bl)
    _add16(state, 4, ch, cl)
    _add16(state, 6, dh, dl)
    _add16(state, 8, eh, el)
    _add16(state, 10, fh, fl)
    _add16(state, 12, gh, gl)
    _add16(state, 14, hh, hl)


def _add16(state, j, vh, vl):
    lo = state[j + 1] + vl
    state[j + 1] = lo & 0xFFFF
    state[j] = (state[j] + vh + (lo >> 16)) & 0xFFFF


def _copy(dst, src, doff, spec):
    """dst[doff:doff + n] = src[soff:soff + n] with spec = soff << 7 | n (n <= 64)."""
    n = spec & 127
    soff = spec >> 7
    for i in range(n):
        dst[doff + i] = src[soff + i]


def _copy_state(dst, src):
    for i in range(16):
        dst[i] = src[i]


def _zero(buf, start, end):
    for i in range(start, end):
        buf[i] = 0


def _out(state, out, off):
    """The digest (state's 16 halves, big-endian) to out[off:off + 32]."""
    for i in range(16):
        out[off + 2 * i] = state[i] >> 8
        out[off + 2 * i + 1] = state[i] & 0xFF


compress = compress16
compress32 = None

if sys.implementation.name == "micropython":
    try:
        import micropython

        _W32 = array("I", [0] * 64)

        @micropython.viper
        def _compress_viper(state: ptr16, block: ptr8, off: int):  # type: ignore[name-defined] # noqa: F821
            w = ptr32(_W32)  # type: ignore[name-defined] # noqa: F821
            k = ptr16(_K)  # type: ignore[name-defined] # noqa: F821
            m = (uint(0xFFFF) << 16) | uint(0xFFFF)  # type: ignore[name-defined] # noqa: F821
            i = 0
            while i < 16:
                j = off + 4 * i
                w[i] = (
                    (uint(block[j]) << 24)  # type: ignore[name-defined] # noqa: F821
                    | (uint(block[j + 1]) << 16)  # type: ignore[name-defined] # noqa: F821
                    | (uint(block[j + 2]) << 8)  # type: ignore[name-defined] # noqa: F821
                    | uint(block[j + 3])  # type: ignore[name-defined] # noqa: F821
                )
                i += 1
            while i < 64:
                x = uint(w[i - 15]) & m  # type: ignore[name-defined] # noqa: F821
                y = uint(w[i - 2]) & m  # type: ignore[name-defined] # noqa: F821
                s0 = ((x >> 7) | (x << 25)) ^ ((x >> 18) | (x << 14)) ^ (x >> 3)
                s1 = ((y >> 17) | (y << 15)) ^ ((y >> 19) | (y << 13)) ^ (y >> 10)
                w[i] = uint(w[i - 16]) + s0 + uint(w[i - 7]) + s1  # type: ignore[name-defined] # noqa: F821
                i += 1
            a = (uint(state[0]) << 16) | uint(state[1])  # type: ignore[name-defined] # noqa: F821
            b = (uint(state[2]) << 16) | uint(state[3])  # type: ignore[name-defined] # noqa: F821
            c = (uint(state[4]) << 16) | uint(state[5])  # type: ignore[name-defined] # noqa: F821
            d = (uint(state[6]) << 16) | uint(state[7])  # type: ignore[name-defined] # noqa: F821
            e = (uint(state[8]) << 16) | uint(state[9])  # type: ignore[name-defined] # noqa: F821
            f = (uint(state[10]) << 16) | uint(state[11])  # type: ignore[name-defined] # noqa: F821
            g = (uint(state[12]) << 16) | uint(state[13])  # type: ignore[name-defined] # noqa: F821
            h = (uint(state[14]) << 16) | uint(state[15])  # type: ignore[name-defined] # noqa: F821
            i = 0
            while i < 64:
                # on a 64-bit host the bits above 31 are junk until masked: only
                # additions, xors and left shifts see them, and a and e are masked
                s1 = ((e >> 6) | (e << 26)) ^ ((e >> 11) | (e << 21)) ^ ((e >> 25) | (e << 7))
                t1 = h + s1 + ((e & f) ^ ((e ^ m) & g))
                t1 += (uint(k[2 * i]) << 16) | uint(k[2 * i + 1])  # type: ignore[name-defined] # noqa: F821
                t1 += uint(w[i]) & m  # type: ignore[name-defined] # noqa: F821
                s0 = ((a >> 2) | (a << 30)) ^ ((a >> 13) | (a << 19)) ^ ((a >> 22) | (a << 10))
                t2 = s0 + ((a & b) ^ (a & c) ^ (b & c))
                h = g
                g = f
                f = e
                e = (d + t1) & m
                d = c
                c = b
                b = a
                a = (t1 + t2) & m
                i += 1
            w[0] = a
            w[1] = b
            w[2] = c
            w[3] = d
            w[4] = e
            w[5] = f
            w[6] = g
            w[7] = h
            i = 0
            while i < 8:
                v = ((uint(state[2 * i]) << 16) | uint(state[2 * i + 1])) + uint(w[i])  # type: ignore[name-defined] # noqa: F821
                state[2 * i] = (v >> 16) & 0xFFFF
                state[2 * i + 1] = v & 0xFFFF
                i += 1

        def compress32(state, block, off):
            """One SHA-256 block (viper, machine words): as compress16."""
            _compress_viper(state, block, off)

        # the byte loops around the blocks, compiled too (they cost more than the
        # block itself in bytecode on a Cortex-M0)
        @micropython.viper
        def _copy_viper(dst: ptr8, src: ptr8, doff: int, spec: int):  # type: ignore[name-defined] # noqa: F821
            n = spec & 127
            soff = spec >> 7
            i = 0
            while i < n:
                dst[doff + i] = src[soff + i]
                i += 1

        @micropython.viper
        def _copy_state_viper(dst: ptr32, src: ptr32):  # type: ignore[name-defined] # noqa: F821
            i = 0
            while i < 8:  # 16 halves
                dst[i] = src[i]
                i += 1

        @micropython.viper
        def _zero_viper(buf: ptr8, start: int, end: int):  # type: ignore[name-defined] # noqa: F821
            i = start
            while i < end:
                buf[i] = 0
                i += 1

        @micropython.viper
        def _out_viper(state: ptr16, out: ptr8, off: int):  # type: ignore[name-defined] # noqa: F821
            i = 0
            while i < 16:
                out[off + 2 * i] = state[i] >> 8
                out[off + 2 * i + 1] = state[i] & 0xFF
                i += 1

        compress = compress32
        _copy = _copy_viper  # noqa: F811
        _zero = _zero_viper  # noqa: F811
        _copy_state = _copy_state_viper  # noqa: F811
        _out = _out_viper  # noqa: F811
    except (ImportError, SyntaxError, NameError, AttributeError):  # no native emitter
        compress32 = None  # type: ignore[assignment]


class Sha256:
    """SHA-256 with hashlib's interface (update, digest, copy); `block` picks the block
    function (compress16 forces plain Python; default: the fastest here)."""

    def __init__(self, data=None, block=None) -> None:
        self._h = array("H", _IV)
        self._buf = bytearray(64)
        self._n = 0  # bytes waiting in _buf
        self._len = 0  # bytes hashed so far
        self._compress = block or compress
        if data is not None:
            self.update_from(data, 0, len(data))

    def update(self, data) -> None:
        self.update_from(data, 0, len(data))

    def update_from(self, data, start: int, end: int) -> None:
        """Hash data[start:end] (no slice is made: nothing allocates)."""
        if end > _MAX_OFFSET:
            raise ValueError("sha256: update pieces of at most %d bytes" % _MAX_OFFSET)
        if self._len + (end - start) > _MAX_BYTES:
            raise ValueError("sha256: more than %d bytes in one hash" % _MAX_BYTES)
        self._len += end - start
        buf = self._buf
        n = self._n
        i = start
        if n:
            k = 64 - n
            if k > end - i:
                k = end - i
            _copy(buf, data, n, (i << 7) | k)
            n += k
            i += k
            if n < 64:
                self._n = n
                return
            self._compress(self._h, buf, 0)
        while end - i >= 64:
            self._compress(self._h, data, i)
            i += 64
        _copy(buf, data, 0, (i << 7) | (end - i))
        self._n = end - i

    def reset_to(self, other) -> None:
        """Take other's state (e.g. an HMAC key's precomputed pad block) in place."""
        _copy_state(self._h, other._h)
        _copy(self._buf, other._buf, 0, other._n)
        self._n = other._n
        self._len = other._len

    def copy(self):
        c = Sha256(None, self._compress)
        c.reset_to(self)
        return c

    def finish_into(self, out, off: int = 0) -> None:
        """Write the digest to out[off:off + 32].  Ends this hash: use reset_to() before
        hashing again (digest() leaves it untouched)."""
        buf = self._buf
        n = self._n
        total = self._len
        buf[n] = 0x80
        n += 1
        if n > 56:
            _zero(buf, n, 64)
            self._compress(self._h, buf, 0)
            n = 0
        _zero(buf, n, 59)
        # the length in bits, big-endian, from the byte count (no value above 2**29)
        buf[59] = total >> 29
        buf[60] = (total >> 21) & 0xFF
        buf[61] = (total >> 13) & 0xFF
        buf[62] = (total >> 5) & 0xFF
        buf[63] = (total & 0x1F) << 3
        self._compress(self._h, buf, 0)
        _out(self._h, out, off)
        self._n = 0

    def digest(self) -> bytes:
        out = bytearray(32)
        self.copy().finish_into(out, 0)
        return bytes(out)

    def hexdigest(self) -> str:
        return "".join("%02x" % x for x in self.digest())


try:
    from hashlib import sha256
except ImportError:  # this MicroPython image has no hashlib
    sha256 = Sha256  # type: ignore[assignment]
