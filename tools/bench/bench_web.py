"""The operator's web interface (docs/operator.md): how big its first page is, what a
login's password hash costs on each board class, and whether 20 browsers refreshing it
slow the manager's polling.

- page: the page and its script, gzip-compressed (what a browser downloads first).
- login: PBKDF2-HMAC-SHA256 at the board class's iteration count
  (manager_fw/web/auth.py ITERATIONS): CPython with OpenSSL; the MicroPython unix port
  running the pure-Python stepped hash a board runs; the RP2040 estimated from the
  instructions callgrind counts for that hash at the Pico W's count (2.5 RP2040 cycles
  per x86 instruction at 125 MHz, as bench_bus.py).
- heap: the manager firmware with its web interface (manager_fw/web/board.py) on the
  virtual unix_manager board, 600 modules in its core and a 2 MB history store full of
  their snapshots (what a module page reads its history from): the heap free beside the core,
  after the web's code (web.code_heap_kb: loaded from source, as the unix port has to;
  a Pico W image freezes it into flash), and the least free after a collection (the
  board collects once a second) while 4 clients load every page with 8 sessions open:
  web.heap_kb.pico_w.600 = free after the code - least free.
- load: the demo simulation at 60x real time with its web interface, manager cycles
  per wall second while 20 logged-in clients (in another process, as browsers are)
  each fetch /api/status and /api/events in a loop, divided by the same without them
  (the faster of a run before and one after).  At full speed the figure would measure
  the share of the shared CPUs the simulation gets, not whether the web delays polls.
  The same on the Pico W's firmware: the virtual unix_manager board (bus-paced).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stringcare.dev import layout
from stringcare.dev.mpbench import collected, need_valgrind, run_mp

RP2040_CYCLES_PER_X86_INSTR = 2.5
RP2040_HZ = 125_000_000
CLIENTS = 20
PACE = 60  # the simulation's speed in the load figure: 12 manager cycles a second
LOAD_WALL_S = 15.0

METRICS = {
    "web.page_kb_gz": ("KB", "<= 60", "first page: HTML + script, gzip-compressed"),
    "web.login_ms.cpython": (
        "ms", None, "one login's hash on CPython (OpenSSL PBKDF2, 200 000 iterations)"),
    "web.login_ms.unix": (
        "ms", None, "one login's hash, MicroPython unix port (pure Python, 4 000 iterations)"),
    "web.login_kinstr.rp2040": (
        "k instr", None, "the Pico W's login hash (1 000 iterations) under callgrind"),
    "web.login_est_ms.rp2040": (
        "ms", None, "that hash on a 125 MHz RP2040 at 2.5 cycles per x86 instruction"),
    "web.heap_kb.pico_w.600": (
        "KB", "<= 48", "web part's heap beside a 600-module core, serving (code frozen)"),
    "web.history_slice_ms.unix": (
        "ms", "<= 20", "longest a module page's history read held the board's loop"),
    "web.history_step_ms.unix": (
        "ms", None, "the largest step of that reading, OS preemption left out"),
    "web.module_page_ms.unix": (
        "ms", None, "one module page with its history over a 2 MB 600-module store"),
    "web.code_heap_kb": (
        "KB", None, "microdot + manager_fw/web loaded from source (not frozen)"),
    "web.poll_rate_ratio.load": (
        "ratio", ">= 0.9", "manager cycles per second with 20 clients refreshing / without"),
    "web.poll_rate_ratio.load.pico_w": (
        "ratio", ">= 0.9", "the same on the Pico W firmware (virtual unix_manager board)"),
}  # fmt: skip


def page_kb_gz() -> float:
    from manager_fw.web.page import APP_JS, PAGE_HTML

    size = len(gzip.compress(PAGE_HTML.encode())) + len(gzip.compress(APP_JS.encode()))
    return round(size / 1024, 1)


def login_ms_cpython() -> float:
    from manager_fw.web import auth

    best = None
    for _ in range(3):
        t0 = time.perf_counter()
        auth.pbkdf2(b"correct horse battery", b"0123456789abcdef", auth.ITERATIONS["cpython"])
        dt = time.perf_counter() - t0
        best = dt if best is None or dt < best else best
    assert best is not None
    return round(best * 1000, 1)


def _mp(args: list[str], valgrind: bool = False) -> str:
    return run_mp("web_hash.py", [str(layout.repo_root()), *args], valgrind)


def rp2040_kinstr() -> float:
    from manager_fw.web import auth

    need_valgrind("instruction counts for the web benchmark")
    counts = []
    for n in (1, auth.ITERATIONS["rp2040"]):
        counts.append(collected(_mp([str(n)], valgrind=True)))
    return (counts[1] - counts[0]) / 1000


# CLIENTS logged-in clients fetching /api/status and /api/events in a loop until
# terminated; prints "answered failed" (python -c BROWSERS URL COOKIE CLIENTS)
BROWSERS = """
import signal, sys, threading, urllib.request
url, cookie, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])  # for sigwait, every thread
counts = [0, 0]
def client():
    while True:
        for path in ("api/status", "api/events?since=0"):
            req = urllib.request.Request(url + path, headers={"Cookie": cookie})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    r.read()
                counts[0] += 1
            except OSError:
                counts[1] += 1
