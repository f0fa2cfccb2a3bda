# manager_fw: strings/target/window, silent-module alarm timing, Ri schedule and trend,
# discharge detection, thermal runaway, alarm outputs - each against the poller's
# arrays as the bus fills them.
from dualtest import heap_locked, raises

from manager_fw import discharge as dis
from manager_fw import outputs as out
from manager_fw import phases as ph
from manager_fw import poller as pl
from manager_fw import ri_schedule as ri
from manager_fw import runaway as rw
from manager_fw import silence as si
from manager_fw import strings as strs
from shared import protocol as p

RANGES = [(1, 4), (5, 8)]


def poller_with(volts, temps=None):
    poll = pl.Poller(RANGES)
    for i, v in enumerate(volts):
        a = i + 1
        if v is None:
            poll.state[a] = pl.ST_SILENT
        else:
            poll.state[a] = pl.ST_OK
            poll.voltage_mv[a] = v
            poll.voltage_uv[a] = v * 1000
            poll.temp_cc[a] = 2500 if temps is None else temps[i]
    return poll


def test_target_is_string_voltage_over_modules_and_window_gates_equalising():
    s = strs.Strings(RANGES, window_low_mv=13080, window_high_mv=14100)
    poll = poller_with([13500, 13700, 13600, 13800, 12600, 12700, 12500, 12800])
    s.update(poll)
    assert s.target_mv[0] == 13650 and s.sum_mv[0] == 54600 and s.spread_mv[0] == 300
    assert s.equalising[0] and poll.target_flags[0] == p.TARGET_EQUALISE
    assert poll.target_uv[0] == 13650000
    # string 2 sits below the window (a discharge): no equalising, the average is shown
    assert not s.equalising[1] and s.reason[1] == strs.REASON_LOW
    assert poll.target_flags[1] == 0
    assert s.shown_voltage_mv(1) == s.avg_mv[1] and s.shown_voltage_mv(0) == 13650


def test_target_carries_the_string_average_to_10_uv():
    s = strs.Strings(RANGES, window_low_mv=13080, window_high_mv=14100)
    # 4 blocks summing to 54 603 mV: 13 650.75 mV; string 2: 54 001 / 4 = 13 500.25
    poll = poller_with([13650, 13651, 13651, 13651, 13500, 13500, 13500, 13501])
    s.update(poll)
    assert (s.target_mv[0], s.target_10uv[0], s.target_uv(0)) == (13650, 75, 13650750)
    assert poll.target_uv[0] == 13650750
    assert poll.target_uv[1] == 13500250
    # a remainder that rounds up to a whole mV carries into target_mv
    poll = poller_with([13000] * 3 + [13999, 13000, 13000, 13000, 13000])
    s2 = strs.Strings([(1, 4), (5, 8)], 12000, 14100)
    s2.update(poll)
    assert (s2.target_mv[0], s2.target_10uv[0]) == (13249, 75)
    poll = poller_with([13000, 13000, 13001, 13001, 13000, 13000, 13000, 13000])
    s2.update(poll)
    assert (s2.target_mv[0], s2.target_10uv[0]) == (13000, 50)


def _reading(poll, a, mv):
    poll.voltage_mv[a] = mv
    poll.voltage_uv[a] = mv * 1000


