# Charge phases per string: float, discharge, recharge, boost (SPEC §3a).
#
# The thresholds and the judgements follow the phase a string is in:
#
#   FLOAT      the charger holds the string at its float voltage: the float thresholds,
#              equalising, thermal-runaway judgement with every sign.
#   DISCHARGE  manager_fw/discharge.py says the string discharges (voltage drop, UPS
#              signal, current sensor): end-of-discharge low levels, no equalising.
#   RECHARGE   from the end of a discharge until the string is back in float: every
#              answering block at or above the float low-warning level (with its
#              hysteresis) and the string's average inside the equalising window.
#              Until then the blocks sit below their float levels by nature - a
#              current-limited charger first brings the string up at constant current,
#              and only then does the voltage reach the float band (IEEE 1188 §5 and
#              EN 50272-2 size a recharge in hours: 8-24 h to full charge at 0.1 C) - so
#              the low levels stay the end-of-discharge ones and the spread is not
#              judged.  The recharge ends when that has held for SETTLE_S: right
#              after the string reaches its float voltage the blocks still
#              redistribute (the charge current tapers; a block that fills first climbs
#              and, the charger holding the string's sum, pushes the others down for
#              minutes: a centre-tapped UPS's half did so 2.5 min after its first
#              good cycle).  A recharge that takes longer than `recharge_max_s` is slow: the
#              float levels return and one EV_RECHARGE_SLOW event names the lowest block
#              (a block that does not take charge: a shorted cell, a sulphated block, a
#              charger short of current).
#   BOOST      the string's average above the equalising window (boost or equalising
#              charge): no equalising (manager_fw/strings.py), current and voltage steps
#              are the charger's, not a block's.
#
# The phase is computed per cycle from what the core already has; `changed` lists the
# strings whose phase changed in the last update and `slow_now` those whose recharge
# became slow, so that the core logs one event each.

from array import array

from shared.compat import const

PH_FLOAT = const(0)
PH_DISCHARGE = const(1)
PH_RECHARGE = const(2)
PH_BOOST = const(3)
PHASE_NAMES = ("float", "discharge", "recharge", "boost")

RECHARGE_MAX_S_DEFAULT = const(43200)  # 12 h: the SPEC's post-discharge watch
SETTLE_S = const(1800)  # the recharge's end condition holds this long before float


class ChargePhases:
    def __init__(self, string_count: int, recharge_max_s: int = RECHARGE_MAX_S_DEFAULT):
        if recharge_max_s <= 0:
            raise ValueError("recharge_max_s must be > 0 s (got %d)" % recharge_max_s)
        n = string_count
        self.recharge_max_s = recharge_max_s
        self.phase = bytearray(n)
        self.since_s = array("l", [-1] * n)  # when the phase began (-1: not yet known)
        self.slow = bytearray(n)  # the recharge passed recharge_max_s: float levels back
        self.changed: list = []  # (string) whose phase changed in the last update
        self.slow_now: list = []  # strings whose recharge became slow in the last update
        self.previous = bytearray(n)  # phase before the last change, for the event
        self.back_s = array("l", [-1] * n)  # recharge: since when the end condition holds

    def update(
        self,
        now_s: int,
        k: int,
        discharging: bool,
        have_data: bool,
        avg_mv: int,
        window_low_mv: int,
        window_high_mv: int,
        lowest_ok: bool,
    ) -> None:
        """One string, once per cycle.  lowest_ok: every answering block of the string
        is at or above the float low-warning level plus its hysteresis."""
        ph = self.phase[k]
        new = ph
        if discharging:
            new = PH_DISCHARGE
        elif ph == PH_DISCHARGE:
            new = PH_RECHARGE
        elif not have_data:
            new = ph
        elif ph == PH_RECHARGE:
            if not (lowest_ok and avg_mv >= window_low_mv):
                self.back_s[k] = -1
            elif self.back_s[k] < 0:
                self.back_s[k] = now_s
            if self.back_s[k] >= 0 and now_s - self.back_s[k] >= SETTLE_S:
                new = PH_BOOST if avg_mv > window_high_mv else PH_FLOAT
            elif not self.slow[k] and now_s - self.since_s[k] >= self.recharge_max_s:
                self.slow[k] = 1
                self.slow_now.append(k)
        elif avg_mv > window_high_mv:
            new = PH_BOOST
        else:
            new = PH_FLOAT
        if new != ph or self.since_s[k] < 0:
            if new != ph:
                self.previous[k] = ph
                self.changed.append(k)
            self.phase[k] = new
            self.since_s[k] = now_s
            self.slow[k] = 0
            self.back_s[k] = -1

    def begin_update(self) -> None:
        """Before the strings' updates of one cycle: forget the last cycle's news."""
        if self.changed:  # a slice object is an allocation: only when there is something
            del self.changed[:]
        if self.slow_now:
            del self.slow_now[:]

    def relaxed(self, k: int) -> bool:
        """The end-of-discharge low levels apply (and the spread is held): during a
        discharge, and during a recharge that is not yet slow."""
        ph = self.phase[k]
        return ph == PH_DISCHARGE or (ph == PH_RECHARGE and not self.slow[k])

    def name(self, k: int) -> str:
        return PHASE_NAMES[self.phase[k]]

    def in_phase_s(self, k: int, now_s: int) -> int:
        s = self.since_s[k]
        return 0 if s < 0 else now_s - s
