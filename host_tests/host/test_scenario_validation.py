"""Scenario files: every bad value gets a message naming the key and its range, never a
traceback; a fuzz over mutated scenario files proves it (docs/simulation.md,
"Scenario files")."""

from __future__ import annotations

import copy
import random
import tomllib

import pytest

from stringcare.sim import scenario as scn

BAD = [
    ("[ambient]\ntemp_c = 1000", "ambient.temp_c: 1000.0 is outside -40..70 degC"),
    ("[ambient]\ntemp_c = nan", "ambient.temp_c: nan must be a finite number"),
    ("[ambient]\ndaily_swing_k = -3", "ambient.daily_swing_k: -3 must be >= 0"),
    ("[ambient]\ntemp_c = 60\ndaily_swing_k = 24", "spans 48.0..72.0 degC, outside -40..70"),
    ("[charger]\nboost_v_per_cell = 2.2", "boost_v_per_cell: 2.2 V is below the float voltage"),
    ('[charger]\ntopology = "star"', "charger.topology: 'star' is not one of per-string"),
    ('[charger]\ntopology = "centre-tap"', "shares a charger between strings; give at least 2"),
    (
        '[battery]\nstrings = 3\n[charger]\ntopology = "centre-tap"',
        "strings in pairs (the two halves of one battery in series); 3 strings is odd",
    ),
    (
        "[battery]\nblocks = 4\n[[battery.overrides]]\nstring = 1\nblock = 2\nshort_s = -1",
        "battery.overrides[0].short_s: -1.0 is outside 0..10",
    ),
    (
        "[battery]\nblocks = 4\n[[battery.overrides]]\nstring = 1\nblock = 2\nr0_factor = 2",
        "battery.overrides[0].r0_factor: unknown block override; known: capacity_ah_factor",
    ),
    (
        "[battery]\nblocks = 4\n[[battery.overrides]]\nstring = 1\nblock = 2\nshorted_cells = 6",
        "battery.overrides[0].shorted_cells: 6 is outside 0..5",
    ),
    (
        "[battery]\nblocks = 4\n[[battery.overrides]]\nstring = 1\nblock = 2",
        "battery.overrides[0]: no change given",
    ),
    ("[battery]\nage_years = 300", "battery.age_years: 300.0 is outside 0..30 years"),
    ("[battery]\nimpaired_blocks = 2\nreference_spread = false", "set reference_spread = true"),
    (
        'duration = "2h"\n[[events]]\nat = "3h"\ntype = "mains_restore"',
        "events[0].at: 10800s is after the end of the scenario (duration 7200s)",
    ),
    (
        '[[events]]\nat = "1h"\ntype = "heat_block"\nstring = 1\nblock = 1\nwatts = 5000',
        "events[0].watts: 5000.0 is outside 0..500 W",
    ),
    (
        '[[events]]\nat = "1h"\ntype = "thermal_runaway"\nstring = 1\nblock = 1\nshort_s = -0.1',
        "events[0].short_s: -0.1 must be > 0",
    ),
    ('[[events]]\nat = "1h"\ntype = "ambient"\ntemp_c = 1000', "events[0].temp_c: 1000.0 is"),
    (
        '[battery]\nblock_type = "vrla-2v-500ah"\n[[events]]\nat = "1h"\ntype = "cell_short"\n'
        "string = 1\nblock = 1",
        "events[0].cells: 1 is outside 1..0 cells (a block keeps one)",
    ),
    ('[modules]\nvariant = "2v"', "modules.variant: '2v' does not fit the vrla-12v-40ah blocks"),
    ("[modules]\nwithout_probe = [{string = 1}]", "must be a table with exactly string and block"),
    ("[manager]\npoll_period_s = 100000", "manager.poll_period_s: 100000.0 is outside 0.1..600"),
    ("[bus]\nbit_error_ppm = 99999999", "bus.bit_error_ppm: 99999999 is outside 0..1000000"),
    ('duration = "90d"', "duration: 7776000.0 is outside 1..5184000 s (60 days)"),
    ('category = "scary"', "category: 'scary' is not one of runaway"),
    ('[[expect]]\nwhat = "event"\ntag = "ri"', "expect[0].why: say why"),
    ('[[expect]]\nwhat = "event"\ntag = "vibes"\nwhy = "x"', "expect[0].tag: 'vibes' is not one"),
    ('[[expect]]\nwhat = "trip"\nafter = "thermal_runaway"\nwhy = "x"', "has no 'thermal_runaway'"),
    ('[[expect]]\nwhat = "bleed_wh_day"\nwhy = "x"', "needs max_wh"),
]


