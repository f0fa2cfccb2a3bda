# A module's history as the board's module page reads it (manager_fw/web/module_history.py):
# key frames only, each module's 68 bits on their own, through one small buffer.  Checked
# against the full decoder (manager_fw/history_store.HistoryReader) on the same stores:
# wrap-around, thresholds per string, thinning, a layout change, damage.
from array import array

from manager_fw.blockdev import SimFlash
from manager_fw.history_store import HistoryReader, HistoryWriter
from manager_fw.web.module_history import ModuleHistory
from shared import history as h
from shared.thresholds import ThresholdSet

T0 = 200000000  # StringCare seconds (2026)


class Plant:
    """Module values as a pure function of (record k, module i)."""

    def __init__(self, m, strings):
        self.m = m
        self.v = array("i", [0] * m)
        self.t = array("i", [0] * m)
        self.ri = array("i", [0] * m)
        self.b = bytearray(m)
        self.st = bytearray(m)
        self.cur = array("i", [0] * strings)

    def append(self, w, k):
        for i in range(self.m):
            self.v[i] = 13500000 + 1000 * ((k * 7 + i * 3) % 200)
            self.t[i] = -5000 + 370 * ((k + 5 * i) % 90)  # -5 °C .. 28 °C
            self.ri[i] = 0 if k < 3 else 4000000 + 1000 * i + 5000 * (k // 20)
            self.b[i] = (k + i) % 101
            self.st[i] = (k + i) % 3
        for s in range(len(self.cur)):
            self.cur[s] = 500 - 40 * k if s == 0 else h.CURRENT_NONE
        return w.append(T0 + 1200 * k, h.MODE_FLOAT, self.v, self.t, self.ri, self.b,
                        self.st, self.cur)  # fmt: skip


def keys_of(dev, module, m=0):
    """[[time, ri, mv, cc]] of every key frame the full decoder gives."""
    return keys_all(dev, module + 1, m)[module]


def keys_all(dev, modules, m=0):
    """The same for modules 0..modules-1 in one pass of the decoder."""
    out = [[] for _ in range(modules)]
    for snap in HistoryReader(dev).snapshots():
        if snap.key and (not m or snap.module_count == m):
            for i in range(min(modules, snap.module_count)):
                out[i].append([snap.time_s, snap.ri_nohm[i], snap.voltage_mv[i], snap.temp_cc[i]])
    return out


def read(dev, module, m=0, points=1000):
    mh = ModuleHistory(dev, module, m, points)
    steps = 0
    for _ in mh.steps():
        steps += 1
    return mh, steps


def store(sizes, records, thresholds=None, flash=32768, seg=4096, spacing=512):
    dev = SimFlash(flash, erase_size=1024, page_size=256)
    w = HistoryWriter(dev, sizes, segment_size=seg, key_spacing=spacing)
    if thresholds is not None:
        w.set_thresholds(thresholds)
    plant = Plant(sum(sizes), len(sizes))
    for k in range(records):
        plant.append(w, k)
    return dev, w


def thresholds(n):
    out = []
    for s in range(n):
        t = ThresholdSet()
        t.voltage_high_alarm_uv = 14600000 + 1000 * s
        t.ri_warning_nohm = 6000000 + s
        out.append(t)
    return out


def test_every_module_as_the_full_decoder_reads_its_key_frames():
    shared = ThresholdSet()
    own = thresholds(3)
    for ths in (None, [shared, shared, shared], [own[0], shared, own[2]]):
        dev, w = store([3, 2, 4], 100, ths, flash=16384)
        assert w.key_frames > 8
        wants = keys_all(dev, 9)
        for i in range(9):
            mh, steps = read(dev, i)
            assert mh.rows() == wants[i], (ths is None, i)
            assert mh.problems == [] and mh.other_layout == 0
            assert steps >= 100  # a step per frame at least: the caller's turns


def test_a_wrapped_store_is_read_from_its_oldest_segment():
    dev, w = store([2, 2], 900, flash=8192, seg=1024)
    assert w.ring.segments_started > 8  # it wrapped
    want = keys_of(dev, 3)
    mh, _ = read(dev, 3)
    assert mh.rows() == want and len(want) > 10
    times = [r[0] for r in want]
    assert times == sorted(times) and times[-1] > T0 + 1200 * 850


def test_thinned_to_its_points_with_the_oldest_and_the_newest():
    dev, _ = store([5], 700, spacing=64)
    want = keys_of(dev, 4)
    assert len(want) > 100
    mh, _ = read(dev, 4, points=16)
    got = mh.rows()
    assert 8 <= len(got) <= 17, len(got)
    assert got[0] == want[0] and got[-1] == want[-1]
    stride = mh.stride
    assert stride > 1
    for n, row in enumerate(got[:-1]):
        assert row == want[n * stride]  # evenly: every stride-th key frame


def test_key_frames_of_another_layout_are_left_out():
    dev = SimFlash(32768, erase_size=1024, page_size=256)
    w = HistoryWriter(dev, [3, 3], segment_size=4096, key_spacing=512)
    plant = Plant(6, 2)
    for k in range(40):
        plant.append(w, k)
    w.set_layout([4, 3])
    plant = Plant(7, 2)
    for k in range(40, 80):
        plant.append(w, k)
    mh, _ = read(dev, 2, 7)
    assert mh.rows() == keys_of(dev, 2, 7) and mh.other_layout > 0
    assert all(r[0] >= T0 + 1200 * 40 for r in mh.rows())
    mh, _ = read(dev, 6)  # any layout: module 7 was only in the newer one
    assert mh.rows() == keys_of(dev, 6)


def test_a_damaged_key_frame_is_reported_and_reading_goes_on():
    dev, w = store([3, 2], 300)
    want = keys_of(dev, 1)
    # the second key frame of the second segment: flip a payload byte
    seg = w.ring.segment_size
    r = HistoryReader(dev)
    keys = [s.offset for s in r.snapshots() if s.key and seg <= s.offset < 2 * seg]
    assert len(keys) >= 2
    pos = keys[1] + 20
    dev.data[pos] ^= 0x01
    mh, _ = read(dev, 1)
    assert len(mh.problems) == 1 and "bad CRC" in mh.problems[0], mh.problems
    got = mh.rows()
    lost = [row for row in want if row not in got]
    assert lost and len(lost) < len(want) // 2  # the rest of that segment, no more
    assert got[-1] == want[-1]


def test_an_empty_store_has_no_history_and_no_problem():
    dev = SimFlash(16384, erase_size=1024, page_size=256)
    mh, steps = read(dev, 0)
    assert mh.rows() == [] and mh.problems == [] and steps == 16
    assert "".join(mh.json_pieces()) == "[]"


def test_the_json_pieces_are_the_rows():
    import json

    dev, _ = store([3, 2], 400)
    mh, _ = read(dev, 2, points=40)
    pieces = list(mh.json_pieces(per_piece=7))
    assert len(pieces) > 3 and max(len(p) for p in pieces) < 7 * 40
    assert json.loads("".join(pieces)) == mh.rows()
