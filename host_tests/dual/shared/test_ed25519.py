# shared/ed25519: SHA-512 and Ed25519 against the published vectors (FIPS 180-4
# examples, RFC 8032 §7.1), and the refusals a board relies on when it checks a bundle.
from dualtest import raises

from shared import ed25519 as ed

# RFC 8032 §7.1: TEST 1, 2, 3 and TEST SHA(abc): (secret key, public key, message, signature)
RFC8032 = (
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    (
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
        "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ),
)

SHA512_VECTORS = (
    (
        b"",
        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
        "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
    ),
    (
        b"abc",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
    ),
    (
        b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnop"
        b"jklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
        "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
        "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909",
    ),
)


def _hex(text):
    return bytes.fromhex(text)


def test_sha512_pure_matches_the_fips_examples():
    for data, digest in SHA512_VECTORS:
        assert ed.sha512_pure(data) == _hex(digest)
        assert ed.sha512(data) == _hex(digest)


def test_sha512_pure_across_the_padding_boundaries():
    # 111/112 bytes: the length field just fits / spills into a second block
    for n in (111, 112, 127, 128, 129, 239, 240):
        data = bytes(range(n))
        assert ed.sha512_pure(data) == ed.sha512(data), n


def test_rfc8032_public_keys_and_signatures():
    for sk, pk, msg, sig in RFC8032:
        assert ed.public_key(_hex(sk)) == _hex(pk)
        assert ed.sign(_hex(sk), _hex(msg)) == _hex(sig)


def test_rfc8032_signatures_verify():
    for _, pk, msg, sig in RFC8032:
        assert ed.verify(_hex(pk), _hex(msg), _hex(sig))


def test_a_flipped_bit_anywhere_is_refused():
    _, pk, msg, sig = RFC8032[1]
    pk, msg, sig = _hex(pk), _hex(msg), _hex(sig)
    for i in (0, 17, 31, 32, 45, 63):
        bad = bytearray(sig)
        bad[i] ^= 0x04
        assert not ed.verify(pk, msg, bytes(bad)), i
    assert not ed.verify(pk, b"\x73", sig)  # another message
    bad_pk = bytearray(pk)
    bad_pk[3] ^= 0x01
    assert not ed.verify(bytes(bad_pk), msg, sig)  # another (or no) key


def test_malformed_inputs_are_refused_not_raised():
    _, pk, msg, sig = RFC8032[0]
    pk, msg, sig = _hex(pk), _hex(msg), _hex(sig)
    assert not ed.verify(pk, msg, sig[:63])
    assert not ed.verify(pk[:31], msg, sig)
    # S >= L (the group order) is malleable: refused (S + L of a valid signature)
    s = int.from_bytes(sig[32:], "little") + ed._L
    assert not ed.verify(pk, msg, sig[:32] + s.to_bytes(32, "little"))
    # a y coordinate >= p does not encode a point
    assert not ed.verify(b"\xff" * 31 + b"\x7f", msg, sig)


def test_a_private_key_is_32_bytes():
    raises(ValueError, ed.public_key, b"\x01" * 31)
