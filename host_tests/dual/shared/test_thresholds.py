# shared/thresholds: warning/alarm levels with hysteresis and confirmation, per module
# and per string, and the transitions (events) they produce.
from dualtest import LCG, heap_locked, raises

from shared import thresholds as th
from shared.thresholds import (
    COND_HIGH_ALARM,
    COND_HIGH_WARNING,
    COND_LOW_ALARM,
    COND_LOW_WARNING,
    COND_NORMAL,
    LEVEL_ALARM,
    LEVEL_NORMAL,
    LEVEL_WARNING,
    Q_RI,
    Q_SPREAD,
    Q_TEMPERATURE,
    Q_VOLTAGE,
    AlarmEvaluator,
    ThresholdSet,
)


class Recorder:
    def __init__(self):
        self.events = []

    def level_changed(self, now_s, module, string, quantity, old, new, value):
        self.events.append((now_s, module, string, quantity, old, new, value))


class Counter:
    """A sink that allocates nothing: counts transitions into a preallocated bytearray."""

    def __init__(self):
        self.by_new_cond = [0] * 5
        self.last_module = 0

    def level_changed(self, now_s, module, string, quantity, old, new, value):
        self.by_new_cond[new] += 1
        self.last_module = module


def vrla_12v(confirm=1):
    t = ThresholdSet()
    # 12 V VRLA block: float 13.62 V
    t.set_voltage(12600000, 13080000, 14100000, 14400000, 30000)
    t.set_discharge_voltage(10500000, 11100000)
    t.set_temperature(10000, 15000, 27000, 30000, 1000)
    t.set_ri(7000000, 9000000, 210000)
    t.set_spread(240000, 480000, 30000)
    t.set_confirm_samples(confirm)
    return t


def test_value_on_a_threshold_with_noise_does_not_chatter():
    rec = Recorder()
    ev = AlarmEvaluator([1], vrla_12v(confirm=1), rec)
    rng = LCG(7)
    for n in range(2000):
        # ±10 mV noise sitting exactly on the 14.10 V warning level (hysteresis 30 mV)
        v = 14100000 + rng.between(-10000, 10000)
        ev.evaluate_voltage(n, 0, v)
    assert len(rec.events) == 1, rec.events
    assert rec.events[0][4:6] == (COND_NORMAL, COND_HIGH_WARNING)
    assert ev.condition(0, Q_VOLTAGE) == COND_HIGH_WARNING


def test_without_hysteresis_the_same_noise_would_chatter():
    # The control for the test above: the mechanism, not the data, prevents chatter.
    t = ThresholdSet()
    t.set_voltage(12600000, 13080000, 14100000, 14400000, 0)
    t.set_confirm_samples(1)
    sink = Counter()
    ev = AlarmEvaluator([1], t, sink)
    rng = LCG(7)
    for n in range(2000):
        ev.evaluate_voltage(n, 0, 14100000 + rng.between(-10000, 10000))
    assert sink.by_new_cond[COND_HIGH_WARNING] > 100


def test_confirmation_ignores_single_outliers_and_noise_wider_than_hysteresis():
    rec = Recorder()
    ev = AlarmEvaluator([1], vrla_12v(confirm=3), rec)
    # single and double spikes above the alarm level do nothing
    for n in range(300):
        spike = n % 10 in (3, 4)
        ev.evaluate_voltage(n, 0, 14500000 if spike else 13620000)
    assert rec.events == []
    # three in a row do
    for n in range(3):
        ev.evaluate_voltage(300 + n, 0, 14500000)
    assert [e[5] for e in rec.events] == [COND_HIGH_ALARM]
    assert rec.events[0][0] == 302


def test_slow_rise_gives_warning_before_alarm_and_clears_in_order():
    rec = Recorder()
    ev = AlarmEvaluator([2], vrla_12v(confirm=1), rec)
    v = 13600000
    n = 0
    while v <= 14500000:  # 1 mV steps up past both levels
        ev.evaluate_voltage(n, 1, v)
        v += 1000
        n += 1
    while v >= 13600000:  # and back down
        ev.evaluate_voltage(n, 1, v)
        v -= 1000
        n += 1
    got = [(e[4], e[5], e[6]) for e in rec.events]
    assert got == [
        (COND_NORMAL, COND_HIGH_WARNING, 14100000),
        (COND_HIGH_WARNING, COND_HIGH_ALARM, 14400000),
        # leaves alarm only once 30 mV (hysteresis) below the alarm level
        (COND_HIGH_ALARM, COND_HIGH_WARNING, 14370000),
        (COND_HIGH_WARNING, COND_NORMAL, 14070000),
    ], got
    assert all(e[1] == 1 and e[2] == 0 and e[3] == Q_VOLTAGE for e in rec.events)


