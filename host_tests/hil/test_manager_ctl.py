"""Operator commands from the command line to the real `stringcare manager` polling
virtual module boards (deployed module firmware) and a virtual relay/IO box
(tools/stringcare/faults/rig.py): `stringcare ctl` through the manager's control socket
(stringcare_host/control.py, docs/manager.md "Operator actions from the command line")."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

from host_support import REPO

from stringcare.faults.rig import Rig, wait_for

START_S = 60  # the manager is up and has energised the contact (a loaded machine)


def ctl(*args: str) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).parent / "stringcare")
    return subprocess.run([exe, "ctl", *args], capture_output=True, text=True, timeout=60, cwd=REPO)


def test_ctl_commands_reach_the_running_manager_and_are_logged(manager_rig: Rig) -> None:
    rig = manager_rig
    m = rig.manager("ctl")
    data = rig.workdir / "ctl-data"
    sock = data / "control.sock"
    try:
        up = wait_for(lambda: rig.contact_energised() or not m.alive(), START_S)
        assert up is not None and m.alive(), "the manager did not come up:\n" + m.output()
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600, "the manager's user only"
        assert "control socket %s" % sock in m.output()

        done = ctl("--to", str(sock), "mute")
        assert done.returncode == 0 and "buzzer muted" in done.stdout, done
        done = ctl("--to", str(data), "equalise", "off", "--string", "1")  # the folder will do
        assert done.returncode == 0 and "string 1: equalising off" in done.stdout, done
        done = ctl("--to", str(sock), "reset-runaway", "--string", "1")
        assert done.returncode == 0 and "no thermal-runaway trip latched" in done.stdout, done
        done = ctl("--to", str(sock), "rebaseline", "--module", "2")
        assert done.returncode == 0 and "module 2 learned again" in done.stdout, done
        done = ctl("--to", str(sock), "ri-now")
        assert done.returncode == 0 and "Ri" in done.stdout, done

        # bad arguments: a message naming what is wrong, exit 2, no traceback
        for args, message in (
            (["rebaseline", "--module", "7"], "no module '7' in this site; give a label from 1"),
            (["reset-runaway", "--string", "2"], "string 2 does not exist; this site has strings"),
        ):  # fmt: skip
            done = ctl("--to", str(sock), *args)
            assert done.returncode == 2 and message in done.stderr, done
            assert "Traceback" not in done.stderr

        # every command is in the event log with who gave it (the console shows it)
        uid = "by stringcare ctl (uid %d" % os.getuid()
        for text in ("mute " + uid, "string 1: equalising off " + uid,
                     "string 1: runaway reset " + uid, "module 2: Ri re-baseline " + uid,
                     "Ri now " + uid):  # fmt: skip
            assert wait_for(lambda t=text: t in m.output(), 10) is not None, (text, m.output())
    finally:
        m.signal(signal.SIGTERM)
        m.wait(20)
    assert not sock.exists(), "the socket is removed when the manager leaves"
    done = ctl("--to", str(sock), "mute")
    assert done.returncode == 2 and "no manager is running" in done.stderr, done
    assert "Traceback" not in done.stderr
