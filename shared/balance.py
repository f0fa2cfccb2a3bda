# Balancing (equalising) controller of the module: drives the bleed PWM duty so
# that the block does not float above the target voltage the manager broadcasts.
#
# Passive balancing can only pull a block down, so the controller's output is
# 0..DUTY_MAX (per mille of the bleed resistor's full current).  Law: PI on the
# error above target, with
#   * a deadband: bleeding starts only above target + deadband; once started, P and
#     I act on the true error until the integral has unwound a deadband below target,
#   * clamping anti-windup (the integral never exceeds what the output can use),
#   * a slew limit on the duty (smooth load on the block and the board),
#   * thermal derating on the board (internal) sensor: full duty up to
#     limit - margin - band, linearly down to zero at limit - margin,
#   * a cap for the bleed resistor's body, which the die sensor does not see: its
#     steady rise over the board at a duty is V^2/R_bleed x duty x Rth_body, kept
#     below the body limit minus BODY_MARGIN_MC,
# While the module's own Ri capture loads its block (the core holds the bleed at 0 for
# it, and the excitation dips the block by tens of mV for a minute or more), the
# integral is held: from hold() at the capture's start it keeps its value (P acts as
# ever, so the bleed eases while the block is down) until the voltage has dipped and is
# back within a deadband of where it was (HOLD_MIN_MS after the capture if no
# dip shows), or it has stopped coming back (not higher than HOLD_PROGRESS_MS before),
# HOLD_MAX_MS at the latest.  Unheld, the dip unwound the integral, the
# duty fell to 0 for ~20 s after every capture and the block came back 3-5 mV above
# where it had been held (docs/balancing.md, "Ri captures").  A hold only leaves out
# the integral's unwinding: the stops, the derating, the body cap and the slew act as
# ever, and the duty is never above what P and the integral before the capture ask.
# and it stops (duty 0, integral cleared, reason flag set) when
#   * balancing is disabled, or no valid target has arrived within the timeout,
#   * the manager or the core reports a discharge,
#   * the voltage is outside the equalising window or below the variant's minimum,
#   * the board is at its stop temperature or the battery probe is hot,
#   * there is no valid voltage or board temperature measurement.
# A stop always takes effect in the same update (no slew on the way to zero).
#
# Units: uV, m°C, ms, duty in per mille.  Allocation-free per update.
from shared import frontend as fe
from shared.compat import const, ticks_diff

DUTY_MAX = const(1000)

# Reasons the controller is not bleeding (bit flags, for the module's status word).
BAL_DISABLED = const(0x001)
BAL_NO_TARGET = const(0x002)  # none received yet, or stale (older than the timeout)
BAL_DISCHARGE = const(0x004)
BAL_OUTSIDE_WINDOW = const(0x008)
BAL_UNDERVOLTAGE = const(0x010)
BAL_BOARD_HOT = const(0x020)
BAL_BATTERY_HOT = const(0x040)
BAL_NO_MEASUREMENT = const(0x080)
BAL_INHIBIT_MASK = const(0x0FF)
# Not an inhibit: the duty is being limited by thermal derating.
BAL_DERATED = const(0x100)

# The internal sensor may read up to ~2 K low after calibration; the duty reaches
# zero this far below the board limit so the true temperature stays under it.
BOARD_MARGIN_MC = const(3000)
# Derating from full duty to zero over the last 4 K below that: a hard-bleeding board
# settles ~4 K under its stop temperature (a 10 K band held the reference string's
# highest block at 70 % duty for its whole descent; docs/balancing.md, "Tuning").
# Loop gain 250 per mille/K x at most ~0.05 K per per mille (22 K/W, 2.3 W at full duty
# if all of the bleed heated the board; with the resistor off the board, its 10-30 %
# share: ~0.01 K) ~ 3-12 against the board's ~10 min thermal time constant: no swing.
DERATE_BAND_MC = const(4000)
# The body estimate is steady state (the body's ~1 min lag only makes it pessimistic
# on the way up) from a sensor that may read 2 K low: 10 K margin.
BODY_MARGIN_MC = const(10000)
BATTERY_HYSTERESIS_MC = const(2000)
MAX_STEP_MS = const(10000)  # longer gaps between updates count as this
# A hold (an Ri capture of the module's own) ends when the voltage is back within
# the deadband of where it was; or when it has stopped coming back: from HOLD_MIN_MS
# after the capture, every HOLD_PROGRESS_MS it must be higher than HOLD_PROGRESS_MS
# before; or this long after the capture at the latest.  The dip of a 40 Ah block is
# back within the deadband in ~45 s at the nominal interface capacitance, in ~6 min at
# 10 times it (docs/simulation.md, "The capture's complement"); a fixed 4 min ended
# holds there 2 mV short, the integral unwound, the module let go and the block came
# back a deadband above the target before it bled again.
HOLD_PROGRESS_MS = const(60000)
HOLD_MAX_MS = const(1200000)
# ... but not before the voltage has been seen below that, or this long after the
# capture's end: a reading lags the block (its filter, a converter's conversion time;
# ~15 s in the simulator's 5 s frames), and a small dip may never show
HOLD_MIN_MS = const(30000)


