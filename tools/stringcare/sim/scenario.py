"""Simulation scenarios: the file format (TOML or JSON), its validation, the built-ins.

docs/simulation.md, "Scenario files", documents every key.  A scenario describes the
battery (strings x blocks of one block type, age, spread, per-block overrides), the
charger, the ambient, the modules and manager, the bus and its faults, and a timeline
of events.  Every value is checked; an error names the key and what is allowed:

    events[2].type: 'mains_failed' is not one of mains_fail, mains_restore, ...
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stringcare.sim import params as prm

BUILTIN_DIR = Path(__file__).resolve().parent / "scenarios"
# The scenario library (docs/scenarios.md): cases with expectations, run by the bench.
LIBRARY_DIR = BUILTIN_DIR / "library"

BLOCK_TYPES = (
    "vrla-12v-40ah",
    "vrla-12v-100ah",
    "vrla-2v-500ah",
    "vrla-4v-200ah",
    "vrla-6v-200ah",
    "vrla-16v-40ah",
)
# the module variant that fits each block type (SPEC §1)
BLOCK_VARIANT = {
    "vrla-12v-40ah": "12v",
    "vrla-12v-100ah": "12v",
    "vrla-2v-500ah": "2v",
    "vrla-4v-200ah": "4v",
    "vrla-6v-200ah": "6v",
    "vrla-16v-40ah": "16v",
}
BLOCK_CELLS = {"2v": 1, "4v": 2, "6v": 3, "12v": 6, "16v": 8}
VARIANTS = ("2v", "4v", "6v", "12v", "16v")
TOPOLOGIES = ("per-string", "parallel", "centre-tap")
# Physical ranges of the settings (a value outside is a typo or a unit mistake).
AMBIENT_RANGE_C = (-40.0, 70.0)
AGE_RANGE_YEARS = (0.0, 30.0)
MAX_DURATION_S = 60 * 86400.0
MAX_HEATER_W = 500.0  # more than a block can shed without burning: not a heater
MAX_SHORT_S = 10.0  # 10 S: a 12 V block's short would draw 130 A
MAX_LOAD_W = 2.0e6
# Block overrides: key -> (kind, low, high); factors multiply the drawn value.
OVERRIDE_KEYS: dict[str, tuple[str, float, float]] = {
    "capacity_ah_factor": ("float", 0.01, 10.0),
    "r0_ohm_factor": ("float", 0.1, 100.0),
    "r1_ohm_factor": ("float", 0.1, 100.0),
    "float_current_a_factor": ("float", 0.001, 1000.0),
    "thermal_resistance_k_per_w_factor": ("float", 0.1, 10.0),
    "thermal_capacity_j_per_k_factor": ("float", 0.1, 10.0),
    "short_s": ("float", 0.0, MAX_SHORT_S),
    "initial_soc": ("float", 0.0, 1.0),
    "age_years": ("float", 0.0, 30.0),
    "to_age_years": ("float", 0.0, 30.0),
    "tafel_v_per_decade_per_cell": ("float", 0.05, 0.3),
    "bleed_heat_fraction": ("float", 0.0, 1.0),
    "short_temp_coeff_per_k": ("float", 0.0, 0.2),
    "recombination_factor": ("float", 0.001, 1.0),
    "shorted_cells": ("int", 0.0, 7.0),
}
ADC_KINDS = ("rp2040", "stm32g4")
# The block-voltage converter (shared.frontend.VADC_NAMES): the MCU's ADC or the
# ADS1219 board option (docs/frontend.md, "External block-voltage converter").
VADC_NAMES = ("mcu", "ads1219")
EVENT_TYPES = {
    # type: {key: (kind, required)}
    "mains_fail": {"load_w": ("float+", True)},
    "mains_restore": {},
    "boost": {"on": ("bool", True)},
    "ambient": {"temp_c": ("float", True)},
    "heat_block": {"string": ("int1", True), "block": ("int1", True), "watts": ("float0", True)},
    "block_replaced": {
        "string": ("int1", True),
        "block": ("int1", True),
        "age_years": ("float0", False),
        "soc": ("frac", False),
        "new_module": ("bool", False),
    },
    "block_aged": {
        "string": ("int1", True),
        "block": ("int1", True),
        "to_age_years": ("float0", True),
    },
    "thermal_runaway": {
        "string": ("int1", True),
        "block": ("int1", True),
        "short_s": ("float+", False),
    },
    "cell_short": {"string": ("int1", True), "block": ("int1", True), "cells": ("int1", False)},
    "module_unplugged": {"string": ("int1", True), "block": ("int1", True)},
    # the module's battery probe comes off its block and reads the air beside it
    "probe_detached": {"string": ("int1", True), "block": ("int1", True)},
    "module_replugged": {"string": ("int1", True), "block": ("int1", True)},
    "noise_burst": {"duration": ("duration", True)},
    "balancing": {"on": ("bool", True)},
    "ups_signal": {"on": ("bool", True)},
}


class ScenarioError(ValueError):
    """A scenario file or value that cannot be used; the message names the key."""


def parse_duration(text: Any, key: str = "duration") -> float:
    """'90s', '15m', '24h', '2d', '1h30m' or a number of seconds -> seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        if not math.isfinite(text):
            raise ScenarioError("%s: %r must be a finite number of seconds" % (key, text))
        if text < 0:
            raise ScenarioError("%s: %r must not be negative" % (key, text))
        return float(text)
    if not isinstance(text, str):
        raise ScenarioError("%s: %r is not a duration like '90s', '15m', '24h', '2d'" % (key, text))
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhd])", text.strip().lower())
    if not parts or "".join(a + b for a, b in parts) != re.sub(r"\s+", "", text.lower()):
        raise ScenarioError("%s: %r is not a duration like '90s', '15m', '24h', '2d'" % (key, text))
    scale = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return float(sum(float(n) * scale[u] for n, u in parts))


