# manager_fw/config: validation that names the field and its range, the address/label
# mapping, profile defaults, and storage that survives power cuts and bad edits.
import json

from dualtest import raises

from manager_fw import config as c
from shared import thresholds as th


def strings(*sizes):
    return [{"modules": n} for n in sizes]


def error_of(obj):
    return str(raises(c.ConfigError, c.parse_config, obj))


def test_errors_name_the_field_path_and_the_allowed_range():
    cases = (
        ({"strings": strings(4, 0)}, "strings[1].modules: 0 is outside 1..600"),
        ({"strings": strings(400, 201)}, "strings[1].modules: 601 modules in all is more than 600"),
        ({"strings": [{"modules": "4"}]}, 'strings[0].modules: expected a whole number in '
         '1..600, got "4"'),
        ({"strings": [{"modules": True}]}, "strings[0].modules: expected a whole number in "
         "1..600, got true"),
        ({"strings": [{}]}, "strings[0].modules: required: a whole number in 1..600"),
        ({}, "strings: required: a list of 1..16 strings"),
        ({"strings": strings(4), "silent": {"alarm_delay_s": 5}},
         "silent.alarm_delay_s: 5 is outside 10..3600"),
        ({"strings": strings(4), "baud": 100000},
         "baud: 100000 is not one of 9600, 19200, 38400, 57600, 115200, 230400, 460800"),
        ({"strings": strings(4), "chemistry": "lead"},
         'chemistry: "lead" is not one of "vrla", "gel", "flooded", "nicd", "lifepo4", "lto"'),
        ({"strings": [{"modules": 4, "modlues": 3}]},
         "strings[0].modlues: unknown field; known fields here: modules, first_address, "
         "equalise, current_sensor, name"),
        ({"strings": strings(4), "ri": {"spacing_s": 20}}, "ri.spacing_s: 20 is outside 30..50"),
        ({"strings": strings(4), "offsets": {"temp_mc": 20000}},
         "offsets.temp_mc: 20000 is outside -10000..10000"),
        ({"strings": [{"modules": 4, "current_sensor": 2}, {"modules": 4, "current_sensor": 2}]},
         "strings[1].current_sensor: sensor 2 is already used by another string (each sensor "
         "measures one string)"),
        ({"strings": [{"modules": 4}, {"modules": 4, "first_address": 3}]},
         "strings[1].first_address: 3 is outside 5..999"),
        ({"strings": [{"modules": 10, "first_address": 995}]},
         "strings[0]: addresses 995..1004 pass the last module address 999"),
        ({"strings": strings(4), "thresholds": {"spread_warning_mv": 600, "spread_alarm_mv": 500}},
         "thresholds.spread_alarm_mv: spread_alarm_mv 500 must be above spread_warning_mv 600 "
         "(levels rise: spread_warning_mv < spread_alarm_mv)"),
        ({"strings": strings(4), "thresholds": {"voltage_high_warning_mv": 15000}},
         "thresholds.voltage_high_warning_mv: voltage_high_alarm_mv 14700 must be above "
         "voltage_high_warning_mv 15000 (levels rise: voltage_low_alarm_mv < "
         "voltage_low_warning_mv < voltage_high_warning_mv < voltage_high_alarm_mv)"),
        ({"strings": strings(4), "thresholds": {"spread_warning_mv": 20}},
         "thresholds.spread_warning_mv: 20 is outside 50..1000"),
        ({"strings": strings(4), "cycle_period_ms": 10000, "target_timeout_s": 10},
         "target_timeout_s: 10 s is shorter than two measurement cycles (cycle_period_ms "
         "10000): the modules would stop balancing between two targets; raise it to at "
         "least 20"),
        ({"strings": strings(4), "window": {"low_mv": 14000, "high_mv": 13000}},
         "window: low_mv 14000 must be below high_mv 13000"),
        ({"strings": strings(4), "io": {"breaker_trip": [{"box": 1, "relay": 5}]}},
         "io.breaker_trip[0].relay: 5 is outside 1..4"),
        ({"strings": strings(4, 4), "io": {"breaker_trip": [{"box": 1, "relay": 1,
                                                              "strings": [3]}]}},
         "io.breaker_trip[0].strings[0]: 3 is outside 1..2"),
        ({"strings": strings(4), "io": {"breaker_trip": [{"box": 1, "relay": 1}],
                                        "alarm_relay": {"box": 1, "relay": 1}}},
         "io.alarm_relay: box 1 relay 1 already trips a breaker; use another relay"),
        ({"strings": strings(4), "io": {"ups_input": {"source": "box", "box": 2}}},
         "io.ups_input.input: required: a whole number in 1..4"),
        ({"strings": strings(4), "chemistry": "lifepo4", "variant": 1},
         "cells: a 4000 mV block is not a whole number of 3200 mV Lithium iron phosphate "
         "(LiFePO4) cells; give the cell count instead"),
    )  # fmt: skip
    for obj, want in cases:
        got = error_of(obj)
        assert got == want, "%s\n  got:  %s\n  want: %s" % (obj, got, want)


