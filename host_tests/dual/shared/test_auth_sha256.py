# shared/auth on a board without hashlib: the MAC computed over shared/sha256.py
# (Mac(pure=True), what such a board runs) checks every authenticated vector of
# docs/protocol-vectors.json, agrees with the hashlib MAC on seeded random frames, and
# verifies without allocating.
import json

from dualtest import LCG, heap_locked

from shared import auth
from shared import protocol as p

PATH = "docs/protocol-vectors.json"


def _key_and_macs():
    key = None
    out = []
    with open(PATH) as f:
        for line in f:
            line = line.strip()
            at = line.find('"test_key": "')
            if at >= 0:
                key = bytes.fromhex(line[at + 13 : at + 13 + 2 * p.KEY_LEN])
            if line.startswith('{"') and '"mac"' in line and '"hex"' in line:
                v = json.loads(line[:-1] if line.endswith(",") else line)
                if v.get("valid") and "mac" in v["fields"].get("payload", {}):
                    out.append((bytes.fromhex(v["hex"]), v["fields"]["payload"]["mac"]))
    return key, out


def test_every_authenticated_vector_verifies_on_the_python_sha256():
    key, vectors = _key_and_macs()
    assert key == b"StringCare-test!" and len(vectors) >= 7
    mac = auth.Mac(key, pure=True)
    assert mac.pure
    for data, want in vectors:
        # frame bytes VERLEN .. counter, then the MAC, then the CRC
        end = len(data) - 2 - p.MAC_LEN
        assert mac.check(data, 1, end), want
        d = mac.digest(data, 1, end)
        assert "".join("%02x" % d[i] for i in range(p.MAC_LEN)) == want
        bad = bytearray(data)
        bad[5] ^= 0x01  # another command/sequence: refused
        assert not mac.check(bad, 1, end)


def test_the_python_mac_equals_the_hashlib_mac_on_random_frames():
    rng = LCG(7)
    for _ in range(20):
        key = rng.bytes(p.KEY_LEN)
        fast = auth.Mac(key)
        pure = auth.Mac(key, pure=True)
        data = rng.bytes(rng.between(8, 120))
        assert bytes(pure.digest(data, 0, len(data))) == bytes(fast.digest(data, 0, len(data)))
        assert bytes(pure.digest(data, 0, len(data))) == auth.hmac_sha256(key, data)


def test_a_verify_on_the_python_sha256_allocates_nothing():
    key = b"StringCare-test!"
    signer = auth.Signer(key)
    tx = bytearray(p.FRAME_MAX)
    n = 9
    p.encode_header(tx, p.ADDR_BROADCAST, p.ADDR_MANAGER, p.CMD_SET_TARGET, 3, n + p.AUTH_LEN)
    for i in range(n):
        tx[p.HEADER_LEN + i] = i
    signer.sign_request(tx, n)
    mac = auth.Mac(key, pure=True)
    end = p.HEADER_LEN + n + p.CTR_LEN
    assert heap_locked(mac.check, tx, 1, end)
    tx[p.HEADER_LEN] ^= 1
    assert not heap_locked(mac.check, tx, 1, end)


def test_check_request_on_the_python_sha256_allocates_nothing():
    # the module's whole verify of a SET_TARGET off the bus (MAC and counter floor)
    from shared import protocol_layouts as lay

    key = b"StringCare-test!"
    fields = {"first": 1, "last": 64, "target_10uv": 1360000, "flags": 1, "timeout_s": 30}
    data = lay.encode_request(p.ADDR_BROADCAST, p.CMD_SET_TARGET, 1, fields, auth.Signer(key))
    d = p.Deframer()
    d.feed(data, 0, len(data))
    frame = d.poll()
    mac = auth.Mac(key, pure=True)
    assert heap_locked(auth.check_request, mac, frame, 0, 0) == 1
    assert heap_locked(auth.check_request, mac, frame, 0, 1) == -1  # not above the floor
