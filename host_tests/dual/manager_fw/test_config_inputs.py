# Every input gives a message, never a traceback (docs/manager.md, "Bad input"): a
# deterministic corpus of broken site.json files - arbitrary bytes, non-UTF-8, deep
# nesting, huge files, every field replaced by a value of each wrong type - goes
# through ConfigStore.load on both interpreters; each is refused with a ConfigError that
# names the problem and the last good copy is used, recorded in `problems`.  Cross-field
# checks: levels the module variant can never measure, a window without the float
# voltage, warnings that fire at float.  Hypothesis does the same with random inputs on
# CPython (host_tests/host/test_config_hypothesis.py).
import json

from dualtest import LCG, raises

from manager_fw import config as c

GOOD = {
    "site": "A",
    "variant": 3,
    "strings": [{"modules": 2, "current_sensor": 1, "name": "S1"}, {"modules": 3}],
    "window": {"low_mv": 13000, "high_mv": 14000},
    "thresholds": {"voltage_high_alarm_mv": 14800, "temp_high_alarm_mc": 35000},
    "offsets": {"temp_mc": -300},
    "silent": {"alarm_delay_s": 240},
    "ri": {"enabled": True, "period_s": 86400},
    "discharge": {"current_ma": 2000},
    "runaway": {"enabled": False},
    "io": {
        "breaker_trip": [{"box": 1, "relay": 1, "strings": [1]}],
        "alarm_relay": {"box": 1, "relay": 4},
        "ups_input": {"source": "box", "box": 1, "input": 1, "active": "closed"},
    },
}
WRONG = (None, True, False, "x", "", [], [1], {}, {"a": 1}, 1.5, -1, 0, 2**40, -(2**40))


class MemFiles:
    def __init__(self, files):
        self.files = files

    def read(self, path):
        return self.files.get(path)

    def write(self, path, text):
        self.files[path] = text

    def rename(self, old, new):
        self.files[new] = self.files.pop(old)

    def remove(self, path):
        self.files.pop(path, None)


def load(raw):
    """site.json = raw (bytes or text) beside a good site.json.bak: (cfg, problems)."""
    files = MemFiles({"site.json": raw, "site.json.bak": json.dumps(GOOD)})
    store = c.ConfigStore("site.json", files)
    cfg = store.load()
    return cfg, store


def refused(raw):
    cfg, store = load(raw)
    assert store.fell_back and cfg.site == "A", store.problems
    assert store.problems[-1] == "using the last good configuration from site.json.bak"
    text = store.problems[0]
    assert text.startswith("site.json: ") and len(text) > 20, text
    # a message about the input, not about the parser's insides
    assert "not a usable site configuration (" not in text, text
    return text


def _leaves(obj, path):
    """(path, container, key) of every value in a JSON object."""
    out = []
    if isinstance(obj, dict):
        for k in obj:
            out.append((path + [k], obj, k))
            out += _leaves(obj[k], path + [k])
    elif isinstance(obj, list):
        for i in range(len(obj)):
            out.append((path + [i], obj, i))
            out += _leaves(obj[i], path + [i])
    return out


def test_the_good_configuration_loads():
    cfg, store = load(json.dumps(GOOD))
    assert not store.fell_back and cfg.layout.module_count == 5


def test_every_field_of_each_wrong_type_gives_a_message_naming_it():
    base = json.dumps(GOOD)
    named = 0
    cases = 0
    for path, _parent, _key in _leaves(json.loads(base), []):
        for wrong in WRONG:
            obj = json.loads(base)
            node = obj
            for k in path[:-1]:
                node = node[k]
            if node[path[-1]] == wrong and type(node[path[-1]]) is type(wrong):
                continue
            node[path[-1]] = wrong
            try:
                c.parse_config(obj)
                continue  # some replacements are valid (null: the default)
            except c.ConfigError:
                pass
            cases += 1
            text = refused(json.dumps(obj))
            last = path[-1]
            if (last if isinstance(last, str) else "[%d]" % last) in text:
                named += 1
    assert cases > 300, cases
    assert named == cases, (named, cases)  # the field is always named


