# The site configuration of a manager: strings and their modules, numbering, block type
# and chemistry, thresholds, offsets, delays, Ri schedule, discharge sources, thermal
# runaway, relay/IO box mapping.  JSON on both interpreters; docs/manager.md is the
# reference of every field (a host test keeps the two in step).
#
#   cfg = parse_config(json.loads(text))   # SiteConfig, or ConfigError naming the field
#   cfg = config_from_text(raw)             # bytes or text: size, UTF-8, nesting, JSON
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
# The pieces: this file parses, section by section; manager_fw/config_schema.py holds
# the limits, the field tables and the field readers; manager_fw/config_levels.py the
# threshold levels and the checks across fields; manager_fw/config_store.py the files
# (power-safe save, last-good fallback).  A board drops all of them after start-up
# (PARSER_MODULES); the address <-> (string, position) <-> label mapping lives in
# manager_fw/site.py Layout, and only there.

import json

from manager_fw import profiles as prof
from manager_fw.config_levels import cross_checks, thresholds_from
from manager_fw.config_schema import (  # noqa: F401 - re-exported: the schema's names
    BALANCE_FIELDS,
    BAUDS,
    CURRENT_SENSORS_MAX,
    DISCHARGE_FIELDS,
    FORMAT,
    INPUTS_PER_BOX,
    IO_KEYS,
    MODULES_MAX,
    NUMBERING,
    OFFSET_FIELDS,
    RELAY_BOXES_MAX,
    RELAYS_PER_BOX,
    RI_FIELDS,
    RUNAWAY_FIELDS,
    SILENT_FIELDS,
    STRING_KEYS,
    STRINGS_MAX,
    THRESHOLD_FIELDS,
    TOP_KEYS,
    WINDOW_FIELDS,
    box_relay,
    choice,
    field_bool,
    field_int,
    field_keys,
    field_text,
    known,
    opt_int,
    section,
    strings_mask,
)
from manager_fw.config_store import (  # noqa: F401 - re-exported
    MAX_TEXT_BYTES,
    ConfigStore,
    OsFiles,
)
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
from shared.compat import const

