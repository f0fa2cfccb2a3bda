# The manager core's modes as one table (manager_fw/modes.py): every transition is a
# row; an event the table does not list for a mode changes nothing; the operator's
# sleep/wake/retry/setup and the finished jobs move the core only through it.
from corefixture import Site

from manager_fw import events as ev
from manager_fw import modes as md

MODES = (md.MODE_WAKING, md.MODE_CENSUS, md.MODE_RUNNING, md.MODE_REFUSED,
         md.MODE_SLEEPING, md.MODE_SETUP)  # fmt: skip


def test_the_table_has_one_row_per_mode_and_event_and_reaches_every_mode():
    seen = []
    for mode, event, nxt, action in md.TABLE:
        assert mode == md.ANY or mode in MODES
        assert 0 <= event < len(md.EVENT_NAMES) and nxt in MODES and callable(action)
        assert (mode, event) not in seen, (mode, event)
        seen.append((mode, event))
    reached = [row[2] for row in md.TABLE]
    for mode in MODES:
        if mode != md.MODE_WAKING:  # the mode a core starts in
            assert mode in reached, md.MODE_NAMES[mode]
    # a wildcard row and a mode's own row never both match one event
    wild = [e for m, e, _n, _a in md.TABLE if m == md.ANY]
    assert not [e for m, e, _n, _a in md.TABLE if m != md.ANY and e in wild]


def test_an_event_without_a_row_changes_nothing():
    site = Site(sizes=(2,))
    site.start()
    c = site.core
    assert c.mode == md.MODE_RUNNING
    assert md.transition(md.MODE_RUNNING, md.WAKE) is None
    assert not md.fire(c, md.WAKE, site.now_s())  # wake_bus() while running
    assert not md.fire(c, md.SETUP_DONE, site.now_s())
    assert c.mode == md.MODE_RUNNING and c.master.poller is c.poller


def test_sleep_then_wake_resumes_without_a_census_and_retry_counts_again():
    site = Site(sizes=(2,))
    site.start()
    c = site.core
    c.sleep_bus(site.now_s())
    assert c.mode_name() == "sleeping" and c.master.poller is None
    site.run_s(2)
    assert c.master.foreground is None  # both SLEEPs sent: the bus is free (ASLEEP)
    c.wake_bus(site.now_s())
    assert c.mode_name() == "waking"
    site.run_s(4)
    assert c.mode_name() == "running"  # RESUMED: the census is not run again
    assert len(site.events(ev.EV_CENSUS)) == 1
    power = [e[5] for e in site.events(ev.EV_BUS_POWER)]
    assert power == [1, 0, 1]  # awake, SLEEP sent, awake again
    c.retry(site.now_s())  # RETRY: from any mode, a census
    assert c.mode_name() == "census"
    site.run_s(3)
    assert c.mode_name() == "running" and len(site.events(ev.EV_CENSUS)) == 2


def test_a_refused_bus_stays_refused_until_retry():
    site = Site(sizes=(3,))
    site.modules[1].hw_rev = 16  # a board of the next hardware generation
    site.start()
    c = site.core
    assert c.mode_name() == "refused" and c.refusal_module == 1
    assert c.master.poller is None and c.alarm_total() >= 1
    refused = site.events(ev.EV_REFUSED)
    assert len(refused) == 1 and refused[0][2] == 1 and refused[0][5] == ev.REFUSED_HARDWARE
    site.run_s(5)
    assert c.mode_name() == "refused"
    site.modules[1].hw_rev = 2  # the odd board is swapped
    c.retry(site.now_s())
    site.run_s(3)
    assert c.mode_name() == "running" and c.refusal is None
