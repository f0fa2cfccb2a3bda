"""The manager's status page (read-only), served while a simulation runs.

    GET /             the page: one table per string, refreshed every second
    GET /api/status   the latest snapshot as JSON (what the manager knows)

The simulation loop publishes a snapshot (a plain dict) every half second of wall
time; the HTTP threads only serve the latest one, so they never touch live objects.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from stringcare_host.errors import UserError


class Board:
    """The latest snapshot, shared between the simulation and the HTTP threads."""

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
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError("--serve %r: give HOST:PORT, e.g. 127.0.0.1:8080 (port 1..65535)" % text)
    return host, int(port)


def serve(board: Board, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path in ("/", "/index.html"):
                body = PAGE.encode()
                ctype = "text/html; charset=utf-8"
            elif self.path.split("?")[0] == "/api/status":
                body = board.latest()
                ctype = "application/json"
            else:
                self.send_error(404, "not found: try / or /api/status")
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # the progress line is the console output

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise UserError(
            "cannot serve the status page on %s:%d: %s; pick another port with "
            "--serve HOST:PORT (make sim SIM_ARGS='--serve 127.0.0.1:8081')" % (host, port,
            exc.strerror or exc)) from None  # fmt: skip
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="status-page", daemon=True)
    thread.start()
    return server


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