# what a board drops from sys.modules once the configuration is parsed (docs/manager.md,
# "Memory"): manager_fw/site.py is all the core keeps
PARSER_MODULES = ("config", "config_schema", "config_levels", "profiles")


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
    known(obj, TOP_KEYS, "")
    cfg = SiteConfig()
    cfg.source = obj
    field_int(obj, "format", "", FORMAT, FORMAT, FORMAT)
    cfg.site = field_text(obj, "site", "", 40, "")
    cfg.baud = choice(obj, "baud", "", BAUDS, 115200)
    cfg.numbering = NUMBERING.index(choice(obj, "numbering", "", NUMBERING, NUMBERING[0]))
    profile, block = _parse_block(obj, cfg)
    _parse_strings(obj, cfg)
    _parse_timing(obj, cfg)
    w = section(obj, "window", field_keys(WINDOW_FIELDS))
    cfg.window_low_mv = field_int(w, "low_mv", "window", 500, 30000, block.window_low_uv // 1000)
    cfg.window_high_mv = field_int(w, "high_mv", "window", 500, 30000, block.window_high_uv // 1000)
    if cfg.window_low_mv >= cfg.window_high_mv:
        raise ConfigError(
            "window",
            "low_mv %d must be below high_mv %d" % (cfg.window_low_mv, cfg.window_high_mv),
        )
    given = thresholds_from(
        cfg, profile, section(obj, "thresholds", tuple(f[0] for f in THRESHOLD_FIELDS))
    )
    cross_checks(cfg, profile, given, obj.get("cells") is not None, w)
    _parse_delays(obj, cfg)
    _parse_ri(obj, cfg)
    _parse_discharge_runaway(obj, cfg, profile)
    bs = section(obj, "balance", field_keys(BALANCE_FIELDS))
    cfg.balance_max_wh_day = field_int(bs, "max_wh_day", "balance", 0, 100000, -1)  # -1: derived
    cfg.balance_give_up_s = field_int(bs, "give_up_s", "balance", 3600, 1209600, 14400)
    cfg.balance_hold_wh_day = field_int(bs, "hold_wh_day", "balance", 0, 100000, -1)  # -1: derived
    io = section(obj, "io", IO_KEYS)
    count = cfg.layout.string_count
    _parse_relays(io, cfg, count)
    if io.get("ups_input") is not None:
        _parse_ups(io["ups_input"], cfg, count)
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


def _parse_block(obj, cfg: SiteConfig):
    """Chemistry, variant and cells: (the chemistry profile, the block's settings)."""
    keys = tuple(pr.key for pr in prof.PROFILES)
    profile = prof.profile(choice(obj, "chemistry", "", keys, "vrla"))
    cfg.chemistry = profile.key
    cfg.chemistry_name = profile.name
    cfg.variant = field_int(obj, "variant", "", 0, len(VARIANT_NOMINAL_MV) - 1, 3)
    cells = opt_int(obj, "cells", "", 1, 16)
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
    return profile, block


def _parse_strings(obj, cfg: SiteConfig) -> None:
    """strings[]: modules, addresses, equalising, current sensors, names; the Layout."""
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
    for k in range(len(strings)):
        sp = "strings[%d]" % k
        s = strings[k]
        known(s, STRING_KEYS, sp)
        n = field_int(s, "modules", sp, 1, MODULES_MAX, None)
        first = field_int(s, "first_address", sp, next_first, p.ADDR_MODULE_MAX, next_first)
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
        cfg.equalise.append(field_bool(s, "equalise", sp, True))
        cfg.current_sensor.append(_sensor(s, sp, cfg.current_sensor))
        cfg.string_names.append(field_text(s, "name", sp, 24, ""))
    cfg.layout = Layout(sizes, firsts, cfg.numbering)


def _sensor(s, sp: str, taken) -> int:
    """strings[k].current_sensor: 1..8, used by one string only; 0 for none."""
    sensor = opt_int(s, "current_sensor", sp, 1, CURRENT_SENSORS_MAX)
    if sensor is None:
        return 0
    if sensor in taken:
        raise ConfigError(
            sp + ".current_sensor",
            "sensor %d is already used by another string (each sensor measures one string)"
            % sensor,
        )
    return sensor


def _parse_timing(obj, cfg: SiteConfig) -> None:
    cfg.cycle_period_ms = field_int(obj, "cycle_period_ms", "", 0, 60000, 0)
    cfg.target_timeout_s = field_int(obj, "target_timeout_s", "", 2, 120, 10)
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


def _parse_delays(obj, cfg: SiteConfig) -> None:
    """offsets and silent modules."""
    o = section(obj, "offsets", field_keys(OFFSET_FIELDS))
    cfg.ri_offset_nohm = field_int(o, "ri_nohm", "offsets", -10000000, 10000000, 0)
    cfg.temp_offset_mc = field_int(o, "temp_mc", "offsets", -10000, 10000, 0)
    s = section(obj, "silent", field_keys(SILENT_FIELDS))
    vals = [field_int(s, f[0], "silent", f[1], f[2], f[3]) for f in SILENT_FIELDS]
    cfg.silent_delay_s, cfg.silent_contact_delay_s = vals


def _parse_ri(obj, cfg: SiteConfig) -> None:
    r = section(obj, "ri", ("enabled",) + field_keys(RI_FIELDS))
    cfg.ri_enabled = field_bool(r, "enabled", "ri", True)
    vals = [field_int(r, f[0], "ri", f[1], f[2], f[3]) for f in RI_FIELDS]
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


def _parse_discharge_runaway(obj, cfg: SiteConfig, profile) -> None:
    d = section(obj, "discharge", field_keys(DISCHARGE_FIELDS))
    drop_default = profile.low_warning_uv * cfg.cells // 1000
    vals = [
        field_int(d, f[0], "discharge", f[1], f[2], drop_default if f[3] is None else f[3])
        for f in DISCHARGE_FIELDS
    ]
    (
        cfg.discharge_drop_mv,
        cfg.discharge_current_ma,
        cfg.discharge_confirm_cycles,
        cfg.discharge_end_s,
        cfg.discharge_recovery_s,
        cfg.recharge_max_s,
    ) = vals
    rw = section(obj, "runaway", ("enabled",) + field_keys(RUNAWAY_FIELDS))
    cfg.runaway_enabled = field_bool(rw, "enabled", "runaway", True)
    vals = [field_int(rw, f[0], "runaway", f[1], f[2], f[3] or 0) for f in RUNAWAY_FIELDS]
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
        cfg.runaway_sag_mv = 5 * cfg.cells  # 5 mV per cell (docs/judgement.md)


def _parse_relays(io, cfg: SiteConfig, count: int) -> None:
    """io.breaker_trip[] and io.alarm_relay: no relay serves twice."""
    trips = io.get("breaker_trip") or []
    if not isinstance(trips, list):
        raise ConfigError("io.breaker_trip", "expected a list of {box, relay, strings}")
    used = []
    for j in range(len(trips)):
        tp = "io.breaker_trip[%d]" % j
        box, relay = box_relay(trips[j], tp)
        if (box, relay) in used:
            raise ConfigError(tp, "box %d relay %d is listed twice" % (box, relay + 1))
        used.append((box, relay))
        cfg.breaker_relays.append((box, relay, strings_mask(trips[j], "strings", tp, count)))
    if io.get("alarm_relay") is None:
        return
    ap = "io.alarm_relay"
    known(io["alarm_relay"], ("box", "relay", "strings"), ap)
    if "strings" in io["alarm_relay"]:
        raise ConfigError(ap + ".strings", "the alarm relay serves the whole site")
    box, relay = box_relay(io["alarm_relay"], ap)
    if (box, relay) in used:
        raise ConfigError(
            ap, "box %d relay %d already trips a breaker; use another relay" % (box, relay + 1)
        )
    cfg.alarm_box = box
    cfg.alarm_relay = relay


def _parse_ups(u, cfg: SiteConfig, count: int) -> None:
    up = "io.ups_input"
    known(u, ("source", "box", "input", "active", "strings"), up)
    src = choice(u, "source", up, ("board", "box"), None)
    if src is None:
        raise ConfigError(up + ".source", 'required: "board" or "box"')
    if src == "box":
        cfg.ups_source = UPS_BOX
        cfg.ups_box = field_int(u, "box", up, 1, RELAY_BOXES_MAX, None)
        cfg.ups_input = field_int(u, "input", up, 1, INPUTS_PER_BOX, None) - 1
    else:
        cfg.ups_source = UPS_BOARD
        for key in ("box", "input"):
            if key in u:
                raise ConfigError(up + "." + key, 'only for "source": "box"')
    cfg.ups_active_closed = choice(u, "active", up, ("closed", "open"), "closed") == "closed"
    cfg.ups_strings_mask = strings_mask(u, "strings", up, count)


# --------------------------------------------------------------------------- text

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