def test_bytes_nesting_and_sizes_never_raise_anything_else():
    assert "not UTF-8" in refused(b'{"site": "caf\xe9", "strings": [{"modules": 2}]}')
    assert "offset 13" in refused(b'{"site": "caf\xe9", "strings": [{"modules": 2}]}')
    assert "byte 0xff at offset 16" in refused('{"site": "caf\u00e9 '.encode() + b'\xff"}')
    assert "nested" in refused("[" * 60000)
    assert "nested" in refused('{"a":' * 5000 + "1" + "}" * 5000)
    assert "too large" in refused(b" " * 70000 + b"{}")
    assert "too large" in refused('{"site": "' + "x" * 70000 + '"}')
    assert "JSON" in refused(b"")
    assert "JSON" in refused(b"\x00\x01\x02")
    assert "JSON" in refused('{"strings": [{"modules": 2}]')
    assert "expected an object" in refused("null")
    assert "expected an object" in refused("[]")
    assert "expected" in refused('{"strings": 1e400}')
    assert "expected" in refused('{"strings": [{"modules": 1e400}]}')
    # a string with brackets inside does not count as nesting
    cfg, store = load(json.dumps({"site": "[[[[[[[[[[[[[[[[[[[[", "strings": [{"modules": 1}]}))
    assert not store.fell_back
    rnd = LCG(12)
    for _ in range(200):
        refused(bytes(rnd.bytes(rnd.below(200))))
    good = json.dumps(GOOD).encode()
    for _ in range(300):  # one byte of a good file changed
        raw = bytearray(good)
        raw[rnd.below(len(raw))] = rnd.below(256)
        try:
            load(bytes(raw))
        except c.ConfigError as e:  # only when .bak is unusable: never here
            raise AssertionError(str(e)) from None


def test_no_last_good_copy_is_a_message_too():
    files = MemFiles({"site.json": b"\xff\xfe"})
    e = raises(c.ConfigError, c.ConfigStore("site.json", files).load)
    assert "not UTF-8" in str(e) and "no usable configuration" in str(e)


def _error(obj):
    try:
        c.parse_config(obj)
    except c.ConfigError as e:
        return str(e)
    raise AssertionError("accepted: %r" % obj)


def test_levels_the_module_can_never_measure_are_refused():
    s = [{"modules": 2}]
    # a 30 V alarm on a 12 V block: the module measures 8-17 V
    e = _error({"variant": 3, "strings": s, "thresholds": {"voltage_high_alarm_mv": 30000}})
    assert e.startswith("thresholds.voltage_high_alarm_mv: 30000 mV can never be measured")
    assert "12 V block module (variant 3) measures 8000..17000 mV" in e
    # a 2 V cell module with the thresholds of a 12 V block
    e = _error({"variant": 0, "cells": 6, "strings": s})
    assert e.startswith("cells: 6 VRLA") and "700..6000 mV" in e, e
    e = _error({"variant": 0, "strings": s, "thresholds": {"voltage_high_warning_mv": 14400,
                "voltage_high_alarm_mv": 14700}})  # fmt: skip
    assert e.startswith("thresholds.voltage_high_warning_mv: 14400 mV can never be measured")
    # a 0.5-30 V equalising window
    e = _error({"strings": s, "window": {"low_mv": 500, "high_mv": 30000}})
    assert e.startswith("window.low_mv: equalising window low_mv 500 mV is outside")
    assert "8000..17000" in e
    e = _error({"variant": 4, "strings": s, "window": {"low_mv": 10000, "high_mv": 30000}})
    assert e.startswith("window.high_mv") and "9700..21000" in e, e
    # against the chemistry: float charge must lie inside the window and between warnings
    e = _error({"strings": s, "window": {"low_mv": 13000, "high_mv": 13500}})
    assert e.startswith("window: 13000..13500 mV does not hold the float voltage") and "13620" in e
    e = _error({"strings": s, "thresholds": {"voltage_high_warning_mv": 13500}})
    assert e.startswith("thresholds.voltage_high_warning_mv: 13500 mV is at or below")
    assert "every block would warn" in e
    e = _error({"strings": s, "thresholds": {"voltage_low_alarm_mv": 13700,
                "voltage_low_warning_mv": 13800, "voltage_high_warning_mv": 14100}})  # fmt: skip
    assert e.startswith("thresholds.voltage_low_warning_mv: 13800 mV is at or above"), e


def test_every_chemistry_on_its_variants_passes_the_cross_checks():
    from manager_fw import profiles as pr

    ok = 0
    for p in pr.PROFILES:
        for v in range(5):
            try:
                c.parse_config({"chemistry": p.key, "variant": v, "strings": [{"modules": 1}]})
                ok += 1
            except c.ConfigError as e:
                # only block sizes that are no whole number of cells
                assert str(e).startswith("cells: a "), str(e)
    assert ok >= 27
