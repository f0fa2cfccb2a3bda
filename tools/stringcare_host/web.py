"""The manager's status page (read-only), served while a manager or a simulation runs.

    GET /             the page: one table per string, refreshed every second
    GET /api/status   the latest snapshot as JSON (what the manager knows)

The manager loop publishes a snapshot (a plain dict) every second; the server only
serves the latest one, so it never touches live objects.

One thread serves every connection from a selector: a connection costs a socket and a
small buffer, never a thread.  At most `max_connections` are open (the oldest is closed
to make room for a new one), each must send its request and take the answer within
`timeout_s`, a request is at most 8 KB.  So slow or half-open clients (400 of them in
the fault campaign, docs/reliability.md) neither starve the page nor the polling.

It binds to 127.0.0.1 unless told otherwise.  There is no authentication yet (the web
interface issue brings it): serve on another address only on a network you trust, or
reach it through an SSH tunnel or an authenticating reverse proxy.
"""

from __future__ import annotations

import json
import selectors
import socket
import threading
import time
from typing import Any

from stringcare_host.errors import UserError

DEFAULT_HOST = "127.0.0.1"
MAX_CONNECTIONS = 64
TIMEOUT_S = 10.0  # a connection's whole life: its request in, the answer out
MAX_REQUEST_BYTES = 8192
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Board:
    """The latest snapshot, shared between the manager loop and the server thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._json = b"{}"

    def publish(self, snapshot: dict[str, Any]) -> None:
        data = json.dumps(snapshot).encode()
        with self._lock:
            self._json = data

    def latest(self) -> bytes:
        with self._lock:
            return self._json


def parse_hostport(text: str) -> tuple[str, int]:
    """HOST:PORT, or PORT alone (on 127.0.0.1); port 0 takes any free port."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = DEFAULT_HOST, text
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise UserError(
            "--serve %r: give PORT or HOST:PORT, e.g. 8080 or 127.0.0.1:8080 (port 0..65535, "
            "0: any free port)" % text
        )
    return host, int(port)


def exposed_warning(host: str) -> str | None:
    """What to tell the operator when the page is reachable from other computers."""
    if host in LOOPBACK:
        return None
    return (
        "the status page on %s has no authentication yet: anyone who reaches this address "
        "sees the site; serve on 127.0.0.1 and use an SSH tunnel or an authenticating "
        "reverse proxy unless the network is yours alone" % host
    )


class _Conn:
    __slots__ = ("sock", "rbuf", "out", "deadline")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.rbuf = bytearray()
        self.out: memoryview | None = None
        self.deadline = deadline