class BalanceController:
    """One module's balancing controller; see the module comment for the law."""

    def __init__(self, variant):
        self.deadband_uv = variant.deadband_uv
        self.prop_band_uv = variant.prop_band_uv
        self.integral_ms = variant.integral_ms
        self.slew_permille_per_s = variant.slew_permille_per_s
        self.target_timeout_ms = variant.target_timeout_ms
        self.min_voltage_uv = variant.min_voltage_uv
        self.window_min_uv = variant.eq_min_uv
        self.window_max_uv = variant.eq_max_uv
        self.board_stop_mc = variant.board_temp_limit_mc - BOARD_MARGIN_MC
        self.battery_limit_mc = variant.battery_temp_limit_mc
        front = fe.frontend(variant.id)
        self.bleed_mohm = front.bleed_mohm
        self.body_rth_mk_per_w = front.bleed_body_rth_mk_per_w
        self.body_stop_mc = front.bleed_body_limit_mc - BODY_MARGIN_MC
        self.enabled = True
        self.discharge = False
        self.target_uv = 0
        self._target_ms = 0
        self._target_valid = False
        self._last_ms = 0
        self._started = False
        self._integral = 0  # duty * ms (divide by integral_ms for duty)
        self._engaged = False  # bleeding started (deadband passed), see the law
        self._slew_credit = 0  # per mille * ms not yet turned into a duty step
        self._battery_hot = False
        self._hold_uv = -1  # held (an Ri capture): until the voltage is back here ...
        self._hold_ms = 0  # ... or HOLD_MAX_MS after this (the capture's end)
        self._hold_capturing = False  # the capture is still on: no coming back yet
        self._hold_dipped = False  # the voltage has been below where it must come back
        self._hold_ref_uv = -1  # coming back: the voltage at _hold_ref_ms (-1: none yet)
        self._hold_ref_ms = 0
        self.duty = 0
        self.level_pct = 0
        self.flags = BAL_NO_TARGET

    # --- inputs from the module core -----------------------------------------------

    def set_target(self, now_ms: int, target_uv: int) -> None:
        """The manager's target voltage for this block (refreshes the timeout)."""
        self.target_uv = target_uv
        self._target_ms = now_ms
        self._target_valid = True

    def clear_target(self) -> None:
        self._target_valid = False

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = bool(enabled)

    def set_discharge(self, discharging: bool) -> None:
        """A discharge is under way (manager flag or the core's own detection)."""
        self.discharge = bool(discharging)

    def hold(self, now_ms: int, voltage_uv) -> None:
        """The module's own Ri capture begins: keep the law where it is until the block
        is back (see the module comment).  voltage_uv: the voltage now (None: unknown,
        nothing to come back to, no hold)."""
        if voltage_uv is None:
            self._hold_uv = -1
            return
        self._hold_uv = voltage_uv
        self._hold_ms = now_ms
        self._hold_capturing = True
        self._hold_dipped = False
        self._hold_ref_uv = -1

    def hold_end(self, now_ms: int) -> None:
        """The capture is over: the hold ends once the voltage is back (or HOLD_MAX_MS
        from now)."""
        self._hold_capturing = False
        self._hold_ms = now_ms

    def holding(self) -> bool:
        return self._hold_uv >= 0

    # --- the control step --------------------------------------------------------------

    def _stop(self, flags: int) -> int:
        self._hold_uv = -1
        self._integral = 0
        self._engaged = False
        self._slew_credit = 0
        self.duty = 0
        self.level_pct = 0
        self.flags = flags
        return 0

    def update(self, now_ms: int, voltage_uv, board_temp_mc, battery_temp_mc=None) -> int:
        """One control step; returns the bleed duty (0..DUTY_MAX per mille).

        voltage_uv / board_temp_mc may be None when not (yet) measured;
        battery_temp_mc is None when no probe is present.
        """
        if self._started:
            dt_ms = ticks_diff(now_ms, self._last_ms)
            if dt_ms < 0:
                dt_ms = 0
            elif dt_ms > MAX_STEP_MS:
                dt_ms = MAX_STEP_MS
        else:
            dt_ms = 0
            self._started = True
        self._last_ms = now_ms

        flags = 0
        if not self.enabled:
            flags |= BAL_DISABLED
        if self._target_valid:
            age = ticks_diff(now_ms, self._target_ms)
            if age < 0 or age > self.target_timeout_ms:
                self._target_valid = False  # stays stale until a new target arrives
        if not self._target_valid:
            flags |= BAL_NO_TARGET
        if self.discharge:
            flags |= BAL_DISCHARGE
        if voltage_uv is None or board_temp_mc is None:
            flags |= BAL_NO_MEASUREMENT
        else:
            if voltage_uv < self.min_voltage_uv:
                flags |= BAL_UNDERVOLTAGE
            if voltage_uv < self.window_min_uv or voltage_uv > self.window_max_uv:
                flags |= BAL_OUTSIDE_WINDOW
            if board_temp_mc >= self.board_stop_mc:
                flags |= BAL_BOARD_HOT
        if battery_temp_mc is None:
            self._battery_hot = False
        elif battery_temp_mc >= self.battery_limit_mc:
            self._battery_hot = True
        elif battery_temp_mc < self.battery_limit_mc - BATTERY_HYSTERESIS_MC:
            self._battery_hot = False
        if self._battery_hot:
            flags |= BAL_BATTERY_HOT
        if flags:
            return self._stop(flags)

        # Thermal derating cap: DUTY_MAX up to stop - band, 0 at stop.
        cap = DUTY_MAX
        headroom = self.board_stop_mc - board_temp_mc  # > 0 here
        if headroom < DERATE_BAND_MC:
            cap = (DUTY_MAX * headroom) // DERATE_BAND_MC  # < 2**30: 1000 * 1e4
            flags |= BAL_DERATED
        # The resistor's body: full-duty rise in mK = V^2/R (mW) x Rth (mK/W) / 1000
        # (mV^2 < 2**30 below 32.7 V; the variants' < 4 W x 60000 < 2**28).
        mv = voltage_uv // 1000
        rise_mk = ((mv * mv) // self.bleed_mohm) * self.body_rth_mk_per_w // 1000
        if rise_mk > 0:
            body_room = self.body_stop_mc - board_temp_mc
            body_cap = 0 if body_room <= 0 else (DUTY_MAX * body_room) // rise_mk
            if body_cap < cap:
                cap = body_cap
                flags |= BAL_DERATED

        if self._hold_uv >= 0:
            age = ticks_diff(now_ms, self._hold_ms)
            back = self._hold_uv - self.deadband_uv
            if voltage_uv < back:
                self._hold_dipped = True
            done = not self._hold_capturing and voltage_uv >= back
            if done and not self._hold_dipped and age < HOLD_MIN_MS:
                done = False  # the reading has not shown the dip yet (its lag)
            if not done and not self._hold_capturing and age >= HOLD_MIN_MS:
                if self._hold_ref_uv < 0:
                    self._hold_ref_uv = voltage_uv  # coming back: watched from here
                    self._hold_ref_ms = now_ms
                elif ticks_diff(now_ms, self._hold_ref_ms) >= HOLD_PROGRESS_MS:
                    done = voltage_uv <= self._hold_ref_uv  # it stopped coming back
                    self._hold_ref_uv = voltage_uv
                    self._hold_ref_ms = now_ms
            if done or age < 0 or age >= HOLD_MAX_MS:
                self._hold_uv = -1
        held = self._hold_uv >= 0

        # Error above target.  The deadband only decides when bleeding starts; once it
        # has, P and I both act on the true error (limited to the proportional band):
        # a P with a deadband would leave a settled block to the integral alone, which
        # swings around the target (docs/balancing.md, "Tuning").
        raw = voltage_uv - self.target_uv
        db = self.deadband_uv
        band = self.prop_band_uv
        if not self._engaged:
            if raw <= db:
                self._integral = 0
                self._slew_credit = 0
                self.duty = 0
                self.level_pct = 0
                self.flags = flags
                return 0
            self._engaged = True
        if raw > band:
            raw = band
        elif raw < -band:
            raw = -band
        p_duty = (raw * DUTY_MAX) // band  # |.| <= 1000; I integrates the same

        # Integral with clamping anti-windup: never more than the cap leaves room for.
        ti = self.integral_ms
        integral = self._integral  # held: the integral waits (P still acts)
        if not held:
            integral += p_duty * dt_ms  # |p_duty * dt| <= 1e7
        room = cap - (p_duty if p_duty > 0 else 0)
        if room < 0:
            room = 0
        limit = room * ti  # <= 1000 * integral_ms (6e7 for 1 min) < 2**30
        if integral > limit:
            integral = limit
        elif integral < 0:
            integral = 0
        self._integral = integral
        if integral == 0 and raw < -db and self.duty == 0 and not held:
            # unwound and a deadband below the target: wait for the deadband again.  Not
            # at the target itself: a block whose natural float sits just above the
            # target would fall out there and drift up to the deadband's edge, and
            # with a board reading ~7 mV off that is out of +-10 mV (docs/simulation.md,
            # "Balancing as a band")
            self._engaged = False
        wanted = p_duty + integral // ti
        if wanted < 0:
            wanted = 0
        elif wanted > cap:
            wanted = cap

        # Slew limit, both ways (credit carries over so short update periods still
        # move); the cap applies at once.
        credit = self._slew_credit + self.slew_permille_per_s * dt_ms  # <= 5e5
        max_step = credit // 1000
        duty = self.duty
        if wanted > duty + max_step:
            duty += max_step
            self._slew_credit = credit - max_step * 1000
        elif wanted < duty - max_step:
            duty -= max_step
            self._slew_credit = credit - max_step * 1000
        else:
            duty = wanted
            self._slew_credit = 0
        if duty > cap:
            duty = cap
        self.duty = duty
        self.level_pct = (duty * 100) // DUTY_MAX
        self.flags = flags
        return duty

    def inhibited(self) -> bool:
        return bool(self.flags & BAL_INHIBIT_MASK)
