"""Manager core scenarios too large for the 192 KB MicroPython heap, on CPython: the
real history store and event log on files, a 600-module site in 10 strings, the Ri
timeline over a day, and the configuration reference in docs/manager.md."""

from __future__ import annotations

import re

from corefixture import START_S, Site
from host_support import REPO

from manager_fw import config as c
from manager_fw import events as ev
from manager_fw import poller as pl
from manager_fw.history_store import HistoryReader
from manager_fw.jobs.census import CENSUS_OK
from shared import history as hi


def test_history_store_and_event_log_on_files_through_the_core() -> None:
    site = Site(
        sizes=(3, 3),
        history_kb=64,
        events_kb=16,
        config={"io": {"ups_input": {"source": "board"}}, "numbering": "per_string"},
    )
    site.start()
    core = site.core
    site.run_until_s(START_S + 2500)
    site.modules[4].voltage_mv = 13700
    core.set_ups_input(True)
    site.run_s(40)
    core.set_ups_input(False)
    site.run_s(200)
    snaps = []
    reader = HistoryReader(site.history_dev)
    for s in reader.snapshots():
        snaps.append((s.time_s - START_S, s.mode, list(s.voltage_mv), s.label(4)))
    assert not reader.problems
    t0 = snaps[0][0]
    assert [s[0] - t0 for s in snaps[:3]] == [0, 1200, 2400]
    assert {s[1] for s in snaps} == {hi.MODE_FLOAT, hi.MODE_DISCHARGE, hi.MODE_RECOVERY}
    assert snaps[-1][2][4] == 13700 and snaps[-1][3] == "2S2"
    assert core.history is not None and core.history.snapshots_written == len(snaps)
    codes = [e[1] for e in site.events()]
    assert codes[:3] == [ev.EV_STARTUP, ev.EV_BUS_POWER, ev.EV_CENSUS]
    # the UPS input serves both strings: each has its discharge
    assert codes.count(ev.EV_DISCHARGE_START) == 2 and codes.count(ev.EV_DISCHARGE_END) == 2


def test_600_modules_in_10_strings() -> None:
    site = Site(
        sizes=(60,) * 10,
        fast_bus=True,
        config={"cycle_period_ms": 0, "silent": {"alarm_delay_s": 30, "contact_delay_s": 20}},
    )
    site.start(limit_s=60)
    core = site.core
    assert core.mode_name() == "running" and core.census_counts() == (600, 0, 0)
    census = site.events(ev.EV_CENSUS)[0][0]
    assert census <= 6  # 3 s of WAKE, then 600 INFO requests in about 2 s
    site.run_s(10)
    # back to back cycles of 600 modules take the wire time of docs/protocol.md §9
    assert 0.95 < core.poller.last_cycle_us / 1e6 < 1.05
    assert all(core.census[i] == CENSUS_OK for i in range(600))
    assert all(core.poller.state[a] == pl.ST_OK for a in range(1, 601))
    assert all(m.target_flags == 1 for m in site.modules)  # every string equalises
    site.unplug(345)  # block 346: string 6
    silent_at = None
    for _ in range(60):
        site.run_s(1)
        if silent_at is None and core.outputs.buzzer:
            silent_at = site.now_s()
    assert silent_at is not None
    assert silent_at - core.silence.last_ok_s[346] in (30, 31)  # cycle granularity ~1 s
    assert list(core.strings.equalising) == [1, 1, 1, 1, 1, 0, 1, 1, 1, 1]
    assert not core.outputs.relay_energised  # 20 s later the contact


def test_ri_timeline_of_the_spec_over_a_day() -> None:
    # The four rounds of the first hour, then the first daily one a day after the
    # last (a virtual day and an hour; the second daily round, 2 days on, is no longer
    # run: the same daily rescheduling, 15 CPU-s more)
    site = Site(
        sizes=(5, 5),
        fast_bus=True,
        config={"ri": {"enabled": True}, "cycle_period_ms": 10000, "target_timeout_s": 30},
    )
    site.shell.step_us = 1000000  # a virtual day: look at the core once a second
    site.start()
    site.run_until_s(START_S + 86400 + 4000)
    starts = site.ri_starts
    rounds = [t for t, i in starts if i == 0]
    want = [900, 1800, 2700, 3600, 3600 + 86400]
    # (the test looks at the modules once a second: a start shows up to 1 s late)
    assert len(rounds) == len(want)
    assert all(0 <= r - w <= 1 for r, w in zip(rounds, want, strict=True))
    # one module at a time, every module in each round, 30-50 s apart
    for r in range(len(rounds)):
        batch = starts[10 * r : 10 * r + 10]
        assert [i for _t, i in batch] == list(range(10))
        gaps = [batch[j + 1][0] - batch[j][0] for j in range(9)]
        assert all(30 <= g <= 50 for g in gaps), gaps
    assert len(site.events(ev.EV_RI_MEASURED)) == 50


