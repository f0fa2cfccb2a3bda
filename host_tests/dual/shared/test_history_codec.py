# shared/history: the snapshot codec (key and delta payloads), its bit packing and
# tiered delta code, byte-exact vectors (docs/history.md), and the record cadence.
from array import array

from dualtest import LCG, heap_locked, raises

from shared import history as h
from shared.thresholds import OFF_HIGH, OFF_LOW, ThresholdSet


class Collect:
    """BitWriter sink that keeps the payload in a preallocated bytearray."""

    def __init__(self, size):
        self.data = bytearray(size)
        self.n = 0

    def write(self, buf, n):
        i = 0
        while i < n:
            self.data[self.n] = buf[i]
            self.n += 1
            i += 1

    def payload(self):
        return bytes(self.data[: self.n])


def encode(enc, key, mode, v, t, ri, b, st, cur, th=None, update=True):
    sink = Collect(4096)
    bw = h.BitWriter(16)
    bw.reset(sink)
    n = enc.encode(bw, key, mode, v, t, ri, b, st, cur, th, update)
    assert n == sink.n
    return sink.payload()


def hexs(data):
    return "".join("%02x" % x for x in data)


def test_key_payload_is_byte_exact():
    # the vector in docs/history.md: 2 modules in 1 string
    enc = h.SnapshotEncoder([2])
    p = encode(
        enc,
        True,
        h.MODE_FLOAT,
        [13620000, 13584400],  # µV -> 13620, 13584 mV
        [22000, -1234],  # m°C -> 2200, -123 centi-°C
        [5000000, 0],  # nΩ
        [10, 0],
        [h.STATE_NORMAL, h.STATE_WARNING],
        [-1500],  # mA
    )
    assert hexs(p) == (
        "01"
        "00"
        "0002"
        "01"
        "0002"
        "00"  # version, mode, modules, strings, size, flags
        "fffa24"  # current -1500 mA, 24-bit two's complement
        # module 1, 68 bits: 13620 mV (15) 2200 c°C (16) 10 % (7) state 0 (4) 5e6 nΩ (26)
        # 011010100110100 0000100010011000 0001010 0000 00010011000100101101000000
        "6a6811302804c4b4"
        # module 2 (starts in the low nibble of this byte): 13584 mV, -123 c°C (0xff85),
        # 0 %, state 1, Ri 0; then 4 zero bits of padding
        "06a21ff0a004000000"
    ), hexs(p)


def test_delta_payload_is_byte_exact_and_small():
    enc = h.SnapshotEncoder([2])
    v = [13620000, 13584400]
    t = [22000, -1234]
    ri = [5000000, 0]
    b = [10, 0]
    st = [0, 1]
    encode(enc, True, 0, v, t, ri, b, st, [-1500])
    # module 1: +1 mV, same temperature, balance +1; module 2: all the same;
    # current +3 mA
    p = encode(enc, False, 0, [13621000, 13584400], t, ri, [11, 0], st, [-1497])
    # mode byte 00, then 20 bits + 4 bits padding:
    #   current +3 mA: zigzag 6, tier 1 -> '10' + 0101
    #   module 1: voltage +1 mV: zigzag 2, tier 1 -> '10' + '01'; temperature 0 -> '0';
    #             balance +1 -> '10' + '01'; state and Ri unchanged -> '0'
    #   module 2: '0' '0' '0' '0'
    # 100101 1001 0 1001 0 0000 (0000) = 96 52 00
    assert hexs(p) == "00965200", hexs(p)
    assert len(p) == 4  # against 28 bytes for the key frame of the same snapshot


