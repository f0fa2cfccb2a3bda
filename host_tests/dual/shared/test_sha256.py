# shared/sha256: the SHA-256 a board without hashlib uses (the stock NUCLEO_G474RE
# image before MicroPython 1.27).  Both block functions - plain Python on 16-bit halves
# (any interpreter) and the viper one (MicroPython) - against the FIPS 180-4 / NIST
# example vectors, against hashlib on seeded random inputs cut into random pieces, and
# without allocating once set up (so a Cortex-M0's 31-bit small ints never spill).
from dualtest import IS_MICROPYTHON, LCG, heap_locked, raises

from shared import sha256 as s

# FIPS 180-4 examples (NIST CSRC "SHA256.pdf", "SHA2_Additional.pdf")
NIST = (
    (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (
        b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ),
    (
        b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnop"
        b"jklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
        "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
    ),
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"\xbd", "68325720aabd7c82f30f554b313d0570c95accbb7dc4b5aae11204c08ffe732b"),
    (b"\xc9\x8c\x8e\x55", "7abc22c0ae5af26ce93dbb94433a0e0b2e119d014f8e7f65bd56c61ccccd9504"),
    (bytes(55), "02779466cdec163811d078815c633f21901413081449002f24aa3e80f0b88ef7"),
    (bytes(56), "d4817aa5497628e7c77e6b606107042bbba3130888c5f47a375e6179be789fbb"),
    (bytes(57), "65a16cb7861335d5ace3c60718b5052e44660726da4cd13bb745381b235a1785"),
    (bytes(64), "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b"),
)


def _blocks():
    """The block functions this interpreter has: compress16 always, compress32 on
    MicroPython (it must exist there: the boards' images have the native emitter)."""
    if IS_MICROPYTHON:
        assert s.compress32 is not None, "the viper block function did not build"
        return (s.compress16, s.compress32)
    return (s.compress16,)


def _reference():
    try:
        from hashlib import sha256
    except ImportError:
        return None
    return sha256


def test_nist_examples():
    for block in _blocks():
        for data, want in NIST:
            assert s.Sha256(data, block).hexdigest() == want, (len(data), block)


def test_a_million_a():
    # FIPS 180-4's long example; the plain-Python blocks only on CPython (15 625 blocks)
    want = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
    chunk = b"a" * 1000
    for block in _blocks():
        if IS_MICROPYTHON and block is s.compress16:
            continue
        h = s.Sha256(None, block)
        for _ in range(1000):
            h.update(chunk)
        assert h.hexdigest() == want


def test_random_inputs_in_random_pieces_match_hashlib():
    ref = _reference()
    rng = LCG(20261203)
    for block in _blocks():
        for _ in range(24):
            data = rng.bytes(rng.below(300))
            h = s.Sha256(None, block)
            at = 0
            while at < len(data):
                step = rng.between(1, 90)
                h.update_from(data, at, min(len(data), at + step))
                at += step
            if ref is not None:
                assert h.digest() == ref(data).digest(), len(data)
            # the other block function (and a one-piece update) agrees
            assert h.digest() == s.Sha256(data, s.compress16).digest(), len(data)


def test_copy_and_digest_leave_the_hash_running():
    h = s.Sha256(b"ab")
    c = h.copy()
    first = h.digest()
    assert h.digest() == first  # digest() does not end the hash
    h.update(b"c")
    c.update(b"c")
    assert h.hexdigest() == NIST[0][1] == c.hexdigest()


def test_sha256_is_hashlibs_when_present():
    ref = _reference()
    if ref is not None:
        assert s.sha256 is ref
    else:
        assert s.sha256 is s.Sha256


def test_hashing_allocates_nothing():
    # update_from + finish_into with a precomputed state, as an HMAC verify does
    data = bytes(range(200))
    out = bytearray(32)
    for block in _blocks():
        start = s.Sha256(b"x" * 64, block)
        h = s.Sha256(None, block)

        def run(h, start):
            h.reset_to(start)
            h.update_from(data, 3, 150)
            h.finish_into(out, 0)

        heap_locked(run, h, start)
        want = s.Sha256(b"x" * 64 + data[3:150], s.compress16).digest()
        assert bytes(out) == want


def test_more_than_the_length_field_carries_is_refused():
    h = s.Sha256()
    h._len = 0x1FFFFFF0
    raises(ValueError, h.update, bytes(32))