def _reference(doc: str) -> str:
    """The configuration reference section of docs/manager.md."""
    return doc.split("## Configuration reference", 1)[1].split("### Storage", 1)[0]


def _documented_fields(doc: str) -> set[str]:
    return set(re.findall(r"^\| `([a-z0-9_.\[\]]+)` \|", _reference(doc), re.M))


def test_every_configuration_field_is_documented() -> None:
    doc = (REPO / "docs" / "manager.md").read_text()
    documented = _documented_fields(doc)
    wanted = {
        k
        for k in c.TOP_KEYS
        if k
        not in (
            "strings",
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
    }
    wanted |= {"strings[]." + k for k in c.STRING_KEYS}
    for section, fields in (
        ("window", c.WINDOW_FIELDS),
        ("offsets", c.OFFSET_FIELDS),
        ("silent", c.SILENT_FIELDS),
        ("ri", c.RI_FIELDS),
        ("discharge", c.DISCHARGE_FIELDS),
        ("runaway", c.RUNAWAY_FIELDS),
        ("balance", c.BALANCE_FIELDS),
    ):
        wanted |= {"%s.%s" % (section, f[0]) for f in fields}
    wanted |= {"ri.enabled", "runaway.enabled"}
    wanted |= {"thresholds." + f[0] for f in c.THRESHOLD_FIELDS}
    wanted |= {"io.breaker_trip[].box", "io.breaker_trip[].relay", "io.breaker_trip[].strings",
               "io.alarm_relay.box", "io.alarm_relay.relay", "io.ups_input.source",
               "io.ups_input.box", "io.ups_input.input", "io.ups_input.active",
               "io.ups_input.strings"}  # fmt: skip
    missing = sorted(wanted - documented)
    assert not missing, "docs/manager.md does not describe: %s" % ", ".join(missing)
    extra = sorted(documented - wanted)
    assert not extra, "docs/manager.md describes fields the parser does not know: %s" % extra


def test_documented_ranges_and_defaults_match_the_parser() -> None:
    doc = (REPO / "docs" / "manager.md").read_text()
    rows = {}
    row = r"^\| `([a-z0-9_.\[\]]+)` \|\s*([^|]*?)\s*\|\s*([^|]*?)\s*\|\s*([^|]*?)\s*\|"
    for m in re.finditer(row, _reference(doc), re.M):
        rows[m.group(1)] = (m.group(2).strip(), m.group(3).strip(), m.group(4).strip())
    for section, fields in (
        ("silent", c.SILENT_FIELDS),
        ("ri", c.RI_FIELDS),
        ("discharge", c.DISCHARGE_FIELDS),
        ("runaway", c.RUNAWAY_FIELDS),
        ("balance", c.BALANCE_FIELDS),
        ("offsets", c.OFFSET_FIELDS),
    ):
        for key, low, high, default in fields:
            _unit, allowed, dflt = rows["%s.%s" % (section, key)]
            assert allowed == "%d … %d" % (low, high), (section, key, allowed)
            if default is not None:
                assert dflt == str(default), (section, key, dflt)


class Files:
    def __init__(self) -> None:
        self.files: dict[str, str] = {}

    def read(self, path: str) -> str | None:
        return self.files.get(path)

    def write(self, path: str, text: str) -> None:
        self.files[path] = text

    def rename(self, old: str, new: str) -> None:
        self.files[new] = self.files.pop(old)

    def remove(self, path: str) -> None:
        self.files.pop(path, None)


def test_configuration_events_and_a_fallback_shown_as_a_problem() -> None:
    files = Files()
    store = c.ConfigStore("site.json", files)
    store.save({"site": "A", "strings": [{"modules": 2}]})
    files.files["site.json"] = '{"site": "B", "strings": [{"modules": 0}]}'
    store = c.ConfigStore("site.json", files)
    cfg = store.load()
    site = Site(sizes=(2,), events_kb=16)
    core = site.core
    assert cfg.site == "A"
    core.config_loaded(START_S + 1, store)
    store.save({"site": "C", "strings": [{"modules": 2}]})
    core.config_saved(START_S + 2, store)
    config = [(e[0], e[5]) for e in site.events(ev.EV_CONFIG)]
    assert config == [(1, ev.CFG_LOADED), (1, ev.CFG_FALLBACK), (2, ev.CFG_SAVED)]
    assert core.problems == [
        "site.json: strings[0].modules: 0 is outside 1..600",
        "using the last good configuration from site.json.bak",
    ]
    site.start()
    site.run_s(2)
    assert core.outputs.led == 1  # a problem is a warning: the alarm LED blinks


def test_the_configuration_example_in_the_docs_is_valid() -> None:
    doc = (REPO / "docs" / "manager.md").read_text()
    example = re.search(r"```json\n(.*?)\n```", doc, re.S)
    assert example, "docs/manager.md has a ```json example"
    cfg = c.config_from_text(example.group(1))
    assert cfg.layout.module_count > 0
