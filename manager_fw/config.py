# The site configuration of a manager: strings and their modules, numbering, block type
# and chemistry, thresholds, offsets, delays, Ri schedule, discharge sources, thermal
# runaway, relay/IO box mapping.  JSON on both interpreters; docs/manager.md is the
# reference of every field (a host test keeps the two in step).
#
#   cfg = parse_config(json.loads(text))   # SiteConfig, or ConfigError naming the field
#   store = ConfigStore("/site.json")
#   cfg = store.load()                      # the newest good file; store.problems says why
#   store.save(obj)                         # validated, written to a temp file, read back
#                                           # and checked, then renamed over the old one
#
# Validation errors name the field path and the allowed range, e.g.
#   strings[1].modules: 0 is outside 1..600
# Units are in the field names (mv, mc = milli-°C, nohm, ma, s, ms, pct).  Strings,
# relay-box numbers, relays and inputs count from 1 in the file, as on the devices and in
# the labels ("4S2" = module 4 of string 2); the firmware counts strings from 0.
#
# The address <-> (string, position) <-> label mapping lives in Layout, and only there.

import json

from manager_fw import profiles as prof
from manager_fw.site import (  # noqa: F401 - re-exported: config users need these names
    NUMBERING_CONSECUTIVE,
    NUMBERING_PER_STRING,
    UPS_BOARD,
    UPS_BOX,
    UPS_NONE,
    VARIANT_NAMES,
    VARIANT_NOMINAL_MV,
    ConfigError,
    Layout,
    SiteConfig,
)
from shared import protocol as p
from shared import thresholds as th
from shared.compat import const

FORMAT = const(1)
MODULES_MAX = const(600)  # SPEC §2: up to 600 modules per manager
STRINGS_MAX = const(16)
CURRENT_SENSORS_MAX = const(8)  # DIP switches: strings 1..8
RELAY_BOXES_MAX = const(15)
RELAYS_PER_BOX = const(4)
INPUTS_PER_BOX = const(4)
BAUDS = (9600, 19200, 38400, 57600, 115200, 230400, 460800)
NUMBERING = ("consecutive", "per_string")


# --------------------------------------------------------------------------- fields
# Each optional section: (key, low, high, default).  None as default: derived (see
# docs/manager.md).  Integers only; booleans and texts are handled by name below.

SILENT_FIELDS = (
    ("alarm_delay_s", 10, 3600, 240),
    ("contact_delay_s", 0, 3600, 90),
)
RI_FIELDS = (
    ("method", 0, 2, 0),
    ("first_delay_s", 0, 86400, 900),
    ("initial_rounds", 1, 10, 4),
    ("initial_interval_s", 60, 86400, 900),
    ("period_s", 3600, 2592000, 86400),
    ("spacing_s", 30, 50, 30),
    ("settle_s", 0, 86400, 7200),
    ("trend_pct", 5, 200, 30),
    ("baseline_count", 1, 16, 4),
    ("trend_alarm_pct", 10, 400, 50),
    ("string_pct", 5, 200, 30),
)
DISCHARGE_FIELDS = (
    ("drop_mv", 500, 30000, None),
    ("current_ma", 100, 1000000, 1000),
    ("confirm_cycles", 1, 20, 2),
    ("end_s", 0, 3600, 60),
    ("recovery_s", 0, 172800, 43200),
    ("recharge_max_s", 600, 604800, 43200),
)
RUNAWAY_FIELDS = (
    ("sample_s", 60, 3600, 600),
    ("rise_mc", 500, 20000, 3000),
    ("above_mc", 1000, 30000, 5000),
    ("current_rise_pct", 10, 500, 50),
    ("current_min_ma", 0, 100000, 100),
    ("voltage_rise_mv", 1, 1000, 20),
    ("confirm", 1, 10, 2),
    ("sag_mv", 1, 1000, None),
    ("alone_above_mc", 5000, 50000, 15000),
)
BALANCE_FIELDS = (
    ("max_wh_day", 0, 100000, None),
    ("give_up_s", 3600, 1209600, 14400),
)
OFFSET_FIELDS = (
    ("ri_nohm", -10000000, 10000000, 0),
    ("temp_mc", -10000, 10000, 0),
)
WINDOW_FIELDS = (
    ("low_mv", 500, 30000, None),
    ("high_mv", 500, 30000, None),
)
# threshold overrides; every one defaults to the chemistry profile's value
THRESHOLD_FIELDS = (
    ("voltage_low_alarm_mv", 0, 30000),
    ("voltage_low_warning_mv", 0, 30000),
    ("voltage_high_warning_mv", 0, 30000),
    ("voltage_high_alarm_mv", 0, 30000),
    ("voltage_hysteresis_mv", 0, 1000),
    ("discharge_low_alarm_mv", 0, 30000),
    ("discharge_low_warning_mv", 0, 30000),
    ("temp_low_alarm_mc", -40000, 100000),
    ("temp_low_warning_mc", -40000, 100000),
    ("temp_high_warning_mc", -40000, 100000),
    ("temp_high_alarm_mc", -40000, 100000),
    ("temp_hysteresis_mc", 0, 10000),
    ("ri_baseline_nohm", 0, 100000000),
    ("ri_warning_nohm", 1, 100000000),
    ("ri_alarm_nohm", 1, 100000000),
    ("ri_hysteresis_nohm", 0, 10000000),
    ("spread_warning_mv", 50, 1000),
    ("spread_alarm_mv", 50, 1000),
    ("spread_hysteresis_mv", 0, 500),
    ("confirm_samples", 1, th.CONFIRM_MAX),
)
TOP_KEYS = (
    "format",
    "site",
    "baud",
    "numbering",
    "chemistry",
    "variant",
    "cells",
    "strings",
    "cycle_period_ms",
    "target_timeout_s",
    "window",
    "thresholds",
    "offsets",
    "silent",
    "ri",
    "discharge",
    "runaway",
    "balance",
    "io",
)
STRING_KEYS = ("modules", "first_address", "equalise", "current_sensor", "name")
IO_KEYS = ("breaker_trip", "alarm_relay", "ups_input")


