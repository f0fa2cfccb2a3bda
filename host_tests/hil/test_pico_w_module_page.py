"""The Pico W's module page with its history, through the virtual unix_manager board: the
real manager firmware in the MicroPython unix port (as host_tests/hil/test_pico_w_web.py),
polling a virtual module board, its history store already holding months of snapshots
(written here by the store's own writer: first 300 of a 600-module site, then the
site's one module).

The module page shows the module's Ri, voltage and temperature at every key frame of
its layout, the same values the full decoder (`stringcare history`'s reader) gives; the
600-module frames of the other layout are read through (CRC-checked key frames, skipped
deltas) and left out.  The page's live updates arrive as Server-Sent Events (microdot's
sse.py and the helpers.py it imports are in the bundle).  While four clients load that
page every second, each load reading the whole 2 MB store, the manager keeps its
polling rate: the reading goes in slices ended when the bus loop's turn is due
(manager_fw/web/board.py SLICE_US)."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from array import array
from pathlib import Path

from hil_support import call, cycles_per_s, web_answers
from host_support import REPO

from manager_fw.blockdev import FileBlockDevice
from manager_fw.history_store import HistoryReader, HistoryWriter
from shared import history as h
from stringcare.deploy import Deployer
from stringcare.dev.mpmanager import ManagerProcess
from stringcare.dev.protocol_vectors import TEST_KEY_HEX
from stringcare.vboard import BusHub, VirtualBoard

EPOCH_2020 = 1577836800
CLIENTS = 4
BIG = [60] * 10  # the other layout: 600 modules
# each client loads the module page once a second: on this shared machine a manager
# process kept busy without pause gets a share of a CPU, not its polling rate (a board
# has its CPU to itself); how the reading yields is what is measured
PACE_S = 1.0


def seed(path: Path, end_s: int) -> int:
    """The store as the board opens it (2 MB, 64 KB segments: boards/unix_manager/hal.py):
    300 snapshots of 600 modules, then 400 of the site's one module, 20 min apart, the
    last at end_s; returns the key frames of the one-module layout."""
    dev = FileBlockDevice(str(path), 2 * 1024 * 1024)
    w = HistoryWriter(dev, BIG, segment_size=65536)
    t = end_s - 1200 * 700
    for sizes, records in ((BIG, 300), ([1], 400)):
        w.set_layout(sizes)
        m = sum(sizes)
        v, c, ri = array("i", [0] * m), array("i", [0] * m), array("i", [0] * m)
        cur = array("i", [h.CURRENT_NONE] * len(sizes))
        for k in range(records):
            for i in range(m):
                v[i] = 13500000 + 1000 * ((k * 7 + i) % 50)
                c[i] = 20000 + 100 * ((k + i) % 40)
                ri[i] = 0 if k < 5 else 4000000 + 1000 * i + 20000 * (k // 72)
            w.append(t, h.MODE_FLOAT, v, c, ri, bytearray(m), bytearray(m), cur)
            t += 1200
    dev.f.close()
    return w.key_frames


def key_frames(path: Path, end_s: int) -> list[list[int]]:
    """What the full decoder gives for module 0 at the one-module layout's key frames."""
    out = []
    for snap in HistoryReader(FileBlockDevice(str(path), readonly=True)).snapshots():
        if snap.key and snap.module_count == 1 and snap.time_s <= end_s:
            out.append([snap.time_s, snap.ri_nohm[0], snap.voltage_mv[0], snap.temp_cc[0]])
    return out


def live_page(url: str, cookie: str) -> None:
    """The page's live updates: Server-Sent Events ("changed": the page fetches the
    streamed status), as a browser's EventSource reads them."""
    req = urllib.request.Request(url + "api/stream", headers={"Cookie": cookie})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.headers.get("Content-Type", "").startswith("text/event-stream")
        seen = []
        while len(seen) < 2:  # two: the first at once, the next with a new snapshot
            line = r.readline().decode()
            assert line, "the event stream ended: %r" % seen
            if line.startswith("event:"):
                seen.append(line.split(":", 1)[1].strip())
    assert seen == ["changed", "changed"], seen