def test_defaults_come_from_the_chemistry_profile_and_the_block():
    cfg = c.parse_config({"strings": strings(4)})
    assert cfg.chemistry == "vrla" and cfg.variant == 3 and cfg.cells == 6
    assert (cfg.window_low_mv, cfg.window_high_mv) == (13080, 14100)
    t = cfg.thresholds
    assert t.voltage_high_warning_uv == 14100000 and t.voltage_high_alarm_uv == 14700000
    assert t.spread_warning_uv == 240000 and t.spread_alarm_uv == 480000
    assert t.temp_high_alarm_mc == 30000 and t.ri_warning_nohm == th.OFF_HIGH - 1
    assert cfg.silent_delay_s == 240 and cfg.silent_contact_delay_s == 90
    assert cfg.discharge_drop_mv == 13080  # below the float band: the charger is not holding
    assert cfg.ri_first_delay_s == 900 and cfg.ri_period_s == 86400
    assert c.parse_config({"strings": strings(4), "chemistry": "nicd"}).cells == 10
    assert c.parse_config({"strings": strings(4), "chemistry": "lifepo4"}).cells == 4
    assert c.parse_config({"strings": strings(4), "variant": 0, "chemistry": "lto"}).cells == 1
    cfg = c.parse_config(
        {
            "strings": strings(4),
            "thresholds": {"ri_baseline_nohm": 15000000, "voltage_high_warning_mv": 14200},
            "offsets": {"ri_nohm": 120000, "temp_mc": -500},
        }
    )
    assert cfg.thresholds.voltage_high_warning_uv == 14200000
    assert cfg.thresholds.ri_warning_nohm == 23400000  # SPEC rule: +30 % over mean +20 %
    assert cfg.ri_offset_nohm == 120000 and cfg.temp_offset_mc == -500


def test_addresses_labels_and_module_indices_in_one_place():
    cfg = c.parse_config(
        {
            "numbering": "per_string",
            "strings": [{"modules": 3}, {"modules": 2, "first_address": 101}, {"modules": 4}],
        }
    )
    lay = cfg.layout
    assert lay.ranges == [(1, 3), (101, 102), (103, 106)]
    assert lay.module_count == 9 and lay.max_address == 106
    assert [lay.address(i) for i in range(9)] == [1, 2, 3, 101, 102, 103, 104, 105, 106]
    assert list(lay.addresses) == [1, 2, 3, 101, 102, 103, 104, 105, 106]
    assert [lay.module(a) for a in (1, 3, 4, 100, 101, 106, 107, 0)] == [0, 2, -1, -1, 3, 8, -1, -1]
    assert [lay.label(i) for i in (0, 2, 3, 4, 5, 8)] == ["1S1", "3S1", "1S2", "2S2", "1S3", "4S3"]
    assert lay.string_of(4) == 1 and lay.position(4) == 1
    assert lay.find("4S3") == 8 and lay.find("2s2") == 4 and lay.find("5S3") == -1
    assert lay.address_label(104) == "2S3" and lay.address_label(50) == "address 50"
    cons = c.parse_config({"strings": strings(3, 2)}).layout
    assert [cons.label(i) for i in range(5)] == ["1", "2", "3", "4", "5"]
    assert cons.find("17") == -1 and cons.find("4") == 3 and cons.address(3) == 4


def test_io_mapping():
    cfg = c.parse_config(
        {
            "strings": strings(4, 4, 4),
            "io": {
                "breaker_trip": [
                    {"box": 2, "relay": 1, "strings": [1, 3]},
                    {"box": 3, "relay": 4},
                ],
                "alarm_relay": {"box": 2, "relay": 2},
                "ups_input": {"source": "box", "box": 5, "input": 3, "active": "open"},
            },
        }
    )
    assert cfg.breaker_relays == [(2, 0, 0b101), (3, 3, 0b111)]
    assert (cfg.alarm_box, cfg.alarm_relay) == (2, 1)
    assert (cfg.ups_source, cfg.ups_box, cfg.ups_input) == (c.UPS_BOX, 5, 2)
    assert not cfg.ups_active_closed and cfg.ups_strings_mask == 0b111
    assert cfg.boxes == [2, 3, 5]