for _ in range(n):
    threading.Thread(target=client, daemon=True).start()
signal.sigwait([signal.SIGTERM])
print(counts[0], counts[1], flush=True)
"""


def cycles_per_s(clients: int, progress: Callable[[str], None]) -> float:
    from stringcare.sim import engine
    from stringcare.sim import scenario as scn
    from stringcare_host import status, webui

    sim = engine.Simulation(scn.load("demo"))
    ui = webui.WebUI("127.0.0.1", 0, config_obj=sim.config_obj, name="bench")
    try:
        code = ui.auth.setup_code
        assert code is not None
        ui.auth.create_first_admin(code, "bench", "bench password", "127.0.0.1", 0)
        body = json.dumps({"user": "bench", "password": "bench password"}).encode()
        req = urllib.request.Request(
            ui.url() + "api/login", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            cookie = r.headers["Set-Cookie"].split(";")[0]
        # wait for the manager to poll, then measure
        while sim.manager.mode_name() != "running" and sim.t_s < 600:
            sim.step()
        # the browsers in another process, as browsers are: their threads must not
        # share this process's interpreter lock with the manager's loop
        browsers = None
        if clients:
            browsers = subprocess.Popen(
                [sys.executable, "-c", BROWSERS, ui.url(), cookie, str(clients)],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
        c0, t0, last, s0 = sim.manager.cycles, time.monotonic(), 0.0, sim.t_s
        while time.monotonic() - t0 < LOAD_WALL_S:
            # the simulated clock paced at PACE x wall time, as `stringcare sim --speed`
            # does: the manager's cycles come at the bus's pace, not the CPU's
            if sim.t_s - s0 < PACE * (time.monotonic() - t0):
                sim.step()
            else:
                time.sleep(0.002)
            now = time.monotonic()
            if now - last >= 0.5:  # the shell's web turn, as `stringcare sim` does it
                last = now
                ui.turn(sim.manager, sim.now_s(), sim.event_log, status.event_text)
        rate = (sim.manager.cycles - c0) / (time.monotonic() - t0)
        counts = [0, 0]
        if browsers is not None:
            browsers.terminate()
            out = browsers.communicate(timeout=30)[0].split()
            counts = [int(out[0]), int(out[1])] if len(out) == 2 else [0, 0]
        progress("%d clients: %.1f manager cycles/s, %d requests answered, %d failed"
                 % (clients, rate, counts[0], counts[1]))  # fmt: skip
        return rate
    finally:
        ui.shutdown()
        sim.close()


def _http(url: str, body: Any = None, cookie: str = "", csrf: str = "") -> tuple[bytes, str]:
    headers = {"Cookie": cookie} if cookie else {}
    data = json.dumps(body).encode() if body is not None else None
    if data is not None:
        headers["Content-Type"] = "application/json"
    if csrf:
        headers["X-CSRF-Token"] = csrf
    req = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read(), r.headers.get("Set-Cookie", "")


def _pages(url: str, cookie: str, until: float) -> None:
    while time.monotonic() < until:
        for path in ("", "app.js", "api/status", "api/events?since=0", "api/me", "api/config",
                     "api/module?i=599"):  # fmt: skip
            _http(url + path, cookie=cookie)


def seed_history(path: Path, sizes: list[int], records: int) -> int:
    """A history store as the unix_manager board opens it (2 MB, 64 KB segments), full
    of snapshots 20 min apart up to 10 min ago (varying voltage, temperature, Ri), so
    a module page reads a store as a board in service holds; the key frames written."""
    from array import array

    from manager_fw.blockdev import FileBlockDevice
    from manager_fw.history_store import HistoryWriter
    from shared import history as h

    dev = FileBlockDevice(str(path), 2 * 1024 * 1024)
    w = HistoryWriter(dev, sizes, segment_size=65536)
    m = sum(sizes)
    v, c, ri = array("i", [0] * m), array("i", [0] * m), array("i", [0] * m)
    state, cur = bytearray(m), array("i", [h.CURRENT_NONE] * len(sizes))
    t = int(time.time()) - 1577836800 - 600 - 1200 * records
    for k in range(records):
        for i in range(m):
            v[i] = 13500000 + 1000 * ((k * 7 + i * 3) % 50)
            c[i] = 20000 + 100 * ((k + i) % 40)
            ri[i] = 4000000 + 1000 * i + 10000 * (k // 72)
        w.append(t, h.MODE_FLOAT, v, c, ri, state, state, cur)
        t += 1200
    dev.f.close()
    return w.key_frames


def history_steps(store: Path, progress: Callable[[str], None]) -> dict[str, float]:
    """The module page's history reading in the unix port over a seeded store, each
    step's least time over 5 runs (tools/bench/mp/web_history_steps.py): the largest
    step is what a slice can run over its SLICE_US (or over the bus's due time)."""
    exe = str(Path(sys.executable).parent / "micropython")
    script = str(layout.repo_root() / "tools/bench/mp/web_history_steps.py")
    proc = subprocess.run([exe, "-X", "heapsize=2M", script, str(layout.repo_root()),
                           str(store), "599", "600", "5"],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError("MicroPython bench failed: %s" % (proc.stderr or proc.stdout)[-2000:])
    largest_us, total_us, steps = (int(x) for x in proc.stdout.split())
    progress("history reading: %d steps, the largest %.2f ms, %.1f ms in all (least of 5 "
             "runs per step)" % (steps, largest_us / 1000, total_us / 1000))  # fmt: skip
    return {"web.history_step_ms.unix": round(largest_us / 1000, 2)}


def board_heap(progress: Callable[[str], None]) -> dict[str, float]:
    """The Pico W's web part beside 600 modules, in the real manager firmware on the
    virtual unix_manager board (no bus: the core holds 600 modules all the same): heap
    free beside the core, after the web's code, and the least free (after a collection,
    once a second) while 4 clients load every page with 8 sessions open."""
    import socket
    import tempfile

    from stringcare.dev.mpmanager import ManagerProcess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    url = "http://127.0.0.1:%d/" % port
    site = {"site": "bench", "strings": [{"modules": 60} for _ in range(10)]}
    with tempfile.TemporaryDirectory() as tmp:
        keys = seed_history(Path(tmp) / "history.bin", [60] * 10, 1100)
        steps = history_steps(Path(tmp) / "history.bin", progress)
        mgr = ManagerProcess(Path(tmp), site, {"web_port": port, "web_host": "127.0.0.1"})
        try:
            mgr.start(None, heap="2M")
            code = mgr.setup_code()
            mgr.wait_for("the web interface", lambda: _http(url + "api/me")[0])
            admin = {"code": code, "user": "admin", "password": "bench password"}
            _http(url + "api/setup", admin)
            cookies = []
            for _ in range(8):
                body, cookie = _http(url + "api/login", admin)
                cookies.append(cookie.split(";")[0])
            page_s = []
            for _ in range(3):  # one module page alone (its history: the whole store)
                t0 = time.monotonic()
                points = len(json.loads(_http(url + "api/module?i=599", cookie=cookies[-1])[0])
                             ["ri_history"])  # fmt: skip
                page_s.append(time.monotonic() - t0)
            until = time.monotonic() + 12
            threads = [threading.Thread(target=_pages, args=(url, c, until)) for c in cookies[-4:]]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            snap = json.loads(_http(url + "api/status", cookie=cookies[-1])[0])
        finally:
            mgr.stop()
    core_free, code_free, _app_free = snap["heap_start"]
    low = snap["heap_low"]
    out = {
        "web.heap_kb.pico_w.600": round((code_free - low) / 1024, 1),
        "web.code_heap_kb": round((core_free - code_free) / 1024, 1),
        "web.history_slice_ms.unix": round(snap["history_slice_us_max"] / 1000, 1),
        "web.module_page_ms.unix": round(min(page_s) * 1000, 1),
        **steps,
    }
    progress(
        "module page: %.0f ms (%d points of %d key frames in 2 MB), the longest slice of its "
        "reading %.1f ms (wall time: the OS's preemption on a shared machine included)"
        % (out["web.module_page_ms.unix"], points, keys, out["web.history_slice_ms.unix"])
    )
    progress(
        "heap beside 600 modules: %.1f KB data (least free %.1f KB), %.1f KB code from "
        "source" % (out["web.heap_kb.pico_w.600"], low / 1024, out["web.code_heap_kb"])
    )
    return out


def _board_count(url: str, cookie: str) -> tuple[float, int]:
    """(when, the board's measurement cycles), asked again while the board refuses the
    request at its connection cap (503) under load."""
    deadline = time.monotonic() + 60
    while True:
        try:
            body = _http(url + "api/status", cookie=cookie)[0]
            return time.monotonic(), json.loads(body)["cycles"]
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # the next try (the deadline above bounds them)


def _board_cycles(url: str, cookie: str, clients: int) -> tuple[float, int, int]:
    """The board's measurement cycles per second over LOAD_WALL_S while `clients` load
    its pages in a loop; (rate, pages answered, pages refused with 503)."""
    stop = threading.Event()
    counts = [0, 0]

    def browse() -> None:
        while not stop.is_set():
            for path in ("", "app.js", "api/status", "api/events?since=0"):
                try:
                    _http(url + path, cookie=cookie)
                    counts[0] += 1
                except OSError:  # 503 above the board's connection cap
                    counts[1] += 1

    threads = [threading.Thread(target=browse, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    t0, c0 = _board_count(url, cookie)
    time.sleep(LOAD_WALL_S)  # a rate over a span of time: the span is the measurement
    t1, c1 = _board_count(url, cookie)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    return (c1 - c0) / (t1 - t0), counts[0], counts[1]


def board_poll_ratio(progress: Callable[[str], None]) -> float:
    """The Pico W firmware on the virtual unix_manager board polling a virtual module
    (host_tests/hil/test_pico_w_web.py's rig): cycles per second with CLIENTS browsers
    loading its pages over the same without (the slower quiet run of one before, one
    after counts against it: the faster)."""
    import socket
    import tempfile

    from stringcare.deploy import Deployer
    from stringcare.dev.mpmanager import ManagerProcess
    from stringcare.dev.protocol_vectors import TEST_KEY_HEX
    from stringcare.vboard import BusHub, VirtualBoard

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    url = "http://127.0.0.1:%d/" % port
    hub = BusHub()
    with tempfile.TemporaryDirectory() as tmp:
        env = {"block_uv": 13500000, "uid": "5354524700000601"}
        vb = VirtualBoard(Path(tmp) / "flash", "unix_module", bus=hub, env=env).start()
        mgr = ManagerProcess(Path(tmp) / "manager", {"site": "b", "strings": [{"modules": 1}]},
                             {"web_port": port, "web_host": "127.0.0.1"}, TEST_KEY_HEX)  # fmt: skip
        try:
            key = bytes.fromhex(TEST_KEY_HEX)
            Deployer(layout.repo_root(), vb.board, vb.device, 1, None, hub.url,
                     progress=lambda t: None, site_key=key).run()  # fmt: skip
            mgr.start(hub.url)
            admin = {"code": mgr.setup_code(), "user": "admin", "password": "bench password"}
            mgr.wait_for("the web interface", lambda: _http(url + "api/me")[0])
            cookie = _http(url + "api/setup", admin)[1].split(";")[0]

            def running() -> bool:
                snap = json.loads(_http(url + "api/status", cookie=cookie)[0])
                return snap.get("mode") == "running" and snap.get("cycles", 0) > 3

            mgr.wait_for("polling", running)
            quiet = _board_cycles(url, cookie, 0)[0]
            loaded, answered, refused = _board_cycles(url, cookie, CLIENTS)
            quiet = max(quiet, _board_cycles(url, cookie, 0)[0])
        finally:
            mgr.stop()
            vb.stop()
            hub.close()
    progress("Pico W firmware (unix_manager): %.2f cycles/s quiet, %.2f with %d clients "
             "(%d pages answered, %d refused at the connection cap)"
             % (quiet, loaded, CLIENTS, answered, refused))  # fmt: skip
    return round(loaded / quiet, 3) if quiet else 0.0


def run(progress: Callable[[str], None]) -> dict[str, float]:
    from manager_fw.web import auth

    out: dict[str, float] = {"web.page_kb_gz": page_kb_gz()}
    progress("first page %.1f KB gzip" % out["web.page_kb_gz"])
    out["web.login_ms.cpython"] = login_ms_cpython()
    out["web.login_ms.unix"] = float(_mp([str(auth.ITERATIONS["unix"]), "t"]).strip())
    kinstr = rp2040_kinstr()
    out["web.login_kinstr.rp2040"] = round(kinstr, 1)
    out["web.login_est_ms.rp2040"] = round(
        kinstr * 1000 * RP2040_CYCLES_PER_X86_INSTR / RP2040_HZ * 1000, 1
    )
    progress("login hash: CPython %.1f ms, unix %.1f ms, RP2040 ~%.0f ms"
             % (out["web.login_ms.cpython"], out["web.login_ms.unix"],
                out["web.login_est_ms.rp2040"]))  # fmt: skip
    heap = board_heap(progress)
    out.update(heap)
    # quiet before and after the loaded run: the faster of the two (the machine is shared;
    # other work only ever slows a run down)
    quiet = cycles_per_s(0, progress)
    loaded = cycles_per_s(CLIENTS, progress)
    quiet = max(quiet, cycles_per_s(0, progress))
    out["web.poll_rate_ratio.load"] = round(loaded / quiet, 3) if quiet else 0.0
    out["web.poll_rate_ratio.load.pico_w"] = board_poll_ratio(progress)
    return out
