# Thermal runaway per block (SPEC §3, §3a; IFC 608.3; docs/judgement.md explains the
# logic and its sources).
#
# What precedes a runaway of one block in a series string on a constant-voltage
# charger: the block gets warmer than its neighbours and keeps getting warmer (a soft
# short or dry-out turns charger power into heat in that block), its voltage sags
# against its neighbours (the hot block polarises less; the charger holds the string
# voltage, so the others rise a little), and the float current rises.  A hot room, a
# daily swing of the room or the charger's boost move every block together; a rack
# gradient is steady; none of them makes one block warm *and warming* relative to the
# string.  So every `sample_s` (10 min) the detector keeps, per block, over one window
# of SLOTS - 1 samples (1 h):
#
#   excess   its temperature minus the median of the string's probed blocks (common
#            mode removed: room, swing, boost, recharge heat)
#   rate     how much the excess grew over the window, per hour
#   ref      its usual excess, learned slowly while it is calm (a rack gradient: the
#            block at the top of the rack is always 2 K warmer), at most above_cc / 2
#   dev      its voltage minus the string's median voltage (mV)
#
# and per string the current (if a sensor is fitted) and the charge phase
# (manager_fw/phases.py).  A block is *hot* when excess - ref >= above_cc (5 K) and
# rate >= rise_cc per hour (3 K/h).  A hot block is a runaway *suspect* (one
# EV_THERMAL_RUNAWAY RUNAWAY_SUSPECT event: a warning) and trips when, on `confirm` consecutive
# samples, it is hot and
#   its voltage sagged against the median by >= sag_mv over the window (float or
#     boost held the whole window, the block did not bleed in it: balancing pulls a high
#     block down, that is not a sag), or
#   the string current rose by >= current_rise_pct % and >= current_min_ma (a sensor;
#     the phase held the whole window: a boost step or the end of a discharge is the
#     charger's, not the block's; during a recharge the current must fall), or
#   it is alone_above_cc (15 K) above the median and still rising: a block that hot
#     and climbing is dangerous whatever its cause (backstop when the electrical signs
#     are too small to see, e.g. a block already low and bleeding nothing).
# The trip latches: alarm, and the breaker relay opens the string through the
# relay/IO box, until an operator resets it.
#
# A module without a battery probe reports its board's temperature (MEAS flag PROBE
# clear): a bleeding board heats its die by 30-40 K.  Such a block gives no temperature
# evidence - it is not hot, and it is not part of the median.  A string with fewer than
# MIN_PROBED probed blocks has no meaningful median: no temperature evidence at all,
# `probed[k]` says how many blocks are judged (status and docs/manager.md say so).
# No evaluation during a discharge (the blocks heat by their discharge current).
#
# A probe that falls off its block reads the air: a warm block's reading drops at once,
# faster than a block can cool (a 40 Ah monobloc of 14 kg sheds ~1 K/h at 5 K over the
# room; its time constant is hours).  A probed block whose excess falls by PROBE_DROP_CC
# or more from one sample to the next is named once per run (`newly_probe_off`): its
# temperature no longer shows a runaway, and nothing else would say so.

from array import array

from manager_fw import phases as ph
from manager_fw import poller as pl
from shared import protocol as p
from shared.compat import const

SLOTS = const(7)  # one window of 6 samples (1 h at 10 min), both ends included
NONE = const(-32768)  # ring slot without a value (silent, no probe)
MIN_PROBED = const(3)  # probed blocks needed for a string median
REF_SHIFT = const(5)  # the reference follows 1/32 of the excess per calm sample
ARG_TRIP = const(0)
ARG_RESET = const(1)
ARG_SUSPECT = const(2)
PROBE_DROP_CC = const(300)  # excess fall in one sample no block can make (3 K in 10 min)


