"""Simulation scenarios: the file format (TOML or JSON), its validation, the built-ins.

docs/simulation.md, "Scenario files", documents every key.  A scenario describes the
battery (strings x blocks of one block type, age, spread, per-block overrides), the
charger, the ambient, the modules and manager, the bus and its faults, and a timeline
of events.  Every value is checked; an error names the key and what is allowed:

    events[2].type: 'mains_failed' is not one of mains_fail, mains_restore, ...
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUILTIN_DIR = Path(__file__).resolve().parent / "scenarios"

BLOCK_TYPES = ("vrla-12v-40ah", "vrla-12v-100ah")
VARIANTS = ("2v", "4v", "6v", "12v", "16v")
ADC_KINDS = ("rp2040", "stm32g4")
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
    "module_unplugged": {"string": ("int1", True), "block": ("int1", True)},
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
    reference_spread: bool = True  # the reference string's spread (impaired blocks)
    impaired_blocks: int = 3
    overrides: list[dict[str, Any]] = field(default_factory=list)
    float_v_per_cell: float = 2.27
    boost_v_per_cell: float = 2.40
    current_limit_a: float | None = None
    temp_comp: bool = True
    mains_hz: float = 50.0
    ambient_c: float = 25.0
    variant: str = "12v"
    adc: str = "rp2040"
    calibrated: bool = True
    unaddressed: bool = False
    equalise: bool = True
    poll_period_s: float = 10.0
    profile: str = "vrla"
    current_sensor: bool = True
    baud: int = 115200
    bit_error_ppm: int = 0
    drop_byte_ppm: int = 0
    events: list[Event] = field(default_factory=list)

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
    sc.seed = _take(obj, "seed", "", "int0", sc.seed)
    sc.duration_s = _take(obj, "duration", "", "duration", sc.duration_s)
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
    sc.reference_spread = _take(bat, "reference_spread", "battery", "bool", sc.reference_spread)
    sc.impaired_blocks = _take(bat, "impaired_blocks", "battery", "int0", sc.impaired_blocks)
    if sc.impaired_blocks > sc.blocks:
        raise ScenarioError(
            "battery.impaired_blocks: %d is more than the %d blocks of a string"
            % (sc.impaired_blocks, sc.blocks)
        )
    ovs = bat.get("overrides", [])
    if not isinstance(ovs, list):
        raise ScenarioError("battery.overrides: must be a list of tables")
    for i, ov in enumerate(ovs):
        where = "battery.overrides[%d]" % i
        if not isinstance(ov, dict) or "string" not in ov or "block" not in ov:
            raise ScenarioError("%s: needs string, block and the changes" % where)
        _check_block(sc, ov, where)
        sc.overrides.append(dict(ov))
    ch = _section(
        obj,
        "charger",
        {"float_v_per_cell", "boost_v_per_cell", "current_limit_a", "temp_comp", "mains_hz"},
    )
    sc.float_v_per_cell = _take(ch, "float_v_per_cell", "charger", "float+", sc.float_v_per_cell)
    sc.boost_v_per_cell = _take(ch, "boost_v_per_cell", "charger", "float+", sc.boost_v_per_cell)
    sc.current_limit_a = _take(ch, "current_limit_a", "charger", "float+", None)
    sc.temp_comp = _take(ch, "temp_comp", "charger", "bool", sc.temp_comp)
    sc.mains_hz = _take(ch, "mains_hz", "charger", "float+", sc.mains_hz)
    if sc.mains_hz not in (50.0, 60.0):
        raise ScenarioError("charger.mains_hz: %r must be 50 or 60" % sc.mains_hz)
    if not 2.0 <= sc.float_v_per_cell <= 2.5:
        raise ScenarioError(
            "charger.float_v_per_cell: %r is outside 2.0..2.5 V" % sc.float_v_per_cell
        )
    amb = _section(obj, "ambient", {"temp_c"})
    sc.ambient_c = _take(amb, "temp_c", "ambient", "float", sc.ambient_c)
    mod = _section(obj, "modules", {"variant", "adc", "calibrated", "unaddressed"})
    sc.variant = _choice(
        _take(mod, "variant", "modules", "str", sc.variant), "modules.variant", VARIANTS
    )
    if sc.variant != "12v":
        raise ScenarioError("modules.variant: the simulated blocks are 12 V monoblocs; use '12v'")
    sc.adc = _choice(_take(mod, "adc", "modules", "str", sc.adc), "modules.adc", ADC_KINDS)
    sc.calibrated = _take(mod, "calibrated", "modules", "bool", sc.calibrated)
    sc.unaddressed = _take(mod, "unaddressed", "modules", "bool", sc.unaddressed)
    man = _section(obj, "manager", {"equalise", "poll_period_s", "profile", "current_sensor"})
    sc.equalise = _take(man, "equalise", "manager", "bool", sc.equalise)
    sc.poll_period_s = _take(man, "poll_period_s", "manager", "float+", sc.poll_period_s)
    sc.profile = _take(man, "profile", "manager", "str", sc.profile)
    sc.current_sensor = _take(man, "current_sensor", "manager", "bool", sc.current_sensor)
    bus = _section(obj, "bus", {"baud", "bit_error_ppm", "drop_byte_ppm"})
    sc.baud = _take(bus, "baud", "bus", "int1", sc.baud)
    if sc.baud not in (9600, 19200, 38400, 57600, 115200, 230400, 460800):
        raise ScenarioError("bus.baud: %r is not a supported rate (9600 .. 460800)" % sc.baud)
    sc.bit_error_ppm = _take(bus, "bit_error_ppm", "bus", "int0", 0)
    sc.drop_byte_ppm = _take(bus, "drop_byte_ppm", "bus", "int0", 0)
    evs = obj.get("events", [])
    if not isinstance(evs, list):
        raise ScenarioError("events: must be a list of tables")
    for i, e in enumerate(evs):
        sc.events.append(_event(sc, e, "events[%d]" % i))
    sc.events.sort(key=lambda e: e.at_s)
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
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))


def load(name_or_path: str) -> Scenario:
    """A built-in scenario by name, or a .toml/.json file."""
    path = Path(name_or_path)
    if name_or_path in builtin_names():
        path = BUILTIN_DIR / (name_or_path + ".toml")
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
