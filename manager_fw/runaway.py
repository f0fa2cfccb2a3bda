# Thermal runaway detection in float charge (SPEC §3, IFC 608.3).
#
# In a constant-voltage string a block that heats draws more float current (its
# electrochemistry polarises less when warm), which heats it further.  The signs the
# manager can see: that block's temperature rising, and either the string's float
# current rising (a whole string running away: e.g. boost in a hot room without
# temperature compensation), or the *other* blocks' voltages rising while the hot one
# sags (a single block running away: in a series string the current is shared, so it
# stays nearly flat, and the charger holding the string voltage pushes the others up).
# Both are checked whether or not a current sensor is fitted (docs/simulation.md).
#
# Every `sample_s` (10 min) each module's temperature and each string's current and
# voltages are sampled into a ring of one hour.  A module is a runaway suspect when, in
# float charge (no discharge, not boost), over the last hour
#   its temperature rose by >= rise_cc (default 3 °C), and
#   it is >= above_cc (default 5 °C) warmer than the string's median block, and
#   the string current rose by >= current_rise_pct % (needs a sensor), or the other
#   blocks rose by >= voltage_rise_mv each on average.
# Two consecutive suspect samples trip: latch, alarm, and the breaker relay opens the
# string through the relay/IO box.  The latch holds until an operator resets it.

from array import array

from manager_fw import poller as pl

SLOTS = 7  # one hour of 10-min samples, both ends included


class Runaway:
    def __init__(
        self,
        ranges,
        sample_s: int = 600,
        rise_cc: int = 300,
        above_cc: int = 500,
        current_rise_pct: int = 50,
        current_min_ma: int = 100,
        voltage_rise_mv: int = 20,
        confirm: int = 2,
    ) -> None:
        self.ranges = ranges
        n = len(ranges)
        n_max = ranges[-1][1]
        self.sample_s = sample_s
        self.rise_cc = rise_cc
        self.above_cc = above_cc
        self.current_rise_pct = current_rise_pct
        self.current_min_ma = current_min_ma
        self.voltage_rise_mv = voltage_rise_mv
        self.confirm = confirm
        # built from bytes: no temporary list of SLOTS * n_max ints on the heap
        self.temp = array("h", bytes(2 * SLOTS * (n_max + 1)))
        self.volt = array("H", bytes(2 * SLOTS * (n_max + 1)))
        self.current = array("l", [0] * (SLOTS * n))
        self.has_current = bytearray(n)
        self.samples = 0
        self.head = 0
        self.next_s = -1
        self.suspect = bytearray(n_max + 1)
        self.tripped = bytearray(n)  # latched per string
        self.tripped_module = array("H", [0] * n)
        self.tripped_at_s = array("l", [-1] * n)
        self.newly_tripped: list = []

    def update(self, now_s: int, poll: pl.Poller, string_current_ma, in_float) -> None:
        """Call every cycle; samples every sample_s.  string_current_ma[k] is None when
        string k has no sensor; in_float[k] true while the string floats."""
        if self.newly_tripped:  # a slice object is an allocation: only when there is something
            del self.newly_tripped[:]
        if self.next_s >= 0 and now_s < self.next_s:
            return
        self.next_s = now_s + self.sample_s
        h = self.head
        for k in range(len(self.ranges)):
            first, last = self.ranges[k]
            for a in range(first, last + 1):
                self.temp[a * SLOTS + h] = poll.temp_cc[a]
                self.volt[a * SLOTS + h] = poll.voltage_mv[a]
            cur = string_current_ma[k]
            self.has_current[k] = 0 if cur is None else 1
            self.current[k * SLOTS + h] = 0 if cur is None else cur
        self.samples += 1
        old = (h + 1) % SLOTS  # the sample one hour ago (after the ring is full)
        self.head = old
        if self.samples < SLOTS:
            return
        for k in range(len(self.ranges)):
            if not in_float[k] or self.tripped[k]:
                continue
            self._evaluate(k, h, old, poll, now_s)

    def _evaluate(self, k: int, now: int, old: int, poll: pl.Poller, now_s: int) -> None:
        first, last = self.ranges[k]
        n = last - first + 1
        temps = sorted(self.temp[a * SLOTS + now] for a in range(first, last + 1))
        median = temps[n // 2]
        current_rising = False
        if self.has_current[k]:
            c_now = self.current[k * SLOTS + now]
            c_old = self.current[k * SLOTS + old]
            current_rising = c_now >= self.current_min_ma and c_now * 100 >= c_old * (
                100 + self.current_rise_pct
            )
        for a in range(first, last + 1):
            t_now = self.temp[a * SLOTS + now]
            hot = (
                poll.state[a] == pl.ST_OK
                and t_now - self.temp[a * SLOTS + old] >= self.rise_cc
                and t_now - median >= self.above_cc
            )
            cond = False
            if hot:
                cond = current_rising
                if not cond and n > 1:
                    rise = 0
                    for b in range(first, last + 1):
                        if b != a:
                            rise += self.volt[b * SLOTS + now] - self.volt[b * SLOTS + old]
                    cond = rise >= self.voltage_rise_mv * (n - 1)
            if cond:
                self.suspect[a] += 1
                if self.suspect[a] >= self.confirm:
                    self.tripped[k] = 1
                    self.tripped_module[k] = a
                    self.tripped_at_s[k] = now_s
                    self.newly_tripped.append(k)
                    return
            else:
                self.suspect[a] = 0

    def reset(self, k: int) -> None:
        """Operator reset after the string was inspected."""
        self.tripped[k] = 0
        self.tripped_module[k] = 0
        self.tripped_at_s[k] = -1
        first, last = self.ranges[k]
        for a in range(first, last + 1):
            self.suspect[a] = 0
