# Balancing that knows its limits (manager_fw/balance_limits.py, docs/judgement.md): a
# block the others bleed for in vain is named with its likely cause and left out of the
# target, so the common bleeding stops; the bleed energy per string and its daily cap.
# Real Poller and Strings objects; the modules' side is played here: a module bleeds
# while it stands above the target (as shared/balance.py does), a low block rises as
# its case says.
from manager_fw import balance_limits as bl
from manager_fw import poller as pl
from manager_fw import strings as strs

N = 8
FLOAT_MV = 13500  # the 12 V variant's resistor sizing point
BLEED_MA = 150


def string(max_wh_day=-1, hold_wh_day=-1):
    poll = pl.Poller([(1, N)])
    st = strs.Strings([(1, N)], 13080, 14100)
    lim = bl.BalanceLimits([(1, N)], BLEED_MA, FLOAT_MV, 6, max_wh_day, 14400, 60, hold_wh_day)
    return poll, st, lim


def watched(poll, st, lim, minutes, volts_at, t0=1000):
    """Minutes of samples of a string whose voltages volts_at(minute, lift_uv) gives
    (block 1 first); blocks above the target bleed at 80 %.  Returns (news, lifts)."""
    news = []
    lifts = []
    lift = 0
    floating = bytearray([1])
    for i in range(minutes):
        volts = volts_at(i, lift)
        for a in range(1, N + 1):
            poll.state[a] = pl.ST_OK
            poll.voltage_mv[a] = volts[a - 1]
            poll.voltage_uv[a] = volts[a - 1] * 1000
        st.update(poll)
        for a in range(1, N + 1):
            above = poll.voltage_mv[a] > st.target_mv[0] + 5 and st.equalising[0]
            poll.balance_pct[a] = 80 if above else 0
        lim.update(t0 + 60 * i, poll, st, floating)
        news.extend((i, a, c) for a, c in lim.news)
        lift = st.lift_uv[0]
        lifts.append(lift)
    return news, lifts


def run(poll, st, lim, hours, low_mv_at, others_mv=13650, t0=1000):
    """Minutes of samples (0 h: one); block 3 follows low_mv_at(t_s), the others sit at
    others_mv and bleed at 80 % while above the target.  Returns the news seen, in
    order."""

    def volts_at(i, lift):
        low = low_mv_at(60 * i)
        return [low if a == 3 else others_mv for a in range(1, N + 1)]

    news, lifts = watched(poll, st, lim, int(hours * 60) + 1, volts_at, t0)
    return [(a, c) for i, a, c in news]


def test_a_shorted_cell_is_named_and_the_others_stop_bleeding():
    poll, st, lim = string()
    news = run(poll, st, lim, 5, lambda t: 11500)  # a cell short: flat, 2 V low
    assert news == [(3, bl.CAUSE_SHORTED_CELL)]
    assert st.excluded[3] and st.target_mv[0] == 13650  # the others' own target
    assert sum(poll.balance_pct[a] for a in range(1, N + 1)) == 0  # nobody bleeds now
    wh = lim.wh_day_x1000(0)
    # 7 modules x 2.07 W x 80 % for the 4 h watch, then nothing
    assert 44000 <= wh <= 48000, wh


