"""The judgement's host side: the Ri baseline file (manager_fw/ri_store.py) on a real
filesystem, the `stringcare manager --rebaseline-ri` route, the event texts."""

from __future__ import annotations

from pathlib import Path

import pytest

from manager_fw import balance_limits as bl
from manager_fw import config
from manager_fw import events as mev
from manager_fw.ri_judge import RiJudge
from manager_fw.ri_store import RiStore
from stringcare.commands.manager import _rebaseline_module
from stringcare.errors import CliError
from stringcare_host.status import describe


def _judge() -> RiJudge:
    return RiJudge(bytearray(4), [(0, 3)])


def test_the_baseline_file_round_trips_and_survives_a_cut_before_the_rename(
    tmp_path: Path,
) -> None:
    j = _judge()
    for _ in range(4):
        for i in range(4):
            j.add(i, 4000000 + i)
    store = RiStore(str(tmp_path / "ri_baselines.bin"))
    assert store.load() is None
    store.save(j.encode())
    k = _judge()
    assert k.decode(store.load()) == "" and list(k.baseline_nohm) == list(j.baseline_nohm)
    # a save cut after its checked temporary file: the temporary file is taken
    (tmp_path / "ri_baselines.bin").rename(tmp_path / "ri_baselines.bin.tmp")
    assert _judge().decode(store.load()) == ""
    # a damaged file is refused with a reason, nothing is taken
    (tmp_path / "ri_baselines.bin").write_bytes(b"\x01\x04\x00garbage")
    m = _judge()
    assert "damaged" in m.decode(store.load()) and m.baseline_nohm[0] == 0


def test_rebaseline_route_takes_a_label_or_all_and_names_a_bad_one() -> None:
    cfg = config.simple_config([3, 2], numbering="per_string")
    assert _rebaseline_module(cfg, None) is None
    assert _rebaseline_module(cfg, "all") == -1
    assert _rebaseline_module(cfg, "2s2") == 4
    with pytest.raises(CliError, match="no module '9S9'.*like 1S1"):
        _rebaseline_module(cfg, "9S9")


def test_judgement_events_read_as_sentences() -> None:
    e = mev.Event()
    e.code, e.arg, e.value, e.extra = mev.EV_THERMAL_RUNAWAY, 2, 6100, 0
    assert describe(e) == "thermal runaway suspect: 6.1 K above the string median and warming"
    e.code, e.arg, e.extra = mev.EV_CHARGE_PHASE, 2, 1
    assert describe(e) == "charge phase recharge (was discharge)"
    e.code, e.value, e.extra = mev.EV_RECHARGE_SLOW, 12500, 720
    assert "not back in float after 720 min, lowest block at 12.500 V" in describe(e)
    e.code, e.arg, e.value = mev.EV_BALANCE_LIMIT, 1, 2100
    assert describe(e).startswith("balancing cannot bring it to target (2100 mV below): low")
    e.code, e.arg, e.value = mev.EV_BLEED_CAP, 1, 200500
    assert describe(e).startswith(
        "balancing paused: 200.5 Wh bled in the last 24 h (balance.max_wh_day), more than"
    )
    e.arg = 2
    assert describe(e).startswith("balancing limited to balance.max_wh_day: 200.5 Wh bled")
    e.arg = 0
    assert describe(e) == "balancing resumed: 200.5 Wh bled in the last 24 h"


def test_the_status_view_carries_each_strings_judgement() -> None:
    from stringcare.sim import scenario as scn
    from stringcare.sim.engine import Simulation

    sc = scn.load("float")
    sc.strings, sc.blocks = 1, 4
    sim = Simulation(sc)
    sim.run(700)  # past the first runaway sample with the probes detected
    j = sim.snapshot()["strings"][0]["judgement"]
    assert j["phase"] == "float" and j["bleed_wh_day"] >= 0 and j["unbalanceable"] == []
    assert j["bleed_cap"] is None and not j["bleed_capped"]
    sim.manager.judge.balance.capped[0] = bl.CAP_LIMITED  # past the cap (test_balance_limits)
    j = sim.snapshot()["strings"][0]["judgement"]
    assert j["bleed_cap"] == "limited" and j["bleed_capped"]
    assert j["runaway"]["enabled"] and j["runaway"]["probed_blocks"] == 4
    assert j["runaway"]["protected_by_temperature"] and "note" not in j["runaway"]
