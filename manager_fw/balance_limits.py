# Balancing that knows its limits (SPEC §3a; docs/judgement.md, "Balancing limits").
#
# Passive balancing can only pull high blocks down; a low block rises because the
# charger holds the string voltage while the others bleed.  A block that does not rise
# however long the others bleed cannot be helped: a shorted cell (its voltage a cell
# short of the others and flat), a dried-out block (it takes several times the float
# current, so it floats low), an undercharged new block (it rises, but slowly).  Left
# alone, every other module of the string bleeds at derated full duty for ever: ~30 W per
# string, 0.7 kWh a day, boards at 64 °C.
#
# Every `sample_s` (60 s), per string in float with equalising on:
#   the lowest block's deficit = target - its voltage; while that is more than `band_mv`
#   and at least half of the other blocks bleed ("common bleeding"), a watch runs on it.
#   If after `give_up_s` (4 h) the deficit has not shrunk by half, the block is
#   *unbalanceable*: one EV_BALANCE_LIMIT (arg: likely cause) names it and it is left out
#   of its string's target (manager_fw/strings.py `excluded`), so the others are at target
#   again and stop bleeding.  Causes: it rose at least a tenth of the deficit -
#   undercharged (rising slowly); else a deficit of 2/3 of a cell or more - a shorted
#   cell (low and not rising); else dried out (high float current: low and flat).  It
#   rejoins the target when it comes within band_mv / 2 of it (a boost charge, a
#   replacement), with EV_BALANCE_LIMIT arg 0.
#   The lift (strings.lift_uv): while the low block is more than band_mv below, the
#   others are told the target minus (deficit - band_mv), at most LIFT_BANDS bands, so
#   they bleed and the string current rises to charge it; but never more than
#   YIELD_NUM / YIELD_DEN of the deficit exceeds the highest block's excess over the
#   target (the yield): while a block stands that far above, its descent is the
#   longer task and the string current the lift raises is what it has to bleed away
#   (its board derated).  The yield's part moves towards its value by 1 / LIFT_LAG a
#   sample: the high block's excess follows the lift itself (the string current) by
#   more than 1:1, so a yield taken at once is a relay (docs/simulation.md,
#   "Balancing as a band": the lift's relay).  The low block's own limit applies at once.
#   The watch judges a block only while the others bleed for it: while the lift has
#   yielded wholly (0), its clock stops.  While the high block comes down (a band in
#   give_up_s or faster) the low one waits; once the high block has stood for give_up_s,
#   the whole lift is forced for a test round of give_up_s, judged afresh (_watch).
# And per string the bleed energy: per module bleed_ma x (V / float V) x V x level %
# (a reported level is the duty truncated to whole %: counted as level + 0.5 %, below 100), summed
# over hourly buckets of the last 24 h (`wh_day_x1000(k)`, mWh).
#
# The hold budget (`hold_wh_day`, default 2.4 Wh per block: 0.1 W per module on average).
# Holding every block of a healthy string within +-10 mV of the average costs what the
# blocks' float currents differ by, times the string voltage: in the simulator a sound
# 16-block string of 7-year-old blocks bleeds ~125 Wh a day for it (all but its leakiest
# block bleed to lift that one by ~0.1 V; docs/judgement.md, "The hold budget").  Shaving
# the few blocks that float highest costs a tenth of that.  So when the string's last 24 h
# reach 3/4 of its budget and it bleeds faster than the budget's average power (or the
# last 24 h reach the whole budget and it bleeds at all), the manager raises the string's
# *allowance* (strings.allow_uv: the modules are told to hold
# their blocks at target + allowance) by 0.1 mV per cell a sample, up to `band_mv`
# (8 mV per cell); it lowers it again (half as fast) while the bleed is below 3/4 of that
# power or the day below half the budget.  Only blocks above target + allowance bleed.
# While a watch runs (a low block under test, above) the allowance does not rise; a watch
# only runs while the allowance is 0 (every block is being brought to the target).
# Past `max_wh_day` (default 24 Wh per block: 1 W per module on average), the backstop:
# the string's bleed is *limited* to the cap's average power (EV_BLEED_CAP arg 2). The
# allowance rises by the hold's step a sample while the string bleeds faster than cap /
# 24 h, now and over the last hour (MEAN_S), and falls (half as fast) while it bleeds
# below that, now and over the hour, up to band_mv: the flat hold, the costly part
# (every module bleeding to lift a leaky block), gives way first; a block that floats
# far above the target by nature (an impaired oxygen cycle) is still pulled down. Before
# 2026-12-05 the string stopped equalising altogether here, and such blocks climbed from
# the band back to +0.4 ... +1.0 V within hours (docs/simulation.md, "The boards'
# share").  Only when a whole hour at the band's top still bleeds more than an average
# hour of the cap (a string whose high blocks alone cost more than it) does it stop
# equalising (strings.REASON_CAPPED, arg 1).  Either ends when the last 24 h fall below
# 90 % of the cap (arg 0).

