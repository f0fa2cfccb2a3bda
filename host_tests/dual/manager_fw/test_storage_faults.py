# Storage faults under the history store and the event log (docs/history.md, "When
# storage fails"): a write that fails with EIO / ENOSPC / EROFS at any byte loses at most
# the record being written and the store goes on afterwards without a restart; a device
# that keeps failing never eats the history segment by segment; damaged segment headers
# are reported; a forged header naming an absurd geometry is refused at once.
from dualtest import raises
from faultdev import EIO, ENOSPC, EROFS, FailingDevice

from manager_fw.blockdev import SimFlash
from manager_fw.events import EventLog, EventReader
from manager_fw.history_store import HistoryReader, HistoryWriter
from manager_fw.ring import (
    HEADER_SIZE,
    RING_HISTORY,
    SEGMENT_HEADER_SIZE,
    StoreFormatError,
    put_u32,
)
from manager_fw.ring_reader import RingReader
from shared import history as h
from shared.protocol_frame import crc16

SIZES = [3, 2]
T0 = 200000000


def new_writer(dev):
    return HistoryWriter(dev, SIZES, segment_size=1024, key_spacing=512)


def append(w, k):
    v = [13000000 + 1000 * k + i for i in range(5)]
    t = [22000 + k for _ in range(5)]
    ri = [0] * 5
    b = [k % 100] * 5
    st = [0] * 5
    cur = [k, h.CURRENT_NONE]
    return w.append(T0 + 1200 * k, h.MODE_FLOAT, v, t, ri, b, st, cur)


