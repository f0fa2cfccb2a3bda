# The web interface's way to the manager core (manager_fw/web/link.py) on a real core in
# virtual time: the snapshot in the core's units, commands carried out between steps
# and logged with who gave them, a new configuration checked by the parser and its
# thresholds applied at once.
import json

from corefixture import Site

from manager_fw import actions as act
from manager_fw import events as ev
from manager_fw.web import link as lk


def started(config=None):
    site = Site(sizes=(2, 2), config=config)
    site.start()
    return site


def test_snapshot_carries_every_module_in_the_cores_units():
    site = started()
    link = lk.WebLink()
    link.publish(site.core, site.now_s())
    snap = json.loads(link.latest())
    assert snap["mode"] == "running" and len(snap["strings"]) == 2
    mods = snap["strings"][0]["modules"] + snap["strings"][1]["modules"]
    assert [m[1] for m in mods] == ["1", "2", "3", "4"]
    for m in mods:
        assert m[3] == 13620000 and m[4] == 22000 and m[7] == "ok"  # µV, m°C
        assert m[8] == site.core.hw_rev[m[0]] and m[10] == site.core.cfg.variant
    assert snap["strings"][0]["sum_mv"] == 2 * 13620
    assert snap["thresholds"]["voltage_high_alarm_mv"] > 13620


def test_commands_run_in_the_loop_and_are_logged_with_who():
    site = started()
    core = site.core
    link = lk.WebLink()
    t = link.submit("equalise_off", {"string": 1}, "alice", 3)
    assert link.result(t) is None  # nothing happens until the loop's turn
    assert core.strings.enabled[1] == 1
    assert link.apply(core, site.now_s()) == 1
    assert link.result(t) == (True, "string 2: equalising off")
    assert core.strings.enabled[1] == 0 and core.strings.enabled[0] == 1
    ops = site.events(ev.EV_OPERATOR)
    assert [(e[3], e[5], e[6]) for e in ops] == [(1, act.OP_EQUALISE_OFF, 3)]
    t = link.submit("equalise_on", {"string": 7}, "alice", 3)
    link.apply(core, site.now_s())
    assert link.result(t) == (False, "string 8: choose 1..2")
    t = link.submit("mute", {}, "bob", 2)
    link.apply(core, site.now_s())
    assert link.result(t)[0] and core.outputs.muted
    assert site.events(ev.EV_ALARM_MUTED)
    assert site.events(ev.EV_OPERATOR)[-1][5:] == (act.OP_MUTE, 2)
    t = link.submit("runaway_reset", {"string": 0}, "bob", 2)
    link.apply(core, site.now_s())
    assert link.result(t) == (False, "string 1: thermal runaway detection is off")


def test_the_queue_is_bounded():
    link = lk.WebLink()
    tickets = [link.submit("mute", {}, "a", 1) for _ in range(lk.MAX_PENDING)]
    assert min(tickets) > 0
    assert link.submit("mute", {}, "a", 1) == -1


def test_a_new_configuration_is_checked_and_its_thresholds_apply_at_once():
    site = started()
    core = site.core
    obj = {"strings": [{"modules": 2}, {"modules": 2}], "cycle_period_ms": 1000,
           "ri": {"enabled": False}, "runaway": {"enabled": False}}  # fmt: skip
    link = lk.WebLink(config_obj=obj)
    bad = {"strings": [{"modules": 2}], "thresholds": {"voltage_high_alarm_mv": 99999}}
    t = link.submit("config", bad, "alice", 1)
    link.apply(core, site.now_s())
    ok, text = link.result(t)
    assert not ok and "thresholds.voltage_high_alarm_mv" in text and "99999" in text, text
    assert link.config_obj is obj
    new = json.loads(json.dumps(obj))
    new["thresholds"] = {"temp_high_warning_mc": 19000, "temp_high_alarm_mc": 21000}
    t = link.submit("config", new, "alice", 1)
    link.apply(core, site.now_s())
    assert link.result(t)[0], link.result(t)
    assert core.alarms.thresholds[1].temp_high_alarm_mc == 21000
    assert site.events(ev.EV_CONFIG)[-1][5] == ev.CFG_SAVED
    assert site.events(ev.EV_OPERATOR)[-1][5:] == (act.OP_CONFIG, 1)
    site.run_s(10)  # the blocks are at 22 °C: over the new alarm level
    assert core.alarm_total() > 0 and core.outputs.buzzer
    link.publish(core, site.now_s())
    snap = json.loads(link.latest())
    assert snap["thresholds"]["temp_high_alarm_mc"] == 21000
    assert snap["strings"][0]["modules"][0][7] == "alarm"


def test_the_board_streams_the_status_in_small_pieces():
    site = started()
    host = lk.WebLink()
    board = lk.WebLink(board=True)
    assert "".join(board.chunks()) == "{}"  # nothing published yet
    now = site.now_s()
    host.publish(site.core, now)
    board.publish(site.core, now)
    pieces = list(board.chunks())
    # the site; per string its start, its modules' rows (STATUS_PIECE at most), the
    # rest of it; the end
    assert len(pieces) == 1 + 2 * 3 + 1
    assert json.loads("".join(pieces)) == json.loads(host.latest())
    assert json.loads(board.latest()) == json.loads(host.latest())
    assert board.version == 1 and board.max_events == 40


def test_addressing_from_the_web_runs_in_setup_mode_and_reports_where_to_resume():
    site = started()
    core = site.core
    link = lk.WebLink()
    t = link.submit("address_stop", {}, "alice", 1)
    link.apply(core, site.now_s())
    assert link.result(t) == (False, "no addressing job is running")
    t = link.submit("identify", {}, "alice", 1)
    link.apply(core, site.now_s())
    assert link.result(t) == (False, "identify: give the module's address")
    t = link.submit("address_auto", {"start": 3, "end": 2}, "alice", 1)
    link.apply(core, site.now_s())
    ok, text = link.result(t)
    assert not ok and "start <= end" in text
    # every module here has its address already: the job finds address 1 taken
    t = link.submit("address_auto", {"start": 1, "end": 4}, "alice", 1)
    link.apply(core, site.now_s())
    assert link.result(t)[0] and core.mode_name() == "setup"
    t = link.submit("address_set", {"current": 1, "new": 2}, "alice", 1)
    link.apply(core, site.now_s())
    assert link.result(t) == (False, "AutoAddressing is still running: stop it first")
    site.run_s(5)
    link.publish(core, site.now_s())
    job = json.loads(link.latest())["setup"]
    assert job["job"] == "AutoAddressing" and job["done"]
    assert "address 1 is already used" in job["error"] and job["resume_at"] == 1
    assert [e[5:] for e in site.events(ev.EV_OPERATOR)] == [(act.OP_ADDRESSING, 1)]
    site.run_s(10)  # the census again, then polling
    assert core.mode_name() == "running"


def test_ri_now_starts_a_round_before_the_schedule_would():
    site = started({"ri": {"enabled": True}})
    link = lk.WebLink()
    site.run_s(30)
    assert site.ri_starts == []  # the first round is 15 min after the start
    t = link.submit("ri_now", {}, "alice", 1)
    link.apply(site.core, site.now_s())
    assert link.result(t)[0], link.result(t)
    site.run_s(40)
    assert site.ri_starts and site.ri_starts[0][1] == 0  # module 1 first, one at a time
    t = link.submit("ri_now", {}, "alice", 1)
    link.apply(site.core, site.now_s())
    assert link.result(t) == (True, "an Ri round is running already")
