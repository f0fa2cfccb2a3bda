"""Site configuration fuzzed with hypothesis (CPython; shrinking finds the smallest
input that breaks it): whatever site.json holds, loading it gives a configuration or a
ConfigError with a message, and with a good site.json.bak beside it the manager runs on
that copy.  The deterministic corpus that also runs in MicroPython is
host_tests/dual/manager_fw/test_config_inputs.py."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from manager_fw import config as c

GOOD: dict[str, Any] = {
    "site": "A",
    "strings": [{"modules": 2, "current_sensor": 1}, {"modules": 3}],
    "window": {"low_mv": 13000, "high_mv": 14000},
    "thresholds": {"voltage_high_alarm_mv": 14800},
    "io": {
        "breaker_trip": [{"box": 1, "relay": 1, "strings": [1]}],
        "alarm_relay": {"box": 1, "relay": 4},
        "ups_input": {"source": "box", "box": 1, "input": 1},
    },
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=30,
)


class MemFiles:
    def __init__(self, files: dict) -> None:
        self.files = files

    def read(self, path: str) -> Any:
        return self.files.get(path)

    def write(self, path: str, text: str) -> None:
        self.files[path] = text

    def rename(self, old: str, new: str) -> None:
        self.files[new] = self.files.pop(old)

    def remove(self, path: str) -> None:
        self.files.pop(path, None)


def load_beside_good_copy(raw: Any) -> c.ConfigStore:
    store = c.ConfigStore(
        "site.json", MemFiles({"site.json": raw, "site.json.bak": json.dumps(GOOD)})
    )
    cfg = store.load()  # never raises here: the good copy is always there
    if store.fell_back:
        assert cfg.site == "A"
        assert store.problems[0].startswith("site.json: ") and len(store.problems[0]) > 15
    return store


def paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += paths(v, prefix + (i,))
    return out


ALL_PATHS = [p for p in paths(GOOD) if p]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes(raw: bytes) -> None:
    load_beside_good_copy(raw)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_documents(value: Any) -> None:
    load_beside_good_copy(json.dumps(value))
    try:
        c.parse_config(value)
    except c.ConfigError:
        pass


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(ALL_PATHS), json_values)
def test_a_good_configuration_with_one_value_replaced(path: tuple, value: Any) -> None:
    obj = copy.deepcopy(GOOD)
    node = obj
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    try:
        c.parse_config(obj)
    except c.ConfigError as e:
        assert "not a usable site configuration (" not in str(e), str(e)
    load_beside_good_copy(json.dumps(obj))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 3000), st.sampled_from(["[", '{"a":', '[{"b":']))
def test_deep_nesting(depth: int, opener: str) -> None:
    closer = {"[": "]", '{"a":': "}", '[{"b":': "}]"}[opener]
    store = load_beside_good_copy(opener * depth + "1" + closer * depth)
    assert store.fell_back
