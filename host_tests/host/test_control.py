"""The local control channel (stringcare_host/control.py, `stringcare ctl`): requests
checked against the site, carried out by the web interface's dispatch between two
steps of a running (simulated) manager, logged with the sender's uid; clear errors
for a manager that is not there.  The real `stringcare manager` on virtual boards:
host_tests/hil/test_manager_ctl.py."""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
from pathlib import Path

import pytest

from manager_fw import actions as act
from manager_fw import config
from manager_fw import events as mev
from manager_fw.web import link as lk
from stringcare.sim import engine
from stringcare.sim import scenario as scn
from stringcare_host import control, status
from stringcare_host.errors import UserError


def layout(strings: int = 2, modules: int = 4):
    cfg = config.parse_config({"site": "t", "strings": [{"modules": modules}] * strings})
    return cfg.layout


def test_requests_are_checked_against_the_site() -> None:
    lay = layout()
    assert control.check_request({"action": "mute"}, lay) == ("mute", {})
    assert control.check_request({"action": "runaway_reset", "string": 2}, lay) == (
        "runaway_reset",
        {"string": 1},
    )
    assert control.check_request({"action": "rebaseline", "module": "6"}, lay) == (
        "rebaseline",
        {"module": 5},
    )
    assert control.check_request({"action": "rebaseline", "module": "all"}, lay)[1] == {
        "module": -1
    }
    bad = [
        ({"action": "reboot"}, "unknown action 'reboot'; known: mute, runaway_reset"),
        ({"action": "equalise_on", "string": 3}, "string 3 does not exist; this site has "
         "strings 1..2"),
        ({"action": "equalise_off"}, "string None does not exist"),
        ({"action": "equalise_off", "string": True}, "string True does not exist"),
        ({"action": "rebaseline", "module": "9"}, "no module '9' in this site; give a label "
         "from 1 to 8, or all"),
        ([1, 2], 'a request is one JSON object with an "action"'),
    ]  # fmt: skip
    for req, message in bad:
        with pytest.raises(UserError) as err:
            control.check_request(req, lay)
        assert message in str(err.value)


@pytest.fixture
def sim_with_control(tmp_path: Path):
    sc = scn.load("demo")
    sc.blocks, sc.strings, sc.impaired_blocks = 4, 1, 0
    sim = engine.Simulation(sc, seed=1)
    srv = control.ControlServer(str(tmp_path / "c.sock"), lk.WebLink(), sim.manager.layout, "sim")
    yield sim, srv
    srv.close()
    sim.close()


def ask_while_running(sim, srv, req: dict, timeout_s: float = 60) -> dict:
    """Send `req` from another thread (as `stringcare ctl` would) while the manager
    loop steps the simulation and gives the control server its turn."""
    got: dict = {}

    def client() -> None:
        try:
            got["answer"] = control.request(srv.path, req)
        except UserError as exc:
            got["error"] = str(exc)

    t = threading.Thread(target=client)
    t.start()
    deadline = time.monotonic() + timeout_s
    while t.is_alive() and time.monotonic() < deadline:
        sim.step()
        srv.turn(sim.manager, sim.now_s())
    t.join(timeout=1)
    assert got, "no answer within %d s" % timeout_s
    return got


def operator_events(sim) -> list:
    return [e for e in sim.event_log.recorded if e.code == mev.EV_OPERATOR]


def test_a_command_is_carried_out_in_the_loop_and_logged_with_its_sender(
    sim_with_control,
) -> None:
    sim, srv = sim_with_control
    assert stat.S_IMODE(os.stat(srv.path).st_mode) == 0o600  # this user only
    got = ask_while_running(sim, srv, {"action": "equalise_off", "string": 1})
    assert got["answer"] == {"ok": True, "text": "string 1: equalising off"}
    assert sim.manager.strings.enabled[0] == 0
    (e,) = operator_events(sim)
    assert e.arg == act.OP_EQUALISE_OFF and e.string == 0
    assert e.extra == act.FROM_CONTROL | os.getuid()
    text = status.event_text(sim.manager, e)
    assert text.startswith("string 1: equalising off by stringcare ctl (uid %d" % os.getuid())

    got = ask_while_running(sim, srv, {"action": "rebaseline", "module": "9"})
    assert got["answer"]["ok"] is False and "no module '9'" in got["answer"]["text"]
    assert len(operator_events(sim)) == 1  # refused before it reached the manager

    got = ask_while_running(sim, srv, {"action": "mute"})
    assert got["answer"]["ok"] is True
    assert [e.arg for e in operator_events(sim)] == [act.OP_EQUALISE_OFF, act.OP_MUTE]


def test_a_manager_that_does_not_turn_gives_a_clear_answer(
    sim_with_control, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim, srv = sim_with_control
    monkeypatch.setattr(control, "ANSWER_WAIT_S", 0.5)
    answer = control.request(srv.path, {"action": "mute"})  # nobody calls srv.turn
    assert answer["ok"] is False and "did not carry the command out within" in answer["text"]


def test_errors_when_no_manager_answers(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no manager is running with a control socket at"):
        control.request(str(tmp_path / "none.sock"), {"action": "mute"})
    # a socket file left by a manager that was killed: nobody listens
    stale = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(stale))
    s.close()
    with pytest.raises(UserError, match="is not running any more"):
        control.request(str(stale), {"action": "mute"})
    # a data folder stands for its control.sock
    with pytest.raises(UserError, match="control socket at %s" % (tmp_path / "control.sock")):
        control.request(str(tmp_path), {"action": "mute"})


def test_the_socket_file_one_manager_per_folder(tmp_path: Path) -> None:
    lay = layout()
    stale = tmp_path / "control.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(stale))
    s.close()
    first = control.ControlServer(str(stale), lk.WebLink(), lay)  # the stale one replaced
    try:
        with pytest.raises(UserError, match="another manager is running with its control"):
            control.ControlServer(str(stale), lk.WebLink(), lay)
    finally:
        first.close()
    assert not stale.exists()  # removed on the way out
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="exists and is not a socket"):
        control.ControlServer(str(tmp_path / "file"), lk.WebLink(), lay)
    with pytest.raises(UserError, match="a unix socket path may have 107"):
        control.ControlServer(str(tmp_path / ("x" * 120)), lk.WebLink(), lay)
