"""The Linux manager's web interface (`stringcare manager --web`, docs/operator.md) on
virtual module boards: the setup code on stderr makes the admin, whose account is kept
in the data folder; the status shows the polled modules; a mute goes through the
manager's loop into its event log with who did it; without the CSRF token it is
refused; a restart keeps the account (no new setup code)."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from hil_support import web_request

from stringcare.faults.rig import Rig, wait_for

START_S = 90


@pytest.fixture
def rig(manager_rig: Rig) -> Rig:
    return manager_rig  # hil/conftest.py: one rig per worker for the manager's files


def call(url: str, path: str, body=None, cookie: str = "", csrf: str = ""):
    req = web_request(url + path, body, cookie, csrf)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            raw = r.read()
            if r.headers.get("Content-Type", "").startswith("text/csv"):
                return r.status, raw.decode(), ""
            return r.status, json.loads(raw), r.headers.get("Set-Cookie", "")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), ""


def test_linux_manager_serves_the_web_interface(rig: Rig) -> None:
    data = rig.fresh_data("web")
    m = rig.manager("web", args=["--web", "127.0.0.1:0"], data=data)
    try:
        found = wait_for(lambda: bool(re.search(r"web setup code: (\d{8})", m.output())), START_S)
        assert found is not None, m.output()
        code = re.findall(r"web setup code: (\d{8})", m.output())[0]
        url = re.findall(r"web interface (http://\S+/)", m.output())[0]
        status, me, _ = call(url, "api/me")
        assert status == 200 and me["setup"]
        admin = {"code": code, "user": "ops", "password": "a long password"}
        status, j, cookie = call(url, "api/setup", admin)
        assert status == 200 and j["role"] == "admin", j
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        cookie = cookie.split(";")[0]
        assert (data / "web_users.json").stat().st_mode & 0o777 == 0o600
        assert "a long password" not in (data / "web_users.json").read_text()

        def polled():
            s, snap, _ = call(url, "api/status", cookie=cookie)
            mods = [mm for st in snap.get("strings", []) for mm in st["modules"]]
            return snap.get("mode") == "running" and mods and all(mm[3] for mm in mods)

        assert wait_for(polled, START_S) is not None, m.output()
        status, j, _ = call(url, "api/action", {"action": "mute"}, cookie=cookie)
        assert status == 403 and "CSRF" in j["error"]
        status, j, _ = call(
            url, "api/action", {"action": "mute"}, cookie=cookie, csrf=me_csrf(url, cookie)
        )
        assert status == 200 and j["ok"], j

        def logged():
            s, ev, _ = call(url, "api/events", cookie=cookie)
            return [e for e in ev["events"] if e[5] == "mute by ops"]

        assert wait_for(logged, 30) is not None, m.output()
        status, body, _ = call(url, "api/history.csv", cookie=cookie)
        assert status == 200 and body.startswith("time_utc,time_s,mode,module"), body
    finally:
        m.stop()
    # a restart keeps the account: no new setup code, the old password works
    m = rig.manager("web2", args=["--web", "127.0.0.1:0"], data=data)
    try:
        found = wait_for(
            lambda: bool(re.search(r"web interface (http://\S+/)", m.output())), START_S
        )
        assert found is not None, m.output()
        assert "setup code" not in m.output()
        url = re.findall(r"web interface (http://\S+/)", m.output())[0]
        status, j, _ = call(url, "api/login", {"user": "ops", "password": "a long password"})
        assert status == 200 and j["role"] == "admin", j
    finally:
        m.stop()


def me_csrf(url: str, cookie: str) -> str:
    return call(url, "api/me", cookie=cookie)[1]["csrf"]


def test_a_damaged_configuration_shows_the_last_good_one_in_use(rig: Rig) -> None:
    good = rig.write_config("fallback")
    bak = Path(str(good) + ".bak")
    bak.write_text(good.read_text())
    good.write_text('{"strings": [{"modules": 0}]}')  # a bad edit
    data = rig.fresh_data("fallback")
    m = rig.manager("fallback", config=good, args=["--web", "127.0.0.1:0"], data=data)
    try:
        found = wait_for(lambda: bool(re.search(r"web setup code: (\d{8})", m.output())), START_S)
        assert found is not None, m.output()
        code = re.findall(r"web setup code: (\d{8})", m.output())[0]
        url = re.findall(r"web interface (http://\S+/)", m.output())[0]
        admin = {"code": code, "user": "ops", "password": "a long password"}
        status, j, cookie = call(url, "api/setup", admin)
        assert status == 200, j
        status, cfg, _ = call(url, "api/config", cookie=cookie.split(";")[0])
        assert status == 200 and cfg["source"].endswith("site.json.bak"), cfg
        assert any("strings" in p for p in cfg["problems"]), cfg["problems"]
        assert any("last good" in p for p in cfg["problems"]), cfg["problems"]
    finally:
        m.stop()
