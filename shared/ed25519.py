# Ed25519 signatures (RFC 8032) and SHA-512 (FIPS 180-4) in plain Python, for
# MicroPython boards and CPython alike.
#
# Why here: a board checks the signature of a firmware bundle's manifest before it
# installs it (shared/fwstore.py, docs/deploy.md).  MicroPython's hashlib has sha256 but
# no sha512, which Ed25519 needs, so SHA-512 is written out too; CPython uses hashlib's.
# The arithmetic needs arbitrary-precision integers (MicroPython's "longint", enabled on
# the rp2, stm32 and unix ports).  Nothing here runs on a hot path: a verify allocates
# freely and takes ~0.1 s on the unix port (bench `bundle.verify_s.unix_module`).
#
#   verify(public_key32, message, signature64) -> bool
#   public_key(seed32) -> public_key32            (host: key generation)
#   sign(seed32, message) -> signature64           (host: `stringcare bundle --sign`)
#   sha512(data) -> digest64
#
# verify() follows RFC 8032 §5.1.7 with the cofactorless equation [S]B = R + [k]A
# (checked as: encode([S]B - [k]A) == R, which also refuses a non-canonical R) and
# refuses S >= L and public keys that do not decode to a curve point.

try:
    from hashlib import sha512 as _hashlib_sha512
except ImportError:
    _hashlib_sha512 = None  # type: ignore[assignment]

_M64 = 0xFFFFFFFFFFFFFFFF

_K512 = (
    0x428A2F98D728AE22, 0x7137449123EF65CD, 0xB5C0FBCFEC4D3B2F, 0xE9B5DBA58189DBBC,
    0x3956C25BF348B538, 0x59F111F1B605D019, 0x923F82A4AF194F9B, 0xAB1C5ED5DA6D8118,
    0xD807AA98A3030242, 0x12835B0145706FBE, 0x243185BE4EE4B28C, 0x550C7DC3D5FFB4E2,
    0x72BE5D74F27B896F, 0x80DEB1FE3B1696B1, 0x9BDC06A725C71235, 0xC19BF174CF692694,
    0xE49B69C19EF14AD2, 0xEFBE4786384F25E3, 0x0FC19DC68B8CD5B5, 0x240CA1CC77AC9C65,
    0x2DE92C6F592B0275, 0x4A7484AA6EA6E483, 0x5CB0A9DCBD41FBD4, 0x76F988DA831153B5,
    0x983E5152EE66DFAB, 0xA831C66D2DB43210, 0xB00327C898FB213F, 0xBF597FC7BEEF0EE4,
    0xC6E00BF33DA88FC2, 0xD5A79147930AA725, 0x06CA6351E003826F, 0x142929670A0E6E70,
    0x27B70A8546D22FFC, 0x2E1B21385C26C926, 0x4D2C6DFC5AC42AED, 0x53380D139D95B3DF,
    0x650A73548BAF63DE, 0x766A0ABB3C77B2A8, 0x81C2C92E47EDAEE6, 0x92722C851482353B,
    0xA2BFE8A14CF10364, 0xA81A664BBC423001, 0xC24B8B70D0F89791, 0xC76C51A30654BE30,
    0xD192E819D6EF5218, 0xD69906245565A910, 0xF40E35855771202A, 0x106AA07032BBD1B8,
    0x19A4C116B8D2D0C8, 0x1E376C085141AB53, 0x2748774CDF8EEB99, 0x34B0BCB5E19B48A8,
    0x391C0CB3C5C95A63, 0x4ED8AA4AE3418ACB, 0x5B9CCA4F7763E373, 0x682E6FF3D6B2B8A3,
    0x748F82EE5DEFB2FC, 0x78A5636F43172F60, 0x84C87814A1F0AB72, 0x8CC702081A6439EC,
    0x90BEFFFA23631E28, 0xA4506CEBDE82BDE9, 0xBEF9A3F7B2C67915, 0xC67178F2E372532B,
    0xCA273ECEEA26619C, 0xD186B8C721C0C207, 0xEADA7DD6CDE0EB1E, 0xF57D4F7FEE6ED178,
    0x06F067AA72176FBA, 0x0A637DC5A2C898A6, 0x113F9804BEF90DAE, 0x1B710B35131C471B,
    0x28DB77F523047D84, 0x32CAAB7B40C72493, 0x3C9EBE0A15C9BEBC, 0x431D67C49C100D4C,
    0x4CC5D4BECB3E42B6, 0x597F299CFC657E2A, 0x5FCB6FAB3AD6FAEC, 0x6C44198C4A475817,
)  # fmt: skip
_H512 = (
    0x6A09E667F3BCC908, 0xBB67AE8584CAA73B, 0x3C6EF372FE94F82B, 0xA54FF53A5F1D36F1,
    0x510E527FADE682D1, 0x9B05688C2B3E6C1F, 0x1F83D9ABFB41BD6B, 0x5BE0CD19137E2179,
)  # fmt: skip