def test_a_block_in_its_ri_capture_counts_in_the_target_as_it_read_before():
    # four blocks at 13 600 mV; block 2's capture dips it 40 mV: the target stays where
    # it was (with the dip counted it would fall 10 mV, and the blocks that bleed would
    # follow it while those that do not took the whole complement: strings.py)
    s = strs.Strings(RANGES, 13080, 14100)
    s.back_uv = 1200
    poll = poller_with([13600] * 4 + [13500] * 4)
    s.update(poll)
    assert s.target_uv(0) == 13600000
    s.start_standin(poll, 2)
    _reading(poll, 2, 13560)
    _reading(poll, 6, 13460)  # another string's block: not a stand-in
    for t in (0, 60, 600):  # the capture runs: however long, the stand-in stays
        s.standins(poll, t)
        s.update(poll)
        assert s.target_uv(0) == 13600000 and s.standing_in(2)
    assert s.target_uv(1) == 13490000  # (13500 x 3 + 13460) / 4
    assert s.avg_mv[0] == 13590 and s.min_mv[0] == 13560  # what it shows: as read
    s.end_standin(2, 600)
    _reading(poll, 2, 13599)  # back within the deadband (the dip was seen)
    s.standins(poll, 605)
    assert not s.standing_in(2)
    s.update(poll)
    assert s.target_uv(0) == 13599750  # as read again


def test_a_stand_in_waits_for_the_dip_to_show_and_ends_by_240_s():
    s = strs.Strings(RANGES, 13080, 14100)
    s.back_uv = 1200
    poll = poller_with([13600] * 8)
    s.start_standin(poll, 3)
    s.end_standin(3, 100)  # a short capture: the reading has not dipped yet (its lag)
    s.standins(poll, 129)
    assert s.standing_in(3)  # 29 s: not yet seen down, not yet trusted back
    s.standins(poll, 130)
    assert not s.standing_in(3)  # 30 s with no dip: it never dipped
    s.start_standin(poll, 3)
    _reading(poll, 3, 13590)  # a slow recovery (large interface capacitance)
    s.end_standin(3, 200)
    s.standins(poll, 439)
    assert s.standing_in(3)
    s.update(poll)
    assert s.target_uv(0) == 13600000
    s.standins(poll, 440)  # 240 s after the capture: as read, whatever it reads
    assert not s.standing_in(3)
    s.update(poll)
    assert s.target_uv(0) == 13597500


def test_stand_ins_leave_out_excluded_and_unread_blocks_and_run_out_of_slots_safely():
    s = strs.Strings([(1, 12)], 13080, 14100)
    poll = pl.Poller([(1, 12)])
    for a in range(1, 13):
        poll.state[a] = pl.ST_OK
        _reading(poll, a, 13600)
    s.start_standin(poll, 12)
    poll.state[11] = pl.ST_SILENT
    s.start_standin(poll, 11)  # no reading: nothing to stand in with
    assert not s.standing_in(11)
    poll.state[11] = pl.ST_OK
    s.excluded[12] = 1  # left out of the target: its stand-in changes nothing
    _reading(poll, 12, 13000)
    s.update(poll)
    assert s.target_uv(0) == 13600000
    s.excluded[12] = 0
    for a in range(1, strs.STANDINS + 1):  # 7 more (12 holds one): the slots are full
        s.start_standin(poll, a)
    assert s.standing_in(strs.STANDINS - 1) and not s.standing_in(strs.STANDINS)
    s.start_standin(poll, 1)  # one already standing in: again, in its own slot
    for a in range(1, strs.STANDINS + 1):
        _reading(poll, a, 13560)
    s.update(poll)
    # 1-7 and 12 stand in at 13 600; the 8th dip (address 8) counts as read:
    # (13 600 x 11 + 13 560) / 12 = 13 596.667 mV, to 10 uV
    assert s.target_uv(0) == 13596670
    heap_locked(s.standins, poll, 50)
    heap_locked(s.update, poll)


def test_one_block_far_above_the_window_is_balanced_not_excluded():
    # the reference string: a block floats 1.7 V high; the string itself is in float
    s = strs.Strings(RANGES, window_low_mv=13080, window_high_mv=14100)
    poll = poller_with([13300, 15300, 13250, 13350, 13500, 13500, 12900, 13600])
    s.update(poll)
    assert s.equalising[0] and s.equalising[1]
    assert s.target_mv[0] == 13800