def test_round_trip_with_extremes_and_clamps():
    enc = h.SnapshotEncoder([2, 1])
    snap = h.Snapshot()
    r = h.BitReader()
    cases = [
        ([0, 32767000, 12000000], [-327680, 327670, 25000], [0, h.RI_MAX_NOHM, 1], [0, 100, 50]),
        # out of range: clamped to the stored ranges
        ([-5, 40000000, 12000001], [-999999, 999999, 25004], [-7, 99999999, 1], [-3, 250, 50]),
        ([1000, 2000, 12000499], [0, -5, 25005], [123456, 654321, 2], [1, 2, 3]),
    ]
    expect = [
        ([0, 32767, 12000], [-32768, 32767, 2500], [0, h.RI_MAX_NOHM, 1], [0, 100, 50]),
        ([0, 32767, 12000], [-32768, 32767, 2500], [0, h.RI_MAX_NOHM, 1], [0, 100, 50]),
        ([1, 2, 12000], [0, -1, 2501], [123456, 654321, 2], [1, 2, 3]),
    ]
    states = [[0, 15, 4], [2, 1, 0], [0, 0, 0]]
    currents = [[h.CURRENT_NONE, 0], [99999999, -99999999], [h.CURRENT_NONE, 7]]
    cur_expect = [[h.CURRENT_NONE, 0], [h.CURRENT_MAX_MA, h.CURRENT_MIN_MA], [h.CURRENT_NONE, 7]]
    for n in range(len(cases)):
        v, t, ri, b = cases[n]
        key = n == 0
        p = encode(enc, key, n, v, t, ri, b, states[n], currents[n])
        h.decode_payload(h.KIND_KEY if key else h.KIND_DELTA, p, len(p), snap, r)
        ev, et, eri, eb = expect[n]
        assert list(snap.voltage_mv) == ev
        assert list(snap.temp_cc) == et
        assert list(snap.ri_nohm) == eri
        assert list(snap.balance_pct) == eb
        assert list(snap.state) == states[n]
        assert list(snap.string_current_ma) == cur_expect[n]
        assert snap.mode == n and snap.key == key
    assert list(snap.string_sizes) == [2, 1]
    assert snap.label(0) == "1S1" and snap.label(1) == "2S1" and snap.label(2) == "1S2"
    assert snap.string_of(2) == 1


def test_random_walk_round_trip_matches_exactly():
    rng = LCG(2024)
    m = 20
    enc = h.SnapshotEncoder([12, 8])
    snap = h.Snapshot()
    v = [13600000] * m
    t = [21000] * m
    ri = [4000000] * m
    b = [0] * m
    st = [0] * m
    cur = [200, h.CURRENT_NONE]
    for n in range(60):
        for i in range(m):
            # mostly small steps, sometimes jumps that need the wider tiers or the escape
            big = rng.below(20) == 0
            v[i] += rng.between(-400000, 400000) if big else rng.between(-3000, 3000)
            t[i] += rng.between(-5000, 5000) if big else rng.between(-60, 60)
            b[i] = rng.between(0, 100) if big else min(100, max(0, b[i] + rng.between(-2, 2)))
            if rng.below(30) == 0:
                ri[i] = rng.between(1000, 60000000)
            if rng.below(40) == 0:
                st[i] = rng.below(16)
        cur[0] += rng.between(-3000, 3000)
        key = n % 25 == 0
        p = encode(enc, key, 0, v, t, ri, b, st, cur)
        h.decode_payload(h.KIND_KEY if key else h.KIND_DELTA, p, len(p), snap)
        for i in range(m):
            assert snap.voltage_mv[i] == (v[i] + 500) // 1000
            assert snap.temp_cc[i] == h.temp_cc_of(t[i])
            assert snap.ri_nohm[i] == ri[i]
            assert snap.balance_pct[i] == b[i]
            assert snap.state[i] == st[i]
        assert snap.string_current_ma[0] == cur[0]
        assert snap.string_current_ma[1] == h.CURRENT_NONE


def test_tiered_code_lengths():
    bw = h.BitWriter(8)
    for delta, bits in ((0, 1), (1, 4), (-2, 4), (2, 4), (3, 7), (-10, 7), (11, 11), (74, 11)):
        bw.reset(None)
        h.put_tiered(bw, delta, h.VOLTAGE_TIERS, 0, h.VOLTAGE_BITS)
        assert bw.bits == bits, (delta, bw.bits)
    bw.reset(None)
    h.put_tiered(bw, 75, h.VOLTAGE_TIERS, 13000, h.VOLTAGE_BITS)
    assert bw.bits == 4 + 15  # escape + absolute value
    # and every delta decodes back, across all tiers and the escape
    sink = Collect(64)
    r = h.BitReader()
    for delta in (0, 1, -1, 2, -2, 3, -3, 10, -10, 11, -11, 74, -74, 75, -75, 5000):
        sink.n = 0
        bw.reset(sink)
        h.put_tiered(bw, delta, h.VOLTAGE_TIERS, 12345, h.VOLTAGE_BITS)
        n = bw.finish()
        r.reset(sink.data, n)
        d = r.get_tiered(h.VOLTAGE_TIERS)
        if r.escaped:
            assert r.get(h.VOLTAGE_BITS) == 12345 and delta in (75, -75, 5000)
        else:
            assert d == delta


