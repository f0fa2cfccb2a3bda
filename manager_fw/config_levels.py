# Threshold levels of a site configuration: the chemistry profile's defaults, the
# operator's overrides (thresholds.*), their order, and the checks across fields (a level
# the module's variant can never measure, a window that never holds float charge).

from manager_fw import profiles as prof
from manager_fw.config_schema import THRESHOLD_FIELDS, check_rising, opt_int
from manager_fw.site import ConfigError, SiteConfig
from shared import thresholds as th

# levels that must rise, in this order (the error names the first that does not), and
# the scale from live units (µV, m°C) to the unit in their names
RISING = (
    (
        ("voltage_low_alarm_mv", "voltage_low_warning_mv", "voltage_high_warning_mv",
         "voltage_high_alarm_mv"),
        1000,
    ),
    (("discharge_low_alarm_mv", "discharge_low_warning_mv", "voltage_high_warning_mv"), 1000),
    (("temp_low_alarm_mc", "temp_low_warning_mc", "temp_high_warning_mc", "temp_high_alarm_mc"), 1),
    (("spread_warning_mv", "spread_alarm_mv"), 1000),
)  # fmt: skip


def level(cur: dict, base, key: str) -> int:
    """The level `key` in live units (µV for *_mv, m°C for *_mc): the operator's value
    when given, else the profile's (base, a ThresholdSet)."""
    v = cur[key]
    if key.endswith("_mv"):
        return getattr(base, key[:-3] + "_uv") if v is None else v * 1000
    return getattr(base, key) if v is None else v


def _levels(cur: dict, base, keys) -> list:
    return [level(cur, base, k) for k in keys]


def thresholds_from(cfg: SiteConfig, profile, t: dict) -> dict:
    """cfg.thresholds from the profile and the section `thresholds` (t); returns what the
    operator gave, per field (None: the profile's)."""
    base = prof.thresholds_for(profile, cfg.cells)
    cur = {}
    for key, low, high in THRESHOLD_FIELDS:
        cur[key] = opt_int(t, key, "thresholds", low, high)
    for names, scale in RISING:
        check_rising(tuple((n, level(cur, base, n)) for n in names), cur, scale)
    ts = base.copy()
    _set_levels(ts, cur, base)
    _set_ri(cfg, ts, cur)
    if cur["confirm_samples"] is not None:
        ts.set_confirm_samples(cur["confirm_samples"])
    cfg.thresholds = ts
    return cur


def _set_levels(ts, cur: dict, base) -> None:
    try:
        ts.set_voltage(
            *_levels(
                cur,
                base,
                (
                    "voltage_low_alarm_mv",
                    "voltage_low_warning_mv",
                    "voltage_high_warning_mv",
                    "voltage_high_alarm_mv",
                    "voltage_hysteresis_mv",
                ),
            )  # fmt: skip
        )
        ts.set_discharge_voltage(
            *_levels(cur, base, ("discharge_low_alarm_mv", "discharge_low_warning_mv"))
        )
    except ValueError as e:
        raise ConfigError("thresholds", "voltage levels: %s" % e) from None
    try:
        ts.set_temperature(
            *_levels(
                cur,
                base,
                (
                    "temp_low_alarm_mc",
                    "temp_low_warning_mc",
                    "temp_high_warning_mc",
                    "temp_high_alarm_mc",
                    "temp_hysteresis_mc",
                ),
            )  # fmt: skip
        )
    except ValueError as e:
        raise ConfigError("thresholds", "temperature levels: %s" % e) from None
    try:
        ts.set_spread(
            *_levels(cur, base, ("spread_warning_mv", "spread_alarm_mv", "spread_hysteresis_mv"))
        )
    except ValueError as e:
        raise ConfigError("thresholds", "maximum voltage difference: %s" % e) from None


def _set_ri(cfg: SiteConfig, ts, cur: dict) -> None:
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


# voltage levels checked against what the module measures and the chemistry's float
VOLTAGE_LEVELS = (
    ("voltage_low_alarm_mv", "voltage_low_alarm_uv"),
    ("voltage_low_warning_mv", "voltage_low_warning_uv"),
    ("voltage_high_warning_mv", "voltage_high_warning_uv"),
    ("voltage_high_alarm_mv", "voltage_high_alarm_uv"),
    ("discharge_low_alarm_mv", "discharge_low_alarm_uv"),
    ("discharge_low_warning_mv", "discharge_low_warning_uv"),
)


def cross_checks(cfg: SiteConfig, profile, given: dict, cells_given: bool, window: dict) -> None:
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
    _check_float(cfg, given, block)


def _check_float(cfg: SiteConfig, given: dict, block: str) -> None:
    """The window holds the float voltage; no warning or alarm level fires at float."""
    ts: th.ThresholdSet = cfg.thresholds  # type: ignore[assignment]
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
