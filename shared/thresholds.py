# Thresholds with a warning and an alarm level each, hysteresis and confirmation, and
# the per-module / per-string evaluation that turns readings into level transitions.
#
# Quantities: block voltage (low/high; separate low levels while the string
# discharges), block temperature (low/high), internal resistance (high), and the
# maximum voltage difference within a string ("spread", high).  Units are the manager's
# live units: voltage in µV, temperature in milli-°C, Ri in nΩ.
#
# Each evaluated value has a *condition*: normal, low warning, low alarm, high warning,
# high alarm.  A condition is entered when the value reaches the level (>= for high,
# <= for low) and left only when the value has come back past the level by the
# hysteresis; a change of condition takes effect only after `confirm_samples`
# consecutive evaluations agree on it (Ri: at once, it is measured once a day).  So a
# value sitting on a level with noise smaller than the hysteresis does not chatter, and
# a single outlier does not raise anything.
#
# Per-module state is two bytes per quantity in bytearrays indexed by module (no
# objects per module): 6 bytes per module.  Evaluation allocates nothing; transitions
# go to a sink object's level_changed(now_s, module, string, quantity, old, new, value).
# What a level *does* (LED colours, buzzer, relay) is the manager core's business:
# it reads module_level(i), string_level(s) and system_level().

from shared.compat import const

# conditions (stored per module and quantity)
COND_NORMAL = const(0)
COND_LOW_WARNING = const(1)
COND_LOW_ALARM = const(2)
COND_HIGH_WARNING = const(3)
COND_HIGH_ALARM = const(4)

# levels (what the operator sees: green / orange / red)
LEVEL_NORMAL = const(0)
LEVEL_WARNING = const(1)
LEVEL_ALARM = const(2)

_LEVEL_OF_COND = b"\x00\x01\x02\x01\x02"

# quantities; the first three are per module, SPREAD is per string
Q_VOLTAGE = const(0)
Q_TEMPERATURE = const(1)
Q_RI = const(2)
Q_SPREAD = const(3)
MODULE_QUANTITIES = const(3)

QUANTITY_NAMES = ("voltage", "temperature", "ri", "spread")
CONDITION_NAMES = ("normal", "low warning", "low alarm", "high warning", "high alarm")

# a level nobody reaches: the threshold is off
OFF_HIGH = const(0x3FFFFFFF)
OFF_LOW = const(-0x3FFFFFFF)

# the SPEC's settable range for the maximum voltage difference within a string
SPREAD_MIN_UV = const(50000)
SPREAD_MAX_UV = const(1000000)

NO_MODULE = const(0xFFFF)

CONFIRM_MAX = const(15)


def level_of(condition):
    """LEVEL_* of a COND_* value."""
    return _LEVEL_OF_COND[condition]


def _check_two_sided(name, unit, low_alarm, low_warning, high_warning, high_alarm, hyst):
    if not (low_alarm < low_warning < high_warning < high_alarm):
        raise ValueError(
            "%s thresholds must rise: low alarm < low warning < high warning < high alarm, "
            "got %d < %d < %d < %d %s; swap or correct them"
            % (name, low_alarm, low_warning, high_warning, high_alarm, unit)
        )
    _check_hysteresis(name, unit, hyst, low_warning - low_alarm, "low alarm - low warning")
    _check_hysteresis(name, unit, hyst, high_alarm - high_warning, "high alarm - high warning")
    if high_warning - hyst <= low_warning + hyst:
        raise ValueError(
            "%s hysteresis %d %s makes the low and high bands overlap (low warning %d, high "
            "warning %d); use a smaller hysteresis" % (name, hyst, unit, low_warning, high_warning)
        )


def _check_hysteresis(name, unit, hyst, gap, what):
    if hyst < 0:
        raise ValueError("%s hysteresis must be >= 0, got %d %s" % (name, hyst, unit))
    if gap < OFF_HIGH and hyst >= gap:
        raise ValueError(
            "%s hysteresis %d %s must be smaller than the gap between warning and alarm "
            "(%s = %d %s)" % (name, hyst, unit, what, gap, unit)
        )