def median_in_place(buf, count: int) -> int:
    """The median (upper of the two middle values) of buf[0:count], reordering buf;
    quickselect without allocation.  count >= 1."""
    k = count // 2
    lo = 0
    hi = count - 1
    while lo < hi:
        pivot = buf[(lo + hi) // 2]
        i = lo
        j = hi
        while i <= j:
            while buf[i] < pivot:
                i += 1
            while buf[j] > pivot:
                j -= 1
            if i <= j:
                t = buf[i]
                buf[i] = buf[j]
                buf[j] = t
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return buf[k]


class Runaway:
    def __init__(
        self,
        ranges,
        sample_s: int = 600,
        rise_cc: int = 300,
        above_cc: int = 500,
        current_rise_pct: int = 50,
        current_min_ma: int = 100,
        sag_mv: int = 30,
        confirm: int = 2,
        alone_above_cc: int = 1500,
    ) -> None:
        self.ranges = ranges
        n = len(ranges)
        n_max = ranges[-1][1]
        biggest = 1
        for first, last in ranges:
            if last - first + 1 > biggest:
                biggest = last - first + 1
        self.sample_s = sample_s
        self.rise_cc = rise_cc
        self.above_cc = above_cc
        self.current_rise_pct = current_rise_pct
        self.current_min_ma = current_min_ma
        self.sag_mv = sag_mv
        self.confirm = confirm
        self.alone_above_cc = alone_above_cc
        # rings per block, built from bytes: no temporary list of SLOTS * n_max ints
        self.excess = array("h", b"\x00\x80" * (SLOTS * (n_max + 1)))  # c°C over median
        self.dev = array("h", b"\x00\x80" * (SLOTS * (n_max + 1)))  # mV over median
        self.ref = array("h", b"\x00\x80" * (n_max + 1))  # usual excess, c°C
        self.quiet = bytearray(n_max + 1)  # consecutive samples without bleeding
        self.current = array("l", [0] * (SLOTS * n))
        self.has_current = bytearray(n)
        self.steady = bytearray(n)  # consecutive samples in the same charge phase
        self.last_phase = bytearray(b"\xff" * n)
        self.probed = array("H", [0] * n)  # blocks with a battery probe, last sample
        self.median_cc = array("h", [0] * n)
        self._buf = array("h", bytes(2 * biggest))  # median scratch
        self.samples = 0
        self.head = 0
        self.next_s = -1
        self.suspect = bytearray(n_max + 1)  # consecutive samples with a trip condition
        self.warned = bytearray(n_max + 1)  # suspect event sent for this episode
        self.tripped = bytearray(n)  # latched per string
        self.tripped_module = array("H", [0] * n)
        self.tripped_at_s = array("l", [-1] * n)
        self.tripped_rise_mc = array("l", [0] * n)  # rise of the excess over the window
        self.newly_tripped: list = []
        self.newly_suspect: list = []  # addresses that became suspects
        self.probe_off = bytearray(n_max + 1)  # its reading fell off its block (latched)
        self.probe_drop_cc = array("h", [0] * (n_max + 1))  # by how much
        self.newly_probe_off: list = []  # addresses whose probe fell off this sample

    def latest_excess_cc(self, a: int) -> int:
        """Block a's temperature over its string's median at the last sample (c°C;
        NONE without a probe)."""
        return self.excess[a * SLOTS + (self.head + SLOTS - 1) % SLOTS]

    def per_hour(self, delta: int) -> int:
        """A change over the window, scaled to one hour."""
        return delta * 3600 // ((SLOTS - 1) * self.sample_s)

    def update(self, now_s: int, poll: pl.Poller, string_current_ma, phase) -> None:
        """Call every cycle; samples every sample_s.  string_current_ma[k] is None when
        string k has no sensor; phase[k] is string k's charge phase (phases.PH_*)."""
        if self.newly_tripped:  # a slice object is an allocation: only when there is something
            del self.newly_tripped[:]
        if self.newly_suspect:
            del self.newly_suspect[:]
        if self.newly_probe_off:
            del self.newly_probe_off[:]
        if self.next_s >= 0 and now_s < self.next_s:
            return
        self.next_s = now_s + self.sample_s
        h = self.head
        old = (h + 1) % SLOTS  # the sample one window ago (once the ring is full)
        self.samples += 1
        self.head = old
        for k in range(len(self.ranges)):
            self._sample(k, h, poll, string_current_ma[k], phase[k])
        if self.samples < SLOTS:
            return
        for k in range(len(self.ranges)):
            if phase[k] == ph.PH_DISCHARGE or self.tripped[k]:
                continue
            self._evaluate(k, h, old, poll, now_s, phase[k])

    def _sample(self, k: int, h: int, poll: pl.Poller, cur, phase: int) -> None:
        first, last = self.ranges[k]
        buf = self._buf
        # temperature median over the blocks with a probe, voltage median over all
        n = 0
        for a in range(first, last + 1):
            if poll.state[a] == pl.ST_OK and poll.flags[a] & p.FLAG_PROBE:
                buf[n] = poll.temp_cc[a]
                n += 1
        self.probed[k] = n
        t_med = median_in_place(buf, n) if n >= MIN_PROBED else NONE
        self.median_cc[k] = 0 if t_med == NONE else t_med
        n = 0
        for a in range(first, last + 1):
            if poll.state[a] == pl.ST_OK:
                v = poll.voltage_mv[a]
                buf[n] = v if v < 32767 else 32767
                n += 1
        v_med = median_in_place(buf, n) if n else NONE
        prev = (h + SLOTS - 1) % SLOTS
        for a in range(first, last + 1):
            i = a * SLOTS + h
            ok = poll.state[a] == pl.ST_OK
            if ok and t_med != NONE and poll.flags[a] & p.FLAG_PROBE:
                e = poll.temp_cc[a] - t_med
                self.excess[i] = e
                e_prev = self.excess[a * SLOTS + prev]
                if e_prev != NONE and e_prev - e >= PROBE_DROP_CC and not self.probe_off[a]:
                    self.probe_off[a] = 1
                    self.probe_drop_cc[a] = e_prev - e
                    self.newly_probe_off.append(a)
            else:
                self.excess[i] = NONE
            if ok and v_med != NONE:
                v = poll.voltage_mv[a]
                self.dev[i] = (v if v < 32767 else 32767) - v_med
            else:
                self.dev[i] = NONE
            q = self.quiet[a]
            if ok and poll.balance_pct[a]:
                self.quiet[a] = 0
            elif q < 255:
                self.quiet[a] = q + 1
        self.has_current[k] = 0 if cur is None else 1
        self.current[k * SLOTS + h] = 0 if cur is None else cur
        if phase == self.last_phase[k]:
            if self.steady[k] < 255:
                self.steady[k] += 1
        else:
            self.last_phase[k] = phase
            self.steady[k] = 1

    def _evaluate(self, k: int, now: int, old: int, poll: pl.Poller, now_s: int, phase) -> None:
        first, last = self.ranges[k]
        steady = self.steady[k] >= SLOTS
        current_rising = False
        if self.has_current[k] and steady and phase != ph.PH_DISCHARGE:
            c_now = self.current[k * SLOTS + now]
            c_old = self.current[k * SLOTS + old]
            current_rising = (
                c_now >= self.current_min_ma
                and c_now - c_old >= self.current_min_ma
                and c_now * 100 >= c_old * (100 + self.current_rise_pct)
            )
        sag_valid = steady and (phase == ph.PH_FLOAT or phase == ph.PH_BOOST)
        for a in range(first, last + 1):
            e_now = self.excess[a * SLOTS + now]
            e_old = self.excess[a * SLOTS + old]
            if e_now == NONE:
                self.suspect[a] = 0
                continue
            ref = self.ref[a]
            if ref == NONE:
                ref = e_now
            rate = NONE if e_old == NONE else self.per_hour(e_now - e_old)
            hot = rate != NONE and rate >= self.rise_cc and e_now - ref >= self.above_cc
            if not hot and (rate == NONE or rate < self.rise_cc // 2) and phase == ph.PH_FLOAT:
                ref += (e_now - ref) >> REF_SHIFT  # calm: learn the block's usual excess
            if ref > self.above_cc // 2:
                ref = self.above_cc // 2
            self.ref[a] = ref
            if not hot:
                self.suspect[a] = 0
                self.warned[a] = 0
                continue
            if not self.warned[a]:
                self.warned[a] = 1
                self.newly_suspect.append(a)
            cond = current_rising or (e_now >= self.alone_above_cc)
            if not cond and sag_valid and self.quiet[a] >= SLOTS:
                d_now = self.dev[a * SLOTS + now]
                d_old = self.dev[a * SLOTS + old]
                cond = d_now != NONE and d_old != NONE and d_old - d_now >= self.sag_mv
            if cond:
                self.suspect[a] += 1
                if self.suspect[a] >= self.confirm:
                    self.tripped[k] = 1
                    self.tripped_module[k] = a
                    self.tripped_at_s[k] = now_s
                    self.tripped_rise_mc[k] = (e_now - e_old) * 10
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
            self.warned[a] = 0
