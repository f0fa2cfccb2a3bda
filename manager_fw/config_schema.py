# The site configuration's schema: limits, the field tables of every section (key, low,
# high, default: docs/manager.md is their reference, host_tests/dual/manager_fw/
# test_config.py keeps the two in step), and the readers that take one field out of the
# JSON object with a message naming its path and range.  Parsing is manager_fw/config.py
# (manager_fw/config_parse.py section by section), threshold levels
# manager_fw/config_levels.py, the files manager_fw/config_store.py.

from manager_fw.site import ConfigError
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
    ("hold_wh_day", 0, 100000, None),
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


def known(obj, keys, path: str) -> None:
    if not isinstance(obj, dict):
        raise ConfigError(path, "expected an object {...}, got %s" % show(obj))
    for k in obj:
        if k not in keys:
            raise ConfigError(
                join_path(path, str(k)), "unknown field; known fields here: %s" % ", ".join(keys)
            )


def join_path(path: str, key: str) -> str:
    return key if not path else path + "." + key


def show(value) -> str:
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


def field_int(obj, key: str, path: str, low: int, high: int, default):
    """obj[key] as an int in low..high; default when absent (None: required)."""
    fp = join_path(path, key)
    if key not in obj or obj[key] is None:
        if default is None:
            raise ConfigError(fp, "required: a whole number in %d..%d" % (low, high))
        return default
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(fp, "expected a whole number in %d..%d, got %s" % (low, high, show(v)))
    if v < low or v > high:
        raise ConfigError(fp, "%d is outside %d..%d" % (v, low, high))
    return v


def opt_int(obj, key: str, path: str, low: int, high: int):
    """obj[key] in low..high, or None when absent or null."""
    if key not in obj or obj[key] is None:
        return None
    return field_int(obj, key, path, low, high, 0)


def field_bool(obj, key: str, path: str, default: bool) -> bool:
    if key not in obj:
        return default
    v = obj[key]
    if v is not True and v is not False:
        raise ConfigError(join_path(path, key), "expected true or false, got %s" % show(v))
    return v


def field_text(obj, key: str, path: str, max_len: int, default: str) -> str:
    if key not in obj or obj[key] is None:
        return default
    v = obj[key]
    if not isinstance(v, str):
        raise ConfigError(join_path(path, key), "expected a text, got %s" % show(v))
    if len(v) > max_len:
        raise ConfigError(
            join_path(path, key), "%d characters is too long (at most %d)" % (len(v), max_len)
        )
    return v


def choice(obj, key: str, path: str, choices, default):
    if key not in obj or obj[key] is None:
        return default
    v = obj[key]
    if v not in choices:
        raise ConfigError(
            join_path(path, key),
            "%s is not one of %s" % (show(v), ", ".join(show(c) for c in choices)),
        )
    return v


def section(obj, key: str, keys) -> dict:
    if key not in obj or obj[key] is None:
        return {}
    known(obj[key], keys, key)
    return obj[key]


def field_keys(fields) -> tuple:
    return tuple(f[0] for f in fields)


def strings_mask(obj, key: str, path: str, count: int) -> int:
    """A list of 1-based string numbers as a bit mask; absent: every string."""
    full = (1 << count) - 1
    if key not in obj or obj[key] is None:
        return full
    v = obj[key]
    fp = join_path(path, key)
    if not isinstance(v, list) or not v:
        raise ConfigError(fp, "expected a list of string numbers 1..%d" % count)
    mask = 0
    for j in range(len(v)):
        n = v[j]
        if isinstance(n, bool) or not isinstance(n, int):
            raise ConfigError("%s[%d]" % (fp, j), "expected a string number, got %s" % show(n))
        if n < 1 or n > count:
            raise ConfigError("%s[%d]" % (fp, j), "%d is outside 1..%d" % (n, count))
        mask |= 1 << (n - 1)
    return mask


def box_relay(obj, path: str):
    known(obj, ("box", "relay", "strings"), path)
    box = field_int(obj, "box", path, 1, RELAY_BOXES_MAX, None)
    relay = field_int(obj, "relay", path, 1, RELAYS_PER_BOX, None)
    return box, relay - 1


def check_rising(levels, given, scale: int) -> None:
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
