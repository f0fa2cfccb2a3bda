# Per-string equalising: target voltage, the equalising window, and suspension.
#
# After each measurement cycle, for every string:
#   sum voltage, average and spread of its modules;
#   target = string voltage / modules in the string (SPEC §3), to 10 uV: with whole
#   mV, a string of n blocks whose every other block sits on the target holds its one
#   low block up to (n - 1) * 0.5 mV below it (docs/balancing.md, "Resolution");
#   equalising runs only while it is enabled, no discharge is under way, every module
#   of the string answered, and the string is in float charge: its average block
#   voltage inside the equalising window (below it: discharge; above it: boost).
#   Otherwise the SET_TARGET broadcast carries EQUALISE clear and the modules stop
#   bleeding, and `reason` says why.
#
# Why the average and not every block: SPEC §3 words the window per module, but its
# own reference string floats blocks up to 1.8 V above the average; with a per-block
# window those blocks - the ones balancing exists for - would stop equalising for
# good.  The window's job is to tell float from discharge and boost, which move every
# block together; the string average shows that without being thrown by one high
# block.  Each module also limits itself to its own window (shared/variants.py).
#
# A block in its Ri capture counts in the target with its reading from before it (a
# *stand-in*), until it is back: the capture dips it by tens of mV for a minute or more,
# and the string's target, the average, would follow by 1/n of that.  The blocks that
# bleed follow the target, so the dip's whole complement went to the blocks that do not
# bleed: a leaky block the string holds up rose by the captured block's dip and its own
# module started to bleed against the 63 that held it (the band's C x 1 seed 3: 74 W
# over the cap, the block 29 mV low; docs/simulation.md, "The capture's complement").
# The stand-in ends once the capture is over and the reading is back within `back_uv`
# of it (not before STANDIN_MIN_S after the capture, unless the dip was seen), and
# STANDIN_MAX_S after the capture at the latest: the capture's dip, not all of its
# tail.  A block still down then counts as read, and for a block that does not bleed
# that is what brings it back: its capture's charge returns only with the string
# current, and the target following it down is what makes the others bleed for it.
# Held until it was back (up to 20 min; tried), such a block of the band's C x 1 seed
# 4 came back over 30 min, 5.3 mV of settled swing (docs/simulation.md).

from array import array

from manager_fw import poller as pl
from shared import protocol as p
from shared.compat import const

REASON_NONE = const(0)  # equalising
REASON_DISABLED = const(1)  # switched off in the configuration
REASON_DISCHARGE = const(2)  # the string is discharging
REASON_SILENT = const(3)  # a module of the string did not answer
REASON_LOW = const(4)  # string average below the window (discharge)
REASON_HIGH = const(5)  # string average above the window (boost charge)
REASON_NO_DATA = const(6)  # not every module has been read yet
REASON_CAPPED = const(7)  # the string bled its daily energy cap (balance.max_wh_day)
REASON_IMPLAUSIBLE = const(8)  # a module's data cannot be real (poller ST_IMPLAUSIBLE)

# which modules of a string were not read in a cycle (Strings._sum_string)
_UNREAD_NEVER = const(1)  # not polled yet
_UNREAD_SILENT = const(2)
_UNREAD_IMPLAUSIBLE = const(4)

# stand-ins for blocks in an Ri capture (see the module comment)
STANDINS = const(8)  # at most this many at once: captures 30-50 s apart, STANDIN_MAX_S
STANDIN_MIN_S = const(30)  # a reading lags its block (~15 s in the simulator's frames)
STANDIN_MAX_S = const(240)

REASON_TEXT = (
    "equalising",
    "equalising is switched off",
    "string is discharging",
    "a module of the string is not answering",
    "the string is below the equalising window (discharge?)",
    "the string is above the equalising window (boost charge?)",
    "waiting for the first readings",
    "paused: the string bled its daily energy cap (balance.max_wh_day)",
    "a module's data is implausible (see the warnings)",
)