def test_thresholds_travel_in_key_frames():
    enc = h.SnapshotEncoder([1, 1])
    a = ThresholdSet()
    a.set_voltage(12600000, 13080000, 14100000, 14400000, 30000)
    a.set_discharge_voltage(10500000, 11100000)
    a.set_temperature(-5000, 15000, 28000, 30000, 1000)
    a.set_ri_from_baseline(15000000)
    a.set_spread(240000, 480000, 30000)
    b = ThresholdSet()  # everything off
    p = encode(enc, True, 0, [1, 2], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [a, b])
    snap = h.Snapshot()
    h.decode_payload(h.KIND_KEY, p, len(p), snap)
    ta, tb = snap.thresholds
    assert ta.voltage_low_alarm_uv == 12600000 and ta.voltage_high_alarm_uv == 14400000
    assert ta.discharge_low_warning_uv == 11100000
    assert ta.temp_low_alarm_mc == -5000 and ta.temp_high_warning_mc == 28000
    assert ta.ri_warning_nohm == 23400000 and ta.ri_alarm_nohm == 28800000
    assert ta.spread_warning_uv == 240000 and ta.spread_alarm_uv == 480000
    assert tb.voltage_high_alarm_uv == OFF_HIGH and tb.voltage_low_alarm_uv == OFF_LOW
    assert tb.temp_high_alarm_mc == OFF_HIGH and tb.ri_warning_nohm == OFF_HIGH
    # the same set for both strings is stored once
    same = encode(enc, True, 0, [1, 2], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [a, a])
    assert len(same) < len(p) - 25
    h.decode_payload(h.KIND_KEY, same, len(same), snap)
    assert snap.thresholds[1].voltage_high_alarm_uv == 14400000


def test_bad_payloads_are_refused():
    enc = h.SnapshotEncoder([2])
    snap = h.Snapshot()
    p = encode(enc, True, 0, [1, 2], [0, 0], [0, 0], [0, 0], [0, 0], [0])
    e = raises(ValueError, h.decode_payload, h.KIND_KEY, p, len(p) - 3, snap)
    assert "payload ends early" in str(e)
    snap = h.Snapshot()
    d = encode(enc, False, 0, [1, 2], [0, 0], [0, 0], [0, 0], [0, 0], [0])
    e = raises(ValueError, h.decode_payload, h.KIND_DELTA, d, len(d), snap)
    assert "without the key frame" in str(e)
    bad = bytearray(p)
    bad[0] = 9
    e = raises(ValueError, h.decode_payload, h.KIND_KEY, bad, len(bad), snap)
    assert "format version 9" in str(e)
    e = raises(ValueError, encode, enc, True, 0, [1, 2], [0, 0], [0, 0], [0, 0], [0, 16], [0])
    assert "module 2: state code 16" in str(e)
    e = raises(ValueError, h.SnapshotEncoder, [3, 0])
    assert "string sizes must be 1..65535" in str(e)


def _encode_dry(enc, bw, a):
    bw.reset(None)
    return enc.encode(bw, False, 0, a[0], a[1], a[2], a[3], a[4], a[5], None, False)


def _encode_real(enc, bw, sink, a):
    sink.n = 0
    bw.reset(sink)
    return enc.encode(bw, False, 0, a[0], a[1], a[2], a[3], a[4], a[5], None, True)


def test_encoding_allocates_nothing():
    m = 100
    enc = h.SnapshotEncoder([50, 50])
    v = array("i", [13600000] * m)
    t = array("i", [21000] * m)
    ri = array("i", [4000000] * m)
    b = bytearray(m)
    st = bytearray(m)
    cur = array("i", [100, h.CURRENT_NONE])
    bw = h.BitWriter(32)
    sink = Collect(2048)
    enc.encode(bw, True, 0, v, t, ri, b, st, cur, None, True)
    for i in range(m):
        v[i] += (i % 7 - 3) * 1000
        t[i] += i % 5
    values = (v, t, ri, b, st, cur)
    size = heap_locked(_encode_dry, enc, bw, values)
    # about a byte per module for deltas of a few mV and centi-°C
    assert m // 2 < size < 2 * m, size
    n = heap_locked(_encode_real, enc, bw, sink, values)
    assert n == size == sink.n


def test_cadence():
    c = h.HistoryCadence()
    assert c.due(1000, h.MODE_FLOAT)
    c.recorded(1000, h.MODE_FLOAT)
    assert not c.due(1000 + 1199, h.MODE_FLOAT)
    assert c.due(1000 + 1200, h.MODE_FLOAT)
    assert c.due(1005, h.MODE_DISCHARGE)  # a discharge starts: record at once
    c.recorded(1005, h.MODE_DISCHARGE)
    assert not c.due(1014, h.MODE_DISCHARGE) and c.due(1015, h.MODE_DISCHARGE)
    c.recorded(1015, h.MODE_RECOVERY)
    assert not c.due(1074, h.MODE_RECOVERY) and c.due(1075, h.MODE_RECOVERY)
    assert c.due(900, h.MODE_RECOVERY)  # clock set back
    assert h.record_interval_s(h.MODE_BOOST) == 300
