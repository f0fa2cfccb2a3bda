# Discharge detection per string from three sources (SPEC §3), the discharge counter,
# the deepest point of each discharge, and the history interval that follows from it.
#
#   voltage drop  the string's average block voltage below `drop_mv` for `confirm`
#                 consecutive cycles (slow: a few measurement cycles; works everywhere)
#   UPS input     a digital "on battery" signal from the UPS (fast: next input read)
#   current       the string current sensor reads a discharge current beyond
#                 `current_ma` (fast: next sensor read)
# The discharge ends when every source has been clear for `end_s`.  After the mains
# return, the blocks stay below `drop_mv` while they recharge: a low voltage counts as
# a discharge only while no sensor shows charging current and the string average has
# not risen RECHARGE_RISE_MV above its lowest point of the discharge.  The deepest point
# is the cycle with the lowest string voltage: the voltage of every block at that
# moment shows which blocks collapsed early.

from array import array

from shared.compat import const

SRC_VOLTAGE = const(1)
SRC_UPS = const(2)
SRC_CURRENT = const(4)

HISTORY_FLOAT_S = const(1200)  # a record every 20 min in float charge
HISTORY_DISCHARGE_S = const(10)  # during a discharge
HISTORY_AFTER_S = const(60)  # for `after_s` after one (thermal runaway risk: 3-12 h)
RECHARGE_RISE_MV = const(100)  # per block above the discharge's lowest average


class Discharge:
    def __init__(
        self,
        ranges,
        drop_mv: int,
        current_ma: int = 1000,
        confirm: int = 2,
        end_s: int = 60,
        after_s: int = 12 * 3600,
    ) -> None:
        self.ranges = ranges
        n = len(ranges)
        n_max = ranges[-1][1]
        self.drop_mv = drop_mv
        self.current_ma = current_ma
        self.confirm = confirm
        self.end_s = end_s
        self.after_s = after_s
        self.active = bytearray(n)
        self.sources = bytearray(n)  # sources seen during the current/last discharge
        self.live = bytearray(n)  # sources asserting right now
        self._low_cycles = bytearray(n)
        self.clear_since_s = array("l", [-1] * n)
        self.started_s = array("l", [-1] * n)
        self.ended_s = array("l", [-1] * n)
        self.count = array("H", [0] * n)
        self.min_sum_mv = array("l", [0] * n)
        self.min_at_s = array("l", [-1] * n)
        self.deepest_mv = array("H", bytes(2 * (n_max + 1)))  # per module, last discharge
        self.charge_mah = array("l", [0] * n)  # removed during the discharge (sensor)
        self.charging = bytearray(n)  # the sensor shows charging current now
        self.min_avg_mv = array("l", [0x3FFFFFFF] * n)
        # after a recharge began: the average it began from (0: none); the voltage
        # source stays quiet until the string floats again or falls well below this
        self.recharge_from_mv = array("l", [0] * n)
        self._last_current_s = array("l", [-1] * n)
        self.started: list = []  # strings whose discharge began in the last update
        self.ended: list = []

    # -- inputs --------------------------------------------------------------------

    def voltage(self, k: int, avg_mv: int, complete: bool) -> None:
        """Per cycle: the string's average block voltage (complete = all answered)."""
        if not complete:
            return
        if self.active[k] and avg_mv < self.min_avg_mv[k]:
            self.min_avg_mv[k] = avg_mv
        recharging = self.charging[k] or (
            self.active[k] and avg_mv >= self.min_avg_mv[k] + RECHARGE_RISE_MV
        )
        if recharging and not self.recharge_from_mv[k]:
            self.recharge_from_mv[k] = self.min_avg_mv[k] if self.active[k] else avg_mv
        latch = self.recharge_from_mv[k]
        if latch:
            if avg_mv >= self.drop_mv:
                self.recharge_from_mv[k] = 0  # floating again
            elif avg_mv < latch - RECHARGE_RISE_MV:
                self.recharge_from_mv[k] = 0  # falling again: a new discharge
            else:
                recharging = True
        if avg_mv < self.drop_mv and not recharging:
            if self._low_cycles[k] < 255:
                self._low_cycles[k] += 1
        else:
            self._low_cycles[k] = 0
        self._set(k, SRC_VOLTAGE, self._low_cycles[k] >= self.confirm)

    def ups_input(self, k: int, on_battery: bool) -> None:
        self._set(k, SRC_UPS, on_battery)

    def current(self, k: int, current_ma: int, now_s: int) -> None:
        """String current: positive charging, negative discharging."""
        self._set(k, SRC_CURRENT, current_ma <= -self.current_ma)
        self.charging[k] = 1 if current_ma >= self.current_ma // 2 else 0
        last = self._last_current_s[k]
        if self.active[k] and last >= 0 and current_ma < 0:
            self.charge_mah[k] += (-current_ma) * (now_s - last) // 3600
        self._last_current_s[k] = now_s

    def _set(self, k: int, src: int, on: bool) -> None:
        if on:
            self.live[k] |= src
        else:
            self.live[k] &= ~src

    # -- per cycle -----------------------------------------------------------------

    def update(self, now_s: int, poll_voltage_mv, sums_mv) -> None:
        """Start/end discharges; track the deepest point.  sums_mv[k] = string voltage."""
        if self.started:  # a slice object is an allocation: only when there is something
            del self.started[:]
        if self.ended:  # a slice object is an allocation: only when there is something
            del self.ended[:]
        for k in range(len(self.ranges)):
            live = self.live[k]
            if not self.active[k]:
                if live:
                    self.active[k] = 1
                    self.sources[k] = live
                    self.count[k] += 1
                    self.started_s[k] = now_s
                    self.clear_since_s[k] = -1
                    self.min_sum_mv[k] = 0x3FFFFFFF
                    self.min_avg_mv[k] = 0x3FFFFFFF
                    self.charge_mah[k] = 0
                    self.started.append(k)
                continue
            self.sources[k] |= live
            if sums_mv[k] and sums_mv[k] < self.min_sum_mv[k]:
                self.min_sum_mv[k] = sums_mv[k]
                self.min_at_s[k] = now_s
                first, last = self.ranges[k]
                for a in range(first, last + 1):
                    self.deepest_mv[a] = poll_voltage_mv[a]
            if live:
                self.clear_since_s[k] = -1
            elif self.clear_since_s[k] < 0:
                self.clear_since_s[k] = now_s
            elif now_s - self.clear_since_s[k] >= self.end_s:
                self.active[k] = 0
                self.ended_s[k] = now_s
                self._low_cycles[k] = 0
                self.ended.append(k)

    def any_active(self) -> bool:
        for k in range(len(self.ranges)):
            if self.active[k]:
                return True
        return False

    def history_interval_s(self, now_s: int) -> int:
        if self.any_active():
            return HISTORY_DISCHARGE_S
        for k in range(len(self.ranges)):
            if self.ended_s[k] >= 0 and now_s - self.ended_s[k] < self.after_s:
                return HISTORY_AFTER_S
        return HISTORY_FLOAT_S
