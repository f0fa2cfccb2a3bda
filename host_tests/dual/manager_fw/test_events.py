# manager_fw/events: the event log (warnings, alarms, configuration, discharges,
# addressing) with timestamps, in its own power-loss-safe ring.
from dualtest import heap_locked

from manager_fw import events as ev
from manager_fw.blockdev import PowerCut, SimFlash
from manager_fw.events import EventLog, EventReader
from shared.thresholds import (
    COND_HIGH_ALARM,
    COND_HIGH_WARNING,
    COND_NORMAL,
    Q_SPREAD,
    Q_TEMPERATURE,
    AlarmEvaluator,
    ThresholdSet,
)

T0 = 200000000


def read_all(dev):
    r = EventReader(dev)
    return [e.copy() for e in r.events()], r


def test_events_round_trip_with_every_field():
    dev = SimFlash(8192, erase_size=1024)
    log = EventLog(dev, segment_size=1024)
    log.append(T0, ev.EV_STARTUP, value=100)
    log.append(T0 + 5, ev.EV_CONFIG, arg=7, value=-123456789)
    log.append(T0 + 9, ev.EV_ADDRESSING, module=42, arg=ev.ADDR_ASSIGNED)
    log.append(T0 + 60, ev.EV_DISCHARGE_START, string=1, value=-250000)
    log.append(T0 + 960, ev.EV_DISCHARGE_END, string=1, value=900, extra=17)
    got, r = read_all(dev)
    assert r.problems == [] and r.notes == []
    assert [(e.time_s - T0, e.code) for e in got] == [
        (0, ev.EV_STARTUP),
        (5, ev.EV_CONFIG),
        (9, ev.EV_ADDRESSING),
        (60, ev.EV_DISCHARGE_START),
        (960, ev.EV_DISCHARGE_END),
    ]
    assert got[0].module == ev.NO_MODULE and got[0].string == ev.NO_STRING
    assert got[0].value == 100
    assert got[1].arg == 7 and got[1].value == -123456789
    assert got[2].module == 42 and got[2].arg == ev.ADDR_ASSIGNED
    assert got[3].string == 1 and got[3].value == -250000
    assert got[4].value == 900 and got[4].extra == 17
    assert ev.EVENT_NAMES[got[4].code] == "discharge end"


def test_wrap_around_keeps_the_newest_events():
    dev = SimFlash(4096, erase_size=1024)
    log = EventLog(dev, segment_size=1024)
    for n in range(500):
        log.append(T0 + n, ev.EV_CONFIG, value=n)
    got, r = read_all(dev)
    values = [e.value for e in got]
    assert values == list(range(values[0], 500))
    # 3 of 4 segments of (1024 - 30) / 22 = 45 events survive at least
    assert len(values) >= 3 * 45
    latest = EventReader(dev).latest(3)
    assert [e.value for e in latest] == [497, 498, 499]


def test_power_cut_at_every_byte_of_an_event():
    for cut in range(0, 24):
        dev = SimFlash(4096, erase_size=1024)
        log = EventLog(dev, segment_size=1024)
        for n in range(10):
            log.append(T0 + n, ev.EV_CONFIG, value=n)
        dev.cut_after(cut, 0x3C)
        try:
            log.append(T0 + 10, ev.EV_CONFIG, value=10)
            hit = False
        except PowerCut:
            hit = True
        assert hit == (cut < 22)
        dev.power_on()
        got, r = read_all(dev)
        assert r.problems == []
        assert [e.value for e in got] == list(range(10 if hit else 11))
        log = EventLog(dev, segment_size=1024)
        log.append(T0 + 11, ev.EV_STARTUP)
        got, r = read_all(dev)
        assert got[-1].code == ev.EV_STARTUP and r.problems == []
        assert len(got) == (11 if hit else 12)


def test_threshold_transitions_land_in_the_log():
    dev = SimFlash(8192, erase_size=1024)
    log = EventLog(dev, segment_size=1024)
    t = ThresholdSet()
    t.set_temperature(10000, 15000, 28000, 30000, 1000)
    t.set_spread(240000, 480000, 30000)
    t.set_confirm_samples(1)
    alarms = AlarmEvaluator([2, 2], t, log)
    alarms.evaluate_temperature(T0, 3, 28500)
    alarms.evaluate_temperature(T0 + 20, 3, 31000)
    alarms.evaluate_temperature(T0 + 40, 3, 20000)
    alarms.evaluate_string(T0 + 60, 0, [13600000, 13100000, 0, 0])
    got, r = read_all(dev)
    rows = [
        (e.time_s - T0, e.code, e.module, e.string, e.arg, e.extra >> 8, e.extra & 0xFF)
        for e in got
    ]
    L = ev.EV_LEVEL
    assert rows == [
        (0, L, 3, 1, Q_TEMPERATURE, COND_NORMAL, COND_HIGH_WARNING),
        (20, L, 3, 1, Q_TEMPERATURE, COND_HIGH_WARNING, COND_HIGH_ALARM),
        (40, L, 3, 1, Q_TEMPERATURE, COND_HIGH_ALARM, COND_NORMAL),
        (60, L, 0, 0, Q_SPREAD, COND_NORMAL, COND_HIGH_ALARM),
    ], rows
    assert got[1].value == 31000 and got[3].value == 500000


def _log_one(log, t):
    log.append(t, ev.EV_MODULE_SILENT, 599, 9, -1, 0, 0)
    return log.events_written


def test_append_allocates_nothing():
    dev = SimFlash(8192, erase_size=1024)
    log = EventLog(dev, segment_size=1024)
    log.append(T0, ev.EV_STARTUP)
    assert heap_locked(_log_one, log, T0 + 1) == 2
    got, r = read_all(dev)
    assert got[1].module == 599 and got[1].string == 9 and got[1].value == -1