class ThresholdSet:
    """Warning/alarm levels and hysteresis of every quantity, for the blocks of one string.

    Built with the set_* methods, which check the levels and say what is wrong.
    A new set has every threshold off.  Profiles (manager_fw/profiles.py) fill one in
    from a chemistry and a block size.
    """

    def __init__(self):
        self.voltage_low_alarm_uv = OFF_LOW
        self.voltage_low_warning_uv = OFF_LOW + 1
        self.voltage_high_warning_uv = OFF_HIGH - 1
        self.voltage_high_alarm_uv = OFF_HIGH
        self.voltage_hysteresis_uv = 0
        # added to both high voltage levels while the string is on boost charge: the
        # charger's setpoint moved up by design (manager_fw/phases.py PH_BOOST)
        self.boost_shift_uv = 0
        # while the string discharges, these replace the low levels above
        self.discharge_low_alarm_uv = OFF_LOW
        self.discharge_low_warning_uv = OFF_LOW + 1
        self.temp_low_alarm_mc = OFF_LOW
        self.temp_low_warning_mc = OFF_LOW + 1
        self.temp_high_warning_mc = OFF_HIGH - 1
        self.temp_high_alarm_mc = OFF_HIGH
        self.temp_hysteresis_mc = 0
        self.ri_warning_nohm = OFF_HIGH - 1
        self.ri_alarm_nohm = OFF_HIGH
        self.ri_hysteresis_nohm = 0
        self.spread_warning_uv = OFF_HIGH - 1
        self.spread_alarm_uv = OFF_HIGH
        self.spread_hysteresis_uv = 0
        # consecutive evaluations that must agree before a condition changes
        self.confirm_samples = 3

    def set_voltage(self, low_alarm_uv, low_warning_uv, high_warning_uv, high_alarm_uv, hyst_uv):
        _check_two_sided(
            "voltage", "µV", low_alarm_uv, low_warning_uv, high_warning_uv, high_alarm_uv, hyst_uv
        )
        self.voltage_low_alarm_uv = low_alarm_uv
        self.voltage_low_warning_uv = low_warning_uv
        self.voltage_high_warning_uv = high_warning_uv
        self.voltage_high_alarm_uv = high_alarm_uv
        self.voltage_hysteresis_uv = hyst_uv

    def set_boost_shift(self, shift_uv):
        """How far the high voltage levels move up during a boost (equalising) charge:
        the boost voltage minus the float voltage of the block."""
        if shift_uv < 0:
            raise ValueError(
                "boost shift: %d µV is below 0; the boost voltage is at or above float" % shift_uv
            )
        self.boost_shift_uv = shift_uv

    def set_discharge_voltage(self, low_alarm_uv, low_warning_uv):
        """Low levels used while the string discharges (end-of-discharge voltages)."""
        _check_two_sided(
            "discharge voltage",
            "µV",
            low_alarm_uv,
            low_warning_uv,
            self.voltage_high_warning_uv,
            self.voltage_high_alarm_uv,
            self.voltage_hysteresis_uv,
        )
        self.discharge_low_alarm_uv = low_alarm_uv
        self.discharge_low_warning_uv = low_warning_uv

    def set_temperature(
        self, low_alarm_mc, low_warning_mc, high_warning_mc, high_alarm_mc, hyst_mc
    ):
        _check_two_sided(
            "temperature",
            "m°C",
            low_alarm_mc,
            low_warning_mc,
            high_warning_mc,
            high_alarm_mc,
            hyst_mc,
        )
        self.temp_low_alarm_mc = low_alarm_mc
        self.temp_low_warning_mc = low_warning_mc
        self.temp_high_warning_mc = high_warning_mc
        self.temp_high_alarm_mc = high_alarm_mc
        self.temp_hysteresis_mc = hyst_mc

    def set_ri(self, warning_nohm, alarm_nohm, hyst_nohm):
        if not (0 < warning_nohm < alarm_nohm):
            raise ValueError(
                "Ri thresholds must be 0 < warning < alarm, got warning %d nΩ, alarm %d nΩ"
                % (warning_nohm, alarm_nohm)
            )
        _check_hysteresis("Ri", "nΩ", hyst_nohm, alarm_nohm - warning_nohm, "alarm - warning")
        if hyst_nohm >= warning_nohm:
            raise ValueError(
                "Ri hysteresis %d nΩ must be smaller than the warning level %d nΩ"
                % (hyst_nohm, warning_nohm)
            )
        self.ri_warning_nohm = warning_nohm
        self.ri_alarm_nohm = alarm_nohm
        self.ri_hysteresis_nohm = hyst_nohm

    def set_ri_from_baseline(
        self, mean_nohm, accept_pct=20, warning_over_pct=30, alarm_over_pct=60, hyst_pct=3
    ):
        """Ri levels relative to the baseline mean of new blocks of one type (SPEC §3).

        Accepted band: mean ± accept_pct; warning at warning_over_pct above the upper
        accepted limit, alarm at alarm_over_pct above it; hysteresis hyst_pct of the
        warning level.  Config-time only (intermediates may exceed 2**30).
        """
        if mean_nohm <= 0:
            raise ValueError("Ri baseline mean must be > 0 nΩ, got %d" % mean_nohm)
        if not (0 <= accept_pct < 100 and 0 < warning_over_pct < alarm_over_pct):
            raise ValueError(
                "Ri percentages must satisfy 0 <= accept < 100 and 0 < warning < alarm, got "
                "accept %d %%, warning %d %%, alarm %d %%"
                % (accept_pct, warning_over_pct, alarm_over_pct)
            )
        upper = mean_nohm * (100 + accept_pct) // 100
        warning = upper * (100 + warning_over_pct) // 100
        alarm = upper * (100 + alarm_over_pct) // 100
        self.set_ri(warning, alarm, warning * hyst_pct // 100)

    def set_spread(self, warning_uv, alarm_uv, hyst_uv):
        for name, value in (("warning", warning_uv), ("alarm", alarm_uv)):
            if not (SPREAD_MIN_UV <= value <= SPREAD_MAX_UV):
                raise ValueError(
                    "maximum voltage difference %s %d µV is outside the settable range "
                    "0.05-1 V (50000-1000000 µV)" % (name, value)
                )
        if warning_uv >= alarm_uv:
            raise ValueError(
                "maximum voltage difference: warning %d µV must be below alarm %d µV"
                % (warning_uv, alarm_uv)
            )
        _check_hysteresis("spread", "µV", hyst_uv, alarm_uv - warning_uv, "alarm - warning")
        self.spread_warning_uv = warning_uv
        self.spread_alarm_uv = alarm_uv
        self.spread_hysteresis_uv = hyst_uv

    def set_confirm_samples(self, count):
        if not (1 <= count <= CONFIRM_MAX):
            raise ValueError(
                "confirm_samples must be 1..%d evaluations, got %d" % (CONFIRM_MAX, count)
            )
        self.confirm_samples = count

    def copy(self):
        other = ThresholdSet()
        for name in _FIELDS:
            setattr(other, name, getattr(self, name))
        return other


_FIELDS = (
    "voltage_low_alarm_uv",
    "voltage_low_warning_uv",
    "voltage_high_warning_uv",
    "voltage_high_alarm_uv",
    "voltage_hysteresis_uv",
    "boost_shift_uv",
    "discharge_low_alarm_uv",
    "discharge_low_warning_uv",
    "temp_low_alarm_mc",
    "temp_low_warning_mc",
    "temp_high_warning_mc",
    "temp_high_alarm_mc",
    "temp_hysteresis_mc",
    "ri_warning_nohm",
    "ri_alarm_nohm",
    "ri_hysteresis_nohm",
    "spread_warning_uv",
    "spread_alarm_uv",
    "spread_hysteresis_uv",
    "confirm_samples",
)


def target_condition(cond, value, low_alarm, low_warning, high_warning, high_alarm, hyst):
    """The condition `value` calls for, given the current condition and the hysteresis.

    A level is entered at the level itself and left once the value is back past it
    by more than `hyst`.  Pure integer comparisons, no allocation.
    """
    if value >= high_alarm:
        return COND_HIGH_ALARM
    if cond == COND_HIGH_ALARM and value > high_alarm - hyst:
        return COND_HIGH_ALARM
    if value >= high_warning:
        return COND_HIGH_WARNING
    if (cond == COND_HIGH_WARNING or cond == COND_HIGH_ALARM) and value > high_warning - hyst:
        return COND_HIGH_WARNING
    if value <= low_alarm:
        return COND_LOW_ALARM
    if cond == COND_LOW_ALARM and value < low_alarm + hyst:
        return COND_LOW_ALARM
    if value <= low_warning:
        return COND_LOW_WARNING
    if (cond == COND_LOW_WARNING or cond == COND_LOW_ALARM) and value < low_warning + hyst:
        return COND_LOW_WARNING
    return COND_NORMAL


class AlarmEvaluator:
    """Conditions of every module (voltage, temperature, Ri) and string (spread).

    string_sizes: modules per string, in module order (module i of the whole system
    belongs to the string whose range holds i).  thresholds: one ThresholdSet for all
    strings, or a list with one per string.  sink: None or an object with
    level_changed(now_s, module, string, quantity, old_cond, new_cond, value) called on
    every confirmed change (module is NO_MODULE never for module quantities; for the
    spread it is the block farthest from the string's mean, the likely culprit).
    """

    def __init__(self, string_sizes, thresholds, sink=None):
        count = 0
        for size in string_sizes:
            if size <= 0:
                raise ValueError(
                    "every string needs at least one module, got sizes %r" % (list(string_sizes),)
                )
            count += size
        self.module_count = count
        self.string_count = len(string_sizes)
        if isinstance(thresholds, ThresholdSet):
            thresholds = [thresholds] * self.string_count
        if len(thresholds) != self.string_count:
            raise ValueError(
                "need one ThresholdSet per string (%d), got %d"
                % (self.string_count, len(thresholds))
            )
        self.thresholds = list(thresholds)
        self.string_start = [0] * (self.string_count + 1)
        for s in range(self.string_count):
            self.string_start[s + 1] = self.string_start[s] + string_sizes[s]
        self.sink = sink
        self.cond = bytearray(MODULE_QUANTITIES * count)
        self.pending = bytearray(MODULE_QUANTITIES * count)
        self.string_cond = bytearray(self.string_count)
        self.string_pending = bytearray(self.string_count)
        self.spread_uv = [0] * self.string_count
        self.warning_count = 0
        self.alarm_count = 0

    # -- lookup --------------------------------------------------------------------

    def string_of(self, module):
        starts = self.string_start
        s = 0
        while starts[s + 1] <= module:
            s += 1
        return s

    def condition(self, module, quantity):
        return self.cond[module * MODULE_QUANTITIES + quantity]

    def module_level(self, module):
        """Worst level of the module's own quantities (LED: green/orange/red)."""
        base = module * MODULE_QUANTITIES
        c = self.cond
        lv = _LEVEL_OF_COND
        a = lv[c[base]]
        b = lv[c[base + 1]]
        d = lv[c[base + 2]]
        if b > a:
            a = b
        if d > a:
            a = d
        return a

    def string_level(self, string):
        return _LEVEL_OF_COND[self.string_cond[string]]

    def system_level(self):
        """LEVEL_ALARM if any condition is an alarm, else LEVEL_WARNING if any warns."""
        if self.alarm_count:
            return LEVEL_ALARM
        if self.warning_count:
            return LEVEL_WARNING
        return LEVEL_NORMAL

    # -- evaluation ------------------------------------------------------------------

    def _count(self, old, new):
        lo = _LEVEL_OF_COND[old]
        ln = _LEVEL_OF_COND[new]
        if lo == LEVEL_WARNING:
            self.warning_count -= 1
        elif lo == LEVEL_ALARM:
            self.alarm_count -= 1
        if ln == LEVEL_WARNING:
            self.warning_count += 1
        elif ln == LEVEL_ALARM:
            self.alarm_count += 1

    def _step(self, now_s, module, string, quantity, slot, target, confirm, value):
        """Apply one evaluation's target condition to the module slot; return the condition."""
        cond = self.cond
        old = cond[slot]
        if target == old:
            self.pending[slot] = 0
            return old
        n = self.pending[slot] + 1
        if n < confirm:
            self.pending[slot] = n
            return old
        self.pending[slot] = 0
        cond[slot] = target
        self._count(old, target)
        if self.sink is not None:
            self.sink.level_changed(now_s, module, string, quantity, old, target, value)
        return target

    def evaluate_voltage(self, now_s, module, voltage_uv, discharging=False, boost=False):
        """boost: the string is on boost charge; the high levels move up by
        boost_shift_uv (the charger's setpoint did)."""
        string = self.string_of(module)
        t = self.thresholds[string]
        slot = module * MODULE_QUANTITIES + Q_VOLTAGE
        if discharging:
            low_alarm = t.discharge_low_alarm_uv
            low_warning = t.discharge_low_warning_uv
        else:
            low_alarm = t.voltage_low_alarm_uv
            low_warning = t.voltage_low_warning_uv
        shift = t.boost_shift_uv if boost else 0
        target = target_condition(
            self.cond[slot],
            voltage_uv,
            low_alarm,
            low_warning,
            t.voltage_high_warning_uv + shift,
            t.voltage_high_alarm_uv + shift,
            t.voltage_hysteresis_uv,
        )
        return self._step(
            now_s, module, string, Q_VOLTAGE, slot, target, t.confirm_samples, voltage_uv
        )

    def evaluate_temperature(self, now_s, module, temp_mc):
        string = self.string_of(module)
        t = self.thresholds[string]
        slot = module * MODULE_QUANTITIES + Q_TEMPERATURE
        target = target_condition(
            self.cond[slot],
            temp_mc,
            t.temp_low_alarm_mc,
            t.temp_low_warning_mc,
            t.temp_high_warning_mc,
            t.temp_high_alarm_mc,
            t.temp_hysteresis_mc,
        )
        return self._step(
            now_s, module, string, Q_TEMPERATURE, slot, target, t.confirm_samples, temp_mc
        )

    def evaluate_ri(self, now_s, module, ri_nohm):
        """A new Ri measurement; takes effect at once (Ri is measured once a day)."""
        string = self.string_of(module)
        t = self.thresholds[string]
        slot = module * MODULE_QUANTITIES + Q_RI
        target = target_condition(
            self.cond[slot],
            ri_nohm,
            OFF_LOW,
            OFF_LOW + 1,
            t.ri_warning_nohm,
            t.ri_alarm_nohm,
            t.ri_hysteresis_nohm,
        )
        return self._step(now_s, module, string, Q_RI, slot, target, 1, ri_nohm)

    def evaluate_module(self, now_s, module, voltage_uv, temp_mc, discharging=False, boost=False):
        """Voltage and temperature of one fresh reading; returns the module's level."""
        self.evaluate_voltage(now_s, module, voltage_uv, discharging, boost)
        self.evaluate_temperature(now_s, module, temp_mc)
        return self.module_level(module)

    def evaluate_modules(
        self, now_s, string, voltage_uv, temp_mc, fresh, discharging=False, boost=False
    ):
        """evaluate_module() for every module of a string that has a fresh reading
        (fresh[i] non-zero; arrays indexed by module over the whole system).

        The same transitions, for a fraction of the time: a value inside its normal band
        with the condition normal cannot change anything, and that is the answer for
        nearly every module of a healthy string, so it costs two comparisons; any other
        value takes the general path of evaluate_voltage / evaluate_temperature.
        """
        t = self.thresholds[string]
        v_low = t.discharge_low_warning_uv if discharging else t.voltage_low_warning_uv
        v_high = t.voltage_high_warning_uv + (t.boost_shift_uv if boost else 0)
        t_low = t.temp_low_warning_mc
        t_high = t.temp_high_warning_mc
        cond = self.cond
        pending = self.pending
        i = self.string_start[string]
        end = self.string_start[string + 1]
        while i < end:
            if fresh[i]:
                slot = i * MODULE_QUANTITIES
                v = voltage_uv[i]
                if cond[slot] == COND_NORMAL and v_low < v < v_high:
                    pending[slot] = 0
                else:
                    self.evaluate_voltage(now_s, i, v, discharging, boost)
                v = temp_mc[i]
                if cond[slot + 1] == COND_NORMAL and t_low < v < t_high:
                    pending[slot + 1] = 0
                else:
                    self.evaluate_temperature(now_s, i, v)
            i += 1

    def evaluate_string(self, now_s, string, voltage_uv, fresh=None, discharging=False):
        """Maximum voltage difference within a string; returns the spread in µV.

        voltage_uv is indexed by module over the whole system; fresh (optional) is a
        bytearray, non-zero where the module has a current reading; others are left
        out.  While the string discharges the spread is reported but its condition is
        held: every block's voltage moves then and the levels are for float charge.
        """
        first = self.string_start[string]
        end = self.string_start[string + 1]
        vmin = OFF_HIGH
        vmax = OFF_LOW
        sum_mv = 0
        n = 0
        i = first
        while i < end:
            if fresh is None or fresh[i]:
                v = voltage_uv[i]
                if v < vmin:
                    vmin = v
                if v > vmax:
                    vmax = v
                sum_mv += v // 1000
                n += 1
            i += 1
        if n < 2:
            self.spread_uv[string] = 0
            return 0
        spread = vmax - vmin
        self.spread_uv[string] = spread
        if discharging:
            self.string_pending[string] = 0
            return spread
        # the block farthest from the mean is named in the event
        mean_uv = (sum_mv // n) * 1000
        culprit = first
        worst = -1
        i = first
        while i < end:
            if fresh is None or fresh[i]:
                d = voltage_uv[i] - mean_uv
                if d < 0:
                    d = -d
                if d > worst:
                    worst = d
                    culprit = i
            i += 1
        t = self.thresholds[string]
        old = self.string_cond[string]
        target = target_condition(
            old,
            spread,
            OFF_LOW,
            OFF_LOW + 1,
            t.spread_warning_uv,
            t.spread_alarm_uv,
            t.spread_hysteresis_uv,
        )
        if target == old:
            self.string_pending[string] = 0
            return spread
        p = self.string_pending[string] + 1
        if p < t.confirm_samples:
            self.string_pending[string] = p
            return spread
        self.string_pending[string] = 0
        self.string_cond[string] = target
        self._count(old, target)
        if self.sink is not None:
            self.sink.level_changed(now_s, culprit, string, Q_SPREAD, old, target, spread)
        return spread

    def clear_module(self, now_s, module):
        """Forget a module's conditions (block replaced, module re-addressed).

        Conditions that were raised are reported as cleared to the sink.
        """
        string = self.string_of(module)
        for q in range(MODULE_QUANTITIES):
            slot = module * MODULE_QUANTITIES + q
            old = self.cond[slot]
            self.pending[slot] = 0
            if old != COND_NORMAL:
                self.cond[slot] = COND_NORMAL
                self._count(old, COND_NORMAL)
                if self.sink is not None:
                    self.sink.level_changed(now_s, module, string, q, old, COND_NORMAL, 0)
