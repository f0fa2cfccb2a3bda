# The history writer's deferred mode (manager_fw/persist.py, docs/manager.md "Storage
# hand-off"): queue() encodes a snapshot into RAM and touches no device; service()
# writes and erases, one block erase or one frame per call at most.  The queued
# snapshots reach the store in order, also while a segment is erased block by block
# and after a failed write; a power cut at any byte or erase of that work loses nothing
# committed; a full queue refuses a snapshot without breaking the delta chain.  The core
# on top of it: test_core_persist.py.
from faultdev import EIO, CountingDevice, FailingDevice

from manager_fw.blockdev import PowerCut, SimFlash
from manager_fw.history_store import HistoryReader, HistoryWriter, queue_bytes
from shared import history as h

SIZES = [3, 2]
T0 = 200000000


def arrays(k):
    v = [13000000 + 1000 * k + 7 * i for i in range(5)]
    t = [22000 + k for _ in range(5)]
    return (v, t, [0] * 5, [k % 100] * 5, [0] * 5, [k, h.CURRENT_NONE])


def queue(w, k):
    v, t, ri, b, st, cur = arrays(k)
    return w.queue(T0 + 10 * k, h.MODE_DISCHARGE, v, t, ri, b, st, cur)


def times(dev):
    return [(s.time_s - T0) // 10 for s in HistoryReader(dev).snapshots()]


def deferred_writer(dev):
    w = HistoryWriter(dev, SIZES, segment_size=1024, key_spacing=512)
    w.enable_queue(queue_bytes(5, 2))
    return w


def test_queued_snapshots_reach_the_store_in_order_one_erase_per_call_at_most():
    dev = CountingDevice(SimFlash(4096, erase_size=256, page_size=256))
    w = deferred_writer(dev)
    longest = 0
    erases_before = 0
    for k in range(300):  # the ring of 4 segments of 1 KB wraps several times
        before = dev.writes()
        assert queue(w, k)
        assert dev.writes() == before  # queueing touches no device
        while w.pending():
            erases_before = dev.erases
            before = dev.writes()
            w.service(1)
            assert dev.erases - erases_before <= 1
            if dev.writes() - before > longest:
                longest = dev.writes() - before
    assert dev.erases >= 4 * 4  # every segment erased block by block, and reused
    kept = times(dev)
    assert kept == list(range(kept[0], 300)) and len(kept) > 100
    # the longest service call: a segment header frame and a snapshot frame, each its
    # header, payload, CRC, commit mark and sync (the erases went before, one per call)
    assert longest <= 12, longest


def test_records_queued_while_a_segment_is_erased_wait_and_keep_their_order():
    dev = CountingDevice(SimFlash(4096, erase_size=256, page_size=256))
    w = deferred_writer(dev)
    k = 0
    while k < 3 or not w.ring.would_start_segment(40):  # fill the first segment
        queue(w, k)
        w.service(8)
        k += 1
    start = k
    for j in range(3):  # three records queued at once: the first must open a segment
        assert queue(w, start + j)
    waited = 0  # calls that erased one block while records waited
    while True:
        erases = dev.erases
        left = w.service(1)
        assert dev.erases - erases <= 1
        if dev.erases > erases and left:
            waited += 1
        if not left:
            break
    assert waited == 4  # the new segment's four blocks, one per call
    assert times(dev)[-4:] == [start - 1, start, start + 1, start + 2]


def test_a_failed_write_drops_the_queued_records_and_the_store_goes_on_in_order():
    fdev = FailingDevice(SimFlash(4096, erase_size=256, page_size=256))
    w = deferred_writer(fdev)
    for k in range(10):
        queue(w, k)
    w.service(100)
    for k in range(10, 14):
        queue(w, k)
    fdev.fail_after(3, EIO)  # the next record's write fails after three bytes
    try:
        w.service(100)
        raise AssertionError("the failing write must raise")
    except OSError as e:
        assert e.args[0] == EIO
    assert w.discard() == 3  # what the core does: the rest of the queue is given up
    for k in range(14, 20):
        queue(w, k)
    w.service(100)
    kept = times(fdev)
    assert kept == list(range(10)) + list(range(14, 20)), kept


def test_a_power_cut_at_every_byte_and_erase_of_a_deferred_segment_change():
    base = SimFlash(4096, erase_size=256, page_size=256)
    w = deferred_writer(base)
    k = 0
    while k < 10 or not (w.ring.seg == 3 and w.ring.would_start_segment(40)):
        queue(w, k)
        w.service(8)
        k += 1
    committed = times(base)
    image = bytes(base.data)
    cut = 0
    while True:
        flash = SimFlash(4096, erase_size=256, page_size=256)
        flash.data[:] = image
        w = deferred_writer(flash)
        queue(w, k)  # it opens a segment: the oldest is erased block by block
        flash.cut_after(cut)
        try:
            while w.service(1):
                pass
            done = True
        except PowerCut:
            done = False
        flash.power_on()
        reader = HistoryReader(flash)
        kept = [(s.time_s - T0) // 10 for s in reader.snapshots()]
        assert not reader.problems, (cut, reader.problems)
        # the erased segment's records are gone on purpose; all others stay in order
        assert kept == [t for t in committed if t >= kept[0]] + ([k] if done else []), cut
        w2 = HistoryWriter(flash, SIZES, segment_size=1024, key_spacing=512)
        v, t, ri, b, st, cur = arrays(k + 1)
        w2.append(T0 + 10 * (k + 1), h.MODE_DISCHARGE, v, t, ri, b, st, cur)
        assert times(flash)[-1] == k + 1
        if done:
            break
        cut += 1
    assert cut >= 4 + 30  # four block erases, a segment header, the record


def test_a_full_queue_refuses_a_record_and_the_chain_stays_decodable():
    dev = SimFlash(4096, erase_size=256, page_size=256)
    w = HistoryWriter(dev, SIZES, segment_size=1024, key_spacing=512)
    w.enable_queue(120)  # room for about two snapshots
    accepted = []
    for k in range(6):
        if queue(w, k):
            accepted.append(k)
    assert 1 <= len(accepted) < 6  # the others are refused: the core counts and logs them
    while w.service(1):
        pass
    assert times(dev) == accepted
