# Fuzzing the deframer with a seeded corpus (identical on both interpreters): random
# bytes, bit flips, truncation, concatenation, garbage between frames.  Nothing may
# raise, nothing may hang, no corrupted frame may come out, and every intact frame
# must.  (hypothesis drives the same properties with shrinking on CPython:
# host_tests/host/test_protocol_hypothesis.py.)
from dualtest import LCG

from shared import protocol as p

MICROPYTHON_TIMEOUT_S = 300


def random_frame(rng):
    n = rng.below(p.PAYLOAD_MAX + 1)
    return p.encode_bytes(rng.below(0x10000), rng.below(0x10000), rng.below(256),
                          rng.below(256), rng.bytes(n))  # fmt: skip


def run_stream(data, rng):
    """Feed data in random chunk sizes with occasional idle gaps; return frames."""
    d = p.Deframer()
    out = []
    pos = 0
    steps = 0
    while pos < len(data):
        end = pos + 1 + rng.below(40)
        if end > len(data):
            end = len(data)
        while pos < end:
            took = d.feed(data, pos, end)
            pos += took
            f = d.poll()
            while f is not None:
                out.append(bytes(f.buf[f.off - 8 : f.off + f.length + 2]))
                f = d.poll()
            steps += 1
            assert steps < 100000, "deframer stopped making progress"
    d.idle()
    f = d.poll()
    while f is not None:
        out.append(bytes(f.buf[f.off - 8 : f.off + f.length + 2]))
        f = d.poll()
    return out, d


def test_random_bytes_never_raise_or_hang():
    rng = LCG(1)
    for _ in range(30):
        out, d = run_stream(rng.bytes(rng.between(0, 600)), rng)
        for raw in out:  # anything that comes out is a CRC-valid v1 frame
            assert raw[0] == p.SYNC and raw[1] >> 6 == 1
            assert p.crc16(raw, 1, len(raw) - 2) == raw[-2] | (raw[-1] << 8)


def test_intact_frames_survive_garbage_and_cut_frames_between_them():
    rng = LCG(2)
    for _ in range(25):
        frames = []
        stream = bytearray()
        for _k in range(rng.between(1, 8)):
            choice = rng.below(4)
            if choice == 0:
                stream += rng.bytes(rng.below(30))  # noise
            elif choice == 1:
                cut = random_frame(rng)
                stream += cut[: rng.below(len(cut))]  # a frame cut short
            f = random_frame(rng)
            frames.append(f)
            stream += f
        out, _ = run_stream(bytes(stream), rng)
        # every intact frame comes out, in order (noise may very rarely add a false
        # CRC-valid frame, never remove a real one)
        i = 0
        for raw in out:
            if i < len(frames) and raw == frames[i]:
                i += 1
        assert i == len(frames), "lost an intact frame"


def test_every_frame_with_a_corrupted_crc_is_rejected():
    rng = LCG(3)
    checked = 0
    for _ in range(150):
        original = random_frame(rng)
        f = bytearray(original)
        # flip 1..3 bits anywhere after SYNC: CRC-16/IBM-3740 detects all of them
        for _k in range(rng.between(1, 3)):
            bit = rng.below(8 * (len(f) - 1))
            f[1 + bit // 8] ^= 1 << (bit % 8)
        if bytes(f) == original:
            continue  # two flips of the same bit cancelled out
        out, _ = run_stream(bytes(f), rng)
        assert bytes(f) not in out, "a corrupted frame was accepted"
        assert original not in out
        checked += 1
    assert checked > 100


def test_concatenated_frames_all_come_out():
    rng = LCG(4)
    frames = [random_frame(rng) for _ in range(40)]
    out, d = run_stream(b"".join(frames), rng)
    assert out == frames
    assert d.crc_errors == 0 and d.garbage == 0