def test_low_side_and_discharge_levels():
    rec = Recorder()
    ev = AlarmEvaluator([1], vrla_12v(), rec)
    # 12.0 V in float charge: below the float low alarm (12.6 V)
    assert ev.evaluate_voltage(0, 0, 12000000) == COND_LOW_ALARM
    assert ev.module_level(0) == LEVEL_ALARM
    # the same voltage during a discharge is normal (end-of-discharge levels apply)
    assert ev.evaluate_voltage(1, 0, 12000000, discharging=True) == COND_NORMAL
    assert ev.evaluate_voltage(2, 0, 11000000, discharging=True) == COND_LOW_WARNING
    assert ev.evaluate_voltage(3, 0, 10400000, discharging=True) == COND_LOW_ALARM
    assert [e[5] for e in rec.events] == [
        COND_LOW_ALARM,
        COND_NORMAL,
        COND_LOW_WARNING,
        COND_LOW_ALARM,
    ]


def test_temperature_levels_both_sides():
    ev = AlarmEvaluator([1], vrla_12v())
    assert ev.evaluate_temperature(0, 0, 22000) == COND_NORMAL
    assert ev.evaluate_temperature(1, 0, 27000) == COND_HIGH_WARNING
    assert ev.evaluate_temperature(2, 0, 30500) == COND_HIGH_ALARM
    assert ev.evaluate_temperature(3, 0, 29500) == COND_HIGH_ALARM  # within 1 °C hysteresis
    assert ev.evaluate_temperature(4, 0, 28900) == COND_HIGH_WARNING
    assert ev.evaluate_temperature(5, 0, 9000) == COND_LOW_ALARM
    assert ev.evaluate_temperature(6, 0, 10900) == COND_LOW_ALARM
    assert ev.evaluate_temperature(7, 0, 11100) == COND_LOW_WARNING
    assert ev.evaluate_temperature(8, 0, 16100) == COND_NORMAL


def test_ri_acts_at_once_and_uses_the_spec_baseline_rule():
    t = vrla_12v(confirm=3)
    # SPEC: warning at +30 % above the upper accepted limit; upper 23 mΩ -> 29.9 mΩ
    t.set_ri_from_baseline(19166667)
    assert t.ri_warning_nohm == 29900000
    assert t.ri_alarm_nohm == 36800000  # +60 % above the upper limit
    assert t.ri_hysteresis_nohm == 897000
    # mean 15 mΩ: accepted 12-18 mΩ, warning 23.4 mΩ
    t15 = ThresholdSet()
    t15.set_ri_from_baseline(15000000)
    assert t15.ri_warning_nohm == 23400000
    rec = Recorder()
    ev = AlarmEvaluator([3], t, rec)
    assert ev.evaluate_ri(0, 2, 25000000) == COND_NORMAL
    assert ev.evaluate_ri(86400, 2, 30000000) == COND_HIGH_WARNING  # no confirmation wait
    assert ev.evaluate_ri(172800, 2, 29500000) == COND_HIGH_WARNING  # inside hysteresis
    assert ev.evaluate_ri(259200, 2, 40000000) == COND_HIGH_ALARM
    assert [(e[1], e[3], e[5]) for e in rec.events] == [
        (2, Q_RI, COND_HIGH_WARNING),
        (2, Q_RI, COND_HIGH_ALARM),
    ]


