# The manager core when its storage fails (docs/history.md, "When storage fails"):
# polling, balancing targets and alarms go on; the store is reported once (EV_STORAGE
# event, a warning, core.store_health / store_problem for the status page), written
# again after a back-off, and reported back when a write succeeds.  The history here
# is the fixture's list store failing with OSError (the real history store does not
# fit the 192 KB heap next to the core: host_tests/host/test_core_host.py runs the same
# through HistoryWriter on a failing file); the event log is the real one.
from corefixture import START_S, Site
from faultdev import EIO, ENOSPC, FailingDevice

from manager_fw import events as ev
from manager_fw import store_faults as co  # STORE_* health
from manager_fw.blockdev import SimFlash


def storage_events(site):
    return [(e[5], e[6], e[4]) for e in site.events(ev.EV_STORAGE)]


def test_history_write_failure_keeps_monitoring_and_is_reported_once():
    site = Site(sizes=(3,), history_list=True)
    site.start()
    c = site.core
    hist = site.history_list
    site.run_s(60)
    assert len(hist.snapshots) == 1 and c.store_health[ev.STORE_HISTORY] == co.STORE_OK
    hist.fail_errno = EIO
    site.run_s(1200)  # the next snapshot is due: its write fails
    assert c.store_health[ev.STORE_HISTORY] == co.STORE_DEGRADED
    assert c.store_health_name(ev.STORE_HISTORY) == "degraded"
    assert storage_events(site) == [(ev.STORAGE_WRITE_FAILED, ev.STORE_HISTORY, EIO)]
    text = c.store_problem[ev.STORE_HISTORY]
    assert "history store" in text and "EIO" in text and "go on" in text, text
    assert text in c.problems and c.warning_total() >= 1
    # monitoring goes on: cycles, a temperature alarm and its contact, the targets
    cycles = c.cycles
    site.modules[1].temp_cc = 3500
    site.run_s(30)
    assert c.cycles > cycles + 20 and c.mode_name() == "running"
    assert c.alarm_total() >= 1 and c.contact(site.now_s())
    assert [e for e in site.events(ev.EV_LEVEL) if e[2] == 1]
    assert c.strings.target_mv[0] > 0
    # a discharge (snapshots every 10 s) does not hammer the failing store: back-off
    failed = c.store_write_errors[ev.STORE_HISTORY]
    assert failed <= 2
    assert storage_events(site) == [(ev.STORAGE_WRITE_FAILED, ev.STORE_HISTORY, EIO)]
    # the store works again: the next try after the back-off succeeds and says so
    hist.fail_errno = 0
    site.run_s(1300)
    assert c.store_health[ev.STORE_HISTORY] == co.STORE_OK
    assert c.store_problem[ev.STORE_HISTORY] is None and text not in c.problems
    got = storage_events(site)
    assert got[-1][:2] == (ev.STORAGE_RECOVERED, ev.STORE_HISTORY) and got[-1][2] >= 1
    assert len(hist.snapshots) >= 2


def test_event_log_write_failure_keeps_monitoring_and_recovers():
    dev = FailingDevice(SimFlash(16384, erase_size=4096, page_size=256))
    site = Site(sizes=(3,), event_dev=dev)
    site.start()
    c = site.core
    assert c.store_health[ev.STORE_EVENTS] == co.STORE_OK
    dev.fail_after(0, ENOSPC, persistent=True)
    site.modules[0].temp_cc = 3500  # an alarm: its event cannot be stored
    site.run_s(20)
    assert c.alarm_total() >= 1 and c.contact(site.now_s())
    assert c.store_health[ev.STORE_EVENTS] == co.STORE_DEGRADED
    assert "event log" in c.store_problem[ev.STORE_EVENTS]
    assert "ENOSPC" in c.store_problem[ev.STORE_EVENTS]
    assert c.warning_total() >= 1
    dev.heal()
    site.modules[0].temp_cc = 2200
    site.modules[2].temp_cc = 3500
    site.run_s(200)
    assert c.store_health[ev.STORE_EVENTS] == co.STORE_OK
    got = storage_events(site)
    assert got[-1][:2] == (ev.STORAGE_RECOVERED, ev.STORE_EVENTS) and got[-1][2] >= 1, got
    assert c.store_problem[ev.STORE_EVENTS] is None


def test_a_foreign_or_unreadable_event_log_at_start_is_reported_and_monitoring_runs():
    from manager_fw.ring import RING_HISTORY, Ring

    dev = SimFlash(16384, erase_size=4096, page_size=256)
    r = Ring(dev, RING_HISTORY, 8192)  # another ring, another geometry
    r.begin(0x4B, START_S, 4)
    r.write(b"abcd", 4)
    r.end()
    site = Site(sizes=(2,), event_dev=dev)
    c = site.core
    assert c.store_health[ev.STORE_EVENTS] == co.STORE_OFF and c.events is None
    assert c.store_health_name(ev.STORE_EVENTS) == "unavailable"
    text = c.store_problem[ev.STORE_EVENTS]
    assert "event log cannot be used" in text and "history store" in text, text
    site.start()
    assert c.mode_name() == "running" and c.warning_total() >= 1
    # an unreadable device: EIO while opening
    bad = FailingDevice(SimFlash(16384, erase_size=4096, page_size=256))
    bad.fail_after(0, EIO, persistent=True, reads=True)
    site2 = Site(sizes=(2,), event_dev=bad)
    assert site2.core.store_health[ev.STORE_EVENTS] == co.STORE_OFF
    assert "EIO" in site2.core.store_problem[ev.STORE_EVENTS]
    site2.start()
    assert site2.core.mode_name() == "running"
