# shared/protocol: CRC, frame encode/decode, the stream deframer, no allocation on the
# receive path.
from dualtest import IS_MICROPYTHON, heap_locked, raises

from shared import protocol as p


def feed_all(d, data, chunk=0):
    """Feed data in chunks of `chunk` bytes (0: all at once); return the frames'
    (dst, src, cmd, seq, payload) in order."""
    out = []
    pos = 0
    n = len(data)
    while pos < n:
        end = n if chunk == 0 else min(n, pos + chunk)
        while pos < end:
            pos += d.feed(data, pos, end)
            f = d.poll()
            while f is not None:
                out.append((f.dst, f.src, f.cmd, f.seq, f.payload()))
                f = d.poll()
    return out


def test_crc_check_value():
    assert p.crc16(b"123456789", 0, 9) == 0x29B1
    assert p.crc16(b"", 0, 0) == 0xFFFF
    # start/end select a region without slicing
    assert p.crc16(b"xx123456789yy", 2, 11) == 0x29B1


def test_fast_crc_equals_the_reference_loop():
    # On MicroPython crc16 is viper machine code; it must agree with the bytecode loop.
    from dualtest import LCG

    rng = LCG(11)
    for _ in range(200):
        data = rng.bytes(rng.below(80))
        a = rng.below(len(data) + 1)
        b = a + rng.below(len(data) - a + 1)
        init = rng.below(0x10000)
        assert p.crc16(data, a, b, init) == p.crc16_py(data, a, b, init)
    buf = bytearray(b"123456789")
    assert heap_locked(p.crc16, buf, 0, 9) == 0x29B1


def test_fast_copy_equals_the_reference_loop_including_overlap():
    a = bytearray(b"0123456789abcdef")
    b = bytearray(a)
    p.copy_bytes(a, 0, a, 3, 10)  # overlapping forward move, as the deframer does
    p.copy_bytes_py(b, 0, b, 3, 10)
    assert a == b == bytearray(b"3456789abcabcdef")
    heap_locked(p.copy_bytes, a, 2, b"xyz", 0, 3)
    assert a[2:5] == b"xyz"


def test_frame_layout_is_byte_exact():
    frame = p.encode_bytes(0x0102, p.ADDR_MANAGER, p.CMD_READ_MEAS, 7)
    assert frame[:8] == bytes([0xA5, 0x80, 0x02, 0x01, 0xFE, 0xFF, 0x02, 0x07])
    crc = p.crc16(frame, 1, 8)
    assert frame[8] == crc & 0xFF and frame[9] == crc >> 8
    assert len(frame) == p.OVERHEAD


def test_meas_roundtrip_and_signed_fields():
    buf = bytearray(p.FRAME_MAX)
    n = p.encode_meas(buf, p.ADDR_MANAGER, 17, p.CMD_READ_MEAS | p.REPLY, 200, 13542374,
                      -12340, 57, p.FLAG_BALANCING | p.FLAG_PROBE)  # fmt: skip
    assert n == 16
    f = p.decode_frame(buf[:n])
    assert (f.dst, f.src, f.cmd, f.seq, f.length) == (0xFFFE, 17, 0x82, 200, 6)
    assert p.meas_voltage_uv(f.buf, f.off) == 13542370  # 10 µV steps, nearest
    assert p.meas_temp_mc(f.buf, f.off) == -12400  # 0.2 °C steps, nearest
    assert f.u8(4) == 57
    assert f.u8(5) == 0x81
    assert f.is_reply()


def test_integer_field_helpers():
    b = bytearray(8)
    for v in (0, 1, -1, 0x7FFFFFFF, -0x80000000, 123456789, -987654321):
        p.put_i32(b, 2, v)
        assert p.get_i32(b, 2) == v
    for v in (0, 0xFFFFFFFF, 0x12345678):
        p.put_u32(b, 0, v)
        assert p.get_u32(b, 0) == v
    for v in (-32768, -1, 0, 32767):
        p.put_i16(b, 1, v)
        assert p.get_i16(b, 1) == v