from array import array

from manager_fw import poller as pl
from shared.compat import const

CAUSE_NONE = const(0)  # back in balance (event), or not unbalanceable
CAUSE_SHORTED_CELL = const(1)
CAUSE_DRIED_OUT = const(2)
CAUSE_UNDERCHARGED = const(3)
CAUSE_NAMES = ("in balance", "shorted cell", "dried out", "undercharged")
CAUSE_TEXT = (
    "back within reach of the target",
    "low and not rising: likely a shorted cell",
    "low and flat while the others bleed: high float current, likely dried out",
    "rising too slowly: likely undercharged (a boost charge brings it up)",
)
DEFAULT_WH_PER_BLOCK = const(24)  # the default cap: 1 W per module, on average
DEFAULT_HOLD_MWH_PER_BLOCK = const(2400)  # the default hold budget: 0.1 W per module
ALLOW_STEP_UV_PER_CELL = const(100)  # the allowance's step per sample (rising)
LIFT_BANDS = const(1)  # the lift's limit, in bands
YIELD_NUM = const(3)  # the lift yields to a block standing above 3/5 ...
YIELD_DEN = const(5)  # ... of the low block's deficit
LIFT_LAG = const(8)  # the yield's part moves 1/8 of the way a sample (60 s)
RISING_DIV = const(64)  # a round in which the low block rose d0 / 64 or more ...
RISING_ROUNDS = const(3)  # ... earns another, up to this many rounds of give_up_s
CAP_NONE = const(0)  # the bleed cap's states (capped[k], EV_BLEED_CAP's arg)
CAP_PAUSED = const(1)  # equalising stopped (strings.REASON_CAPPED)
CAP_LIMITED = const(2)  # the allowance holds the bleed to the cap's average power
BUCKETS = const(24)  # hours in a day
BUCKET_S = const(3600)
# The cap acts on the string's bleed power averaged over about an hour (an exponential
# mean): a daily energy cap has no reason to answer a minute's spike, and one step of
# the allowance can move a leaky block held up by the others' bleeding by ~30 mV (the
# band's mixed strings: one such string went over the cap's power for minutes, and the
# allowance that left kept the block 40 mV low for 6 h; docs/judgement.md).
MEAN_S = const(3600)