@dataclass
class Event:
    at_s: float
    type: str
    args: dict[str, Any]

    def describe(self) -> str:
        extra = ", ".join("%s=%s" % kv for kv in sorted(self.args.items()))
        return "%s%s" % (self.type, " (%s)" % extra if extra else "")


@dataclass
class Scenario:
    name: str = "custom"
    description: str = ""
    seed: int = 1
    duration_s: float = 86400.0
    strings: int = 1
    blocks: int = 16
    block_type: str = "vrla-12v-40ah"
    age_years: float = 5.0
    reference_spread: bool = True  # the manufacturing and ageing spread between blocks
    impaired_blocks: int = 0  # blocks per string with an impaired oxygen cycle (float high)
    overrides: list[dict[str, Any]] = field(default_factory=list)
    float_v_per_cell: float = prm.FLOAT_REF_V_PER_CELL  # the VRLA profile's
    boost_v_per_cell: float = prm.BOOST_V_PER_CELL
    current_limit_a: float | None = None
    temp_comp: bool = True
    mains_hz: float = 50.0
    topology: str = "per-string"  # one charger per string, or shared: parallel, centre-tap
    ambient_c: float = 25.0
    daily_swing_k: float = 0.0  # peak-to-peak daily swing of the room temperature
    swing_peak_s: float = 15 * 3600.0  # time of day of the warmest hour
    rack_gradient_k: float = 0.0  # top block minus bottom block of every string
    variant: str = "12v"
    probes: bool = True  # every module has its probe on the battery
    without_probe: list[tuple[int, int]] = field(default_factory=list)  # (string, block), 1-based
    adc: str = "rp2040"
    vadc: str = "mcu"
    calibrated: bool = True
    unaddressed: bool = False
    equalise: bool = True
    poll_period_s: float = 10.0
    profile: str = "vrla"
    current_sensor: bool = True
    hold_wh_day: int = -1  # balance.hold_wh_day of the site (-1: the default, 0: none)
    baud: int = 115200
    bit_error_ppm: int = 0
    drop_byte_ppm: int = 0
    events: list[Event] = field(default_factory=list)
    expect: list[dict[str, Any]] = field(default_factory=list)  # see stringcare.sim.judge
    source: str = ""  # where the scenario's case comes from (library: required)
    rationale: str = ""
    category: str = ""  # library: runaway, false-alarm, ri, balance, discharge, site

    @property
    def modules(self) -> int:
        return self.strings * self.blocks