def test_decode_frame_names_what_is_wrong():
    good = p.encode_bytes(5, p.ADDR_MANAGER, p.CMD_IDENTIFY, 1, b"\x01")
    assert "shorter" in str(raises(p.ProtocolError, p.decode_frame, good[:5]))
    assert "SYNC" in str(raises(p.ProtocolError, p.decode_frame, b"\x00" + good[1:]))
    assert "LEN" in str(raises(p.ProtocolError, p.decode_frame, good + b"\x00"))
    bad = bytearray(good)
    bad[8] ^= 0x10
    assert "CRC" in str(raises(p.ProtocolError, p.decode_frame, bad))
    v1 = bytearray(good)
    v1[1] = 0x40 | 1
    c = p.crc16(v1, 1, 9)
    v1[9] = c & 0xFF
    v1[10] = c >> 8
    assert "version" in str(raises(p.ProtocolError, p.decode_frame, v1))


def test_encode_rejects_oversized_payload():
    raises(p.ProtocolError, p.encode_frame, bytearray(200), 1, 2, 3, 4, 64)


def test_encoders_raise_instead_of_wrapping():
    # issue 13: voltage 70000 mV, temp_cc 40000, balance_pct 300, address 0x12345 wrapped
    buf = bytearray(p.FRAME_MAX)
    m = p.ADDR_MANAGER
    e = raises(p.ProtocolError, p.encode_meas, buf, m, 1, 0x83, 1, 70000000, 0, 0, 0)
    assert "voltage_uv 70000000" in str(e)
    assert "temp_mc" in str(raises(p.ProtocolError, p.encode_meas, buf, m, 1, 0x83, 1,
                                   13000000, 400000, 0, 0))  # fmt: skip
    assert "balance_pct" in str(raises(p.ProtocolError, p.encode_meas, buf, m, 1, 0x83, 1,
                                       13000000, 0, 300, 0))  # fmt: skip
    assert "dst 0x12345" in str(raises(p.ProtocolError, p.encode_frame, buf, 0x12345, m, 1, 1, 0))
    raises(p.ProtocolError, p.encode_frame, buf, 1, m, 256, 1, 0)
    raises(p.ProtocolError, p.put_u16, buf, 0, 70000)
    raises(p.ProtocolError, p.put_u16, buf, 0, -1)
    raises(p.ProtocolError, p.put_i16, buf, 0, 40000)
    raises(p.ProtocolError, p.put_u24, buf, 0, 0x1000000)
    raises(p.ProtocolError, p.put_i32, buf, 0, 0x80000000)
    raises(p.ProtocolError, p.put_set_target, buf, 1, 64, p.TARGET_MAX_UV + 10, 0, 10)
    raises(p.ProtocolError, p.put_set_target, buf, 0, 64, 13000000, 0, 10)
    raises(p.ProtocolError, p.put_set_target, buf, 1, 1000, 13000000, 0, 10)
    # the edges themselves are fine
    assert p.encode_meas(buf, m, 1, 0x83, 1, p.MEAS_VOLTAGE_MAX_UV, p.MEAS_TEMP_MAX_MC, 100,
                         255) == 16  # fmt: skip
    f = p.decode_frame(bytes(buf[:16]))
    assert p.meas_voltage_uv(f.buf, f.off) == p.MEAS_VOLTAGE_MAX_UV
    assert p.meas_temp_mc(f.buf, f.off) == p.MEAS_TEMP_MAX_MC
    p.encode_meas(buf, m, 1, 0x83, 1, 0, p.MEAS_TEMP_MIN_MC, 0, 0)
    f = p.decode_frame(bytes(buf[:16]))
    assert p.meas_temp_mc(f.buf, f.off) == p.MEAS_TEMP_MIN_MC


def test_set_target_layout_is_defined_once():
    buf = bytearray(p.FRAME_MAX)
    n = p.put_set_target(buf, 33, 64, 13045470, p.TARGET_EQUALISE, 30)
    assert n == p.SET_TARGET_FIELDS == 9
    n = p.encode_frame(buf, p.ADDR_BROADCAST, p.ADDR_MANAGER, p.CMD_SET_TARGET, 1, n)
    f = p.decode_frame(bytes(buf[:n]))
    assert f.u16(p.ST_FIRST) == 33 and f.u16(p.ST_LAST) == 64
    assert p.target_uv_of(f) == 13045470
    assert f.u8(p.ST_FLAGS) == 1 and f.u8(p.ST_TIMEOUT) == 30