def _known(obj, keys, path: str) -> None:
    if not isinstance(obj, dict):
        raise ConfigError(path, "expected an object {...}, got %s" % _show(obj))
    for k in obj:
        if k not in keys:
            raise ConfigError(
                _join(path, str(k)), "unknown field; known fields here: %s" % ", ".join(keys)
            )


def _join(path: str, key: str) -> str:
    return key if not path else path + "." + key


def _show(value) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return '"%s"' % value
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return str(value)


def _int(obj, key: str, path: str, low: int, high: int, default):
    """obj[key] as an int in low..high; default when absent (None: required)."""
    fp = _join(path, key)
    if key not in obj or obj[key] is None:
        if default is None:
            raise ConfigError(fp, "required: a whole number in %d..%d" % (low, high))
        return default
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(fp, "expected a whole number in %d..%d, got %s" % (low, high, _show(v)))
    if v < low or v > high:
        raise ConfigError(fp, "%d is outside %d..%d" % (v, low, high))
    return v


def _opt_int(obj, key: str, path: str, low: int, high: int):
    """obj[key] in low..high, or None when absent or null."""
    if key not in obj or obj[key] is None:
        return None
    return _int(obj, key, path, low, high, 0)


def _bool(obj, key: str, path: str, default: bool) -> bool:
    if key not in obj:
        return default
    v = obj[key]
    if v is not True and v is not False:
        raise ConfigError(_join(path, key), "expected true or false, got %s" % _show(v))
    return v


def _text(obj, key: str, path: str, max_len: int, default: str) -> str:
    if key not in obj or obj[key] is None:
        return default
    v = obj[key]
    if not isinstance(v, str):
        raise ConfigError(_join(path, key), "expected a text, got %s" % _show(v))
    if len(v) > max_len:
        raise ConfigError(
            _join(path, key), "%d characters is too long (at most %d)" % (len(v), max_len)
        )
    return v


def _choice(obj, key: str, path: str, choices, default):
    if key not in obj or obj[key] is None:
        return default
    v = obj[key]
    if v not in choices:
        raise ConfigError(
            _join(path, key),
            "%s is not one of %s" % (_show(v), ", ".join(_show(c) for c in choices)),
        )
    return v


def _section(obj, key: str, keys) -> dict:
    if key not in obj or obj[key] is None:
        return {}
    _known(obj[key], keys, key)
    return obj[key]


def _keys(fields) -> tuple:
    return tuple(f[0] for f in fields)


# --------------------------------------------------------------------------- config


def _strings_mask(obj, key: str, path: str, count: int) -> int:
    """A list of 1-based string numbers as a bit mask; absent: every string."""
    full = (1 << count) - 1
    if key not in obj or obj[key] is None:
        return full
    v = obj[key]
    fp = _join(path, key)
    if not isinstance(v, list) or not v:
        raise ConfigError(fp, "expected a list of string numbers 1..%d" % count)
    mask = 0
    for j in range(len(v)):
        n = v[j]
        if isinstance(n, bool) or not isinstance(n, int):
            raise ConfigError("%s[%d]" % (fp, j), "expected a string number, got %s" % _show(n))
        if n < 1 or n > count:
            raise ConfigError("%s[%d]" % (fp, j), "%d is outside 1..%d" % (n, count))
        mask |= 1 << (n - 1)
    return mask