def test_a_dried_out_block_and_an_undercharged_one_get_their_causes():
    poll, st, lim = string()
    news = run(poll, st, lim, 5, lambda t: 13350)  # 300 mV low and flat
    assert news == [(3, bl.CAUSE_DRIED_OUT)]
    poll, st, lim = string()
    # rises 10 mV/h from 600 mV low: still rising, so it gets RISING_ROUNDS rounds of
    # 4 h before the verdict (a faster riser halves its deficit and is not named)
    news = run(poll, st, lim, 11.5, lambda t: 13000 + t // 360)
    assert news == [] and lim.watch_rounds[0] == bl.RISING_ROUNDS - 1
    news = run(poll, st, lim, 1, lambda t: 13000 + (t + 11 * 3600) // 360, t0=1000 + 11 * 3600)
    assert news == [(3, bl.CAUSE_UNDERCHARGED)]


def test_while_a_block_sits_far_below_the_others_bleed_below_the_target():
    # the lift: target - (deficit - band), at most LIFT_BANDS bands (8 mV per cell), so
    # the others bleed about fully and the string current lifts the low block, as the
    # greedy reference does; the yield's part comes in over LIFT_LAG samples, the low
    # block's own limit at once; it ends with a verdict.  (No hold budget: 2 h of 7
    # modules at 80 % would reach it and hold the string with an allowance instead.)
    poll, st, lim = string(hold_wh_day=0)
    run(poll, st, lim, 0, lambda t: 13000)  # one sample: 1/LIFT_LAG of the way
    assert st.lift_uv[0] == -(-bl.LIFT_BANDS * 48000 // bl.LIFT_LAG)
    run(poll, st, lim, 2, lambda t: 13000, t0=1060)  # the last uV come 1 a sample
    assert st.lift_uv[0] == bl.LIFT_BANDS * 48000
    assert poll.target_uv[0] == st.target_uv(0) - bl.LIFT_BANDS * 48000
    run(poll, st, lim, 0.1, lambda t: st.target_mv[0] - 48 - 30, t0=9000)
    assert st.lift_uv[0] == 30000
    run(poll, st, lim, 0.1, lambda t: st.target_mv[0] - 40, t0=10000)
    assert st.lift_uv[0] == 0 and poll.target_uv[0] == st.target_uv(0)
    poll, st, lim = string()
    news = run(poll, st, lim, 5, lambda t: 11500)  # a shorted cell: flat, named at 4 h
    assert news == [(3, bl.CAUSE_SHORTED_CELL)] and st.lift_uv[0] == 0


def lift_with(poll, st, lim, volts, t):
    """One sample of the string at these voltages (block 1 first); the lift it sets."""
    for a in range(1, N + 1):
        poll.state[a] = pl.ST_OK
        poll.voltage_mv[a] = volts[a - 1]
        poll.voltage_uv[a] = volts[a - 1] * 1000
        poll.balance_pct[a] = 0
    st.update(poll)
    lim.update(t, poll, st, bytearray([1]))
    return st.lift_uv[0]


def test_the_lift_yields_to_a_block_standing_above_three_fifths_of_the_deficit():
    # block 3 low, block 5 high: while block 5 stands above the target by more than
    # YIELD_NUM / YIELD_DEN of block 3's deficit, its descent is the longer task and the
    # string current the lift raises is what it must bleed away: no lift.  Below that,
    # the lift comes in towards the difference, a LIFT_LAG-th of the way a sample
    assert (bl.YIELD_NUM, bl.YIELD_DEN) == (3, 5)
    poll, st, lim = string()
    volts = [13600] * N
    volts[2] = 13300
    volts[4] = 14000  # target 13612: 388 over, 312 under (3/5: 187)
    assert lift_with(poll, st, lim, volts, 1000) == 0
    volts[4] = 13700  # target 13575: 125 over, 275 under (3/5: 165): 40 mV
    lifts = [lift_with(poll, st, lim, volts, 1060 + 60 * i) for i in range(80)]
    assert lifts[0] == 40000 // bl.LIFT_LAG
    assert all(lifts[i + 1] > lifts[i] for i in range(39))  # it comes in steadily
    assert lifts[-1] == 40000  # and arrives
    volts[4] = 13900  # the high block rises again: the lift goes back to 0
    lifts = [lift_with(poll, st, lim, volts, 6000 + 60 * i) for i in range(80)]
    assert lifts[0] == 40000 - 40000 // bl.LIFT_LAG and lifts[-1] == 0


def test_the_lift_settles_where_the_high_block_follows_it():
    # the high block's excess follows the lift itself (the string current it raises),
    # here by 1.25 x (in the simulator: a 40 mV lift raised the impaired block ~50 mV at
    # C x 1 seed 2).  Taken at once the yield is a relay (lift 0 -> high block falls ->
    # full lift -> high block rises -> 0); lagged, it settles at the fixed point
    # lift = 3/5 deficit - excess(lift), without overshoot
    poll, st, lim = string()
    volts = [13600] * N
    volts[2] = 13300
    lift = 0
    seen = []
    for i in range(120):
        volts[4] = 13650 + lift * 5 // 4000
        lift = lift_with(poll, st, lim, volts, 1000 + 60 * i)
        seen.append(lift)
    # the fixed point, from the same numbers: deficit and excess about the target
    target = sum(volts) // N
    deficit = target - volts[2]
    excess = volts[4] - target
    assert abs(seen[-1] // 1000 - (deficit * 3 // 5 - excess)) <= 2
    assert 10000 < seen[-1] < 48000  # a lift, not 0 and not the whole band
    steps = [seen[i + 1] - seen[i] for i in range(len(seen) - 1)]
    assert all(s > 0 for s in steps[:15])  # it comes in steadily ...
    # ... and never turns back by a reading's step (whole mV: it may dither within
    # one), where the relay swings the whole band
    assert min(steps) > -1000 and max(seen) - seen[-1] < 1000


def high_and_low(low_mv):
    """Block 3 at low_mv, block 5 at 14000, the others at 13650 (bleeding): at 13000,
    target 13612, 3/5 of block 3's 612 mV deficit is below block 5's 388 mV excess, so
    the lift yields wholly."""
    volts = [13650] * N
    volts[2] = low_mv
    volts[4] = 14000
    return volts


def test_no_verdict_while_the_lift_yields_then_a_test_round_with_the_whole_lift():
    # a low block beneath a high one: the lift yields wholly, the others bleed for the
    # high block, not for this one; a block short of charge fills too slowly then to
    # judge (at C x 30 it moved 15 mV in 8 h and was named dried out).  The watch's
    # clock stops; after give_up_s of that the whole lift is forced for one test, so a
    # block that cannot come is still named, give_up_s later
    poll, st, lim = string()
    news, lifts = watched(poll, st, lim, 9 * 60, lambda i, lift: high_and_low(13000))
    idle = lim.give_up_s // 60
    assert max(lifts[: idle - 1]) == 0  # yielded: no lift, and no verdict at 4 h
    assert lifts[idle + 5] == bl.LIFT_BANDS * 48000  # then the test round's whole lift
    assert [(a, c) for i, a, c in news] == [(3, bl.CAUSE_DRIED_OUT)]
    assert 2 * idle - 2 <= news[0][0] <= 2 * idle + 2, news  # named a test round later
    assert st.excluded[3] and lifts[-1] == 0


def test_while_the_high_block_comes_down_the_low_one_waits_untested():
    # the high block descends 30 mV/h (a band of 48 mV in 4 h would do): that is the
    # string's task, so no test round is forced and the flat low block is not judged;
    # once the high block stands, the test comes give_up_s after its last band of
    # descent, the verdict give_up_s later.  (No cap: 20 h of 80 % bleeding reach it.)
    poll, st, lim = string(max_wh_day=0)

    def volts_at(i, lift):
        volts = high_and_low(12800)
        volts[4] = 14400 - min(i, 8 * 60) // 2  # 30 mV/h for 8 h, then it stands
        return volts

    news, lifts = watched(poll, st, lim, 20 * 60, volts_at)
    idle = lim.give_up_s // 60
    forced = lifts.index(48000)
    assert max(lifts[:forced]) == 0  # the lift yields all the while it comes down
    assert 8 * 60 + idle - 96 <= forced <= 8 * 60 + idle  # a band takes 96 min here
    assert [(a, c) for i, a, c in news] == [(3, bl.CAUSE_DRIED_OUT)]
    assert forced + idle - 2 <= news[0][0] <= forced + idle + 2, (forced, news)


def test_a_block_that_comes_once_lifted_is_not_named():
    # flat while the lift yields (nobody bleeds for it), it rises 120 mV/h once lifted:
    # it is left alone (the old watch named it dried out at 4 h)
    poll, st, lim = string()
    lifted = [0]

    def volts_at(i, lift):
        if lift:
            lifted[0] += 1
        return high_and_low(13000 + lifted[0] * 2)

    news, lifts = watched(poll, st, lim, 9 * 60, volts_at)
    assert news == [] and not st.excluded[3]
    # yielded for the first give_up_s, then lifted for the test, and it came (by 262 mV
    # the others stand within 5 mV of the target and stop bleeding: the watch ends)
    assert max(lifts[: lim.give_up_s // 60 - 1]) == 0 and lifted[0] >= 100


def test_a_low_block_that_comes_up_is_left_alone():
    poll, st, lim = string()
    # 400 mV low, rises 150 mV/h: balancing is working
    news = run(poll, st, lim, 5, lambda t: min(13200 + t // 24, 13640))
    assert news == [] and not st.excluded[3]


def test_an_excluded_block_rejoins_when_it_comes_within_reach():
    poll, st, lim = string()
    news = run(poll, st, lim, 5, lambda t: 11500 if t < 4 * 3600 + 600 else 13640)
    assert news == [(3, bl.CAUSE_SHORTED_CELL), (3, bl.CAUSE_NONE)]
    assert not st.excluded[3] and lim.excluded_count == 0


def capped_minutes(poll, st, lim, minutes, duty):
    """Minutes of samples of a string at its daily cap: its blocks at 13650 mV, block 3
    at 13500; duty(minute, address) gives each module's level.  Returns the cap's news
    as (minute, state) and the allowance of each minute."""
    capped = []
    allows = []
    floating = bytearray([1])
    for minute in range(minutes):
        for a in range(1, N + 1):
            poll.state[a] = pl.ST_OK
            poll.voltage_mv[a] = 13650 if a != 3 else 13500
            poll.voltage_uv[a] = poll.voltage_mv[a] * 1000
        st.update(poll)
        for a in range(1, N + 1):
            poll.balance_pct[a] = duty(minute, a)
        lim.update(minute * 60, poll, st, floating)
        capped.extend((minute, on) for k, on in lim.cap_news)
        allows.append(st.allow_uv[0])
    return capped, allows


def test_past_the_daily_cap_a_string_that_still_bleeds_at_the_bands_top_pauses():
    poll, st, lim = string(max_wh_day=10)
    # seven modules bleed fully whatever the target says (the band's top too)
    capped, allows = capped_minutes(
        poll, st, lim, 330, lambda minute, a: 100 if st.equalising[0] and a != 3 else 0
    )
    # 7 x 2.06 W: 10 Wh in ~41 min, then limited: the allowance climbs 0.6 mV a sample
    # to the band's top (48 mV) in 80 samples; two hours there (its last whole hour
    # still 14.4 Wh, more than an average hour of the cap, 0.42 Wh): paused
    (m_lim, limited), (m_paused, paused) = capped
    assert (limited, paused) == (bl.CAP_LIMITED, bl.CAP_PAUSED)
    assert 40 <= m_lim <= 42
    assert allows[m_lim] == 600 and allows[m_lim + 79] == lim.allow_max_uv == 48000
    assert m_paused == m_lim + 78 + 120
    assert st.reason[0] == strs.REASON_CAPPED and not st.equalising[0]
    # bled at 7 x 2.06 W from the first minute until the pause, nothing since
    mw = 7 * (BLEED_MA * 13650 // FLOAT_MV * 13650 // 1000)
    assert abs(lim.wh_day_x1000(0) - mw * m_paused // 60) <= 2, lim.wh_day_x1000(0)


def test_past_the_daily_cap_a_string_bleeds_within_its_average_power_high_block_first():
    """Blocks 1-7 float 13620 ... 13740 mV by nature, block 8 (an impaired oxygen cycle)
    14020 mV: to hold them all at the target costs ~3.7 W, block 8 alone ~2.2 W, and the
    cap (60 Wh a day: 2.5 W on average) lies between.  Past the cap the allowance rises
    until the string bleeds within 2.5 W: the flat hold gives way, block 8 is still
    pulled down all along, the string is never paused, and the day comes back under the
    cap once the hours before it have rolled out."""
    poll = pl.Poller([(1, N)])
    st = strs.Strings([(1, N)], 13080, 14100)
    lim = bl.BalanceLimits([(1, N)], BLEED_MA, FLOAT_MV, 6, 60, 14400, HOLD_SAMPLE_S, 0)
    floating = bytearray([1])
    news = []
    allows = []
    peak = 0
    step = HOLD_SAMPLE_S // 60
    for minute in range(0, 2 * 24 * 60, step):
        for a in range(1, N + 1):
            poll.state[a] = pl.ST_OK
            poll.voltage_mv[a] = 13600 + 20 * a if a < N else 14020
            poll.voltage_uv[a] = poll.voltage_mv[a] * 1000
        st.update(poll)
        top_mv = poll.target_uv[0] // 1000  # the broadcast: target + allowance
        for a in range(1, N + 1):
            over = poll.voltage_mv[a] - top_mv
            poll.balance_pct[a] = 0 if over <= 0 or not st.equalising[0] else min(100, 4 * over)
        assert st.equalising[0] and poll.balance_pct[N] == 100  # block 8, all along
        lim.update(minute * 60, poll, st, floating)
        news.extend((minute // 60, on) for k, on in lim.cap_news)
        if minute >= 24 * 60:
            # settled: the cap is spent, not left unspent below it: the power steps by
            # one allowance step (~3 %) around the cap's average power, the hour's mean
            # within 0.5 % of it (the day ends under the cap: below), blocks 1-6 held
            # below the allowance, block 7 (18 mV over the target) bleeding a little
            assert lim.mean_mw[0] <= 60000 // 24 * 1005 // 1000, lim.mean_mw[0]
            assert lim.power_mw[0] <= 60000 // 24 * 103 // 100, lim.power_mw[0]
            assert [poll.balance_pct[a] for a in range(1, N - 1)] == [0] * (N - 2)
            assert 0 < poll.balance_pct[N - 1] < 100
        allows.append(st.allow_uv[0])
        peak = max(peak, lim.wh_day_x1000(0))
    assert news[0][1] == bl.CAP_LIMITED and 14 <= news[0][0] <= 18, news  # 60 Wh at 3.7 W
    assert [on for h, on in news] == [bl.CAP_LIMITED]  # spent evenly: never paused
    assert 0 < max(allows) < lim.allow_max_uv
    # the day ran over the cap by what the flat hold bled before it was limited (81 Wh
    # at the peak: at this test's 10 min samples the allowance takes ~5 h to find its
    # level), less than the unlimited string's 3.7 W a day; that has rolled out since
    assert 60000 < peak < 3686 * 24 and lim.wh_day_x1000(0) <= 60000


def test_past_the_daily_cap_a_minutes_spike_does_not_cost_a_held_block_its_hold():
    """Past the cap after a costly start, a string whose hold costs 88 % of the cap's
    average power: module 1 holds a leaky block up (70 % at the target, 4 % less per mV of
    allowance: the band's mixed strings move such a block ~30 mV per allowance step).
    Each hour module 2 bleeds fully for 3 minutes (what a round of Ri captures makes it
    put back): twice the cap's power for those minutes, 94 % of it over the hour.  What the
    start left of the allowance comes back to 0 and stays there: the string is held to
    the target within its cap.  (Before 2026-12-05 the allowance followed the minute's
    power, rose at the first spike, and stayed above 0 for a day.)"""
    poll, st, lim = string(max_wh_day=40)  # 1.67 W on average

    def duty(minute, a):
        if minute < 180:
            return 100 if a != 3 else 0  # the start: every sound module bleeds fully
        if a == 1:
            return max(0, 70 - 4 * st.allow_uv[0] // 1000)
        return 100 if a == 2 and minute % 60 < 3 else 0

    capped, allows = capped_minutes(poll, st, lim, 12 * 60, duty)
    # 40 Wh at 14.5 W after ~166 min, during the start: limited, the allowance rises
    # while the start lasts (both the power and the hour's mean above the cap's)
    assert capped[0][1] == bl.CAP_LIMITED and 160 <= capped[0][0] <= 170, capped
    assert [on for m, on in capped] == [bl.CAP_LIMITED]
    assert allows[179] >= 5000, allows[179]
    # back to 0 once the hour's mean has come down (from the start's 14.5 W under the
    # cap's 1.67 W: ~2.2 h), half a step a minute, and never up again for the spikes
    back = allows.index(0, 180)
    assert back < 7 * 60, back
    assert allows[back:] == [0] * (len(allows) - back)
    # the hold, 70 %: 88 % of the cap's average power
    assert 1400 < lim.power_mw[0] < 40000 // 24, lim.power_mw[0]


def test_the_default_cap_is_24_wh_per_block():
    lim = bl.BalanceLimits([(1, 8), (9, 72)], BLEED_MA, FLOAT_MV, 6)
    assert list(lim.max_mwh_day) == [8 * 24000, 64 * 24000]
    assert list(bl.BalanceLimits([(1, 8)], BLEED_MA, FLOAT_MV, 6, 0).max_mwh_day) == [0]


def test_bleed_energy_of_one_module_for_an_hour():
    poll, st, lim = string()
    floating = bytearray([0])
    for minute in range(61):
        for a in range(1, N + 1):
            poll.state[a] = pl.ST_OK
            poll.voltage_mv[a] = FLOAT_MV
            poll.voltage_uv[a] = FLOAT_MV * 1000
            poll.balance_pct[a] = 100 if a == 1 else 0
        lim.update(minute * 60, poll, st, floating)
    # 150 mA x 13.5 V = 2025 mW for one hour
    assert 2020 <= lim.wh_day_x1000(0) <= 2025


HOLD_SAMPLE_S = 600  # 10 min samples: two days in 288 steps (the emulated M0 runs it too)


def hold_string(hold_wh_day=-1):
    poll = pl.Poller([(1, N)])
    st = strs.Strings([(1, N)], 13080, 14100)
    lim = bl.BalanceLimits([(1, N)], BLEED_MA, FLOAT_MV, 6, -1, 14400, HOLD_SAMPLE_S, hold_wh_day)
    return poll, st, lim


def hold(poll, st, lim, minutes, start=0):
    """A sound string: block a floats at 13620 + 10 a mV by nature (block 1 lowest); a
    module above the broadcast target (target + allowance) bleeds 4 % per mV above it,
    as the controller's proportional band does.  Returns the string's bleed power (mW,
    the manager's estimate) at the end."""
    floating = bytearray([1])
    step = HOLD_SAMPLE_S // 60
    for minute in range(start, start + minutes, step):
        for a in range(1, N + 1):
            poll.state[a] = pl.ST_OK
            poll.voltage_mv[a] = 13620 + 10 * a
            poll.voltage_uv[a] = poll.voltage_mv[a] * 1000
        st.update(poll)
        top_mv = poll.target_uv[0] // 1000
        for a in range(1, N + 1):
            over = poll.voltage_mv[a] - top_mv
            pct = 0 if over <= 0 or not st.equalising[0] else min(100, 4 * over)
            poll.balance_pct[a] = pct
        lim.update(minute * 60, poll, st, floating)
    return lim.power_mw[0]


def test_the_hold_budget_raises_the_allowance_until_the_string_bleeds_within_it():
    poll, st, lim = hold_string()
    assert lim.hold_mwh_day[0] == N * 2400  # default: 2.4 Wh per block, 0.1 W a module
    hold(poll, st, lim, 30)
    # at first it equalises to the target itself: the four blocks above it bleed
    assert st.allow_uv[0] == 0 and poll.target_uv[0] == st.target_uv(0)
    assert lim.power_mw[0] > 4000
    mw = hold(poll, st, lim, 2 * 24 * 60 - 30, 30)  # two days
    # the budget's average power is 800 mW: the allowance rose until the string bled
    # within it (the top blocks held above the target), and the day stays in budget
    assert 0 < st.allow_uv[0] <= lim.allow_max_uv == 48000
    st.update(poll)  # the next broadcast carries the allowance
    assert poll.target_uv[0] == st.target_uv(0) + st.allow_uv[0]
    assert mw < 2000, mw  # (4 W without the budget, below)
    # (within a sample's bleeding: the allowance rises once the day reached the budget)
    assert lim.wh_day_x1000(0) <= N * 2400 * 11 // 10, lim.wh_day_x1000(0)
    assert not lim.capped[0]


def test_without_a_hold_budget_it_equalises_to_the_target_whatever_it_costs():
    poll, st, lim = hold_string(hold_wh_day=0)
    hold(poll, st, lim, 24 * 60)
    assert st.allow_uv[0] == 0 and lim.power_mw[0] > 4000


def test_a_watch_comes_before_the_hold_budget():
    # a 4 Wh budget is 3/4 spent in the watch's first half hour; the allowance stays 0
    # while the low block is under test (the others bleed to lift it), so the block is
    # judged as without a budget, and named
    poll, st, lim = hold_string(hold_wh_day=4)
    news = run(poll, st, lim, 3, lambda t: 13350)
    assert news == [] and st.allow_uv[0] == 0 and lim.wh_day_x1000(0) > 4000
    news = run(poll, st, lim, 5, lambda t: 13350)
    assert news == [(3, bl.CAUSE_DRIED_OUT)]


def test_no_watch_runs_while_the_string_holds_with_an_allowance():
    poll, st, lim = hold_string()
    hold(poll, st, lim, 24 * 60)  # a day: the budget raised the allowance
    assert st.allow_uv[0] > 0
    # now a block sits low and flat: the others hold above the target by choice and do
    # not try to lift it, so nothing can be concluded about it (no watch, no verdict)
    news = run(poll, st, lim, 5, lambda t: 13350, t0=24 * 3600)
    assert news == [] and lim.watch_since_s[0] == -1 and st.allow_uv[0] > 0