def _stream():
    frames = [
        p.encode_bytes(p.ADDR_BROADCAST, p.ADDR_MANAGER, p.CMD_POLL_GROUP, 1, b"\x01\x00\x10"),
        p.encode_bytes(p.ADDR_MANAGER, 1, 0x83, 1, b"\x10\x34\x00\x09\x32\x01"),
        p.encode_bytes(p.ADDR_MANAGER, 2, 0x83, 1, b"\xa5\xa5\xa5\xa5\x00\x00"),  # SYNC inside
        p.encode_bytes(3, p.ADDR_MANAGER, p.CMD_INFO, 2),
    ]
    return frames


def test_deframer_any_chunking_gives_the_same_frames():
    frames = _stream()
    data = b"".join(frames)
    expect = feed_all(p.Deframer(), data)
    assert len(expect) == 4
    assert expect[2][4] == b"\xa5\xa5\xa5\xa5\x00\x00"
    for chunk in (1, 2, 3, 5, 7, 16, 64):
        assert feed_all(p.Deframer(), data, chunk) == expect


def test_deframer_resyncs_after_garbage_and_cut_frames():
    frames = _stream()
    garbage = b"\x00\xff\xa5\x13\xa5\x40\x99"
    cut = frames[1][:9]  # a frame cut off by a reset or unplugged cable
    data = garbage + frames[0] + cut + frames[1] + garbage + frames[2] + frames[3]
    d = p.Deframer()
    got = feed_all(d, data, 3)
    assert [g[1] for g in got] == [p.ADDR_MANAGER, 1, 2, p.ADDR_MANAGER]
    assert d.frames == 4
    assert d.garbage > 0