def _box_relay(obj, path: str):
    _known(obj, ("box", "relay", "strings"), path)
    box = _int(obj, "box", path, 1, RELAY_BOXES_MAX, None)
    relay = _int(obj, "relay", path, 1, RELAYS_PER_BOX, None)
    return box, relay - 1


def _rising(levels, given, scale: int) -> None:
    """Levels (name, value in live units) must rise; name the first one that does not."""
    for j in range(1, len(levels)):
        lo_name, lo = levels[j - 1]
        hi_name, hi = levels[j]
        if hi <= lo:
            # blame a level the operator set (the other one is the profile's default)
            name = hi_name if given[hi_name] is not None else lo_name
            raise ConfigError(
                "thresholds." + name,
                "%s %d must be above %s %d (levels rise: %s)"
                % (
                    hi_name,
                    hi // scale,
                    lo_name,
                    lo // scale,
                    " < ".join(n for n, _v in levels),
                ),
            )


def _thresholds(cfg: SiteConfig, profile, t: dict) -> dict:
    base = prof.thresholds_for(profile, cfg.cells)
    cur = {}
    for key, low, high in THRESHOLD_FIELDS:
        cur[key] = _opt_int(t, key, "thresholds", low, high)
    ts = base.copy()

    def mv(key, value_uv):
        return value_uv if cur[key] is None else cur[key] * 1000

    def mc(key, value):
        return value if cur[key] is None else cur[key]

    _rising(
        (
            ("voltage_low_alarm_mv", mv("voltage_low_alarm_mv", base.voltage_low_alarm_uv)),
            ("voltage_low_warning_mv", mv("voltage_low_warning_mv", base.voltage_low_warning_uv)),
            (
                "voltage_high_warning_mv",
                mv("voltage_high_warning_mv", base.voltage_high_warning_uv),
            ),
            ("voltage_high_alarm_mv", mv("voltage_high_alarm_mv", base.voltage_high_alarm_uv)),
        ),
        cur,
        1000,
    )
    _rising(
        (
            ("discharge_low_alarm_mv", mv("discharge_low_alarm_mv", base.discharge_low_alarm_uv)),
            (
                "discharge_low_warning_mv",
                mv("discharge_low_warning_mv", base.discharge_low_warning_uv),
            ),
            (
                "voltage_high_warning_mv",
                mv("voltage_high_warning_mv", base.voltage_high_warning_uv),
            ),
        ),
        cur,
        1000,
    )
    _rising(
        (
            ("temp_low_alarm_mc", mc("temp_low_alarm_mc", base.temp_low_alarm_mc)),
            ("temp_low_warning_mc", mc("temp_low_warning_mc", base.temp_low_warning_mc)),
            ("temp_high_warning_mc", mc("temp_high_warning_mc", base.temp_high_warning_mc)),
            ("temp_high_alarm_mc", mc("temp_high_alarm_mc", base.temp_high_alarm_mc)),
        ),
        cur,
        1,
    )
    _rising(
        (
            ("spread_warning_mv", mv("spread_warning_mv", base.spread_warning_uv)),
            ("spread_alarm_mv", mv("spread_alarm_mv", base.spread_alarm_uv)),
        ),
        cur,
        1000,
    )
    try:
        ts.set_voltage(
            mv("voltage_low_alarm_mv", base.voltage_low_alarm_uv),
            mv("voltage_low_warning_mv", base.voltage_low_warning_uv),
            mv("voltage_high_warning_mv", base.voltage_high_warning_uv),
            mv("voltage_high_alarm_mv", base.voltage_high_alarm_uv),
            mv("voltage_hysteresis_mv", base.voltage_hysteresis_uv),
        )
        ts.set_discharge_voltage(
            mv("discharge_low_alarm_mv", base.discharge_low_alarm_uv),
            mv("discharge_low_warning_mv", base.discharge_low_warning_uv),
        )
    except ValueError as e:
        raise ConfigError("thresholds", "voltage levels: %s" % e) from None
    try:
        ts.set_temperature(
            mc("temp_low_alarm_mc", base.temp_low_alarm_mc),
            mc("temp_low_warning_mc", base.temp_low_warning_mc),
            mc("temp_high_warning_mc", base.temp_high_warning_mc),
            mc("temp_high_alarm_mc", base.temp_high_alarm_mc),
            mc("temp_hysteresis_mc", base.temp_hysteresis_mc),
        )
    except ValueError as e:
        raise ConfigError("thresholds", "temperature levels: %s" % e) from None
    try:
        ts.set_spread(
            mv("spread_warning_mv", base.spread_warning_uv),
            mv("spread_alarm_mv", base.spread_alarm_uv),
            mv("spread_hysteresis_mv", base.spread_hysteresis_uv),
        )
    except ValueError as e:
        raise ConfigError("thresholds", "maximum voltage difference: %s" % e) from None
    baseline = cur["ri_baseline_nohm"] or 0
    cfg.ri_baseline_nohm = baseline
    warn = cur["ri_warning_nohm"]
    alarm = cur["ri_alarm_nohm"]
    try:
        if warn is not None or alarm is not None:
            if warn is None or alarm is None:
                raise ValueError("give both ri_warning_nohm and ri_alarm_nohm, or neither")
            hyst = cur["ri_hysteresis_nohm"]
            ts.set_ri(warn, alarm, warn * 3 // 100 if hyst is None else hyst)
        elif baseline:
            ts.set_ri_from_baseline(baseline)
    except ValueError as e:
        raise ConfigError("thresholds", "Ri levels: %s" % e) from None
    if cur["confirm_samples"] is not None:
        ts.set_confirm_samples(cur["confirm_samples"])
    cfg.thresholds = ts
    return cur


# voltage levels checked against what the module measures and the chemistry's float
VOLTAGE_LEVELS = (
    ("voltage_low_alarm_mv", "voltage_low_alarm_uv"),
    ("voltage_low_warning_mv", "voltage_low_warning_uv"),
    ("voltage_high_warning_mv", "voltage_high_warning_uv"),
    ("voltage_high_alarm_mv", "voltage_high_alarm_uv"),
    ("discharge_low_alarm_mv", "discharge_low_alarm_uv"),
    ("discharge_low_warning_mv", "discharge_low_warning_uv"),
)


def _cross_checks(cfg: SiteConfig, profile, given: dict, cells_given: bool, window: dict) -> None:
    """Levels that are in range one by one but nonsense together: a level the module can
    never measure (its variant's measuring range), a window that never holds float
    charge, warnings that fire at float (the chemistry profile)."""
    from shared import variants as va

    var = va.VARIANTS[cfg.variant]
    lo = var.measure_min_uv // 1000
    hi = var.measure_max_uv // 1000
    what = "a %s module (variant %d) measures %d..%d mV" % (var.name, cfg.variant, lo, hi)
    block = "%d %s cell%s" % (cfg.cells, profile.name, "" if cfg.cells == 1 else "s")
    ts: th.ThresholdSet = cfg.thresholds  # type: ignore[assignment]
    for key, attr in VOLTAGE_LEVELS:
        v = getattr(ts, attr) // 1000
        if lo <= v <= hi:
            continue
        if given[key] is not None:
            raise ConfigError(
                "thresholds." + key,
                "%d mV can never be measured: %s; set it in %d..%d" % (v, what, lo, hi),
            )
        raise ConfigError(
            "cells" if cells_given else "variant",
            "%s put %s at %d mV (profile %s), outside what %s: choose the variant of the "
            "block (variant), its cell count (cells) or set thresholds.%s"
            % (block, key, v, profile.key, what, key),
        )
    for key, v in (("low_mv", cfg.window_low_mv), ("high_mv", cfg.window_high_mv)):
        if not lo <= v <= hi:
            name = "window." + key if key in window else ("cells" if cells_given else "variant")
            raise ConfigError(
                name,
                "equalising window %s %d mV is outside what %s; set it in %d..%d"
                % (key, v, what, lo, hi),
            )
    fl = cfg.float_mv
    if not cfg.window_low_mv <= fl <= cfg.window_high_mv:
        raise ConfigError(
            "window",
            "%d..%d mV does not hold the float voltage of %s (%d mV): equalising would "
            "never run in float charge" % (cfg.window_low_mv, cfg.window_high_mv, block, fl),
        )
    checks = (
        ("voltage_high_warning_mv", ts.voltage_high_warning_uv, 1, "warn"),
        ("voltage_high_alarm_mv", ts.voltage_high_alarm_uv, 1, "be in alarm"),
        ("voltage_low_warning_mv", ts.voltage_low_warning_uv, -1, "warn"),
        ("voltage_low_alarm_mv", ts.voltage_low_alarm_uv, -1, "be in alarm"),
    )
    for key, uv, side, does in checks:
        v = uv // 1000
        if (v - fl) * side > 0:
            continue
        raise ConfigError(
            "thresholds." + key if given[key] is not None else "chemistry",
            "%d mV is at or %s the float voltage of %s (%d mV): every block would %s in "
            "normal float charge" % (v, "below" if side > 0 else "above", block, fl, does),
        )


def parse_config(obj) -> SiteConfig:
    """Validate a configuration (the object of a JSON file) into a SiteConfig.

    Raises ConfigError naming the field path and the allowed range, and nothing else
    whatever the object holds (fuzzed: host_tests/dual/manager_fw/test_config_inputs.py).
    """
    try:
        return _parse_config(obj)
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - a shape the checks missed: still a message
        raise ConfigError(
            "", "not a usable site configuration (%s: %s)" % (type(e).__name__, e)
        ) from None


def _parse_config(obj) -> SiteConfig:
    _known(obj, TOP_KEYS, "")
    cfg = SiteConfig()
    cfg.source = obj
    _int(obj, "format", "", FORMAT, FORMAT, FORMAT)
    cfg.site = _text(obj, "site", "", 40, "")
    cfg.baud = _choice(obj, "baud", "", BAUDS, 115200)
    cfg.numbering = NUMBERING.index(_choice(obj, "numbering", "", NUMBERING, NUMBERING[0]))
    keys = tuple(pr.key for pr in prof.PROFILES)
    profile = prof.profile(_choice(obj, "chemistry", "", keys, "vrla"))
    cfg.chemistry = profile.key
    cfg.chemistry_name = profile.name
    cfg.variant = _int(obj, "variant", "", 0, len(VARIANT_NOMINAL_MV) - 1, 3)
    cells = _opt_int(obj, "cells", "", 1, 16)
    if cells is None:
        if cfg.variant == 0:
            cells = 1  # a cell module measures one cell of any chemistry
        else:
            try:
                cells = prof.block_cells(profile, VARIANT_NOMINAL_MV[cfg.variant])
            except ValueError as e:
                raise ConfigError("cells", "%s" % e) from None
    cfg.cells = cells
    block = prof.block_settings(profile, cells)
    cfg.nominal_mv = block.nominal_uv // 1000
    cfg.float_mv = block.float_uv // 1000

    # strings and addresses
    if "strings" not in obj:
        raise ConfigError("strings", "required: a list of 1..%d strings" % STRINGS_MAX)
    strings = obj["strings"]
    if not isinstance(strings, list) or not strings:
        raise ConfigError("strings", "expected a list of 1..%d strings" % STRINGS_MAX)
    if len(strings) > STRINGS_MAX:
        raise ConfigError("strings", "%d strings is more than %d" % (len(strings), STRINGS_MAX))
    sizes = []
    firsts = []
    total = 0
    next_first = p.ADDR_MODULE_MIN
    sensors_seen = []
    for k in range(len(strings)):
        sp = "strings[%d]" % k
        s = strings[k]
        _known(s, STRING_KEYS, sp)
        n = _int(s, "modules", sp, 1, MODULES_MAX, None)
        first = _int(s, "first_address", sp, next_first, p.ADDR_MODULE_MAX, next_first)
        if first + n - 1 > p.ADDR_MODULE_MAX:
            raise ConfigError(
                sp,
                "addresses %d..%d pass the last module address %d"
                % (first, first + n - 1, p.ADDR_MODULE_MAX),
            )
        total += n
        if total > MODULES_MAX:
            raise ConfigError(
                sp + ".modules", "%d modules in all is more than %d" % (total, MODULES_MAX)
            )
        sizes.append(n)
        firsts.append(first)
        next_first = first + n
        cfg.equalise.append(_bool(s, "equalise", sp, True))
        sensor = _opt_int(s, "current_sensor", sp, 1, CURRENT_SENSORS_MAX)
        if sensor is not None and sensor in sensors_seen:
            raise ConfigError(
                sp + ".current_sensor",
                "sensor %d is already used by another string (each sensor measures one string)"
                % sensor,
            )
        if sensor is not None:
            sensors_seen.append(sensor)
        cfg.current_sensor.append(sensor or 0)
        cfg.string_names.append(_text(s, "name", sp, 24, ""))
    cfg.layout = Layout(sizes, firsts, cfg.numbering)
    count = len(sizes)

    cfg.cycle_period_ms = _int(obj, "cycle_period_ms", "", 0, 60000, 0)
    cfg.target_timeout_s = _int(obj, "target_timeout_s", "", 2, 120, 10)
    if cfg.target_timeout_s * 1000 < 2 * cfg.cycle_period_ms:
        raise ConfigError(
            "target_timeout_s",
            "%d s is shorter than two measurement cycles (cycle_period_ms %d): the modules "
            "would stop balancing between two targets; raise it to at least %d"
            % (
                cfg.target_timeout_s,
                cfg.cycle_period_ms,
                (2 * cfg.cycle_period_ms + 999) // 1000,
            ),
        )

    w = _section(obj, "window", _keys(WINDOW_FIELDS))
    cfg.window_low_mv = _int(w, "low_mv", "window", 500, 30000, block.window_low_uv // 1000)
    cfg.window_high_mv = _int(w, "high_mv", "window", 500, 30000, block.window_high_uv // 1000)
    if cfg.window_low_mv >= cfg.window_high_mv:
        raise ConfigError(
            "window",
            "low_mv %d must be below high_mv %d" % (cfg.window_low_mv, cfg.window_high_mv),
        )

    given = _thresholds(
        cfg, profile, _section(obj, "thresholds", tuple(f[0] for f in THRESHOLD_FIELDS))
    )
    _cross_checks(cfg, profile, given, obj.get("cells") is not None, w)

    o = _section(obj, "offsets", _keys(OFFSET_FIELDS))
    cfg.ri_offset_nohm = _int(o, "ri_nohm", "offsets", -10000000, 10000000, 0)
    cfg.temp_offset_mc = _int(o, "temp_mc", "offsets", -10000, 10000, 0)

    s = _section(obj, "silent", _keys(SILENT_FIELDS))
    cfg.silent_delay_s = _int(s, "alarm_delay_s", "silent", 10, 3600, 240)
    cfg.silent_contact_delay_s = _int(s, "contact_delay_s", "silent", 0, 3600, 90)

    r = _section(obj, "ri", ("enabled",) + _keys(RI_FIELDS))
    cfg.ri_enabled = _bool(r, "enabled", "ri", True)
    vals = [_int(r, f[0], "ri", f[1], f[2], f[3]) for f in RI_FIELDS]
    (
        cfg.ri_method,
        cfg.ri_first_delay_s,
        cfg.ri_initial_rounds,
        cfg.ri_initial_interval_s,
        cfg.ri_period_s,
        cfg.ri_spacing_s,
        cfg.ri_settle_s,
        cfg.ri_trend_pct,
        cfg.ri_baseline_count,
        cfg.ri_trend_alarm_pct,
        cfg.ri_string_pct,
    ) = vals
    if cfg.ri_trend_alarm_pct <= cfg.ri_trend_pct:
        raise ConfigError(
            "ri.trend_alarm_pct",
            "%d %% must be above ri.trend_pct (%d %%)" % (cfg.ri_trend_alarm_pct, cfg.ri_trend_pct),
        )

    d = _section(obj, "discharge", _keys(DISCHARGE_FIELDS))
    drop_default = profile.low_warning_uv * cfg.cells // 1000
    cfg.discharge_drop_mv = _int(d, "drop_mv", "discharge", 500, 30000, drop_default)
    cfg.discharge_current_ma = _int(d, "current_ma", "discharge", 100, 1000000, 1000)
    cfg.discharge_confirm_cycles = _int(d, "confirm_cycles", "discharge", 1, 20, 2)
    cfg.discharge_end_s = _int(d, "end_s", "discharge", 0, 3600, 60)
    cfg.discharge_recovery_s = _int(d, "recovery_s", "discharge", 0, 172800, 43200)
    cfg.recharge_max_s = _int(d, "recharge_max_s", "discharge", 600, 604800, 43200)

    rw = _section(obj, "runaway", ("enabled",) + _keys(RUNAWAY_FIELDS))
    cfg.runaway_enabled = _bool(rw, "enabled", "runaway", True)
    vals = [_int(rw, f[0], "runaway", f[1], f[2], f[3] or 0) for f in RUNAWAY_FIELDS]
    (
        cfg.runaway_sample_s,
        cfg.runaway_rise_mc,
        cfg.runaway_above_mc,
        cfg.runaway_current_rise_pct,
        cfg.runaway_current_min_ma,
        cfg.runaway_voltage_rise_mv,
        cfg.runaway_confirm,
        cfg.runaway_sag_mv,
        cfg.runaway_alone_above_mc,
    ) = vals
    if not cfg.runaway_sag_mv:
        cfg.runaway_sag_mv = 5 * cells  # 5 mV per cell (docs/judgement.md)

    bs = _section(obj, "balance", _keys(BALANCE_FIELDS))
    cfg.balance_max_wh_day = _int(bs, "max_wh_day", "balance", 0, 100000, -1)  # -1: derived
    cfg.balance_give_up_s = _int(bs, "give_up_s", "balance", 3600, 1209600, 14400)

    io = _section(obj, "io", IO_KEYS)
    trips = io.get("breaker_trip") or []
    if not isinstance(trips, list):
        raise ConfigError("io.breaker_trip", "expected a list of {box, relay, strings}")
    used = []
    for j in range(len(trips)):
        tp = "io.breaker_trip[%d]" % j
        box, relay = _box_relay(trips[j], tp)
        if (box, relay) in used:
            raise ConfigError(tp, "box %d relay %d is listed twice" % (box, relay + 1))
        used.append((box, relay))
        cfg.breaker_relays.append((box, relay, _strings_mask(trips[j], "strings", tp, count)))
    if io.get("alarm_relay") is not None:
        ap = "io.alarm_relay"
        _known(io["alarm_relay"], ("box", "relay", "strings"), ap)
        if "strings" in io["alarm_relay"]:
            raise ConfigError(ap + ".strings", "the alarm relay serves the whole site")
        box, relay = _box_relay(io["alarm_relay"], ap)
        if (box, relay) in used:
            raise ConfigError(
                ap, "box %d relay %d already trips a breaker; use another relay" % (box, relay + 1)
            )
        cfg.alarm_box = box
        cfg.alarm_relay = relay
    if io.get("ups_input") is not None:
        up = "io.ups_input"
        u = io["ups_input"]
        _known(u, ("source", "box", "input", "active", "strings"), up)
        src = _choice(u, "source", up, ("board", "box"), None)
        if src is None:
            raise ConfigError(up + ".source", 'required: "board" or "box"')
        if src == "box":
            cfg.ups_source = UPS_BOX
            cfg.ups_box = _int(u, "box", up, 1, RELAY_BOXES_MAX, None)
            cfg.ups_input = _int(u, "input", up, 1, INPUTS_PER_BOX, None) - 1
        else:
            cfg.ups_source = UPS_BOARD
            for key in ("box", "input"):
                if key in u:
                    raise ConfigError(up + "." + key, 'only for "source": "box"')
        cfg.ups_active_closed = _choice(u, "active", up, ("closed", "open"), "closed") == "closed"
        cfg.ups_strings_mask = _strings_mask(u, "strings", up, count)
    boxes = []
    for box, _relay, _mask in cfg.breaker_relays:
        if box not in boxes:
            boxes.append(box)
    for box in (cfg.alarm_box, cfg.ups_box if cfg.ups_source == UPS_BOX else 0):
        if box and box not in boxes:
            boxes.append(box)
    boxes.sort()
    cfg.boxes = boxes
    return cfg


MAX_TEXT_BYTES = const(65536)  # a site.json of 600 modules and every option is < 20 KB
MAX_NESTING = const(16)  # the deepest a site.json goes is 4 levels


def _nesting(text: str) -> int:
    """How deep [ and { nest in JSON text (strings skipped); stops past MAX_NESTING."""
    depth = 0
    deepest = 0
    in_string = False
    escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "[" or ch == "{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_NESTING:
                    return deepest
        elif ch == "]" or ch == "}":
            depth -= 1
    return deepest


def _first_bad_utf8(raw) -> int:
    """Offset of the first byte that is not part of a valid UTF-8 sequence."""
    i = 0
    n = len(raw)
    while i < n:
        b = raw[i]
        if b < 0x80:
            i += 1
            continue
        size = 2 if 0xC2 <= b <= 0xDF else 3 if 0xE0 <= b <= 0xEF else 4 if 0xF0 <= b <= 0xF4 else 0
        if size == 0 or i + size > n:
            return i
        try:
            bytes(raw[i : i + size]).decode("utf-8")
        except UnicodeError:
            return i
        i += size
    return 0


def decode_text(raw) -> str:
    """Bytes of a configuration file as text, or ConfigError naming what is wrong."""
    if isinstance(raw, str):
        text = raw
    else:
        if len(raw) > MAX_TEXT_BYTES:  # OsFiles reads at most one byte more
            raise ConfigError(
                "", "more than %d bytes: too large for a site configuration" % MAX_TEXT_BYTES
            )
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeError:
            at = _first_bad_utf8(raw)
            raise ConfigError(
                "", "not UTF-8 text (byte 0x%02x at offset %d): save the file as UTF-8"
                % (raw[at], at)
            ) from None  # fmt: skip
    if len(text) > MAX_TEXT_BYTES:
        raise ConfigError(
            "", "%d characters is too large for a site configuration (at most %d)"
            % (len(text), MAX_TEXT_BYTES)
        )  # fmt: skip
    return text


def config_from_text(text) -> SiteConfig:
    """Parse JSON text (str or bytes) and validate it; ConfigError for every problem:
    never another exception, whatever the input (fuzzed: host_tests)."""
    text = decode_text(text)
    depth = _nesting(text)
    if depth > MAX_NESTING:
        raise ConfigError(
            "", "nested more than %d levels deep: not a site configuration" % MAX_NESTING
        )
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise ConfigError("", "not valid JSON (%s)" % e) from None
    except Exception as e:  # noqa: BLE001 - RecursionError, MemoryError: a message still
        raise ConfigError("", "cannot be read as JSON (%s: %s)" % (type(e).__name__, e)) from None
    return parse_config(obj)


def simple_config(sizes, **top) -> SiteConfig:
    """A configuration of strings with these module counts (tests, benchmarks, demos)."""
    obj = {"strings": [{"modules": n} for n in sizes]}
    for k in top:
        obj[k] = top[k]
    return parse_config(obj)


# --------------------------------------------------------------------------- storage


class OsFiles:
    """The files of a configuration on the interpreter's filesystem."""

    def read(self, path: str):
        """The file's bytes (at most MAX_TEXT_BYTES + 1), None when it does not exist;
        OSError when it exists but cannot be read."""
        try:
            f = open(path, "rb")
        except OSError as e:
            if e.args and e.args[0] == 2:  # ENOENT
                return None
            raise
        with f:
            return f.read(MAX_TEXT_BYTES + 1)

    def write(self, path: str, text: str) -> None:
        with open(path, "w") as f:
            f.write(text)
            try:
                f.flush()
            except AttributeError:
                pass
        try:
            import os

            if hasattr(os, "sync"):
                os.sync()
        except OSError:
            pass

    def rename(self, old: str, new: str) -> None:
        import os

        try:
            os.rename(old, new)
        except OSError:
            # filesystems whose rename does not replace (FAT): remove, then rename.  A
            # cut between the two leaves no `new`; load() then takes the checked temp.
            os.remove(new)
            os.rename(old, new)

    def remove(self, path: str) -> None:
        import os

        try:
            os.remove(path)
        except OSError:
            pass


class ConfigStore:
    """site.json, kept safe across power cuts and bad edits.

    save(): write site.json.tmp, read it back and validate it (the check), rename it over
    site.json (atomic on POSIX and littlefs), then refresh site.json.bak the same way.
    load(): site.json; if it is missing or does not validate, the problem is reported in
    `problems` and the last good configuration is used: site.json.tmp when a save was
    cut after its check, else site.json.bak.  `source` names the file in use,
    `fell_back` is True when it is not site.json.
    """

    def __init__(self, path: str = "site.json", files=None) -> None:
        self.path = path
        self.files = files if files is not None else OsFiles()
        self.problems: list = []
        self.source = ""
        self.fell_back = False
        self.text = ""

    def _try(self, path: str):
        try:
            raw = self.files.read(path)
        except Exception as e:  # noqa: BLE001 - EIO, EACCES, a directory: a message
            return None, "%s: cannot be read (%s: %s)" % (path, type(e).__name__, e)
        if raw is None:
            return None, "%s: missing" % path
        try:
            text = decode_text(raw)
            return config_from_text(text), text
        except ConfigError as e:
            return None, "%s: %s" % (path, e)

    def load(self) -> SiteConfig:
        """The configuration to run with; ConfigError when no file is usable at all."""
        self.problems = []
        main = self.path
        cfg, info = self._try(main)
        if cfg is not None:
            self.source = main
            self.fell_back = False
            self.text = info
            try:
                self.files.remove(main + ".tmp")  # a save that never completed
            except Exception:  # noqa: BLE001 - a read-only filesystem: harmless leftover
                pass
            try:
                bak = self.files.read(main + ".bak")
            except Exception:  # noqa: BLE001 - unreadable: written anew below
                bak = None
            if isinstance(bak, (bytes, bytearray)):
                same = bytes(bak) == info.encode()
            else:
                same = bak == info
            if not same:
                try:
                    self._write_checked(main + ".bak", info)  # keep the last good copy
                except Exception as e:  # noqa: BLE001 - a read-only or full filesystem
                    self.problems.append(
                        "%s.bak: the last good copy could not be refreshed (%s: %s)"
                        % (main, type(e).__name__, e)
                    )
            return cfg
        self.problems.append(info)
        # site.json is missing only when a save was cut between its checked temp file
        # and the rename: that temp file is the newest good one.  A damaged site.json
        # (a bad edit, a storage fault) falls back to the last good copy.
        missing = info.endswith("missing")
        for path in (main + ".tmp", main + ".bak") if missing else (main + ".bak",):
            cfg, info = self._try(path)
            if cfg is not None:
                self.source = path
                self.fell_back = True
                self.text = info
                self.problems.append("using the last good configuration from %s" % path)
                return cfg
            if not info.endswith("missing"):
                self.problems.append(info)
        raise ConfigError("", "no usable configuration: " + "; ".join(self.problems))

    def _write_checked(self, path: str, text: str) -> None:
        tmp = path + ".tmp" if not path.endswith(".tmp") else path
        self.files.write(tmp, text)
        back = self.files.read(tmp)
        if isinstance(back, (bytes, bytearray)):
            try:
                back = bytes(back).decode("utf-8")
            except UnicodeError:
                back = None
        if back != text:
            raise OSError("%s did not read back as written (storage fault)" % tmp)
        config_from_text(back)
        if tmp != path:
            self.files.rename(tmp, path)

    def save(self, obj) -> SiteConfig:
        """Validate obj, then store it atomically; returns the parsed configuration."""
        cfg = parse_config(obj)
        text = json.dumps(obj)
        self._write_checked(self.path, text)
        self._write_checked(self.path + ".bak", text)
        self.source = self.path
        self.fell_back = False
        self.text = text
        self.problems = []
        return cfg