def _rotr(x, n):
    return ((x >> n) | (x << (64 - n))) & _M64


def sha512_pure(data):
    """SHA-512 of bytes, written out (what a MicroPython board uses)."""
    n = len(data)
    padded = bytearray(data)
    padded.append(0x80)
    while len(padded) % 128 != 112:
        padded.append(0)
    padded.extend((n * 8).to_bytes(16, "big"))
    h = list(_H512)
    w = [0] * 80
    for off in range(0, len(padded), 128):
        for t in range(16):
            w[t] = int.from_bytes(padded[off + 8 * t : off + 8 * t + 8], "big")
        for t in range(16, 80):
            a = w[t - 15]
            b = w[t - 2]
            s0 = _rotr(a, 1) ^ _rotr(a, 8) ^ (a >> 7)
            s1 = _rotr(b, 19) ^ _rotr(b, 61) ^ (b >> 6)
            w[t] = (w[t - 16] + s0 + w[t - 7] + s1) & _M64
        a, b, c, d, e, f, g, hh = h
        for t in range(80):
            s1 = _rotr(e, 14) ^ _rotr(e, 18) ^ _rotr(e, 41)
            ch = (e & f) ^ (~e & _M64 & g)
            t1 = (hh + s1 + ch + _K512[t] + w[t]) & _M64
            s0 = _rotr(a, 28) ^ _rotr(a, 34) ^ _rotr(a, 39)
            maj = (a & b) ^ (a & c) ^ (b & c)
            t2 = (s0 + maj) & _M64
            hh = g
            g = f
            f = e
            e = (d + t1) & _M64
            d = c
            c = b
            b = a
            a = (t1 + t2) & _M64
        h[0] = (h[0] + a) & _M64
        h[1] = (h[1] + b) & _M64
        h[2] = (h[2] + c) & _M64
        h[3] = (h[3] + d) & _M64
        h[4] = (h[4] + e) & _M64
        h[5] = (h[5] + f) & _M64
        h[6] = (h[6] + g) & _M64
        h[7] = (h[7] + hh) & _M64
    out = bytearray()
    for x in h:
        out.extend(x.to_bytes(8, "big"))
    return bytes(out)


def sha512(data):
    """SHA-512: hashlib's where the interpreter has it, sha512_pure otherwise."""
    if _hashlib_sha512 is not None:
        return _hashlib_sha512(data).digest()
    return sha512_pure(data)


# -- the curve: edwards25519, -x^2 + y^2 = 1 + d x^2 y^2 over GF(2^255 - 19) -----------

_P = (1 << 255) - 19
_L = (1 << 252) + 27742317777372353535851937790883648493
_D = 37095705934669439343138083508754565189542113879843219016388785533085940283555
_D2 = (2 * _D) % _P
_SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752
_BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_BY = 46316835694926478169428394003475163141307993866256225615783033603165251855960
_B = (_BX, _BY, 1, (_BX * _BY) % _P)  # extended coordinates (X, Y, Z, T), T = XY/Z
_ZERO = (0, 1, 1, 0)


def _pow(b, e, m):
    # Square-and-multiply: three-argument pow() is not enabled on every board build.
    r = 1
    b %= m
    while e:
        if e & 1:
            r = (r * b) % m
        e >>= 1
        if e:
            b = (b * b) % m
    return r