def test_module_page_shows_the_history_and_polling_keeps_its_rate(
    tmp_path: Path, hub: BusHub
) -> None:
    end_s = int(time.time()) - EPOCH_2020 - 600
    run = tmp_path / "manager"
    run.mkdir()
    seed(run / "history.bin", end_s)
    want = key_frames(run / "history.bin", end_s)
    assert 5 < len(want) < 100  # no thinning: every key frame is a point
    vb = VirtualBoard(tmp_path / "flash0", "unix_module", bus=hub,
                      env={"block_uv": 13520000, "uid": "5354524700000502"}).start()  # fmt: skip
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    url = "http://127.0.0.1:%d/" % port
    mgr = ManagerProcess(run, {"site": "picow", "strings": [{"modules": 1}]},
                         {"web_port": port, "web_host": "127.0.0.1"}, TEST_KEY_HEX)  # fmt: skip
    try:
        Deployer(REPO, vb.board, vb.device, 1, None, hub.url, progress=lambda t: None,
                 site_key=bytes.fromhex(TEST_KEY_HEX)).run()  # fmt: skip
        mgr.start(hub.url)
        code = mgr.setup_code()
        mgr.wait_for("the web interface", lambda: web_answers(url + "api/me"))
        assert json.loads(call(url + "api/me")[1])["history"] == ["bin", "module"]
        admin = {"code": code, "user": "admin", "password": "pico password 1"}
        cookie = call(url + "api/setup", admin)[2].split(";")[0]

        def polling() -> bool:
            snap = json.loads(call(url + "api/status", cookie=cookie)[1])
            return snap.get("mode") == "running" and snap.get("cycles", 0) > 3

        mgr.wait_for("the manager polling", polling)
        live_page(url, cookie)
        status, body, _ = call(url + "api/module?i=0", cookie=cookie)
        assert status == 200, body
        view = json.loads(body)
        assert view["row"][0] == 0 and "ri_history_problem" not in view, view
        rows = [r for r in view["ri_history"] if r[0] <= end_s]
        assert rows == want
        assert all(r[0] > end_s for r in view["ri_history"][len(rows) :])  # the board's own
        assert call(url + "api/module?i=1", cookie=cookie)[0] == 404
        quiet = cycles_per_s(url, cookie)
        stop, done, busy = threading.Event(), [0, 0], [0]

        def browse() -> None:  # an operator's pace: a module page a second per client
            while not stop.wait(PACE_S):
                status, body, _ = call(url + "api/module?i=0", cookie=cookie)
                done[0 if status == 200 else 1] += 1
                if status == 200:
                    page = json.loads(body)
                    if "ri_history" not in page:  # one reading at a time, and it says so
                        assert "another module page" in page["ri_history_problem"], page
                        busy[0] += 1

        clients = [threading.Thread(target=browse, daemon=True) for _ in range(CLIENTS)]
        for t in clients:
            t.start()
        loaded = cycles_per_s(url, cookie)
        stop.set()
        for t in clients:
            t.join(timeout=60)
        snap = json.loads(call(url + "api/status", cookie=cookie)[1])
        print("module pages: %.2f cycles/s quiet, %.2f with %d clients (%d pages, %d of "
              "them while another read the history, %d refused); longest slice %.1f ms"
              % (quiet, loaded, CLIENTS, done[0], busy[0], done[1],
                 snap["history_slice_us_max"] / 1000))  # fmt: skip
        assert done[0] >= CLIENTS and busy[0] < done[0]
        assert snap["history_slice_us_max"] > 0
        assert loaded >= 0.8 * quiet, (quiet, loaded)
        assert mgr.proc is not None and mgr.proc.poll() is None, mgr.console()
    finally:
        mgr.stop()
        vb.stop()