def test_string_spread_names_the_culprit_and_holds_during_discharge():
    rec = Recorder()
    t = vrla_12v(confirm=2)
    ev = AlarmEvaluator([4, 4], t, rec)
    volts = [13620000] * 8
    volts[6] = 13300000  # string 1, block 2 floats 320 mV low
    assert ev.evaluate_string(0, 0, volts) == 0
    assert ev.evaluate_string(0, 1, volts) == 320000
    assert rec.events == []  # one evaluation is not confirmed yet
    ev.evaluate_string(1, 1, volts)
    assert rec.events == [(1, 6, 1, Q_SPREAD, COND_NORMAL, COND_HIGH_WARNING, 320000)]
    assert ev.string_level(1) == LEVEL_WARNING and ev.string_level(0) == LEVEL_NORMAL
    # during a discharge the spread grows, but the condition is held
    volts[6] = 12000000
    for n in range(5):
        assert ev.evaluate_string(10 + n, 1, volts, None, True) == 1620000
    assert len(rec.events) == 1
    # a silent module (not fresh) is left out of the spread
    fresh = bytearray(b"\x01" * 8)
    fresh[6] = 0
    assert ev.evaluate_string(20, 1, volts, fresh) == 0
    ev.evaluate_string(21, 1, volts, fresh)
    assert rec.events[-1][4:] == (COND_HIGH_WARNING, COND_NORMAL, 0)


def test_levels_counts_and_system_level():
    ev = AlarmEvaluator([2, 3], vrla_12v())
    assert ev.system_level() == LEVEL_NORMAL
    assert ev.string_of(0) == 0 and ev.string_of(1) == 0 and ev.string_of(2) == 1
    assert ev.string_of(4) == 1
    ev.evaluate_module(0, 3, 14200000, 31000)  # voltage warning, temperature alarm
    assert ev.module_level(3) == LEVEL_ALARM
    assert ev.warning_count == 1 and ev.alarm_count == 1
    assert ev.system_level() == LEVEL_ALARM
    ev.evaluate_temperature(1, 3, 22000)
    assert ev.system_level() == LEVEL_WARNING
    assert ev.condition(3, Q_TEMPERATURE) == COND_NORMAL
    ev.clear_module(2, 3)
    assert ev.system_level() == LEVEL_NORMAL
    assert ev.warning_count == 0 and ev.alarm_count == 0


def test_per_string_threshold_sets():
    low = vrla_12v()
    high = vrla_12v()
    high.set_temperature(0, 5000, 40000, 45000, 1000)
    ev = AlarmEvaluator([1, 1], [low, high])
    assert ev.evaluate_temperature(0, 0, 35000) == COND_HIGH_ALARM
    assert ev.evaluate_temperature(0, 1, 35000) == COND_NORMAL
    e = raises(ValueError, AlarmEvaluator, [1, 1], [low])
    assert "one ThresholdSet per string (2), got 1" in str(e)


def test_bad_thresholds_are_refused_with_what_to_fix():
    t = ThresholdSet()
    e = raises(ValueError, t.set_voltage, 13000000, 12000000, 14000000, 14500000, 1000)
    assert "must rise" in str(e) and "13000000 < 12000000" in str(e)
    e = raises(ValueError, t.set_temperature, 0, 5000, 30000, 31000, 2000)
    assert "smaller than the gap" in str(e)
    e = raises(ValueError, t.set_spread, 30000, 480000, 1000)
    assert "0.05-1 V" in str(e) and "30000" in str(e)
    e = raises(ValueError, t.set_spread, 1200000, 480000, 1000)
    assert "outside the settable range" in str(e)
    e = raises(ValueError, t.set_spread, 480000, 240000, 1000)
    assert "below alarm" in str(e)
    e = raises(ValueError, t.set_ri, 9000000, 7000000, 1000)
    assert "0 < warning < alarm" in str(e)
    e = raises(ValueError, t.set_confirm_samples, 0)
    assert "1..15" in str(e)
    # a failed set leaves the previous levels untouched
    assert t.voltage_high_alarm_uv == th.OFF_HIGH
    t.set_spread(50000, 1000000, 10000)
    assert t.spread_warning_uv == 50000 and t.spread_alarm_uv == 1000000
    c = t.copy()
    c.set_spread(60000, 900000, 10000)
    assert t.spread_warning_uv == 50000 and c.spread_warning_uv == 60000


def _evaluate_many(ev, volts, temps, rounds):
    n = 0
    while n < rounds:
        i = 0
        while i < ev.module_count:
            ev.evaluate_module(n, i, volts[i], temps[i], False)
            i += 1
        ev.evaluate_string(n, 0, volts, None, False)
        ev.evaluate_string(n, 1, volts, None, False)
        n += 1
    return ev.system_level()