_TOP = {
    "name",
    "description",
    "seed",
    "duration",
    "battery",
    "charger",
    "ambient",
    "modules",
    "manager",
    "bus",
    "events",
    "expect",
    "source",
    "rationale",
    "category",
}


def _take(obj: dict[str, Any], key: str, path: str, kind: str, default: Any) -> Any:
    if key not in obj:
        return default
    v = obj[key]
    where = "%s.%s" % (path, key) if path else key
    if kind == "int1":
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ScenarioError("%s: %r must be a whole number >= 1" % (where, v))
        return v
    if kind == "int0":
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ScenarioError("%s: %r must be a whole number >= 0" % (where, v))
        return v
    if kind in ("float", "float0", "float+", "frac"):
        if not isinstance(v, int | float) or isinstance(v, bool):
            raise ScenarioError("%s: %r must be a number" % (where, v))
        if not math.isfinite(v):
            raise ScenarioError("%s: %r must be a finite number" % (where, v))
        if kind == "float0" and v < 0:
            raise ScenarioError("%s: %r must be >= 0" % (where, v))
        if kind == "float+" and v <= 0:
            raise ScenarioError("%s: %r must be > 0" % (where, v))
        if kind == "frac" and not 0 <= v <= 1:
            raise ScenarioError("%s: %r must be between 0 and 1" % (where, v))
        return float(v)
    if kind == "bool":
        if not isinstance(v, bool):
            raise ScenarioError("%s: %r must be true or false" % (where, v))
        return v
    if kind == "str":
        if not isinstance(v, str):
            raise ScenarioError("%s: %r must be a text" % (where, v))
        return v
    if kind == "duration":
        return parse_duration(v, where)
    raise AssertionError(kind)


def _section(obj: dict[str, Any], key: str, allowed: set[str]) -> dict[str, Any]:
    sec = obj.get(key, {})
    if not isinstance(sec, dict):
        raise ScenarioError("%s: must be a table of settings, got %r" % (key, sec))
    unknown = sorted(set(sec) - allowed)
    if unknown:
        raise ScenarioError(
            "%s.%s: unknown setting; known: %s" % (key, unknown[0], ", ".join(sorted(allowed)))
        )
    return sec