class BalanceLimits:
    def __init__(
        self,
        ranges,
        bleed_ma: int,
        float_mv: int,
        cells: int,
        max_wh_day: int = -1,
        give_up_s: int = 14400,
        sample_s: int = 60,
        hold_wh_day: int = -1,
    ) -> None:
        n = len(ranges)
        self.ranges = ranges
        self.bleed_ma = bleed_ma
        self.float_mv = float_mv if float_mv > 0 else 1
        self.cells = cells
        self.band_mv = 8 * cells  # 8 mV per cell: balancing's own full-duty point
        self.cell_mv = float_mv // cells if cells else float_mv
        # per string: the cap in mWh (-1 derives it from the string's size: DEFAULT_WH_
        # PER_BLOCK per block, 1 W per module on average; 0 is no cap), the hold budget
        # in mWh (-1: DEFAULT_HOLD_MWH_PER_BLOCK per block; 0: none, equalise to the
        # target whatever it costs), the bleed power of the last sample (mW) and the
        # allowance's limit and step (uV)
        self.max_mwh_day = array("l", [0] * n)
        self.hold_mwh_day = array("l", [0] * n)
        for k in range(n):
            blocks = ranges[k][1] - ranges[k][0] + 1
            wh = blocks * DEFAULT_WH_PER_BLOCK if max_wh_day < 0 else max_wh_day
            self.max_mwh_day[k] = wh * 1000
            hold = blocks * DEFAULT_HOLD_MWH_PER_BLOCK if hold_wh_day < 0 else hold_wh_day * 1000
            self.hold_mwh_day[k] = hold
        self.power_mw = array("l", [0] * n)
        self.mean_mw = array("l", [0] * n)  # power_mw's mean over ~MEAN_S (the cap's)
        self.allow_max_uv = self.band_mv * 1000
        self.allow_step_uv = ALLOW_STEP_UV_PER_CELL * (cells if cells > 0 else 1)
        self.give_up_s = give_up_s
        self.sample_s = sample_s
        self.next_s = -1
        self.last_s = -1
        # watch per string: the low block, since when, its deficit then
        self.watch_addr = array("H", [0] * n)
        self.watch_since_s = array("l", [-1] * n)
        self.watch_deficit_mv = array("l", [0] * n)
        self.watch_round_mv = array("l", [0] * n)  # the deficit when this round began
        self.watch_rounds = bytearray(n)
        # how long the watch has stood idle (its clock stopped) while the lift yielded
        # wholly; from give_up_s on, the lift is forced for the test (see _watch)
        self.watch_idle_s = array("l", [0] * n)
        self.watch_high_mv = array("l", [0] * n)  # the high block's excess (mV), idling
        self._dt = 0  # the last sample's length (s)
        self.yield_uv = array("l", [0] * n)  # the yield's lagged part of the lift (uV)
        self.cause = bytearray(ranges[-1][1] + 1)  # per address: CAUSE_* while excluded
        self.excluded_count = 0
        # the last survey of a string (_survey): its highest block, the others, bleeding
        self._high_mv = 0
        self._others = 0
        self._bleeding = 0
        # energy: mJ not yet in a bucket, hourly buckets of mWh, the bucket's hour
        self._mj = array("l", [0] * n)
        self._bucket_mwh = array("l", [0] * (BUCKETS * n))
        self._hour = -1
        self.capped = bytearray(n)  # CAP_* per string
        self.cap_since_s = array("l", [0] * n)  # since when at the band's top (_cap)
        # news of the last update, for the core's events: (address, cause) pairs and
        # (string, on) pairs
        self.news: list = []
        self.cap_news: list = []

    # -- energy -----------------------------------------------------------------------

    def wh_day_x1000(self, k: int) -> int:
        """Bleed energy of string k over the last 24 h (mWh)."""
        total = self._mj[k] // 3600
        base = k * BUCKETS
        for j in range(BUCKETS):
            total += self._bucket_mwh[base + j]
        return total

    def _energy(self, now_s: int, poll: pl.Poller, dt_s: int) -> None:
        hour = now_s // BUCKET_S
        if hour != self._hour:
            steps = BUCKETS if self._hour < 0 else hour - self._hour
            for k in range(len(self.ranges)):
                base = k * BUCKETS
                for j in range(1, (steps if steps < BUCKETS else BUCKETS) + 1):
                    self._bucket_mwh[base + (self._hour + j) % BUCKETS] = 0
            self._hour = hour
        slot = hour % BUCKETS
        bleed = self.bleed_ma
        fl = self.float_mv
        for k in range(len(self.ranges)):
            first, last = self.ranges[k]
            mw = 0
            for a in range(first, last + 1):
                pct = poll.balance_pct[a]
                if pct and poll.state[a] == pl.ST_OK:
                    v = poll.voltage_mv[a]
                    # mA x V x V/Vf x (level + 0.5 %): the module truncates its duty
                    # to whole %; 100 % is full duty exactly
                    pm = pct * 10 + 5 if pct < 100 else 1000
                    mw += bleed * v // fl * v // 1000 * pm // 1000
            self.power_mw[k] = mw
            m = self.mean_mw[k]
            self.mean_mw[k] = m + (mw - m) * dt_s // MEAN_S if dt_s < MEAN_S else mw
            mj = self._mj[k] + mw * dt_s
            self._bucket_mwh[k * BUCKETS + slot] += mj // 3600
            self._mj[k] = mj % 3600

    # -- per sample -------------------------------------------------------------------

    def update(self, now_s: int, poll: pl.Poller, strings, in_float) -> None:
        """strings: manager_fw/strings.Strings (targets, equalising, exclusions);
        in_float[k]: string k floats (phases.PH_FLOAT)."""
        if self.news:  # a slice object is an allocation: only when there is something
            del self.news[:]
        if self.cap_news:
            del self.cap_news[:]
        if self.next_s >= 0 and now_s < self.next_s:
            return
        self.next_s = now_s + self.sample_s
        dt = 0 if self.last_s < 0 else now_s - self.last_s
        self.last_s = now_s
        if dt > 10 * self.sample_s:
            dt = self.sample_s  # a pause (setup, sleep): count one sample only
        self._dt = dt
        self._energy(now_s, poll, dt)
        for k in range(len(self.ranges)):
            self._cap(k, now_s, strings)
            self._string(k, now_s, poll, strings, in_float[k])
            self._hold(k, strings)

    def _hold(self, k: int, strings) -> None:
        """The hold budget: raise or lower string k's allowance (see the module comment)."""
        if self.capped[k] == CAP_LIMITED:
            return  # the backstop sets the allowance (_cap)
        budget = self.hold_mwh_day[k]
        allow = strings.allow_uv[k]
        if not budget:
            if allow:
                strings.allow_uv[k] = 0
            return
        if not strings.equalising[k]:
            return  # nothing bleeds: keep what was learnt
        day = self.wh_day_x1000(k)
        mw = self.power_mw[k]
        budget_mw = budget // 24
        if mw and (day >= budget or (day * 4 >= budget * 3 and mw > budget_mw)):
            if self.watch_since_s[k] < 0:
                strings.allow_uv[k] = self._nudge(allow, 1)
        elif mw * 4 < budget_mw * 3 or day * 2 < budget:
            strings.allow_uv[k] = self._nudge(allow, -1)

    def _nudge(self, allow: int, way: int) -> int:
        """The allowance a sample on (uV): a step up (way > 0) or half a step down,
        within 0 ... allow_max_uv (the hold budget's and the cap's one law)."""
        if way > 0:
            allow += self.allow_step_uv
            return allow if allow < self.allow_max_uv else self.allow_max_uv
        allow -= self.allow_step_uv // 2
        return allow if allow > 0 else 0

    def _cap(self, k: int, now_s: int, strings) -> None:
        """The backstop: past its daily cap string k bleeds at most the cap's average
        power, by the allowance; it pauses if even the band's top bleeds faster (see
        the module comment)."""
        cap = self.max_mwh_day[k]
        state = self.capped[k]
        new = state
        if not cap:
            new = CAP_NONE
        else:
            wh = self.wh_day_x1000(k)
            if state and wh * 10 < cap * 9:
                new = CAP_NONE
            elif not state and wh >= cap:
                new = CAP_LIMITED
                self.cap_since_s[k] = now_s
            if new == CAP_LIMITED:
                # up while the string bleeds above the cap's average power, now and over
                # the last hour; down while below it, now and over the hour (between
                # the two, the hour's mean lags: it waits).  A string whose hold costs
                # less than the cap is held to the target whatever a minute did, and
                # what a costly start left of the allowance comes back to 0
                allow = strings.allow_uv[k]
                mw = self.power_mw[k]
                mean = self.mean_mw[k]
                cap_mw = cap // BUCKETS
                if mw > cap_mw and mean > cap_mw:
                    allow = self._nudge(allow, 1)
                elif mw < cap_mw and mean < cap_mw:
                    allow = self._nudge(allow, -1)
                strings.allow_uv[k] = allow
                if allow < self.allow_max_uv:
                    self.cap_since_s[k] = now_s  # (since when at the band's top)
                elif now_s - self.cap_since_s[k] >= 2 * BUCKET_S:
                    # the last whole hour, all of it at the band's top
                    last = self._bucket_mwh[k * BUCKETS + (self._hour - 1) % BUCKETS]
                    if last * BUCKETS > cap:
                        new = CAP_PAUSED
        if new != state:
            self.capped[k] = new
            self.cap_news.append((k, new))
        strings.capped[k] = 1 if new == CAP_PAUSED else 0

    def _string(self, k: int, now_s: int, poll: pl.Poller, strings, floating) -> None:
        """One sample of string k: rejoin, survey, the lift, the watch on its low block."""
        target = strings.target_mv[k]
        self._rejoin(k, poll, strings.excluded, target)
        if not strings.equalising[k] or not floating or strings.allow_uv[k]:
            # (an allowance: the others hold above the target by choice, they do not
            # try to lift the low block; nothing can be concluded about it)
            self.watch_since_s[k] = -1
            strings.lift_uv[k] = 0
            self.yield_uv[k] = 0
            return
        low = self._survey(k, poll, strings.excluded)
        if low < 0:
            strings.lift_uv[k] = 0
            self.yield_uv[k] = 0
            return
        deficit = target - poll.voltage_mv[low]
        strings.lift_uv[k] = self._lift_uv(k, deficit, self._high_mv - target)
        others = self._others
        if deficit <= self.band_mv or self._bleeding * 2 < others or not others:
            self.watch_since_s[k] = -1
            return
        self._watch(k, now_s, low, deficit, self._high_mv - target, strings.excluded)

    def _rejoin(self, k: int, poll: pl.Poller, excl, target: int) -> None:
        """An excluded block of string k that came back within reach rejoins the target."""
        first, last = self.ranges[k]
        for a in range(first, last + 1):
            if excl[a] and poll.state[a] == pl.ST_OK:
                if poll.voltage_mv[a] >= target - self.band_mv // 2:
                    excl[a] = 0
                    self.cause[a] = CAUSE_NONE
                    self.excluded_count -= 1
                    self.news.append((a, CAUSE_NONE))

    def _survey(self, k: int, poll: pl.Poller, excl) -> int:
        """String k's lowest block in the target (-1: none); sets _high_mv (the highest
        block's voltage), _others (the other blocks in the target) and _bleeding (how
        many of those bleed)."""
        first, last = self.ranges[k]
        low = -1
        high = 0
        for a in range(first, last + 1):
            if poll.state[a] != pl.ST_OK or excl[a]:
                continue
            v = poll.voltage_mv[a]
            if low < 0 or v < poll.voltage_mv[low]:
                low = a
            if v > high:
                high = v
        self._high_mv = high
        others = 0
        bleeding = 0
        if low >= 0:
            for a in range(first, last + 1):
                if a != low and not excl[a] and poll.state[a] == pl.ST_OK:
                    others += 1
                    if poll.balance_pct[a]:
                        bleeding += 1
        self._others = others
        self._bleeding = bleeding
        return low

    def _lift_uv(self, k: int, deficit: int, excess: int) -> int:
        """The lift of string k (uV): while the low block is far below, every other block
        bleeds down to the target minus (deficit - band), at most LIFT_BANDS bands: they
        bleed about fully, as the greedy reference does, and the string current lifts
        the low block.  It yields to a block standing above the target by more than
        YIELD_NUM / YIELD_DEN of the low one's deficit (the lift at most that part of
        the deficit minus the excess): that block is the longer task, and the string
        current the lift raises is what it has to bleed away.  The yield is followed
        with a lag of LIFT_LAG samples, the low block's limit at once (see the module
        comment)."""
        cap = deficit - self.band_mv
        if cap > LIFT_BANDS * self.band_mv:
            cap = LIFT_BANDS * self.band_mv
        if cap <= 0:
            self.yield_uv[k] = 0
            return 0
        if self.watch_since_s[k] >= 0 and self.watch_idle_s[k] >= self.give_up_s:
            # the watch's test round: the whole lift, whatever stands high (_watch)
            self.yield_uv[k] = cap * 1000
            return cap * 1000
        want = deficit * YIELD_NUM // YIELD_DEN - excess
        if want > cap:
            want = cap
        elif want < 0:
            want = 0
        y = self.yield_uv[k]
        d = want * 1000 - y
        y += d // LIFT_LAG if d < 0 else -(-d // LIFT_LAG)  # away from 0: it arrives
        self.yield_uv[k] = y
        return y if y < cap * 1000 else cap * 1000

    def _watch(self, k: int, now_s: int, low: int, deficit: int, excess: int, excl) -> None:
        """The watch on string k's low block while the others bleed for it; names it and
        leaves it out of the target when it has not come (see the module comment)."""
        if self.watch_since_s[k] < 0 or self.watch_addr[k] != low:
            self.watch_addr[k] = low
            self._watch_from(k, now_s, deficit)
            self.watch_high_mv[k] = excess
            return
        d0 = self.watch_deficit_mv[k]
        if deficit * 2 <= d0:  # it is coming: watch again from here
            self._watch_from(k, now_s, deficit)
            return
        if not self.yield_uv[k] and self.watch_idle_s[k] < self.give_up_s:
            # the lift has yielded wholly to a high block: the others bleed for that
            # one, not for this; a block short of charge fills slowly then (at C x 30
            # it moved 15 mV in 8 h) and would be named dried out.  The clock stops.
            # While the high block comes down (a band in give_up_s or faster) that is
            # the string's task; once it has stood for give_up_s, the whole lift is
            # forced for the test, so a block that cannot come is still named
            self.watch_since_s[k] += self._dt
            if excess <= self.watch_high_mv[k] - self.band_mv:
                self.watch_high_mv[k] = excess
                self.watch_idle_s[k] = 0
            else:
                idle = self.watch_idle_s[k] + self._dt
                if idle >= self.give_up_s:  # the test: judged from here
                    self._watch_from(k, now_s, deficit)
                self.watch_idle_s[k] = idle
            return
        self.watch_high_mv[k] = excess
        if now_s - self.watch_since_s[k] < self.give_up_s:
            return
        # still rising (an undercharged block charging: its voltage stays low until it
        # is nearly full): another round of give_up_s, up to RISING_ROUNDS in all
        if (self.watch_round_mv[k] - deficit) * RISING_DIV >= d0:
            if self.watch_rounds[k] < RISING_ROUNDS - 1:
                self.watch_rounds[k] += 1
                self.watch_since_s[k] = now_s
                self.watch_round_mv[k] = deficit
                return
        rose = d0 - deficit
        if rose * 10 >= d0:
            cause = CAUSE_UNDERCHARGED
        elif deficit * 3 >= self.cell_mv * 2:
            cause = CAUSE_SHORTED_CELL
        else:
            cause = CAUSE_DRIED_OUT
        excl[low] = 1
        self.cause[low] = cause
        self.excluded_count += 1
        self.watch_since_s[k] = -1
        self.news.append((low, cause))

    def _watch_from(self, k: int, now_s: int, deficit: int) -> None:
        self.watch_since_s[k] = now_s
        self.watch_deficit_mv[k] = deficit
        self.watch_round_mv[k] = deficit
        self.watch_rounds[k] = 0
        self.watch_idle_s[k] = 0

    def forget(self, a: int, strings) -> None:
        """A replaced block: balancing may help it again."""
        if strings.excluded[a]:
            strings.excluded[a] = 0
            self.cause[a] = CAUSE_NONE
            self.excluded_count -= 1