class StatusServer:
    """The status page on one thread (see the module comment)."""

    def __init__(
        self,
        board: Board,
        host: str,
        port: int,
        max_connections: int = MAX_CONNECTIONS,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self.board = board
        self.max_connections = max_connections
        self.timeout_s = timeout_s
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.create_server((host, port), family=family, backlog=128)
        self.sock.setblocking(False)
        self.server_address = self.sock.getsockname()[:2]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.sock, selectors.EVENT_READ, None)
        self.conns: dict[socket.socket, _Conn] = {}  # oldest first
        self.served = 0
        self.timed_out = 0
        self.evicted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-page", daemon=True)
        self._thread.start()

    # -- the loop -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                events = self.sel.select(timeout=0.25)
            except OSError:
                continue
            for key, mask in events:
                if key.data is None:
                    self._accept()
                    continue
                conn = key.data
                if conn.sock not in self.conns:
                    continue
                try:
                    if mask & selectors.EVENT_READ:
                        self._read(conn)
                    elif mask & selectors.EVENT_WRITE:
                        self._write(conn)
                except OSError:
                    self._close(conn)
            self._expire()
        for conn in list(self.conns.values()):
            self._close(conn)
        self.sel.close()
        self.sock.close()

    def _accept(self) -> None:
        for _ in range(64):  # a burst, then serve the others too
            try:
                sock, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # out of file descriptors, for one: drop the oldest
                self._evict()
                return
            if len(self.conns) >= self.max_connections:
                self._evict()
            sock.setblocking(False)
            conn = _Conn(sock, time.monotonic() + self.timeout_s)
            self.conns[sock] = conn
            self.sel.register(sock, selectors.EVENT_READ, conn)

    def _evict(self) -> None:
        """Make room: close the oldest connection still waiting for its request (or the
        oldest of all when every one is being answered)."""
        victim = next((c for c in self.conns.values() if c.out is None), None)
        if victim is None:
            victim = next(iter(self.conns.values()), None)
        if victim is not None:
            self.evicted += 1
            self._close(victim)

    def _expire(self) -> None:
        now = time.monotonic()
        late = [c for c in self.conns.values() if now >= c.deadline]
        for conn in late:
            self.timed_out += 1
            self._close(conn)

    def _close(self, conn: _Conn) -> None:
        if self.conns.pop(conn.sock, None) is None:
            return
        try:
            self.sel.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        conn.sock.close()

    def _read(self, conn: _Conn) -> None:
        data = conn.sock.recv(4096)
        if not data:
            self._close(conn)
            return
        conn.rbuf += data
        end = conn.rbuf.find(b"\r\n\r\n")
        if end < 0:
            if len(conn.rbuf) > MAX_REQUEST_BYTES:
                self._answer(conn, 431, "text/plain", b"request too large\n")
            return
        self._answer(conn, *self._route(bytes(conn.rbuf[:end])))

    def _route(self, head: bytes) -> tuple[int, str, bytes]:
        parts = head.split(b"\r\n", 1)[0].split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
            return 400, "text/plain", b"bad request\n"
        if parts[0] not in (b"GET", b"HEAD"):
            return 405, "text/plain", b"read-only: GET / or /api/status\n"
        path = parts[1].split(b"?", 1)[0]
        if path in (b"/", b"/index.html"):
            return 200, "text/html; charset=utf-8", PAGE_BYTES
        if path == b"/api/status":
            return 200, "application/json", self.board.latest()
        return 404, "text/plain", b"not found: try / or /api/status\n"

    def _answer(self, conn: _Conn, code: int, ctype: str, body: bytes) -> None:
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                  431: "Request Header Fields Too Large"}[code]  # fmt: skip
        head = (
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
            % (code, reason, ctype, len(body))
        ).encode()
        if conn.rbuf.startswith(b"HEAD "):
            body = b""
        conn.out = memoryview(head + body)
        self.served += 1
        self.sel.modify(conn.sock, selectors.EVENT_WRITE, conn)
        self._write(conn)

    def _write(self, conn: _Conn) -> None:
        out = conn.out
        if out is None:
            return
        try:
            n = conn.sock.send(out)
        except (BlockingIOError, InterruptedError):
            return
        conn.out = out = out[n:]
        if not len(out):
            self._close(conn)

    # -- control ----------------------------------------------------------------------

    def open_connections(self) -> int:
        return len(self.conns)

    def shutdown(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def serve(board: Board, host: str, port: int, **limits: Any) -> StatusServer:
    """Serve the status page on host:port (port 0: any free one; see server_address)."""
    try:
        return StatusServer(board, host, port, **limits)
    except OSError as exc:
        raise UserError(
            "cannot serve the status page on %s:%d: %s; pick another port with "
            "--serve HOST:PORT (make sim SIM_ARGS='--serve 127.0.0.1:8081')" % (host, port,
            exc.strerror or exc)) from None  # fmt: skip


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>StringCare — status</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 1.2em; color: #1b1f24; background: #f6f7f9; }
 header { display: flex; gap: 2em; align-items: baseline; flex-wrap: wrap; }
 h1 { font-size: 1.3em; margin: 0 0 .4em 0; }
 .meta span { margin-right: 1.5em; }
 .alarm { color: #b00020; font-weight: 600; }
 section.string { background: #fff; border: 1px solid #d0d7de; border-radius: 6px;
   padding: .6em 1em 1em; margin: 1em 0; }
 section.string h2 { font-size: 1.05em; margin: .2em 0 .5em; }
 .summary span { display: inline-block; margin-right: 1.6em; }
 table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
 th, td { padding: .22em .6em; text-align: right; border-bottom: 1px solid #eaeef2; }
 th { cursor: pointer; user-select: none; background: #f0f3f6; position: sticky; top: 0; }
 th.sorted-asc::after { content: " ▲"; } th.sorted-desc::after { content: " ▼"; }
 td.label, th.label { text-align: left; }
 .chip { display: inline-block; width: .9em; height: .9em; border-radius: 50%;
   vertical-align: middle; margin-right: .4em; }
 .ok { background: #2da44e; } .warning { background: #f0883e; } .alarm-c { background: #cf222e; }
 .silent { background: #6e7781; } .unknown { background: #d0d7de; }
 .bar { display: inline-block; height: .7em; background: #54aeff; vertical-align: middle; }
 #events { font-size: .9em; max-height: 14em; overflow: auto; background: #fff;
   border: 1px solid #d0d7de; border-radius: 6px; padding: .5em 1em; }
</style>
</head>
<body>
<header>
 <h1>StringCare <span id="title"></span></h1>
 <div class="meta"><span id="clock">connecting…</span><span id="mode"></span>
  <span id="alarms"></span></div>
</header>
<main id="strings"></main>
<h2 style="font-size:1.05em">Events</h2>
<div id="events"></div>
<script>
const sortState = {};
function fmt(x, d) { return (x === null || x === undefined) ? "—" : Number(x).toFixed(d); }
function stateClass(s) {
  return {ok: "ok", warning: "warning", alarm: "alarm-c", silent: "silent"}[s] || "unknown";
}
const COLS = [
  ["label", "#", "label"], ["voltage_v", "Voltage V", 3], ["temp_c", "Temp °C", 1],
  ["ri_mohm", "Ri mΩ", 2], ["balance_pct", "Balancing %", 0], ["state", "State", "state"]];
function renderString(st, idx) {
  const key = "s" + idx, sort = sortState[key] || {col: "label", dir: 1};
  const rows = st.modules.slice();
  rows.sort((a, b) => {
    let x = a[sort.col], y = b[sort.col];
    if (sort.col === "label") { x = a.position; y = b.position; }
    if (x === null) return 1; if (y === null) return -1;
    return (x < y ? -1 : x > y ? 1 : 0) * sort.dir; });
  let h = `<section class="string" id="string-${idx + 1}"><h2>String ${idx + 1}</h2>`;
  h += `<div class="summary"><span>Sum <b>${fmt(st.sum_v, 2)} V</b></span>`;
  h += st.equalising ? `<span>Target <b>${fmt(st.target_v, 3)} V</b></span>`
                     : `<span>Average <b>${fmt(st.average_v, 3)} V</b></span>`;
  h += `<span>Spread ${fmt(st.spread_mv, 0)} mV</span>`;
  h += `<span>Current ${fmt(st.current_a, 2)} A</span><span>Power ${fmt(st.power_w, 0)} W</span>`;
  h += `<span>${st.equalising ? "equalising" : st.reason}</span></div>`;
  h += `<table data-string="${idx}"><thead><tr>`;
  for (const [k, name, kind] of COLS) {
    const cls = (kind === "label" ? "label " : "") +
      (sort.col === k ? (sort.dir > 0 ? "sorted-asc" : "sorted-desc") : "");
    h += `<th class="${cls}" data-col="${k}">${name}</th>`;
  }
  h += `</tr></thead><tbody>`;
  for (const m of rows) {
    h += `<tr class="module" data-label="${m.label}"><td class="label">${m.label}</td>`;
    h += `<td class="v">${fmt(m.voltage_v, 3)}</td><td>${fmt(m.temp_c, 1)}</td>`;
    h += `<td>${fmt(m.ri_mohm, 2)}</td>`;
    const pct = m.balance_pct === null ? 0 : m.balance_pct;
    h += `<td><span class="bar" style="width:${pct * 0.6}px"></span> ${fmt(m.balance_pct, 0)}</td>`;
    h += `<td><span class="chip ${stateClass(m.state)}"></span>${m.state}</td></tr>`;
  }
  return h + `</tbody></table></section>`;
}
function render(s) {
  document.getElementById("title").textContent = "— " + (s.site || "");
  document.getElementById("clock").textContent = s.clock || "";
  document.getElementById("mode").textContent = "manager " + (s.mode || "");
  const a = document.getElementById("alarms");
  a.textContent = `${s.alarms} alarm(s), ${s.warnings} warning(s)`;
  a.className = s.alarms ? "alarm" : "";
  document.getElementById("strings").innerHTML = s.strings.map(renderString).join("");
  document.getElementById("events").innerHTML =
    s.events.slice().reverse().map(e => `<div>${e.time} — ${e.text}</div>`).join("");
  document.querySelectorAll("th[data-col]").forEach(th => th.onclick = () => {
    const key = "s" + th.closest("table").dataset.string, col = th.dataset.col;
    const cur = sortState[key] || {col: "label", dir: 1};
    sortState[key] = {col, dir: cur.col === col ? -cur.dir : 1};
    render(s);
  });
  document.body.dataset.ready = "1";
}
async function tick() {
  try {
    const r = await fetch("/api/status", {cache: "no-store"});
    const s = await r.json();
    if (s.strings) render(s);
  } catch (e) { document.getElementById("clock").textContent = "simulation ended"; }
}
tick(); setInterval(tick, 1000);
</script>
</body>
</html>
"""
PAGE_BYTES = PAGE.encode()