def _inv(x):
    return _pow(x, _P - 2, _P)


def _add(p, q):
    # add-2008-hwcd-3 (a = -1): unified, so it also doubles
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = ((y1 - x1) * (y2 - x2)) % _P
    b = ((y1 + x1) * (y2 + x2)) % _P
    c = (t1 * _D2 * t2) % _P
    d = (2 * z1 * z2) % _P
    e = b - a
    f = d - c
    g = d + c
    h = b + a
    return ((e * f) % _P, (g * h) % _P, (f * g) % _P, (e * h) % _P)


def _double(p):
    # dbl-2008-hwcd (a = -1)
    x1, y1, z1, _ = p
    a = (x1 * x1) % _P
    b = (y1 * y1) % _P
    c = (2 * z1 * z1) % _P
    h = a + b
    s = x1 + y1
    e = h - (s * s) % _P
    g = a - b
    f = c + g
    return ((e * f) % _P, (g * h) % _P, (f * g) % _P, (e * h) % _P)


def _neg(p):
    x, y, z, t = p
    return ((-x) % _P, y, z, (-t) % _P)


def _mul(k, p):
    q = _ZERO
    while k:
        if k & 1:
            q = _add(q, p)
        p = _double(p)
        k >>= 1
    return q


def _encode(p):
    x, y, z, _ = p
    zi = _inv(z)
    x = (x * zi) % _P
    y = (y * zi) % _P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _decode(s):
    """A point from its 32-byte encoding, or None when it is not one (RFC 8032 §5.1.3)."""
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= _P:
        return None
    y2 = (y * y) % _P
    u = (y2 - 1) % _P
    v = (_D * y2 + 1) % _P
    # x = u v^3 (u v^7)^((p-5)/8)
    v3 = (v * v * v) % _P
    x = (u * v3 * _pow(u * v3 * v3 * v, (_P - 5) // 8, _P)) % _P
    vx2 = (v * x * x) % _P
    if vx2 != u:
        if vx2 == (-u) % _P:
            x = (x * _SQRT_M1) % _P
        else:
            return None
    if x == 0 and sign:
        return None
    if (x & 1) != sign:
        x = _P - x
    return (x, y, 1, (x * y) % _P)


def verify(public_key, message, signature):
    """True when signature (64 bytes) is public_key's (32 bytes) Ed25519 signature of
    message; False for a wrong, malformed or non-canonical signature or key."""
    if len(signature) != 64 or len(public_key) != 32:
        return False
    a = _decode(bytes(public_key))
    if a is None:
        return False
    r = bytes(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    k = int.from_bytes(sha512(r + bytes(public_key) + bytes(message)), "little") % _L
    # [S]B + [k](-A), both scalars in one pass (Straus/Shamir)
    na = _neg(a)
    both = _add(_B, na)
    q = _ZERO
    for i in range(255, -1, -1):
        q = _double(q)
        bs = (s >> i) & 1
        bk = (k >> i) & 1
        if bs and bk:
            q = _add(q, both)
        elif bs:
            q = _add(q, _B)
        elif bk:
            q = _add(q, na)
    return _encode(q) == r


def _secret(seed):
    if len(seed) != 32:
        raise ValueError("an Ed25519 private key (seed) is 32 bytes, got %d" % len(seed))
    h = sha512(bytes(seed))
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, h[32:]


def public_key(seed):
    """The 32-byte public key of a 32-byte private key (seed)."""
    a, _ = _secret(seed)
    return _encode(_mul(a, _B))


def sign(seed, message):
    """The 64-byte Ed25519 signature of message under the 32-byte private key seed."""
    a, prefix = _secret(seed)
    pub = _encode(_mul(a, _B))
    message = bytes(message)
    r = int.from_bytes(sha512(prefix + message), "little") % _L
    rb = _encode(_mul(r, _B))
    k = int.from_bytes(sha512(rb + pub + message), "little") % _L
    s = (r + k * a) % _L
    return rb + s.to_bytes(32, "little")