class Strings:
    def __init__(
        self, ranges, window_low_mv, window_high_mv, equalise_enabled: bool = True,
        back_uv: int = 1200,
    ):  # fmt: skip
        """ranges: [(first, last), ...]; window per block in mV (same for all strings of
        one configuration: one block type per site); back_uv: the modules' deadband (a
        captured block within it of its stand-in is back; 1200: the 12 V variant's)."""
        self.ranges = ranges
        n = len(ranges)
        self.window_low_mv = window_low_mv
        self.window_high_mv = window_high_mv
        self.enabled = bytearray([1 if equalise_enabled else 0] * n)
        self.discharging = bytearray(n)
        self.sum_mv = array("l", [0] * n)
        self.avg_mv = array("l", [0] * n)
        self.min_mv = array("l", [0] * n)
        self.max_mv = array("l", [0] * n)
        self.spread_mv = array("l", [0] * n)
        self.target_mv = array("l", [0] * n)
        self.target_10uv = bytearray(n)  # the target's sub-mV part, 0..99
        self.sum_10uv = array("l", [0] * n)  # the modules' readings summed, 10 µV
        self.equalising = bytearray(n)
        self.reason = bytearray([REASON_NO_DATA] * n)
        self.answered = array("H", [0] * n)
        # per address: a block balancing cannot bring to target (manager_fw/balance_limits.py)
        # is left out of its string's target, so the others stop bleeding down to it
        self.excluded = bytearray(ranges[-1][1] + 1)
        # per string: equalising paused by the daily bleed-energy cap
        self.capped = bytearray(n)
        # per string: how far above the target the modules are told to hold their blocks
        # (uV; manager_fw/balance_limits.py, the hold budget).  0: equalise to the target.
        self.allow_uv = array("l", [0] * n)
        # per string: how far below the target the modules are told to bleed while a
        # block sits far below it (uV; balance_limits.py, the lift): 0 otherwise
        self.lift_uv = array("l", [0] * n)
        # stand-ins (start_standin): address (0: free), reading in 10 uV, since when (s;
        # -1 while the capture runs), whether the dip has shown
        self.back_uv = back_uv
        self._si_addr = array("H", [0] * STANDINS)
        self._si_10uv = array("l", [0] * STANDINS)
        self._si_s = array("l", [0] * STANDINS)
        self._si_dipped = bytearray(STANDINS)

    # -- stand-ins for blocks in their Ri capture ------------------------------------------

    def start_standin(self, poll: pl.Poller, a: int) -> None:
        """Module a's Ri capture begins: its last reading stands in for it in the target
        until it is back (see the module comment).  Nothing without a reading."""
        if poll.state[a] != pl.ST_OK:
            return
        free = -1
        for j in range(STANDINS):
            if self._si_addr[j] == a:
                free = j  # a capture again before it was back: from here
                break
            if free < 0 and not self._si_addr[j]:
                free = j
        if free < 0:
            return  # every slot busy: it counts as it reads (as before stand-ins)
        self._si_addr[free] = a
        self._si_10uv[free] = poll.voltage_uv[a] // 10
        self._si_s[free] = -1
        self._si_dipped[free] = 0

    def end_standin(self, a: int, now_s: int) -> None:
        """Module a's capture is over (a result or not): its stand-in ends once it is back."""
        for j in range(STANDINS):
            if self._si_addr[j] == a and self._si_s[j] < 0:
                self._si_s[j] = now_s

    def standins(self, poll: pl.Poller, now_s: int) -> None:
        """End the stand-ins of blocks that are back (once a cycle, before update)."""
        back = self.back_uv // 10
        for j in range(STANDINS):
            a = self._si_addr[j]
            if not a:
                continue
            since = self._si_s[j]
            q = poll.voltage_uv[a] // 10
            if poll.state[a] == pl.ST_OK and q < self._si_10uv[j] - back:
                self._si_dipped[j] = 1
            if since < 0:
                continue  # the capture runs
            age = now_s - since
            done = poll.state[a] == pl.ST_OK and q >= self._si_10uv[j] - back
            if done and not self._si_dipped[j] and age < STANDIN_MIN_S:
                done = False  # the reading has not shown the dip yet (its lag)
            if done or age < 0 or age >= STANDIN_MAX_S:
                self._si_addr[j] = 0

    def standing_in(self, a: int) -> bool:
        for j in range(STANDINS):
            if self._si_addr[j] == a:
                return True
        return False

    def update(self, poll: pl.Poller) -> None:
        """Recompute every string from the poller's arrays and set its SET_TARGET.
        The target leaves out the blocks marked in `excluded` (a block balancing cannot
        help: docs/judgement.md, "Balancing limits")."""
        for k in range(len(self.ranges)):
            reason = self._reason(k, self._sum_string(poll, k))
            self.reason[k] = reason
            self.equalising[k] = 1 if reason == REASON_NONE else 0
            flags = 0
            if reason == REASON_NONE:
                flags |= p.TARGET_EQUALISE
            if self.discharging[k]:
                flags |= p.TARGET_DISCHARGE
            poll.target_flags[k] = flags
            # the hold band's top, or the lift's bottom (balance_limits)
            t = self.target_uv(k) + self.allow_uv[k] - self.lift_uv[k]
            poll.target_uv[k] = t if t <= p.TARGET_MAX_UV else p.TARGET_MAX_UV
            if t < 0:
                poll.target_uv[k] = 0

    def _sum_string(self, poll: pl.Poller, k: int) -> int:
        """String k's sum, average, extremes and target from the modules read in this
        cycle; returns the _UNREAD_* bits of the modules that were not."""
        first, last = self.ranges[k]
        total = 0
        lo = 0x7FFFFFFF
        hi = 0
        answered = 0
        unread = 0
        kept = 0  # blocks in the target, and their sum
        kept_total = 0
        excluded = self.excluded
        for a in range(first, last + 1):
            st = poll.state[a]
            if st == pl.ST_OK:
                v = poll.voltage_mv[a]
                q = poll.voltage_uv[a] // 10  # what the module measured, 10 µV
                answered += 1
                total += q
                if not excluded[a]:
                    kept += 1
                    kept_total += q
                if v < lo:
                    lo = v
                if v > hi:
                    hi = v
            elif st == pl.ST_NOT_POLLED:
                unread |= _UNREAD_NEVER
            elif st == pl.ST_IMPLAUSIBLE:
                unread |= _UNREAD_IMPLAUSIBLE
            else:
                unread |= _UNREAD_SILENT
        self.answered[k] = answered
        for j in range(STANDINS):  # a block in its capture: its stand-in in the target
            a = self._si_addr[j]
            if first <= a <= last and poll.state[a] == pl.ST_OK and not excluded[a]:
                kept_total += self._si_10uv[j] - poll.voltage_uv[a] // 10
        if answered:
            self.sum_10uv[k] = total
            self.sum_mv[k] = (total + 50) // 100
            self.avg_mv[k] = (total + 50 * answered) // (100 * answered)
            self.min_mv[k] = lo
            self.max_mv[k] = hi
            self.spread_mv[k] = hi - lo
        # The target is the string voltage shared equally: only meaningful when every
        # block was read in this cycle.
        if answered == last - first + 1 and kept:
            q = (kept_total + kept // 2) // kept  # 10 µV: no rounding bias
            self.target_mv[k] = q // 100
            self.target_10uv[k] = q % 100
        return unread

    def _reason(self, k: int, unread: int) -> int:
        """Why string k does not equalise (REASON_NONE: it does), the first that holds."""
        if not self.enabled[k]:
            return REASON_DISABLED
        if self.discharging[k]:
            return REASON_DISCHARGE
        if self.capped[k]:
            return REASON_CAPPED
        if unread & _UNREAD_NEVER:
            return REASON_NO_DATA
        if unread & _UNREAD_SILENT:
            return REASON_SILENT
        if unread & _UNREAD_IMPLAUSIBLE:
            return REASON_IMPLAUSIBLE
        if self.answered[k]:
            avg = self.avg_mv[k]
            if avg < self.window_low_mv:
                return REASON_LOW
            if avg > self.window_high_mv:
                return REASON_HIGH
        return REASON_NONE

    def shown_voltage_mv(self, k: int) -> int:
        """SPEC §3 status view: target voltage when equalising, else the average."""
        return self.target_mv[k] if self.equalising[k] else self.avg_mv[k]

    def target_uv(self, k: int) -> int:
        """String k's target in uV (the SET_TARGET value, 10 uV resolution)."""
        return self.target_mv[k] * 1000 + self.target_10uv[k] * 10