def _choice(value: str, where: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ScenarioError("%s: %r is not one of %s" % (where, value, ", ".join(choices)))
    return value


def _in_range(value: float, where: str, low: float, high: float, unit: str = "") -> float:
    if not low <= value <= high:
        raise ScenarioError(
            "%s: %r is outside %s..%s%s (a physical range: a typo or a wrong unit?)"
            % (where, value, _num(low), _num(high), (" " + unit) if unit else "")
        )
    return value


def _num(x: float) -> str:
    return "%d" % x if float(x).is_integer() else "%g" % x


def from_dict(obj: dict[str, Any]) -> Scenario:
    if not isinstance(obj, dict):
        raise ScenarioError("a scenario is a table of settings, got %r" % type(obj).__name__)
    unknown = sorted(set(obj) - _TOP)
    if unknown:
        raise ScenarioError(
            "%s: unknown setting; known: %s" % (unknown[0], ", ".join(sorted(_TOP)))
        )
    sc = Scenario()
    sc.name = _take(obj, "name", "", "str", sc.name)
    sc.description = _take(obj, "description", "", "str", "")
    sc.source = _take(obj, "source", "", "str", "")
    sc.rationale = _take(obj, "rationale", "", "str", "")
    if "category" in obj:
        from stringcare.sim.judge import CATEGORIES

        sc.category = _choice(_take(obj, "category", "", "str", ""), "category", CATEGORIES)
    sc.seed = _take(obj, "seed", "", "int0", sc.seed)
    _in_range(sc.seed, "seed", 0, 2**31 - 1)
    sc.duration_s = _take(obj, "duration", "", "duration", sc.duration_s)
    _in_range(sc.duration_s, "duration", 1.0, MAX_DURATION_S, "s (60 days)")
    bat = _section(
        obj,
        "battery",
        {
            "strings",
            "blocks",
            "block_type",
            "age_years",
            "reference_spread",
            "impaired_blocks",
            "overrides",
        },
    )
    sc.strings = _take(bat, "strings", "battery", "int1", sc.strings)
    sc.blocks = _take(bat, "blocks", "battery", "int1", sc.blocks)
    if sc.strings > 16 or sc.blocks * sc.strings > 600:
        raise ScenarioError(
            "battery: %d strings x %d blocks; a manager runs at most 16 strings and 600 "
            "modules" % (sc.strings, sc.blocks)
        )
    sc.block_type = _choice(
        _take(bat, "block_type", "battery", "str", sc.block_type), "battery.block_type", BLOCK_TYPES
    )
    sc.age_years = _take(bat, "age_years", "battery", "float0", sc.age_years)
    _in_range(sc.age_years, "battery.age_years", *AGE_RANGE_YEARS, unit="years")
    sc.reference_spread = _take(bat, "reference_spread", "battery", "bool", sc.reference_spread)
    sc.impaired_blocks = _take(bat, "impaired_blocks", "battery", "int0", sc.impaired_blocks)
    if sc.impaired_blocks > sc.blocks:
        raise ScenarioError(
            "battery.impaired_blocks: %d is more than the %d blocks of a string"
            % (sc.impaired_blocks, sc.blocks)
        )
    if sc.impaired_blocks and not sc.reference_spread:
        raise ScenarioError(
            "battery.impaired_blocks: impaired blocks are part of the drawn spread; "
            "set reference_spread = true or impaired_blocks = 0"
        )
    ovs = bat.get("overrides", [])
    if not isinstance(ovs, list):
        raise ScenarioError("battery.overrides: must be a list of tables")
    cells = BLOCK_CELLS[BLOCK_VARIANT[sc.block_type]]
    for i, ov in enumerate(ovs):
        where = "battery.overrides[%d]" % i
        if not isinstance(ov, dict) or "string" not in ov or "block" not in ov:
            raise ScenarioError("%s: needs string, block and the changes" % where)
        _check_block(sc, ov, where)
        changes = {k: v for k, v in ov.items() if k not in ("string", "block")}
        if not changes:
            raise ScenarioError(
                "%s: no change given (known: %s)" % (where, ", ".join(OVERRIDE_KEYS))
            )
        for key, value in changes.items():
            if key not in OVERRIDE_KEYS:
                raise ScenarioError(
                    "%s.%s: unknown block override; known: %s"
                    % (where, key, ", ".join(OVERRIDE_KEYS))
                )
            kind, low, high = OVERRIDE_KEYS[key]
            if key == "shorted_cells":
                high = cells - 1
            value = _take(ov, key, where, "int0" if kind == "int" else "float", None)
            _in_range(value, "%s.%s" % (where, key), low, high)
        sc.overrides.append(dict(ov))
    ch = _section(
        obj,
        "charger",
        {
            "float_v_per_cell",
            "boost_v_per_cell",
            "current_limit_a",
            "temp_comp",
            "mains_hz",
            "topology",
        },
    )
    sc.float_v_per_cell = _take(ch, "float_v_per_cell", "charger", "float+", sc.float_v_per_cell)
    sc.boost_v_per_cell = _take(ch, "boost_v_per_cell", "charger", "float+", sc.boost_v_per_cell)
    sc.current_limit_a = _take(ch, "current_limit_a", "charger", "float+", None)
    if sc.current_limit_a is not None:
        _in_range(sc.current_limit_a, "charger.current_limit_a", 0.01, 5000.0, "A")
    sc.temp_comp = _take(ch, "temp_comp", "charger", "bool", sc.temp_comp)
    sc.mains_hz = _take(ch, "mains_hz", "charger", "float+", sc.mains_hz)
    if sc.mains_hz not in (50.0, 60.0):
        raise ScenarioError("charger.mains_hz: %r must be 50 or 60" % sc.mains_hz)
    if not 2.0 <= sc.float_v_per_cell <= 2.5:
        raise ScenarioError(
            "charger.float_v_per_cell: %r is outside 2.0..2.5 V" % sc.float_v_per_cell
        )
    _in_range(sc.boost_v_per_cell, "charger.boost_v_per_cell", 2.0, 2.6, "V")
    if sc.boost_v_per_cell < sc.float_v_per_cell:
        raise ScenarioError(
            "charger.boost_v_per_cell: %r V is below the float voltage %r V; boost charges "
            "above float" % (sc.boost_v_per_cell, sc.float_v_per_cell)
        )
    sc.topology = _choice(
        _take(ch, "topology", "charger", "str", sc.topology), "charger.topology", TOPOLOGIES
    )
    if sc.topology != "per-string" and sc.strings < 2:
        raise ScenarioError(
            "charger.topology: %r shares a charger between strings; give at least 2 strings"
            % sc.topology
        )
    if sc.topology == "centre-tap" and sc.strings % 2:
        raise ScenarioError(
            "charger.topology: a centre-tapped UPS has its strings in pairs (the two halves "
            "of one battery in series); %d strings is odd" % sc.strings
        )
    amb = _section(obj, "ambient", {"temp_c", "daily_swing_k", "swing_peak_at", "rack_gradient_k"})
    sc.ambient_c = _take(amb, "temp_c", "ambient", "float", sc.ambient_c)
    _in_range(sc.ambient_c, "ambient.temp_c", *AMBIENT_RANGE_C, unit="degC")
    sc.daily_swing_k = _take(amb, "daily_swing_k", "ambient", "float0", 0.0)
    _in_range(sc.daily_swing_k, "ambient.daily_swing_k", 0.0, 25.0, "K")
    sc.swing_peak_s = _take(amb, "swing_peak_at", "ambient", "duration", sc.swing_peak_s)
    _in_range(sc.swing_peak_s, "ambient.swing_peak_at", 0.0, 86400.0, "s (a time of day)")
    sc.rack_gradient_k = _take(amb, "rack_gradient_k", "ambient", "float", 0.0)
    _in_range(sc.rack_gradient_k, "ambient.rack_gradient_k", -15.0, 15.0, "K")
    hi_c = sc.ambient_c + sc.daily_swing_k / 2 + abs(sc.rack_gradient_k) / 2
    lo_c = sc.ambient_c - sc.daily_swing_k / 2 - abs(sc.rack_gradient_k) / 2
    if hi_c > AMBIENT_RANGE_C[1] or lo_c < AMBIENT_RANGE_C[0]:
        raise ScenarioError(
            "ambient: temp_c with its swing and gradient spans %.1f..%.1f degC, outside "
            "%g..%g" % (lo_c, hi_c, *AMBIENT_RANGE_C)
        )
    mod = _section(
        obj,
        "modules",
        {"variant", "adc", "vadc", "calibrated", "unaddressed", "probes", "without_probe"},
    )
    fit = BLOCK_VARIANT[sc.block_type]
    sc.variant = _choice(_take(mod, "variant", "modules", "str", fit), "modules.variant", VARIANTS)
    if sc.variant != fit:
        raise ScenarioError(
            "modules.variant: %r does not fit the %s blocks; their modules are %r"
            % (sc.variant, sc.block_type, fit)
        )
    sc.adc = _choice(_take(mod, "adc", "modules", "str", sc.adc), "modules.adc", ADC_KINDS)
    sc.vadc = _choice(_take(mod, "vadc", "modules", "str", sc.vadc), "modules.vadc", VADC_NAMES)
    sc.calibrated = _take(mod, "calibrated", "modules", "bool", sc.calibrated)
    sc.unaddressed = _take(mod, "unaddressed", "modules", "bool", sc.unaddressed)
    sc.probes = _take(mod, "probes", "modules", "bool", sc.probes)
    wp = mod.get("without_probe", [])
    if not isinstance(wp, list):
        raise ScenarioError("modules.without_probe: must be a list of {string, block} tables")
    for i, item in enumerate(wp):
        where = "modules.without_probe[%d]" % i
        if not isinstance(item, dict) or set(item) != {"string", "block"}:
            raise ScenarioError("%s: must be a table with exactly string and block" % where)
        _check_block(sc, item, where)
        sc.without_probe.append((item["string"], item["block"]))
    man = _section(
        obj, "manager", {"equalise", "poll_period_s", "profile", "current_sensor", "hold_wh_day"}
    )
    sc.equalise = _take(man, "equalise", "manager", "bool", sc.equalise)
    sc.poll_period_s = _take(man, "poll_period_s", "manager", "float+", sc.poll_period_s)
    _in_range(sc.poll_period_s, "manager.poll_period_s", 0.1, 600.0, "s")
    sc.profile = _take(man, "profile", "manager", "str", sc.profile)
    sc.current_sensor = _take(man, "current_sensor", "manager", "bool", sc.current_sensor)
    if "hold_wh_day" in man:
        sc.hold_wh_day = _take(man, "hold_wh_day", "manager", "int0", 0)
        _in_range(sc.hold_wh_day, "manager.hold_wh_day", 0, 100000, "Wh")
    bus = _section(obj, "bus", {"baud", "bit_error_ppm", "drop_byte_ppm"})
    sc.baud = _take(bus, "baud", "bus", "int1", sc.baud)
    if sc.baud not in (9600, 19200, 38400, 57600, 115200, 230400, 460800):
        raise ScenarioError("bus.baud: %r is not a supported rate (9600 .. 460800)" % sc.baud)
    sc.bit_error_ppm = _take(bus, "bit_error_ppm", "bus", "int0", 0)
    _in_range(sc.bit_error_ppm, "bus.bit_error_ppm", 0, 1000000, "ppm")
    sc.drop_byte_ppm = _take(bus, "drop_byte_ppm", "bus", "int0", 0)
    _in_range(sc.drop_byte_ppm, "bus.drop_byte_ppm", 0, 1000000, "ppm")
    evs = obj.get("events", [])
    if not isinstance(evs, list):
        raise ScenarioError("events: must be a list of tables")
    for i, e in enumerate(evs):
        sc.events.append(_event(sc, e, "events[%d]" % i))
    sc.events.sort(key=lambda e: e.at_s)
    exp = obj.get("expect", [])
    if not isinstance(exp, list):
        raise ScenarioError("expect: must be a list of tables")
    from stringcare.sim import judge  # the checks know their own keys

    for i, e in enumerate(exp):
        sc.expect.append(judge.check_expectation(sc, e, "expect[%d]" % i, ScenarioError))
    return sc


def _check_block(sc: Scenario, obj: dict[str, Any], where: str) -> None:
    s = _take(obj, "string", where, "int1", 1)
    b = _take(obj, "block", where, "int1", 1)
    if s > sc.strings or b > sc.blocks:
        raise ScenarioError(
            "%s: block %d of string %d does not exist (%d strings of %d blocks)"
            % (where, b, s, sc.strings, sc.blocks)
        )


def _event(sc: Scenario, e: Any, where: str) -> Event:
    if not isinstance(e, dict):
        raise ScenarioError("%s: must be a table with 'at' and 'type'" % where)
    if "at" not in e or "type" not in e:
        raise ScenarioError("%s: needs 'at' (e.g. '2h') and 'type'" % where)
    at = parse_duration(e["at"], where + ".at")
    kind = _choice(e["type"], where + ".type", tuple(EVENT_TYPES))
    spec = EVENT_TYPES[kind]
    unknown = sorted(set(e) - {"at", "type"} - set(spec))
    if unknown:
        raise ScenarioError(
            "%s.%s: not a setting of %s events (allowed: %s)"
            % (where, unknown[0], kind, ", ".join(sorted(spec)) or "none")
        )
    args: dict[str, Any] = {}
    for key, (vk, required) in spec.items():
        if key not in e:
            if required:
                raise ScenarioError("%s: a %s event needs '%s'" % (where, kind, key))
            continue
        args[key] = _take(e, key, where, vk, None)
    if "string" in args:
        _check_block(sc, args, where)
    if kind == "cell_short":
        args.setdefault("cells", 1)
    if at > sc.duration_s:
        raise ScenarioError(
            "%s.at: %gs is after the end of the scenario (duration %gs); it would never "
            "happen" % (where, at, sc.duration_s)
        )
    limits = {
        "load_w": (0.0, MAX_LOAD_W, "W"),
        "temp_c": (AMBIENT_RANGE_C[0], AMBIENT_RANGE_C[1], "degC"),
        "watts": (0.0, MAX_HEATER_W, "W"),
        "short_s": (0.0, MAX_SHORT_S, "S"),
        "age_years": (AGE_RANGE_YEARS[0], AGE_RANGE_YEARS[1], "years"),
        "to_age_years": (AGE_RANGE_YEARS[0], AGE_RANGE_YEARS[1], "years"),
        "duration": (0.0, 86400.0, "s"),
        "cells": (1, BLOCK_CELLS[sc.variant] - 1, "cells (a block keeps one)"),
    }
    for key, (low, high, unit) in limits.items():
        if key in args:
            _in_range(args[key], "%s.%s" % (where, key), low, high, unit)
    return Event(at, kind, args)


def load_text(text: str, source: str) -> Scenario:
    try:
        if source.endswith(".json"):
            obj = json.loads(text)
        else:
            obj = tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(
            "%s: not valid %s: %s" % (source, "JSON" if source.endswith(".json") else "TOML", exc)
        ) from None
    try:
        return from_dict(obj)
    except ScenarioError as exc:
        raise ScenarioError("%s: %s" % (source, exc)) from None


def builtin_names() -> list[str]:
    return sorted(p.stem for d in (BUILTIN_DIR, LIBRARY_DIR) for p in d.glob("*.toml"))


def library_names() -> list[str]:
    return sorted(p.stem for p in LIBRARY_DIR.glob("*.toml"))


def scenario_path(name: str) -> Path:
    """The file of a built-in or library scenario."""
    for d in (BUILTIN_DIR, LIBRARY_DIR):
        path = d / (name + ".toml")
        if path.exists():
            return path
    raise ScenarioError("no built-in scenario %r (%s)" % (name, ", ".join(builtin_names())))


def load(name_or_path: str) -> Scenario:
    """A built-in scenario by name, or a .toml/.json file."""
    path = Path(name_or_path)
    if name_or_path in builtin_names():
        path = scenario_path(name_or_path)
    elif not path.exists():
        raise ScenarioError(
            "no scenario %r: give a built-in name (%s) or a .toml/.json file"
            % (name_or_path, ", ".join(builtin_names()))
        )
    if path.suffix not in (".toml", ".json"):
        raise ScenarioError("%s: scenario files are .toml or .json" % path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError("%s: cannot read: %s" % (path, exc)) from None
    return load_text(text, str(path))
