"""The web interface in the real MicroPython (unix port), run the way a Pico W manager
runs it (host_tests/host/mp_web_board.py: one asyncio loop, the manager's loop a task,
the server another): the same app code as on Linux creates the admin from the setup
code, logs in with the board's stepped password hash while the manager's loop keeps
turning, streams the status one string at a time, and carries out a mute through the
manager's loop, logged with who."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import microdot
import pytest
from host_support import REPO

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(url: str, body=None, cookie: str = "", csrf: str = ""):
    headers = {"Cookie": cookie} if cookie else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if csrf:
        headers["X-CSRF-Token"] = csrf
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), r.headers.get("Set-Cookie", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), ""


@pytest.fixture
def board():
    exe = str(Path(sys.executable).parent / "micropython")
    site = str(Path(microdot.__file__).parent.parent)
    port = free_port()
    proc = subprocess.Popen(
        [exe, "-X", "heapsize=1M", str(HERE / "mp_web_board.py"), str(REPO), site, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True).start()
    deadline = time.monotonic() + 60
    url = "http://127.0.0.1:%d/" % port
    while time.monotonic() < deadline:
        code = [m.group(1) for m in (re.search(r"setup code: (\d{8})", x) for x in lines) if m]
        if code:
            try:
                if call(url + "api/me")[0] == 200:
                    break
            except OSError:
                pass
        if proc.poll() is not None:
            pytest.fail("MicroPython stopped:\n" + "".join(lines))
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the MicroPython web server did not come up:\n" + "".join(lines))
    yield url, code[0]
    proc.kill()
    proc.wait(timeout=10)


def turns(url: str) -> tuple[int, int, int]:
    t, gap, events = call(url + "test/turns")[1].decode().split()
    return int(t), int(gap), int(events)


def test_the_app_runs_in_micropython_beside_the_managers_loop(board):
    url, code = board
    admin = {"code": code, "user": "admin", "password": "pico password"}
    status, body, cookie = call(url + "api/setup", admin)
    assert status == 200, body
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    before, _, _ = turns(url)
    call(url + "test/reset_gap")
    status, body, cookie = call(url + "api/login", {"user": "admin", "password": "pico password"})
    assert status == 200, body
    after, gap_ms, _ = turns(url)
    # the stepped hash (4 000 iterations, a yield every 50) let the loop turn meanwhile
    # (a hash in one piece would leave it one turn at most)
    assert after - before >= 3, (before, after)
    print("manager loop: %d turns during the login, longest gap %d ms" % (after - before, gap_ms))
    cookie = cookie.split(";")[0]
    me = json.loads(call(url + "api/me", cookie=cookie)[1])
    status, body, _ = call(url + "api/status", cookie=cookie)
    snap = json.loads(body)
    assert status == 200 and [len(s["modules"]) for s in snap["strings"]] == [2, 2]
    status, body, _ = call(url + "api/action", {"action": "mute"}, cookie=cookie)
    assert status == 403  # no CSRF token
    logged = turns(url)[2]
    status, body, _ = call(url + "api/action", {"action": "mute"}, cookie=cookie, csrf=me["csrf"])
    assert status == 200 and json.loads(body)["ok"], body
    status, body, _ = call(url + "api/status", cookie=cookie)
    assert json.loads(body)["muted"] is True
    assert turns(url)[2] == logged + 2  # EV_ALARM_MUTED, then EV_OPERATOR with who
