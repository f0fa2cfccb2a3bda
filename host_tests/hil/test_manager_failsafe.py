"""The Linux manager fails safe (issue 12): the real `stringcare manager` polling two
virtual module boards (deployed module firmware) with a virtual relay/IO box (the box
firmware) on the virtual bus whose relay 1 is the site's alarm contact
(tools/stringcare/faults/rig.py).

* every exit path it sees (end of --duration, an exception, SIGTERM, SIGINT, SIGHUP)
  releases the contact, confirmed by the box;
* SIGKILL leaves it no chance: the box's communication watchdog releases it;
* a wall-clock step of one hour either way moves timestamps, never the silent-module
  alarm (every timer counts on the monotonic clock).
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator

import pytest

from stringcare.faults.rig import Rig, site_config, wait_for

START_S = 60  # the manager is up and has energised the contact (a loaded machine)
DROP_S = 10  # a released contact drops within (the release is confirmed in ms)


@pytest.fixture
def rig(manager_rig: Rig) -> Iterator[Rig]:
    yield manager_rig  # hil/conftest.py: one rig per worker for the manager's files
    # a test that failed may leave its manager running: it would keep feeding the box
    # (every later test sees a contact energised) and share the bus with the next
    # manager for the rest of the session
    left = [m for m in manager_rig.managers if m.alive()]
    for m in left:
        m.proc.kill()
        m.proc.wait()
    if left and manager_rig.contact_energised():
        manager_rig.reset_box()  # the next test starts from a released contact


def running(rig: Rig, name: str, args: list[str] | None = None):
    m = rig.manager(name, args=args)
    up = wait_for(lambda: rig.contact_energised() or not m.alive(), START_S)
    assert up is not None and m.alive(), "no contact energised:\n" + m.output()
    return m


@pytest.mark.parametrize(
    ("how", "code"),
    [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)],
    ids=["SIGTERM", "SIGINT", "SIGHUP"],
)
def test_a_signal_releases_the_alarm_contact(rig: Rig, how: int, code: int) -> None:
    m = running(rig, "sig%d" % how)
    m.signal(how)
    dropped = wait_for(lambda: not rig.contact_energised(), DROP_S)
    assert dropped is not None, "contact still energised after %s:\n%s" % (how, m.output())
    assert m.wait(20) == code, m.output()
    assert "alarm contact released (box 1 relay 1)" in m.output()


def test_a_crash_releases_the_alarm_contact(rig: Rig) -> None:
    trigger = rig.workdir / "crash.now"
    m = running(rig, "crash", ["--fault-crash-file", str(trigger)])
    trigger.write_text("crash")  # the next turn of the manager loop raises
    dropped = wait_for(lambda: not rig.contact_energised(), 30)
    assert dropped is not None, m.output()
    assert m.wait(20) == 1, m.output()
    out = m.output()
    assert "injected crash" in out and "alarm contact released" in out, out


def test_the_end_of_the_run_releases_the_alarm_contact(rig: Rig) -> None:
    m = running(rig, "duration", ["--duration", "15s"])
    assert m.wait(60) == 0, m.output()
    assert not rig.contact_energised(), m.output()


def test_sigkill_leaves_it_to_the_box_watchdog(rig: Rig) -> None:
    m = running(rig, "kill")
    t0 = time.monotonic()
    m.signal(signal.SIGKILL)
    dropped = wait_for(lambda: not rig.contact_energised(), 20)
    assert dropped is not None, "the box kept the contact energised after SIGKILL"
    assert time.monotonic() - t0 <= 15


@pytest.mark.parametrize("step_s", [-3600, 3600], ids=["back-1h", "ahead-1h"])
def test_a_wall_clock_step_moves_no_alarm(rig: Rig, step_s: int) -> None:
    # a third configured module never answers: its silent-module alarm (10 s, straight
    # onto the contact) must come 10 s after polling starts whatever the wall clock does
    cfg = site_config(3, silent={"alarm_delay_s": 10, "contact_delay_s": 0})
    name = "clock%+d" % step_s
    offset = rig.workdir / (name + ".offset")
    offset.write_text("0")
    m = rig.manager(
        name,
        config=rig.write_config(name, cfg),
        args=["--fault-wall-offset-file", str(offset), "--status-out", str(rig.workdir / name)],
    )
    try:
        up = wait_for(lambda: rig.contact_energised() or not m.alive(), START_S)
        assert up is not None and m.alive(), m.output()
        t_up = time.monotonic()
        offset.write_text(str(step_s))  # the step, right after polling started
        alarm = wait_for(lambda: not rig.contact_energised(), 60)
        assert alarm is not None, "no silent-module alarm within 60 s:\n" + m.output()
        waited = time.monotonic() - t_up
        # polling started at most a few seconds before the contact came on; the exact
        # delay is checked below on the manager's own stamps
        assert 1 <= waited <= 25, "silent alarm %.1f s after the contact came on" % waited
    finally:
        m.signal(signal.SIGTERM)
        m.wait(20)
    out = m.output()
    # the event that came after the step carries the stepped wall clock
    line = next((ln for ln in out.splitlines() if "silent" in ln and ln.startswith("  ")), "")
    census = next((ln for ln in out.splitlines() if ln.endswith("  census")), "")
    assert line and census, out
    shown, census_at = stamp(line), stamp(census)
    assert abs(shown - (time.time() + step_s)) < 120, (line, step_s)
    # census before the step, the alarm after it: 10 s apart once the step is taken out
    assert 9 <= shown - step_s - census_at <= 14, (census, line, step_s)
    snap = json.loads((rig.workdir / name).read_text())
    assert snap["uptime_s"] < 600  # uptime counts on the monotonic clock, not the step


def stamp(line: str) -> float:
    hit = re.match(r"\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", line)
    assert hit, line
    return time.mktime(time.strptime(hit.group(1), "%Y-%m-%d %H:%M:%S"))


def test_the_rig_sees_the_contact(rig: Rig) -> None:
    # the checks above read the box's relay: a manager that energised it shows as
    # energised, a power-cycled box as released (a rig that always said "dropped"
    # would prove nothing)
    m = running(rig, "seen")
    assert rig.contact_energised() and rig.box_status()["fed"]
    m.signal(signal.SIGKILL)
    m.wait(10)
    rig.reset_box()
    assert not rig.contact_energised()
