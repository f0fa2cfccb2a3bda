# The storage hand-off (docs/manager.md, "Storage hand-off") in the core: its step
# only queues history snapshots and events in RAM; the shell's core.persist() writes and
# erases them outside the step.  Counted device operations inside core.step are none,
# also when a snapshot opens a new segment (the oldest is erased); the snapshots reach
# the store in order; an EIO on a persist is reported, backed off and recovered as
# docs/history.md "When storage fails" says.  The writer alone: test_history_queue.py.
from corefixture import START_S, Site
from faultdev import EIO, CountingDevice, FailingDevice

from manager_fw import events as ev
from manager_fw import store_faults as co  # STORE_* health
from manager_fw.blockdev import SimFlash
from manager_fw.history_store import HistoryReader, HistoryWriter
from shared import history as h


def test_the_core_step_never_writes_and_persist_stores_every_record():
    """The core on the virtual bus with a history store about to open a new segment (the
    oldest is erased) and a real event log: counted device operations inside
    core.step are none; the records reach the store in order; an EIO on a persist is
    reported, backed off and recovered."""
    flash = SimFlash(4096, erase_size=256, page_size=256)
    pre = HistoryWriter(flash, [3], segment_size=1024)  # a store nearly full: it wraps next
    k = 0
    while pre.ring.seg < 3 or not pre.ring.would_start_segment(120):
        v = [13620000] * 3
        pre.append(START_S - 100000 + k, h.MODE_FLOAT, v, [22000] * 3, [0] * 3, [0] * 3,
                   [0] * 3, [h.CURRENT_NONE])  # fmt: skip
        k += 1
    fdev = FailingDevice(flash)
    hist = CountingDevice(fdev)
    events = CountingDevice(SimFlash(16384, erase_size=4096, page_size=256))
    site = Site(sizes=(3,), history_dev=hist, event_dev=events, history_segment_size=1024)
    c = site.core
    inside = [0]

    def step(now_ms, now_s, step=c.step):
        before = hist.writes() + events.writes()
        step(now_ms, now_s)
        inside[0] += hist.writes() + events.writes() - before

    c.step = step
    site.start()
    for m in site.modules:
        m.voltage_mv = 12500  # below the float band: a discharge, a snapshot every 10 s
    site.run_s(120)
    assert inside[0] == 0
    assert hist.erases >= 4  # the new segment was erased: by persist, outside the step
    assert c.store_health[ev.STORE_HISTORY] == co.STORE_OK
    fdev.fail_after(0, EIO)  # the next write fails once
    site.run_s(200)
    assert c.store_write_errors[ev.STORE_HISTORY] == 1
    site.run_s(120)  # the retry after 60 s works
    assert c.store_health[ev.STORE_HISTORY] == co.STORE_OK
    assert inside[0] == 0
    site.persist()
    # the readers need room on the 192 KB MicroPython heap: the simulation goes first
    import gc

    site.shell = site.bus = site.nodes = site.modules = None
    c = site.core = None
    gc.collect()
    got = [(e.arg, e.extra) for e in ev.EventReader(events).events() if e.code == ev.EV_STORAGE]
    assert (ev.STORAGE_WRITE_FAILED, ev.STORE_HISTORY) in got
    assert got[-1] == (ev.STORAGE_RECOVERED, ev.STORE_HISTORY)
    kept = [s.time_s for s in HistoryReader(flash).snapshots() if s.time_s >= START_S and s.mode]
    assert len(kept) >= 20 and kept == sorted(kept)
    steps = [kept[j + 1] - kept[j] for j in range(len(kept) - 1)]
    assert steps.count(10) >= 15  # the discharge cadence, in order, across the erase
