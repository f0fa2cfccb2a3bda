# manager_fw/history_store on the simulated NOR flash and on files: wrap-around,
# power cut at every byte offset of a record write, reopen, damage, truncation.
from array import array

from dualtest import heap_locked, raises

from manager_fw.blockdev import (
    ExtBlockDevice,
    FileBlockDevice,
    FlashError,
    Partition,
    PowerCut,
    SimFlash,
)
from manager_fw.history_store import HistoryReader, HistoryWriter
from manager_fw.ring import StoreFormatError
from shared import history as h

SIZES = [3, 2]
M = 5
T0 = 200000000  # StringCare seconds (2026)


def tri(x, p):
    r = x % (2 * p)
    return r if r < p else 2 * p - r


class Plant:
    """Module values as a pure function of (record k, module i): slowly varying, so
    every decoded snapshot can be checked without keeping what was written."""

    def __init__(self):
        self.v = array("i", [0] * M)
        self.t = array("i", [0] * M)
        self.ri = array("i", [0] * M)
        self.b = bytearray(M)
        self.st = bytearray(M)
        self.cur = array("i", [0, h.CURRENT_NONE])
        self.args = (self.v, self.t, self.ri, self.b, self.st, self.cur)

    def fill(self, k):
        i = 0
        while i < M:
            self.v[i] = 13590000 + 1000 * tri(k + 3 * i, 10) + 7
            self.t[i] = 21000 + 10 * tri(k + 5 * i, 30) - 3
            self.ri[i] = 4000000 + 1000 * i + 5000 * (k // 72)
            self.b[i] = tri(k + i, 50)
            self.st[i] = 1 if (k // 40 + i) % 5 == 0 else 0
            i += 1
        self.cur[0] = 500 + 10 * tri(k, 20)

    def check(self, snap):
        k = (snap.time_s - T0) // 1200
        assert snap.time_s == T0 + 1200 * k
        self.fill(k)
        for i in range(M):
            assert snap.voltage_mv[i] == (self.v[i] + 500) // 1000, (k, i)
            assert snap.temp_cc[i] == h.temp_cc_of(self.t[i]), (k, i)
            assert snap.ri_nohm[i] == self.ri[i]
            assert snap.balance_pct[i] == self.b[i]
            assert snap.state[i] == self.st[i]
        assert snap.string_current_ma[0] == self.cur[0]
        assert snap.string_current_ma[1] == h.CURRENT_NONE
        return k


def append(w, plant, k):
    plant.fill(k)
    a = plant.args
    return w.append(T0 + 1200 * k, h.MODE_FLOAT, a[0], a[1], a[2], a[3], a[4], a[5])


class NothingRead:
    problems = []
    notes = []


def read_ks(dev, plant):
    """Record numbers of every snapshot the store gives back (each one checked)."""
    try:
        r = HistoryReader(dev)
    except StoreFormatError as exc:
        # power was cut before the first segment header was complete: an empty store
        assert "no StringCare segment header" in str(exc)
        return [], NothingRead()
    ks = [plant.check(s) for s in r.snapshots()]
    return ks, r


def small_flash():
    # 8 segments of 1 KB: about 45 records each
    return SimFlash(8192, erase_size=1024, page_size=256)


def test_round_trip_and_wrap_around_keep_the_newest_in_order():
    dev = small_flash()
    plant = Plant()
    w = HistoryWriter(dev, SIZES, segment_size=1024, key_spacing=512)
    for k in range(40):
        append(w, plant, k)
    ks, r = read_ks(dev, plant)
    assert ks == list(range(40)) and r.problems == [] and r.notes == []
    for k in range(40, 1000):
        append(w, plant, k)
    ks, r = read_ks(dev, plant)
    assert r.problems == [] and r.notes == []
    assert ks[-1] == 999
    assert ks == list(range(ks[0], 1000)), "consecutive, oldest first"
    # 7 full segments survive (the 8th is the one being written)
    assert len(ks) > 7 * 30, len(ks)
    assert ks[0] > 600
    assert w.ring.segments_started > 8  # it wrapped


def test_reopen_continues_in_the_same_segment_with_a_key_frame():
    dev = small_flash()
    plant = Plant()
    w = HistoryWriter(dev, SIZES, segment_size=1024)
    for k in range(10):
        append(w, plant, k)
    pos = w.ring.pos
    w2 = HistoryWriter(dev, SIZES, segment_size=1024)
    assert w2.ring.pos == pos and not w2.ring.sealed and w2.ring.seg == w.ring.seg
    size = append(w2, plant, 10)
    assert w2.key_frames == 1 and size > 40  # a key frame, not a delta
    assert append(w2, plant, 11) < 30
    ks, r = read_ks(dev, plant)
    assert ks == list(range(12)) and r.problems == []


def _run_until_cut(cut, torn_keep, records):
    """Fresh flash, `records` clean records, then record `records` with power cut after
    `cut` byte programs/erases.  Returns (device, True if the cut hit)."""
    dev = small_flash()
    plant = Plant()
    w = HistoryWriter(dev, SIZES, segment_size=1024, key_spacing=512)
    for k in range(records):
        append(w, plant, k)
    dev.cut_after(cut, torn_keep)
    try:
        append(w, plant, records)
        hit = False
    except PowerCut:
        hit = True
    dev.power_on()
    return dev, hit


def _operations_of_record(records):
    dev = small_flash()
    plant = Plant()
    w = HistoryWriter(dev, SIZES, segment_size=1024, key_spacing=512)
    for k in range(records):
        append(w, plant, k)
    before = dev.bytes_programmed + dev.erases
    seg_before = w.ring.segments_started
    append(w, plant, records)
    return dev.bytes_programmed + dev.erases - before, w.ring.segments_started > seg_before


def _first_record_opening_segment(n):
    dev = small_flash()
    plant = Plant()
    w = HistoryWriter(dev, SIZES, segment_size=1024, key_spacing=512)
    k = 0
    while w.ring.segments_started < n:
        append(w, plant, k)
        k += 1
    return k - 1


def _power_cut_at_every_byte(records, torn_keep):
    plant = Plant()
    ops, _ = _operations_of_record(records)
    for cut in range(ops + 1):
        dev, hit = _run_until_cut(cut, torn_keep, records)
        assert hit == (cut < ops), (cut, ops)
        ks, r = read_ks(dev, plant)
        assert r.problems == [], (cut, r.problems)
        # at most the record being written is lost; all earlier ones intact, in order
        want = list(range(records + (0 if hit else 1)))
        assert ks[-len(want) :] == want if len(ks) >= len(want) else False, (cut, ks)
        assert ks == want, (cut, ks, want)
        assert len(r.notes) <= 1
        # the manager restarts: the store opens and takes new records after the torn one
        w = HistoryWriter(dev, SIZES, segment_size=1024, key_spacing=512)
        append(w, plant, records + 1)
        append(w, plant, records + 2)
        ks, r = read_ks(dev, plant)
        assert r.problems == [], (cut, r.problems)
        assert ks == want + [records + 1, records + 2], (cut, ks)
    return ops


def test_power_cut_at_every_byte_of_a_delta_record_mid_segment():
    ops = _power_cut_at_every_byte(12, 0xFF)
    assert ops > 10  # a delta frame of 5 modules: header, payload, CRC, commit mark


def test_power_cut_at_every_byte_with_half_programmed_bytes():
    # the byte being programmed when power fails keeps some old bits (real NOR)
    _power_cut_at_every_byte(12, 0x0F)
    _power_cut_at_every_byte(12, 0xF0)


def test_power_cut_at_every_byte_when_the_record_opens_a_new_segment():
    first = _first_record_opening_segment(2)
    ops, opens = _operations_of_record(first)
    assert opens and ops > 30  # erase + segment header + key frame
    _power_cut_at_every_byte(first, 0xFF)


def test_power_cut_at_every_byte_of_the_first_record_and_when_erasing_the_oldest():
    _power_cut_at_every_byte(0, 0x55)
    # the record that wraps around: erasing the oldest segment is cut too
    first = _first_record_opening_segment(9)
    ops, opens = _operations_of_record(first)
    assert opens
    plant = Plant()
    for cut in (0, 1, 2, ops // 2, ops - 1):
        dev, hit = _run_until_cut(cut, 0xFF, first)
        assert hit
        ks, r = read_ks(dev, plant)
        assert r.problems == [] and ks[-1] == first - 1
        assert ks == list(range(ks[0], first))
        w = HistoryWriter(dev, SIZES, segment_size=1024, key_spacing=512)
        append(w, plant, first + 1)
        ks2, r = read_ks(dev, plant)
        assert ks2[-1] == first + 1 and r.problems == []


def test_a_damaged_frame_costs_only_the_records_until_the_next_key_frame():
    dev = small_flash()
    plant = Plant()
    w = HistoryWriter(dev, SIZES, segment_size=1024, key_spacing=256)
    for k in range(60):
        append(w, plant, k)
    # damage the payload of record 20 (a delta: key frames come every 256 bytes)
    r = HistoryReader(dev)
    offsets = [(s.time_s - T0) // 1200 for s in r.snapshots()]
    assert offsets == list(range(60))
    r = HistoryReader(dev)
    where = {}
    for s in r.snapshots():
        where[(s.time_s - T0) // 1200] = (s.offset, s.key)
    hit = 20
    while where[hit][1] or where[hit + 1][1]:
        hit += 1  # a delta followed by another delta
    offset = where[hit][0]
    dev.data[offset + 9] ^= 0x10  # bit flip inside the payload
    ks, r = read_ks(dev, plant)
    assert len(r.problems) == 2, r.problems
    assert ("damaged bytes 0x%x" % offset) in r.problems[0]
    assert "cannot be decoded: the key frame they build on" in r.problems[1]
    lost = [k for k in range(60) if k not in ks]
    next_key = min(k for k in where if k > hit and where[k][1])
    assert lost == list(range(hit, next_key)), (hit, next_key, lost)
    assert len(lost) >= 2
    assert ks == [k for k in range(60) if k < hit or k >= next_key]


def test_file_store_reopens_and_a_truncated_copy_exports_what_it_holds():
    import os
    import sys

    # a name of its own: parallel runs (xdist workers, other checkouts) share /tmp
    tag = "%s-%s" % (sys.implementation.name, "".join("%02x" % x for x in os.urandom(4)))
    path = "/tmp/stringcare-test-history-%s.bin" % tag
    cut_path = "/tmp/stringcare-test-history-cut-%s.bin" % tag
    plant = Plant()
    dev = FileBlockDevice(path, size=8192, erase_size=1024)
    w = HistoryWriter(dev, SIZES, segment_size=1024, key_spacing=512)
    for k in range(100):
        append(w, plant, k)
    dev.close()
    dev = FileBlockDevice(path, size=8192, erase_size=1024)
    w = HistoryWriter(dev, SIZES, segment_size=1024, key_spacing=512)
    append(w, plant, 100)
    dev.close()
    ro = FileBlockDevice(path, readonly=True, erase_size=1024)
    ks, r = read_ks(ro, plant)
    assert ks == list(range(101)) and r.problems == []
    # a download cut off in the middle of the third segment
    with open(path, "rb") as f:
        data = f.read(2 * 1024 + 500)
    with open(cut_path, "wb") as f:
        f.write(data)
    ro.close()
    ro = FileBlockDevice(cut_path, readonly=True, erase_size=1024)
    ks, r = read_ks(ro, plant)
    assert r.problems[0].startswith("store is truncated: 2548 bytes")
    assert "cut off by the end of the file at 0x9f4" in r.problems[1]
    assert ks == list(range(len(ks))) and 50 < len(ks) < 101
    ro.close()
    for p in (path, cut_path):
        os.remove(p)


def test_foreign_store_is_refused_or_erased_on_request():
    dev = small_flash()
    plant = Plant()
    w = HistoryWriter(dev, SIZES, segment_size=1024)
    append(w, plant, 0)
    e = raises(StoreFormatError, HistoryWriter, dev, SIZES, 2048)
    assert "8 segments of 1024 bytes" in str(e) and "4 segments of 2048" in str(e)
    from manager_fw.events import EventLog, EventReader

    e = raises(StoreFormatError, EventLog, dev, 1024)
    assert "belongs to a history store" in str(e)
    e = raises(StoreFormatError, EventReader, dev)
    assert "this is a history store, not a event log" in str(e)
    w = HistoryWriter(dev, SIZES, segment_size=2048, erase_foreign=True)
    append(w, plant, 5)
    ks, r = read_ks(dev, plant)
    assert ks == [5]
    e = raises(StoreFormatError, HistoryReader, SimFlash(4096, 1024))
    assert "no StringCare segment header" in str(e)


def _append_args(w, t, a):
    return w.append(t, 0, a[0], a[1], a[2], a[3], a[4], a[5])


def test_append_allocates_nothing():
    dev = SimFlash(16384, erase_size=4096)
    plant = Plant()
    w = HistoryWriter(dev, SIZES, segment_size=4096)
    for k in range(3):
        append(w, plant, k)
    plant.fill(3)
    assert heap_locked(_append_args, w, T0 + 3600, plant.args) < 30  # a delta
    # the append that opens a new segment (erase, header, key frame) too
    k = 4
    while not w.ring.would_start_segment(40):
        append(w, plant, k)
        k += 1
    plant.fill(k)
    heap_locked(_append_args, w, T0 + 1200 * k, plant.args)
    ks, r = read_ks(dev, plant)
    assert ks == list(range(k + 1)) and r.problems == []


def test_simulated_flash_keeps_nor_rules():
    dev = SimFlash(8192, erase_size=4096, page_size=256)
    buf = bytearray(b"\x0f\xf0")
    dev.program(10, buf, 2)
    out = bytearray(2)
    dev.read(10, out, 2)
    assert out == buf
    buf[0] = 0xF0  # would need 0 -> 1 in the low nibble
    e = raises(FlashError, dev.program, 10, buf, 1)
    assert "needs 0->1 bits" in str(e)
    e = raises(FlashError, dev.read, 8190, out, 4)
    assert "outside the device" in str(e)
    dev.cut_after(1)
    buf[0] = 0x00
    buf[1] = 0x00
    raises(PowerCut, dev.program, 100, buf, 2)
    raises(PowerCut, dev.read, 0, out, 1)  # unpowered
    dev.power_on()
    dev.read(100, out, 2)
    assert out == bytearray(b"\x00\xff")
    dev.cut_after(0)
    raises(PowerCut, dev.erase, 0)
    dev.power_on()
    dev.read(10, out, 2)
    assert out == bytearray(b"\xff\xff")  # first half of the block erased
    dev.read(4095, out, 1)
    dev.read(2048, out, 2)
    assert out == bytearray(b"\xff\xff")
    raises(ValueError, SimFlash, 5000, 4096)


class FakeExtFlash:
    """The MicroPython extended block protocol over a bytearray (like rp2.Flash)."""

    def __init__(self, blocks, block_size):
        self.bs = block_size
        self.data = bytearray(blocks * block_size)
        self.blocks = blocks

    def readblocks(self, block, buf, offset=0):
        a = block * self.bs + offset
        for i in range(len(buf)):
            buf[i] = self.data[a + i]

    def writeblocks(self, block, buf, offset=0):
        a = block * self.bs + offset
        for i in range(len(buf)):
            self.data[a + i] &= buf[i]

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return self.bs
        if op == 6:
            for i in range(self.bs):
                self.data[arg * self.bs + i] = 0xFF
            return 0
        return 0


def test_history_on_a_partition_of_an_extended_block_device():
    flash = FakeExtFlash(12, 1024)
    dev = ExtBlockDevice(flash)
    assert dev.size == 12288 and dev.erase_size == 1024
    part = Partition(dev, 4096, 8192)
    plant = Plant()
    w = HistoryWriter(part, SIZES, segment_size=1024)
    for k in range(30):
        append(w, plant, k)
    ks, r = read_ks(part, plant)
    assert ks == list(range(30))
    assert flash.data[0] == 0 and flash.data[4096] == 0xA5  # below the partition untouched
    e = raises(ValueError, Partition, dev, 1000, 4096)
    assert "erase blocks" in str(e)


def test_frame_crc_is_crc16_ccitt_false_and_the_segment_header_is_byte_exact():
    from shared.protocol_frame import crc16

    assert crc16(b"123456789", 0, 9) == 0x29B1  # the catalogue check value
    dev = SimFlash(8192, erase_size=1024)
    w = HistoryWriter(dev, SIZES, segment_size=1024)
    append(w, Plant(), 0)
    head = bytes(dev.data[0:30])
    # docs/history.md: mark, kind 'S', length 20, time; "SCRG", format 1, ring type 1
    # (history), reserved, sequence 1, segment size 1024, 8 segments; CRC
    assert head[:8] == b"\xa5\x53\x14\x00" + (T0 + 0).to_bytes(4, "little")
    assert head[8:28] == (
        b"SCRG\x01\x01\x00\x00" + b"\x01\x00\x00\x00" + b"\x00\x04\x00\x00" + b"\x08\x00\x00\x00"
    )
    assert head[28:30] == crc16(head, 1, 28).to_bytes(2, "little")
    # the first data frame follows at offset 30: committed key frame
    assert dev.data[30] == 0xA5 and dev.data[31] == ord("K")


def test_a_system_too_big_for_the_segment_size_is_refused_clearly():
    dev = SimFlash(8192, erase_size=1024)
    w = HistoryWriter(dev, [200], segment_size=1024)
    v = [13600000] * 200
    zero = [0] * 200
    e = raises(ValueError, w.append, T0, 0, v, zero, zero, zero, zero, [0])
    assert "can never fit a 1024-byte segment: use larger segments" in str(e)
    e = raises(ValueError, HistoryWriter, dev, [2], 4096 + 512)
    assert "multiple of the device's erase size 1024" in str(e)
    e = raises(ValueError, HistoryWriter, dev, [2], 8192)
    assert "at least 2 segments" in str(e)
    assert dev.bytes_programmed == 0 and dev.erases == 0  # refused before touching flash