def test_deframer_rejects_bit_flips_and_counts_them():
    frame = bytearray(_stream()[1])
    for bit in range(8 * (len(frame) - 1)):
        bad = bytearray(frame)
        bad[1 + bit // 8] ^= 1 << (bit % 8)
        d = p.Deframer()
        got = feed_all(d, bytes(bad))
        assert got == [], "bit %d flipped was accepted" % bit
    # the same bytes unflipped still decode
    assert len(feed_all(p.Deframer(), bytes(frame))) == 1


def test_deframer_skips_other_versions_whole():
    v1 = bytearray(p.encode_bytes(1, p.ADDR_MANAGER, p.CMD_INFO, 3, b"\x01\x02"))
    v1[1] = (1 << 6) | 2  # a protocol version 1 frame
    c = p.crc16(v1, 1, 10)
    v1[10] = c & 0xFF
    v1[11] = c >> 8
    good = p.encode_bytes(1, p.ADDR_MANAGER, p.CMD_INFO, 4)
    d = p.Deframer()
    got = feed_all(d, bytes(v1) + good)
    assert len(got) == 1 and got[0][3] == 4
    assert d.version_errors == 1
    assert d.crc_errors == 0


def test_deframer_never_stalls_on_fake_lengths():
    # SYNC + a length field promising 63 bytes, repeatedly, then a real frame: the
    # fake candidates wait for bytes that never come; when the line goes idle they
    # are dropped and the real frame comes out.
    fake = b"\xa5\x7f" * 200
    good = p.encode_bytes(9, p.ADDR_MANAGER, p.CMD_STATUS, 9)
    d = p.Deframer()
    got = feed_all(d, fake + good, 11)
    assert got == []  # still waiting: 63-byte candidates are not complete yet
    d.idle()
    f = d.poll()
    assert f is not None and f.dst == 9 and f.seq == 9
    assert d.poll() is None
    assert d.pending() == 0


def test_idle_keeps_complete_frames_and_a_following_feed_resumes():
    good = p.encode_bytes(9, p.ADDR_MANAGER, p.CMD_STATUS, 9)
    d = p.Deframer()
    d.feed(good + good[:4])
    d.idle()
    assert d.poll().seq == 9
    assert d.poll() is None  # the cut frame's 4 bytes are dropped as garbage
    assert d.garbage == 4
    assert feed_all(d, good) == [(9, p.ADDR_MANAGER, p.CMD_STATUS, 9, b"")]


def test_reset_drops_a_partial_frame():
    good = p.encode_bytes(9, p.ADDR_MANAGER, p.CMD_STATUS, 9)
    d = p.Deframer()
    d.feed(good[:6])
    assert d.poll() is None and d.pending() == 6
    d.reset()
    assert d.pending() == 0
    assert feed_all(d, good) == [(9, p.ADDR_MANAGER, p.CMD_STATUS, 9, b"")]


def _decode_meas_reply(d, data, out):
    # the manager's hot path: bytes in, fields out
    pos = 0
    n = len(data)
    count = 0
    while pos < n:
        pos += d.feed(data, pos, n)
        f = d.poll()
        while f is not None:
            out[0] = p.meas_voltage_uv(f.buf, f.off)
            out[1] = p.meas_temp_mc(f.buf, f.off)
            out[2] = f.u8(4)
            out[3] = f.u8(5)
            count += 1
            f = d.poll()
    return count


def test_decoding_a_measurement_reply_allocates_nothing():
    from array import array

    buf = bytearray(p.FRAME_MAX)
    n = p.encode_meas(buf, p.ADDR_MANAGER, 42, 0x83, 5, 13600010, 25200, 40, 1)
    data = bytes(buf[:n]) * 4
    d = p.Deframer()
    out = array("l", [0, 0, 0, 0])
    # 1. gc.mem_alloc() does not move across 4 decodes (MicroPython's own count)
    if IS_MICROPYTHON:
        import gc

        gc.collect()
        before = gc.mem_alloc()
        count = _decode_meas_reply(d, data, out)
        after = gc.mem_alloc()
        assert after == before, "decode allocated %d bytes" % (after - before)
        assert count == 4
    # 2. and with the heap locked any allocation would raise MemoryError
    count = heap_locked(_decode_meas_reply, d, data, out)
    assert count == 4
    assert list(out) == [13600010, 25200, 40, 1]


def test_encoding_a_measurement_reply_allocates_nothing():
    buf = bytearray(p.FRAME_MAX)
    n = heap_locked(p.encode_meas, buf, p.ADDR_MANAGER, 42, 0x83, 5, 13600000, -4000, 40, 1)
    assert n == 16
    f = p.decode_frame(bytes(buf[:16]))
    assert p.meas_temp_mc(f.buf, f.off) == -4000


def test_group_timing_at_115200():
    # one character is 10 bits: 86.8 µs at 115200 baud
    assert p.char_ns(115200) == 86806
    assert p.wire_us(16, 115200) == 1389
    assert p.group_lead_us(115200) == 2000
    assert p.group_slot_start_us(0, 115200) == 2000
    assert p.group_slot_start_us(1, 115200) == 2000 + 1563  # 18 Tc = 1562.5 µs, up
    # the grid is exact: slot 63 starts at L + 63 * 18 Tc (98437.5 µs), not 63 rounded slots
    assert p.group_slot_start_us(63, 115200) == 2000 + 98438
    # slow links: the lead grows to 4 characters
    assert p.group_lead_us(2400) == 16667


def test_slot_grid_is_exact_at_every_supported_baud():
    # issue 13: slots rounded up to whole µs and accumulated started > 1 Tc late at
    # 230400 and 460800 baud from slot 58 on.  Now every start is within 1 µs of
    # L + k * 18 Tc, computed without any integer above 2**30.
    for baud in (9600, 19200, 38400, 57600, 115200, 230400, 460800):
        lead = p.group_lead_us(baud)
        for k in range(p.GROUP_MAX + 1):
            exact_num = k * 18 * 10000000  # µs * baud
            got = p.group_slot_start_us(k, baud) - lead
            assert got * baud >= exact_num and (got - 1) * baud < exact_num, (baud, k)
        for j in range(256):
            got = p.discover_slot_start_us(j, baud) - lead
            assert got * baud >= j * 26 * 10000000 > (got - 1) * baud or j == 0, (baud, j)