def test_equalising_suspended_while_a_module_is_silent_in_that_string_only():
    s = strs.Strings(RANGES, 13080, 14100)
    s.update(poller_with([13500, None, 13600, 13800, 13500, 13500, 13600, 13600]))
    assert s.reason[0] == strs.REASON_SILENT and not s.equalising[0]
    assert s.equalising[1]  # equalising works within each string only


def test_boost_discharge_and_disabled_stop_equalising():
    s = strs.Strings(RANGES, 13080, 14100)
    poll = poller_with([14400, 14300, 14500, 14400] + [13500] * 4)
    s.discharging[1] = 1
    s.update(poll)
    assert s.reason[0] == strs.REASON_HIGH
    assert s.reason[1] == strs.REASON_DISCHARGE
    assert poll.target_flags[1] == p.TARGET_DISCHARGE
    s.enabled[1] = 0
    s.update(poll)
    assert s.reason[1] == strs.REASON_DISABLED
    assert strs.REASON_TEXT[s.reason[1]] == "equalising is switched off"


def test_silent_module_alarm_exactly_after_the_delay_and_contact_90s_later():
    poll = poller_with([13500] * 8)
    w = si.SilenceWatch(list(range(1, 9)), 8, delay_s=240, contact_delay_s=90)
    t = 1000
    w.update(poll, t)
    poll.state[3] = pl.ST_SILENT  # module 3 stops answering after its answer at t
    raised_at = None
    contact_at = None
    for step in range(1, 400):
        w.update(poll, t + step)
        if w.raised and raised_at is None:
            raised_at = step
        if w.contact(t + step) and contact_at is None:
            contact_at = step
        if step < 240:
            assert not w.any_alarm() and not w.contact(t + step)
    assert raised_at == 240 and contact_at == 330
    assert w.silent_s(3, t + 300) == 300
    poll.state[3] = pl.ST_OK
    w.update(poll, t + 400)
    assert w.cleared == [3] and not w.any_alarm() and not w.contact(t + 400)


def test_a_single_lost_frame_never_alarms():
    poll = poller_with([13500] * 8)
    w = si.SilenceWatch(list(range(1, 9)), 8, delay_s=240)
    for t in range(0, 2000):
        poll.state[5] = pl.ST_SILENT if t % 97 == 0 else pl.ST_OK  # one miss now and then
        w.update(poll, t)
        assert not w.any_alarm()


def test_ri_schedule_timeline_of_the_spec():
    addrs = [1, 2, 3]
    sch = ri.RiSchedule(addrs, start_s=0, spacing_s=40)
    starts = []
    for t in range(0, 3 * 86400, 5):
        a = sch.due(t, discharging=False)
        if a >= 0:
            starts.append((t, a))
            sch.done(a, t + 5)  # the measurement takes 5 s
    firsts = [t for t, a in starts if a == 1]
    # 15 min, then three more within the following 45 min, then every 24 h
    assert firsts[:4] == [900, 1800, 2700, 3600]
    assert firsts[4] == 3600 + 86400 and firsts[5] == 3600 + 2 * 86400
    # one module at a time, 30-50 s apart within a round
    assert [t for t, a in starts[:3]] == [900, 945, 990]


def _round(sch, level, t0):
    """One whole round from t0 with the modules' levels `level`: the addresses in order."""
    got = []
    t = t0
    while len(got) < len(sch.addresses):
        a = sch.due(t, False, level)
        if a >= 0:
            got.append(a)
            sch.done(a, t + 5)
        t += 5
    return got


def test_ri_round_bleeding_hardest_first_and_the_idle_blocks_spread():
    # A block that does not bleed gets its capture's charge back only from the string
    # current, through every block; one at its thermal cap cannot bleed that away and
    # charges up.  In address order the idle blocks of a string may come in a run: the
    # round takes the hardest-bleeding blocks first and the idle ones spread evenly.
    addrs = [1, 2, 3, 4, 5, 6, 7, 8]
    level = bytearray(9)
    for a, pct in ((2, 70), (4, 30), (6, 50), (8, 10)):
        level[a] = pct
    sch = ri.RiSchedule(addrs, start_s=0)
    assert _round(sch, level, 900) == [2, 1, 6, 3, 4, 5, 8, 7]
    assert addrs == [1, 2, 3, 4, 5, 6, 7, 8]  # the layout's list is not reordered
    # the levels are read again at each round's start
    level[7] = 90
    assert _round(sch, level, 1800) == [7, 2, 1, 6, 4, 3, 8, 5]
    # no levels (a caller without a poller): address order
    assert _round(ri.RiSchedule(addrs, start_s=0), None, 900) == addrs