def read_ks(dev):
    r = HistoryReader(dev)
    ks = [(s.time_s - T0) // 1200 for s in r.snapshots()]
    for s in r.snapshots():
        k = (s.time_s - T0) // 1200
        assert s.voltage_mv[0] == (13000000 + 1000 * k) // 1000
    return ks, r


def ops_of_record(records):
    dev = FailingDevice(SimFlash(8192, erase_size=1024, page_size=256))
    w = new_writer(dev)
    for k in range(records):
        append(w, k)
    dev.fail_after(100000)
    append(w, records)
    return 100000 - dev.budget


def _fail_at_every_byte(records, errno):
    ops = ops_of_record(records)
    assert ops > 10
    for cut in range(ops):
        dev = FailingDevice(SimFlash(8192, erase_size=1024, page_size=256))
        w = new_writer(dev)
        for k in range(records):
            append(w, k)
        dev.fail_after(cut, errno)
        e = raises(OSError, append, w, records)
        assert e.args[0] == errno
        # the store goes on at once, in the same process: no reopen, no restart
        append(w, records + 1)
        append(w, records + 2)
        ks, r = read_ks(dev)
        assert r.problems == [], (cut, r.problems)
        # the failed record is lost, or kept when only its sync failed; nothing else
        before = list(range(records))
        assert ks in (before + [records + 1, records + 2],
                      before + [records, records + 1, records + 2]), (cut, ks)  # fmt: skip
        # and after a restart too
        w = new_writer(dev)
        append(w, records + 3)
        ks2, r = read_ks(dev)
        assert r.problems == [] and ks2 == ks + [records + 3], (cut, ks2)
    return ops


def test_eio_at_every_byte_of_a_record_loses_only_that_record():
    _fail_at_every_byte(12, EIO)


def test_enospc_and_erofs_at_every_byte_of_a_record_opening_a_segment():
    # record 20 opens the second segment (erase, segment header, key frame)
    dev = SimFlash(8192, erase_size=1024, page_size=256)
    w = new_writer(dev)
    k = 0
    while w.ring.segments_started < 2:
        append(w, k)
        k += 1
    first_in_second = k - 1
    _fail_at_every_byte(first_in_second, ENOSPC)
    dev = FailingDevice(SimFlash(8192, erase_size=1024, page_size=256))
    w = new_writer(dev)
    dev.fail_after(0, EROFS)
    assert raises(OSError, append, w, 0).args[0] == EROFS
    append(w, 1)
    assert read_ks(dev)[0] == [1]


def test_a_device_that_keeps_failing_costs_at_most_one_segment():
    dev = FailingDevice(SimFlash(8192, erase_size=1024, page_size=256))
    w = new_writer(dev)
    k = 0
    while w.ring.segments_started < 8:  # every segment in use: the next one erases
        append(w, k)
        k += 1
    ks_before, _ = read_ks(dev)
    # programs fail from now on, erases still work (the worst case: each retry could
    # erase the oldest segment)
    dev.fail_after(3, EIO, persistent=True, erase_works=True)
    for retry in range(50):
        raises(OSError, append, w, k + retry)
    dev.heal()
    append(w, k + 50)
    ks, r = read_ks(dev)
    assert r.problems == []
    lost = [x for x in ks_before if x not in ks]
    per_segment = len(ks_before) // 7
    assert len(lost) <= per_segment + 1, (len(lost), per_segment)
    assert ks[-1] == k + 50


def test_event_log_write_failure_then_recovery():
    dev = FailingDevice(SimFlash(8192, erase_size=1024, page_size=256))
    log = EventLog(dev, 1024)
    for t in range(10):
        log.append(T0 + t, 3, value=t)
    dev.fail_after(5, ENOSPC)
    raises(OSError, log.append, T0 + 10, 3, 0xFFFF, 0xFF, 10)
    log.append(T0 + 11, 3, value=11)
    vals = [e.value for e in EventReader(dev).events()]
    assert vals == list(range(10)) + [11]


def _segment_header_offset_bitflip(dev, offset, bit):
    b = bytearray(1)
    dev.read(offset, b, 1)
    dev.data[offset] = b[0] ^ (1 << bit)


def test_a_bit_flip_in_a_segment_header_is_reported_not_dropped_silently():
    dev = SimFlash(8192, erase_size=1024, page_size=256)
    w = new_writer(dev)
    k = 0
    while w.ring.segments_started < 4:
        append(w, k)
        k += 1
    ks_clean, _ = read_ks(dev)
    for where in (0, 1, 12, HEADER_SIZE + 9, SEGMENT_HEADER_SIZE - 1):
        flash = SimFlash(8192, erase_size=1024, page_size=256)
        flash.data[:] = dev.data
        flash.strict = False
        _segment_header_offset_bitflip(flash, 1024 + where, 2)
        ks, r = read_ks(flash)
        assert len(ks) < len(ks_clean)
        assert len(r.problems) >= 1 and "0x400" in r.problems[0], (where, r.problems)
        assert "damaged header" in r.problems[0], r.problems
        # the writer sees it too (the manager core reports it: EV_STORAGE, a warning)
        w2 = new_writer(flash)
        assert w2.ring.damaged == [1024], (where, w2.ring.damaged)


def test_a_forged_header_with_an_absurd_segment_count_is_refused_at_once():
    dev = SimFlash(8192, erase_size=1024, page_size=256)
    w = new_writer(dev)
    append(w, 0)
    for count, size in ((0xFFFFFFFF, 1024), (1, 1024), (70000, 1024), (4, 0x40000000)):
        flash = SimFlash(8192, erase_size=1024, page_size=256)
        flash.data[:] = dev.data
        buf = bytearray(SEGMENT_HEADER_SIZE)
        flash.read(0, buf, SEGMENT_HEADER_SIZE)
        put_u32(buf, HEADER_SIZE + 16, count)
        put_u32(buf, HEADER_SIZE + 12, size)
        c = crc16(buf, 1, SEGMENT_HEADER_SIZE - 2)
        buf[SEGMENT_HEADER_SIZE - 2] = c & 0xFF
        buf[SEGMENT_HEADER_SIZE - 1] = c >> 8
        flash.data[0:SEGMENT_HEADER_SIZE] = buf
        e = raises(StoreFormatError, RingReader, flash, RING_HISTORY)
        assert "impossible geometry" in str(e) and str(count) in str(e), str(e)
        # the writer refuses it as another geometry (the manager reports, never hangs)
        raises(StoreFormatError, new_writer, flash)
