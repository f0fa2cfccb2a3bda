"""The Pico W manager's web interface through the virtual unix_manager board: the real
manager firmware (firmware/manager/main.py, manager_fw/web/board.py) in the MicroPython
unix port, its bus loop and the Microdot server two asyncio tasks of one process,
microdot taken the way a bundle takes it (stringcare.bundle.library_sources), polling a
virtual module board that runs the deployed module firmware.

A person's way in: the one-time setup code read from the board's console, the admin
created with it, a login; the status shows the polled module; a mute goes through the
manager's loop into its event log with who did it; the history store's image downloads
in pieces and `stringcare history` reads it; and while four clients load the pages in a
loop the manager keeps its polling rate."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

from hil_support import call, cycles_per_s, web_answers
from host_support import REPO

from stringcare.commands.history import history_reader
from stringcare.deploy import Deployer
from stringcare.dev.mpmanager import ManagerProcess
from stringcare.dev.protocol_vectors import TEST_KEY_HEX
from stringcare.errors import CliError
from stringcare.vboard import BusHub, VirtualBoard

CLIENTS = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def browse(url: str, cookie: str, stop: threading.Event, done: list[int]) -> None:
    while not stop.is_set():
        for path in ("", "app.js", "api/status", "api/events?since=0", "api/me"):
            code = call(url + path, cookie=cookie)[0]
            done[0 if code == 200 else 1] += 1


def test_pico_w_web_interface_on_the_virtual_board(tmp_path: Path, hub: BusHub) -> None:
    vb = VirtualBoard(tmp_path / "flash0", "unix_module", bus=hub,
                      env={"block_uv": 13520000, "uid": "5354524700000501"}).start()  # fmt: skip
    port = free_port()
    url = "http://127.0.0.1:%d/" % port
    mgr = ManagerProcess(tmp_path / "manager", {"site": "picow", "strings": [{"modules": 1}]},
                         {"web_port": port, "web_host": "127.0.0.1"}, TEST_KEY_HEX)  # fmt: skip
    try:
        Deployer(REPO, vb.board, vb.device, 1, None, hub.url, progress=lambda t: None,
                 site_key=bytes.fromhex(TEST_KEY_HEX)).run()  # fmt: skip
        mgr.start(hub.url)
        code = mgr.setup_code()
        mgr.wait_for("the web interface", lambda: web_answers(url + "api/me"))
        session = log_in(url, code)
        # the module's first answers: a virtual board starved by a loaded host can miss
        # its reply slots for a few cycles and be shown silent meanwhile (on a board it
        # has a core of its own); what is checked is the row once it answers
        snap = mgr.wait_for("the polled module answering", lambda: answered(url, session[0]))
        row = snap["strings"][0]["modules"][0]
        assert abs(row[3] - 13520000) < 20000, row
        assert snap["heap_free"] > 0
        mute_is_logged(mgr, url, *session)
        history_downloads(mgr, url, session[0], tmp_path)
        polling_keeps_its_rate(url, session[0])
        assert mgr.proc is not None and mgr.proc.poll() is None, mgr.console()
    finally:
        mgr.stop()
        vb.stop()


def log_in(url: str, code: str) -> tuple[str, str]:
    assert json.loads(call(url + "api/me")[1])["history"] == ["bin", "module"]
    admin = {"code": code, "user": "admin", "password": "pico password 1"}
    status, body, _ = call(url + "api/setup", dict(admin, code="00000000"))
    assert status == 403 and b"wrong setup code" in body
    assert call(url + "api/setup", admin)[0] == 200
    status, body, cookie = call(url + "api/login", {"user": "admin", "password": "pico password 1"})
    assert status == 200, body
    return cookie.split(";")[0], json.loads(body)["csrf"]


def running(url: str, cookie: str) -> dict | None:
    snap = json.loads(call(url + "api/status", cookie=cookie)[1])
    return snap if snap.get("mode") == "running" and snap.get("cycles", 0) > 3 else None


def answered(url: str, cookie: str) -> dict | None:
    snap = running(url, cookie)
    return snap if snap is not None and snap["strings"][0]["modules"][0][7] == "ok" else None


def mute_is_logged(mgr: ManagerProcess, url: str, cookie: str, csrf: str) -> None:
    status, body, _ = call(url + "api/action", {"action": "mute"}, cookie, csrf)
    assert status == 200 and b"muted" in body
    status, body, _ = call(url + "api/action", {"action": "mute"}, cookie)  # no CSRF
    assert status == 403

    def logged() -> bool:
        evs = json.loads(call(url + "api/events", cookie=cookie)[1])["events"]
        return any(e[5] == "mute by admin" for e in evs)

    mgr.wait_for("the mute in the event log", logged, 10)


def history_downloads(mgr: ManagerProcess, url: str, cookie: str, tmp_path: Path) -> None:
    """The store's image, streamed in pieces, is what `stringcare history` reads.  The
    first snapshot reaches the store outside the core's step (core.persist erases the
    first segment block by block between the bus turns), so the image is fetched until
    it holds one."""

    def downloaded() -> list[list[int]] | None:
        status, image, _ = call(url + "api/history.bin", cookie=cookie)
        assert status == 200 and len(image) == (tmp_path / "manager/history.bin").stat().st_size
        (tmp_path / "download.bin").write_bytes(image)
        try:
            reader = history_reader(str(tmp_path / "download.bin"))
        except CliError:
            return None  # no segment written yet
        sizes = [list(s.string_sizes) for s in reader.snapshots()]
        assert not reader.problems, reader.problems
        return sizes or None

    sizes = mgr.wait_for("a snapshot in the downloaded history", downloaded, 20)
    assert sizes[0] == [1]


def polling_keeps_its_rate(url: str, cookie: str) -> None:
    quiet = cycles_per_s(url, cookie)
    stop, done = threading.Event(), [0, 0]
    clients = [threading.Thread(target=browse, args=(url, cookie, stop, done), daemon=True)
               for _ in range(CLIENTS)]  # fmt: skip
    for t in clients:
        t.start()
    loaded = cycles_per_s(url, cookie)
    stop.set()
    for t in clients:
        t.join(timeout=60)
    print("polling: %.2f cycles/s quiet, %.2f with %d clients (%d pages, %d refused)"
          % (quiet, loaded, CLIENTS, done[0], done[1]))  # fmt: skip
    assert done[0] > 20
    assert loaded >= 0.8 * quiet, (quiet, loaded)