def test_ri_round_order_is_a_spread_permutation_for_any_levels():
    # 64 blocks, any number of them idle: every address once, the bleeding ones by
    # level (highest first), and between two idle ones never more bleeding ones than
    # the even spread gives (and the other way round)
    seed = 12345
    for case in range(40):
        n = 64
        addrs = list(range(1, n + 1))
        level = bytearray(n + 1)
        idle_share = case % 9
        for a in addrs:
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            level[a] = 0 if (seed >> 8) % 8 < idle_share else 1 + (seed >> 12) % 100
        sch = ri.RiSchedule(addrs, start_s=0)
        got = _round(sch, level, 900)
        assert sorted(got) == addrs, case
        bleeding = [level[a] for a in got if level[a] > 0]
        assert bleeding == sorted(bleeding, reverse=True), case
        z = sum(1 for a in addrs if level[a] == 0)
        for i in range(n):  # idle ones placed so far: within one of the even share
            placed = sum(1 for a in got[: i + 1] if level[a] == 0)
            assert (i + 1) * z // n <= placed <= (i + 1) * z // n + 1, (case, i)


def test_ri_round_order_of_600_modules_allocates_nothing():
    # once a day, on a manager that runs for years: no heap for it (MicroPython's
    # heap_lock raises MemoryError on any allocation; on CPython a plain call)
    addrs = list(range(1, 601))
    level = bytearray(601)
    for a in addrs:
        level[a] = (a * 37) % 101 if a % 3 else 0
    sch = ri.RiSchedule(addrs, start_s=0)
    heap_locked(sch.order_by, level)
    got = list(sch.order)
    assert sorted(got) == addrs and level[got[0]] == 100
    z = sum(1 for a in addrs if level[a] == 0)  # 204
    assert sum(1 for a in got[:300] if level[a] == 0) in (z // 2, z // 2 + 1)  # half by 300


def test_ri_never_during_a_discharge_and_not_right_after():
    sch = ri.RiSchedule([1, 2], start_s=0, settle_s=3600)
    assert sch.due(1000, discharging=True) == -1
    sch.discharge_ended(1000)
    assert sch.due(2000, discharging=False) == -1
    assert sch.due(4600, discharging=False) == 1
    assert sch.due(4605, discharging=False) == -1  # one at a time: 1 still outstanding


def test_ri_schedule_limits_are_checked():
    e = raises(ValueError, ri.RiSchedule, [1], 0, 900, 4, 900, 86400, 20)
    assert str(e) == "Ri spacing_s must be 30..50 s (got 20)"


def test_ri_results_keep_the_last_valid_result_of_each_address():
    res = ri.RiResults(4)
    assert res.last_s[2] == -1  # none yet
    res.add(2, 5000000, 95, 100)
    res.add(2, 5100000, 90, 200)
    assert (res.last_nohm[2], res.last_quality[2], res.last_s[2]) == (5100000, 90, 200)
    assert res.last_s[1] == -1 and res.last_s[4] == -1


def test_discharge_detection_per_source_and_deepest_point():
    d = dis.Discharge(RANGES, drop_mv=13000, current_ma=1000, confirm=2, end_s=60)
    poll = poller_with([13500] * 8)
    sums = [54000, 54000]
    # UPS input: detected on the next update
    d.ups_input(0, True)
    d.update(10, poll.voltage_mv, sums)
    assert d.started == [0] and d.sources[0] == dis.SRC_UPS and d.count[0] == 1
    # current sensor: immediate as well
    d.current(1, -25000, 10)
    d.update(11, poll.voltage_mv, sums)
    assert d.started == [1] and d.sources[1] & dis.SRC_CURRENT
    assert d.history_interval_s(11) == dis.HISTORY_DISCHARGE_S
    # deepest point: the block voltages when the string voltage was lowest
    for t, v in ((20, 12500), (30, 11800), (40, 12100)):
        for a in range(1, 5):
            poll.voltage_mv[a] = v - a * 100
        d.update(t, poll.voltage_mv, [4 * v - 1000, 54000])
    assert d.min_at_s[0] == 30 and list(d.deepest_mv[1:5]) == [11700, 11600, 11500, 11400]
    # end after 60 s clear; then records every minute for 12 h
    d.ups_input(0, False)
    d.update(100, poll.voltage_mv, sums)
    d.update(159, poll.voltage_mv, sums)
    assert d.active[0]
    d.update(160, poll.voltage_mv, sums)
    assert d.ended == [0] and not d.active[0]
    d.current(1, 5000, 170)
    d.update(170, poll.voltage_mv, sums)
    d.update(230, poll.voltage_mv, sums)
    assert not d.any_active()
    assert d.history_interval_s(300) == dis.HISTORY_AFTER_S
    assert d.history_interval_s(230 + 12 * 3600) == dis.HISTORY_FLOAT_S


def test_voltage_drop_detection_needs_confirmation():
    d = dis.Discharge(RANGES, drop_mv=13000, confirm=2)
    poll = poller_with([13500] * 8)
    d.voltage(0, 12700, True)
    d.update(1, poll.voltage_mv, [50800, 54000])
    assert not d.active[0]  # one low cycle is not yet a discharge
    d.voltage(0, 12650, True)
    d.update(2, poll.voltage_mv, [50600, 54000])
    assert d.active[0] and d.sources[0] == dis.SRC_VOLTAGE
    d2 = dis.Discharge(RANGES, drop_mv=13000)
    d2.voltage(0, 12000, False)  # incomplete cycle (a module missing): no decision
    d2.voltage(0, 12000, False)
    d2.update(1, poll.voltage_mv, [0, 0])
    assert not d2.active[0]


FLOAT = bytearray([ph.PH_FLOAT])
DISCHARGE = bytearray([ph.PH_DISCHARGE])


def probed_poller():
    poll = pl.Poller([(1, 4)])
    for a in range(1, 5):
        poll.state[a] = pl.ST_OK
        poll.voltage_mv[a] = 13600
        poll.temp_cc[a] = 2500
        poll.flags[a] = p.FLAG_PROBE  # the temperature is the battery's (a probe)
    return poll


def test_thermal_runaway_trips_with_rising_current_and_latches():
    r = rw.Runaway([(1, 4)], sample_s=600)
    poll = probed_poller()
    t = 0
    current = 500
    trips = []
    for step in range(20):
        if step >= 5:  # block 3 heats 1 °C per 10 min, float current climbs
            poll.temp_cc[3] += 100
            current = current * 13 // 10
        r.update(t, poll, [current], FLOAT)
        trips += r.newly_tripped
        t += 600
    assert trips == [0]
    assert r.tripped[0] and r.tripped_module[0] == 3
    # latched: stays tripped even when the block cools, until an operator resets
    poll.temp_cc[3] = 2500
    for _ in range(10):
        r.update(t, poll, [500], FLOAT)
        t += 600
    assert r.tripped[0]
    r.reset(0)
    assert not r.tripped[0]


def test_a_warm_block_alone_or_a_discharge_does_not_trip():
    r = rw.Runaway([(1, 4)])
    poll = probed_poller()
    t = 0
    for step in range(30):  # block 2 warms 12 K (sun on the cabinet), the current is flat
        if step < 12:
            poll.temp_cc[2] += 100
        r.update(t, poll, [500], FLOAT)
        t += 600
    assert not r.tripped[0]
    # heat alone trips only far above the string (15 K, the backstop) and still rising
    for _ in range(6):
        poll.temp_cc[2] += 100
        r.update(t, poll, [500], FLOAT)
        t += 600
    assert r.tripped[0] and r.tripped_module[0] == 2
    r2 = rw.Runaway([(1, 4)])
    poll = probed_poller()
    t = 0
    current = 500
    for _ in range(20):  # heating during a discharge: no verdict
        poll.temp_cc[3] += 100
        current = current * 13 // 10
        r2.update(t, poll, [current], DISCHARGE)
        t += 600
    assert not r2.tripped[0]


def single_block_runaway(current):
    """One block heats in a series string: the shared current stays flat, the hot
    block sags and the charger pushes the others up (docs/simulation.md)."""
    r = rw.Runaway([(1, 4)])
    poll = probed_poller()
    t = 0
    for step in range(20):
        if step >= 5:
            poll.temp_cc[4] += 100
            poll.voltage_mv[4] -= 30  # the hot block sags, the others rise
            for a in (1, 2, 3):
                poll.voltage_mv[a] += 10
        r.update(t, poll, [current], FLOAT)
        t += 600
    return r


def test_single_block_runaway_trips_without_a_current_sensor():
    r = single_block_runaway(None)
    assert r.tripped[0] and r.tripped_module[0] == 4


def test_single_block_runaway_trips_with_a_sensor_showing_flat_current():
    r = single_block_runaway(450)
    assert r.tripped[0] and r.tripped_module[0] == 4


def test_alarm_outputs_mute_and_fail_safe_contact():
    o = out.AlarmOutputs()
    o.update(0, 0, False, False)
    assert not o.buzzer and o.led == out.LED_OFF and o.relay_energised
    o.update(0, 2, False, False)
    assert o.led == out.LED_BLINK and not o.buzzer
    o.update(1, 2, True, True)
    assert o.buzzer and o.led == out.LED_ON and not o.relay_energised
    o.mute()
    o.update(1, 2, True, False)
    assert not o.buzzer and o.led == out.LED_ON  # muted: LED and contact stay
    o.update(2, 2, True, True)
    assert o.buzzer  # a new alarm sounds again


def test_recharge_after_a_discharge_ends_it_although_the_voltage_is_still_low():
    d = dis.Discharge(RANGES, drop_mv=13000, current_ma=1000, confirm=2, end_s=60)
    poll = poller_with([12400] * 8)
    t = 0
    for _ in range(3):  # mains fail: low voltage, discharge current
        d.voltage(0, 12400, True)
        d.current(0, -20000, t)
        d.update(t, poll.voltage_mv, [49600, 54000])
        t += 10
    assert d.active[0]
    # mains back: current limit charging, blocks still below 13.0 V
    for _ in range(10):
        d.voltage(0, 12600, True)
        d.current(0, 4000, t)
        d.update(t, poll.voltage_mv, [50400, 54000])
        t += 10
    assert not d.active[0] and d.count[0] == 1
    # without a sensor: the rise from the lowest point tells the recharge
    d2 = dis.Discharge(RANGES, drop_mv=13000, confirm=2, end_s=60)
    t = 0
    for avg in (12500, 12400, 12300, 12300, 12450, 12500, 12550, 12600, 12650, 12700):
        d2.voltage(0, avg, True)
        d2.update(t, poll.voltage_mv, [avg * 4, 54000])
        t += 30
    assert not d2.active[0]
    assert d2.count[0] == 1  # the recharge did not start a second discharge
    for avg in (12400, 12150, 12100):  # a second mains failure during the recharge
        d2.voltage(0, avg, True)
        d2.update(t, poll.voltage_mv, [avg * 4, 54000])
        t += 30
    assert d2.active[0] and d2.count[0] == 2
