"""Property tests of the deframer with hypothesis (CPython; shrinking finds minimal
counter-examples).  The seeded twin that also runs in MicroPython is
host_tests/dual/shared/test_protocol_fuzz.py."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shared import protocol as p
from stringcare.dev import protocol_vectors as ref

frames = st.builds(
    lambda dst, src, cmd, seq, payload: p.encode_bytes(dst, src, cmd, seq, payload),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 255),
    st.integers(0, 255),
    st.binary(max_size=p.PAYLOAD_MAX),
)


def deframe(data: bytes, chunks: list[int]) -> tuple[list[bytes], p.Deframer]:
    d = p.Deframer()
    out: list[bytes] = []
    pos = 0
    i = 0
    while pos < len(data):
        end = min(len(data), pos + (chunks[i % len(chunks)] if chunks else len(data)))
        i += 1
        while pos < end:
            pos += d.feed(data, pos, end)
            f = d.poll()
            while f is not None:
                out.append(bytes(f.buf[f.off - 8 : f.off + f.length + 2]))
                f = d.poll()
    d.idle()
    f = d.poll()
    while f is not None:
        out.append(bytes(f.buf[f.off - 8 : f.off + f.length + 2]))
        f = d.poll()
    return out, d


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(1, 64), max_size=8))
def test_arbitrary_bytes_only_yield_crc_valid_frames(data, chunks):
    out, _ = deframe(data, chunks)
    for raw in out:
        assert raw[0] == p.SYNC
        assert ref.crc(raw[1:-2]) == int.from_bytes(raw[-2:], "little")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.binary(max_size=40), frames), min_size=1, max_size=10),
    st.lists(st.integers(1, 64), max_size=8),
)
def test_frames_survive_any_garbage_between_them(parts, chunks):
    stream = b"".join(g + f for g, f in parts)
    out, _ = deframe(stream, chunks)
    it = iter(out)
    for _g, f in parts:
        assert any(raw == f for raw in it), "frame lost"


@settings(max_examples=500, deadline=None)
@given(frames, st.sets(st.integers(0, 8 * 72 - 1), min_size=1, max_size=3))
def test_corrupted_frames_never_come_out(frame, bits):
    bad = bytearray(frame)
    for bit in bits:
        pos = 1 + bit // 8
        if pos < len(bad):
            bad[pos] ^= 1 << (bit % 8)
    out, _ = deframe(bytes(bad), [])
    if bytes(bad) != frame:
        assert bytes(bad) not in out
        assert frame not in out


@given(frames)
def test_reference_encoder_and_firmware_codec_agree(frame):
    f = p.decode_frame(frame)
    assert ref.frame(f.dst, f.src, f.cmd, f.seq, f.payload()) == frame


def test_crc_matches_the_textbook_model():
    assert ref.crc(b"123456789") == 0x29B1
    for data in (b"", b"\x00", b"\xff" * 70, bytes(range(64))):
        assert p.crc16(data, 0, len(data)) == ref.crc(data)