def test_evaluation_allocates_nothing():
    from array import array

    sink = Counter()
    ev = AlarmEvaluator([30, 30], vrla_12v(confirm=2), sink)
    volts = array("i", [13620000] * 60)
    temps = array("i", [22000] * 60)
    volts[5] = 14450000
    temps[40] = 31000
    volts[33] = 13200000
    level = heap_locked(_evaluate_many, ev, volts, temps, 4)
    assert level == LEVEL_ALARM
    assert ev.module_level(5) == LEVEL_ALARM and ev.module_level(40) == LEVEL_ALARM
    assert ev.string_level(1) == LEVEL_WARNING
    assert sink.by_new_cond[COND_HIGH_ALARM] == 3  # module 5 voltage and spread, 40 temp
    assert sink.by_new_cond[COND_LOW_WARNING] == 0
    assert sink.by_new_cond[COND_HIGH_WARNING] == 1  # string 1 spread 420 mV


class Digest:
    """A sink that keeps a count and a running digest of the transitions (64 KB heap)."""

    def __init__(self):
        self.count = 0
        self.digest = 0

    def level_changed(self, now_s, module, string, quantity, old, new, value):
        self.count += 1
        for x in (now_s, module, string, quantity, old, new, value & 0x3FFFFFFF):
            self.digest = (self.digest * 31 + x) & 0x3FFFFFFF


EDGES_UV = (10500000, 11100000, 12600000, 13080000, 14100000, 14400000)
EDGES_MC = (10000, 15000, 27000, 30000)


def test_evaluate_modules_gives_the_same_transitions_as_evaluate_module():
    # The batch path (a string at once, a shortcut for values inside the normal band)
    # against the general one, on random walks that cross every level both ways, with
    # silent modules, discharges and confirmation counts.
    from array import array

    for confirm in (1, 3):
        rng = LCG(confirm)
        a = Digest()
        b = Digest()
        one = AlarmEvaluator([5, 4], vrla_12v(confirm), a)
        batch = AlarmEvaluator([5, 4], vrla_12v(confirm), b)
        volts = array("i", [13620000] * 9)
        temps = array("i", [22000] * 9)
        fresh = bytearray(9)
        for step in range(400):
            discharging = 150 <= step < 190
            for i in range(9):
                volts[i] += rng.between(-90000, 90000)
                if volts[i] < 10000000 or volts[i] > 15000000:
                    volts[i] = 13620000
                temps[i] += rng.between(-900, 900)
                if temps[i] < 5000 or temps[i] > 35000:
                    temps[i] = 22000
                fresh[i] = 0 if rng.below(10) == 0 else 1
                if rng.below(8) == 0:  # exactly on a level: the band's edges
                    volts[i] = EDGES_UV[rng.below(len(EDGES_UV))]
                    temps[i] = EDGES_MC[rng.below(len(EDGES_MC))]
            for s in (0, 1):
                first = 0 if s == 0 else 5
                for i in range(first, first + (5 if s == 0 else 4)):
                    if fresh[i]:
                        one.evaluate_module(step, i, volts[i], temps[i], discharging)
                batch.evaluate_modules(step, s, volts, temps, fresh, discharging)
        assert (a.count, a.digest) == (b.count, b.digest) and a.count > 50
        assert bytes(one.cond) == bytes(batch.cond)
        assert bytes(one.pending) == bytes(batch.pending)
        assert (one.alarm_count, one.warning_count) == (batch.alarm_count, batch.warning_count)


def test_evaluate_modules_allocates_nothing():
    from array import array

    sink = Counter()
    ev = AlarmEvaluator([30, 30], vrla_12v(confirm=2), sink)
    volts = array("i", [13620000] * 60)
    temps = array("i", [22000] * 60)
    fresh = bytearray(b"\x01" * 60)
    volts[7] = 14450000
    for _ in range(3):
        heap_locked(ev.evaluate_modules, 100, 0, volts, temps, fresh, False)
        heap_locked(ev.evaluate_modules, 100, 1, volts, temps, fresh, False)
    assert ev.module_level(7) == LEVEL_ALARM and sink.by_new_cond[COND_HIGH_ALARM] == 1