# --------------------------------------------------------------------------- storage


class MemFiles:
    """Files in RAM; cut_after(n): the n+1-th operation fails as a power cut would (a
    write then leaves the first half of the new text)."""

    def __init__(self):
        self.files = {}
        self.budget = -1
        self.operations = 0

    def _op(self):
        self.operations += 1
        if self.budget == 0:
            self.budget = -2
            return False
        if self.budget == -2:
            raise OSError("unpowered")
        if self.budget > 0:
            self.budget -= 1
        return True

    def read(self, path):
        return self.files.get(path)

    def write(self, path, text):
        if not self._op():
            self.files[path] = text[: len(text) // 2]
            raise OSError("power cut while writing %s" % path)
        self.files[path] = text

    def rename(self, old, new):
        if not self._op():
            raise OSError("power cut before renaming %s" % old)
        self.files[new] = self.files.pop(old)

    def remove(self, path):
        if not self._op():
            raise OSError("power cut before removing %s" % path)
        self.files.pop(path, None)


def site(name, modules=4):
    return {"site": name, "strings": strings(modules)}


def test_save_then_load():
    files = MemFiles()
    store = c.ConfigStore("site.json", files)
    raises(c.ConfigError, store.load)
    store.save(site("A"))
    cfg = c.ConfigStore("site.json", files).load()
    assert cfg.site == "A"
    assert sorted(files.files) == ["site.json", "site.json.bak"]
    e = raises(c.ConfigError, store.save, {"strings": strings(0)})
    assert str(e) == "strings[0].modules: 0 is outside 1..600"
    assert c.ConfigStore("site.json", files).load().site == "A"  # nothing was written


def test_a_power_cut_at_any_step_of_a_save_keeps_a_good_configuration():
    base = MemFiles()
    c.ConfigStore("site.json", base).save(site("A"))
    steps = 0
    while True:
        files = MemFiles()
        files.files = dict(base.files)
        files.budget = steps
        store = c.ConfigStore("site.json", files)
        try:
            store.save(site("B", 6))
            finished = True
        except OSError:
            finished = False
        files.budget = -1
        reloaded = c.ConfigStore("site.json", files)
        cfg = reloaded.load()
        assert cfg.site in ("A", "B"), steps
        assert (cfg.site == "B") == (cfg.layout.module_count == 6)
        if finished:
            assert cfg.site == "B"
            break
        steps += 1
    assert steps >= 4  # write, rename, and the backup's write and rename were all cut


def test_a_corrupt_file_is_reported_and_the_last_good_one_kept():
    files = MemFiles()
    c.ConfigStore("site.json", files).save(site("A"))
    files.files["site.json"] = '{"site": "B", "strings": [{"modules": 4}'  # cut short edit
    store = c.ConfigStore("site.json", files)
    cfg = store.load()
    assert cfg.site == "A" and store.fell_back and store.source == "site.json.bak"
    assert store.problems[0].startswith("site.json: not valid JSON")
    assert store.problems[1] == "using the last good configuration from site.json.bak"
    # a file that parses but is invalid: the message names the field
    files.files["site.json"] = json.dumps({"site": "C", "strings": strings(700)})
    store = c.ConfigStore("site.json", files)
    assert store.load().site == "A"
    assert store.problems[0] == "site.json: strings[0].modules: 700 is outside 1..600"
    # a good file again: it becomes the last good copy
    files.files["site.json"] = json.dumps(site("D"))
    assert c.ConfigStore("site.json", files).load().site == "D"
    assert json.loads(files.files["site.json.bak"])["site"] == "D"


def test_no_usable_file_says_what_each_one_lacks():
    files = MemFiles()
    files.files["site.json"] = "[]"
    e = raises(c.ConfigError, c.ConfigStore("site.json", files).load)
    assert str(e) == ("no usable configuration: site.json: expected an object {...}, got a list")


def test_files_on_the_interpreters_filesystem():
    import os
    import sys

    try:
        os.mkdir("build")
    except OSError:
        pass
    path = "build/test-site-%s.json" % sys.implementation.name
    for suffix in ("", ".bak", ".tmp", ".bak.tmp"):
        try:
            os.remove(path + suffix)
        except OSError:
            pass
    store = c.ConfigStore(path)
    store.save(site("A"))
    store.save(site("B"))
    assert c.ConfigStore(path).load().site == "B"
    with open(path, "w") as f:
        f.write("{")
    store = c.ConfigStore(path)
    assert store.load().site == "B" and store.source == path + ".bak"
