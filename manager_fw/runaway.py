# Thermal runaway detection in float charge (SPEC §3, IFC 608.3).
#
# In a constant-voltage string a block that heats draws more float current (its
# electrochemistry polarises less when warm), which heats it further.  The signs the
# manager can see: that block's temperature rising, and the string's float current
# rising (with a current sensor) or, without one, the *other* blocks' voltages rising
# (the charger holds the string voltage while the hot block's voltage sags).
#
# Every `sample_s` (10 min) each module's temperature and each string's current and
# voltages are sampled into a ring of one hour.  A module is a runaway suspect when, in
# float charge (no discharge, not boost), over the last hour
#   its temperature rose by >= rise_cc (default 3 °C), and
#   it is >= above_cc (default 5 °C) warmer than the string's median block, and
#   the string current rose by >= current_rise_pct % (with a sensor), or the average of
#   the other blocks rose by >= voltage_rise_mv per block (without one).
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
        voltage_strings=None,
    ) -> None:
        """voltage_strings: the strings (0-based) whose block voltages are sampled for
        the check without a current sensor; None = every string.  A string left out
        (it has a sensor) is judged by its current only, which saves SLOTS x 2 bytes per
        module (8.4 KB for 600 modules)."""
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
        self.vbase = array("i", b"\xff\xff\xff\xff" * n)  # string's first volt slot, -1
        size = 0
        for k in range(n):
            if voltage_strings is None or k in voltage_strings:
                self.vbase[k] = size
                size += SLOTS * (ranges[k][1] - ranges[k][0] + 1)
        self.volt = array("H", bytes(2 * size))
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
            vb = self.vbase[k]
            for a in range(first, last + 1):
                self.temp[a * SLOTS + h] = poll.temp_cc[a]
                if vb >= 0:
                    self.volt[vb + (a - first) * SLOTS + h] = poll.voltage_mv[a]
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
        if self.has_current[k]:
            c_now = self.current[k * SLOTS + now]
            c_old = self.current[k * SLOTS + old]
            electrical = c_now >= self.current_min_ma and c_now * 100 >= c_old * (
                100 + self.current_rise_pct
            )
        else:
            electrical = False  # decided per module below, from the other blocks
        for a in range(first, last + 1):
            t_now = self.temp[a * SLOTS + now]
            hot = (
                poll.state[a] == pl.ST_OK
                and t_now - self.temp[a * SLOTS + old] >= self.rise_cc
                and t_now - median >= self.above_cc
            )
            cond = False
            if hot:
                if self.has_current[k]:
                    cond = electrical
                elif n > 1 and self.vbase[k] >= 0:
                    vb = self.vbase[k]
                    rise = 0
                    for b in range(first, last + 1):
                        if b != a:
                            j = vb + (b - first) * SLOTS
                            rise += self.volt[j + now] - self.volt[j + old]
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
