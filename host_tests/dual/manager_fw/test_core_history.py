# Manager core, history cadence: a snapshot of every module every 20 min in float
# charge, every 10 s during a discharge and every minute after it; a silent module is
# recorded as silent with its last values.  The snapshots go to a list here (the
# history store's code does not fit the 192 KB test heap next to the core's; the same
# scenario through the real store on a file: host_tests/host/test_core_host.py).
from corefixture import START_S, Site


def test_history_cadence_from_the_core():
    site = Site(
        sizes=(3,),
        history_list=True,
        config={"io": {"ups_input": {"source": "board"}}},
    )
    from shared import history_cadence as hi  # what the core records by

    site.start()
    c = site.core
    site.run_until_s(START_S + 3700)
    site.unplug(1)
    site.modules[0].voltage_mv = 13650
    site.run_s(10)
    c.set_ups_input(True)
    site.run_s(60)
    c.set_ups_input(False)
    site.run_s(300)
    snaps = site.history_list.snapshots
    times = [s[0] for s in snaps]
    modes = [s[1] for s in snaps]
    # float charge: every 20 min from the first cycle on
    t0 = times[0]
    assert t0 <= 6 and times[1:4] == [t0 + 1200, t0 + 2400, t0 + 3600]
    assert modes[:4] == [hi.MODE_FLOAT] * 4
    # discharge: at once, then every 10 s; after it, every minute (recovery)
    d = [s[0] for s in snaps if s[1] == hi.MODE_DISCHARGE]
    assert len(d) >= 12 and all(d[j + 1] - d[j] == 10 for j in range(len(d) - 1))
    r = [s[0] for s in snaps if s[1] == hi.MODE_RECOVERY]
    assert len(r) >= 4 and all(r[j + 1] - r[j] == 60 for j in range(len(r) - 1))
    # values in live units; module 2 is recorded as silent with its last reading
    first = snaps[0]
    assert first[2] == [13620000] * 3 and first[3] == [22000] * 3 and first[6] == [0, 0, 0]
    last = snaps[-1]
    assert last[2][0] == 13650000 and last[2][1] == 13620000
    assert last[6][1] & hi.STATE_SILENT and not last[6][0] & hi.STATE_SILENT
    assert last[7] == [hi.CURRENT_NONE]  # no current sensor on this string


def test_the_history_codec_and_the_core_share_one_cadence():
    """The core records by shared/history_cadence.py; the codec names the same values
    (no copy of them anywhere)."""
    from manager_fw import cycle
    from shared import history as hi
    from shared import history_cadence as hc

    assert hi.CURRENT_NONE == hc.CURRENT_NONE and hi.STATE_SILENT == hc.STATE_SILENT
    assert hi.HistoryCadence is hc.HistoryCadence
    assert cycle.hc is hc
    assert [hc.record_interval_s(m) for m in range(4)] == [1200, 10, 60, 300]