@pytest.mark.parametrize("text, message", BAD)
def test_bad_values_name_the_key_and_the_physical_range(text: str, message: str) -> None:
    with pytest.raises(scn.ScenarioError) as err:
        scn.load_text(text, "site.toml")
    assert message in str(err.value), str(err.value)
    assert str(err.value).startswith("site.toml: ")


def test_default_scenario_has_no_hidden_impaired_blocks() -> None:
    sc = scn.load_text('name = "plain"', "plain.toml")
    assert sc.impaired_blocks == 0
    assert scn.load("float").impaired_blocks == 3  # the reference string asks for them


def test_every_variant_has_a_block_type_and_the_module_follows_it() -> None:
    for block_type, variant in scn.BLOCK_VARIANT.items():
        sc = scn.load_text('[battery]\nblock_type = "%s"' % block_type, "v.toml")
        assert sc.variant == variant
    assert set(scn.BLOCK_VARIANT.values()) == set(scn.VARIANTS)


# --------------------------------------------------------------------------- fuzz

_WEIRD = [
    -1,
    0,
    1,
    -1e300,
    1e300,
    float("nan"),
    float("inf"),
    "",
    "x",
    "1h",
    "-5m",
    True,
    [],
    {},
    [1, 2],
    {"a": 1},
    2**70,
    0.5,
    "vrla-12v-40ah",
    "centre-tap",
]


def _paths(obj, prefix=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


def _mutate(obj, rng: random.Random):
    obj = copy.deepcopy(obj)
    paths = list(_paths(obj))
    for _ in range(rng.randint(1, 3)):
        if not paths:
            break
        path = rng.choice(paths)
        parent = obj
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        action = rng.random()
        try:
            if action < 0.6:
                parent[key] = rng.choice(_WEIRD)
            elif action < 0.8 and isinstance(parent, dict):
                del parent[key]
            elif isinstance(parent, dict):
                parent[str(key) + "x"] = parent.pop(key)  # a typo
        except (KeyError, IndexError, TypeError):
            pass
        paths = list(_paths(obj))
    return obj


def test_fuzzed_scenarios_load_or_get_a_message_never_a_traceback() -> None:
    """Every built-in and library scenario, mutated 3 ways 300 times: from_dict either
    returns a scenario or raises ScenarioError (whose message names a key)."""
    rng = random.Random(11)
    bases = []
    for name in scn.builtin_names():
        path = scn.scenario_path(name)
        bases.append(tomllib.loads(path.read_text(encoding="utf-8")))
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(300):
        case = _mutate(rng.choice(bases), rng)
        try:
            scn.from_dict(case)
            outcomes["loaded"] += 1
        except scn.ScenarioError as exc:
            assert str(exc), case
            outcomes["refused"] += 1
    assert outcomes["refused"] > 100 and outcomes["loaded"] > 10, outcomes


def test_fuzzed_text_gets_a_message() -> None:
    rng = random.Random(5)
    text = scn.scenario_path("thermal-runaway").read_text(encoding="utf-8")
    for _ in range(200):
        chars = list(text)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(chars))
            chars[i] = rng.choice('=[]"\n0x-.#{}')
        try:
            scn.load_text("".join(chars), "f.toml")
        except scn.ScenarioError as exc:
            assert str(exc).startswith("f.toml: ")
