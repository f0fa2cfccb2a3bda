# The operator's web interface (docs/operator.md): one Microdot application, the same on
# the Pico W (MicroPython, microdot frozen into the image or bundled) and on the Linux
# manager and simulator (CPython, microdot from requirements.txt).
#
#   GET  /                 the page (one HTML file; tabs Status, Actions, Configuration,
#                          Events, Module, Users); /app.js its script
#   GET  /api/me           who is logged in, the CSRF token, whether setup is needed
#   POST /api/setup        the first admin, with the one-time setup code from the console
#   POST /api/login        user + password -> session cookie (HttpOnly, SameSite=Strict)
#   POST /api/logout
#   GET  /api/status       the latest snapshot (manager_fw/web/link.py)       viewer
#   GET  /api/stream       the same as Server-Sent Events, every new snapshot  viewer
#   GET  /api/events       the event log (?since=SEQ)                          viewer
#   GET  /api/config       site.json in use, the threshold fields and ranges   viewer
#   POST /api/config       validate and store a new site.json                  admin
#   POST /api/action       mute, runaway_reset, ri_now, equalise_on/off, rebaseline
#   POST /api/users        add a viewer or admin                               admin
#
# Every POST but login/setup needs the session's CSRF token in X-CSRF-Token and a JSON
# body (a cross-site form cannot send either).  Bounds: MAX_CONNECTIONS at once (more are
# closed at once), a request must arrive within REQUEST_TIMEOUT_S, bodies <= 24 KB, an
# event stream lasts STREAM_S (the browser reconnects) and at most MAX_STREAMS run.

import asyncio
import json

from microdot import Microdot, Request, Response

from manager_fw.web import auth as au
from manager_fw.web import link as lk
from manager_fw.web.page import APP_JS, PAGE_HTML

MAX_CONNECTIONS = 16  # a board's; the Linux manager and simulator allow 64
MAX_STREAMS = 6
REQUEST_TIMEOUT_S = 10
STREAM_S = 60
ACTION_WAIT_S = 10
COOKIE = "sc_session"

Request.max_content_length = 24 * 1024
Request.max_body_length = 24 * 1024
Request.max_readline = 2 * 1024

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
}


class _TimedReader:
    """The request's stream, every read bounded by the connection's deadline."""

    def __init__(self, reader, timeout_s):
        self.reader = reader
        self.timeout_s = timeout_s

    async def readline(self):
        return await asyncio.wait_for(self.reader.readline(), self.timeout_s)

    async def read(self, n=-1):
        return await asyncio.wait_for(self.reader.read(n), self.timeout_s)

    async def readexactly(self, n):
        return await asyncio.wait_for(self.reader.readexactly(n), self.timeout_s)


class BoundedMicrodot(Microdot):
    """Microdot with a cap on open connections and a deadline on each (see above)."""

    def __init__(self, max_connections=MAX_CONNECTIONS, timeout_s=REQUEST_TIMEOUT_S):
        super().__init__()
        self.max_connections = max_connections
        self.timeout_s = timeout_s
        self.open_connections = 0
        self.streams = 0  # event streams open
        self.link = None
        self.auth = None
        self.refused = 0
        self.timed_out = 0

    async def handle_request(self, reader, writer):
        if self.open_connections >= self.max_connections:
            self.refused += 1
            try:
                writer.write(b"HTTP/1.0 503 Busy\r\nContent-Length: 0\r\nRetry-After: 2\r\n\r\n")
                await writer.aclose()
            except Exception:  # noqa: BLE001 - the client went away: nothing to do
                pass
            return
        self.open_connections += 1
        try:
            await asyncio.wait_for(
                super().handle_request(
                    _TimedReader(reader, self.timeout_s),  # type: ignore[arg-type]
                    writer,
                ),
                STREAM_S + 2 * self.timeout_s,
            )
        except TimeoutError:
            self.timed_out += 1
            try:
                await writer.aclose()
            except Exception:  # noqa: BLE001
                pass
        except Exception:  # noqa: BLE001 - one broken connection never ends the server
            pass
        finally:
            self.open_connections -= 1


def _json(obj, status=200, headers=None):
    h = {"Content-Type": "application/json"}
    h.update(SECURITY_HEADERS)
    if headers:
        h.update(headers)
    return Response(json.dumps(obj), status, h)


def _refuse(status, text):
    return _json({"ok": False, "error": text}, status)


def make_app(
    link,
    auth,
    clock_s,
    secure_cookie=False,
    board_hash=False,
    users_problem=None,
    max_connections=MAX_CONNECTIONS,
    history_csv=None,
    history_chart=None,
):
    """The application.  link: a WebLink; auth: an Auth; clock_s(): seconds (monotonic
    is fine); secure_cookie: served over TLS; board_hash: hash in steps, yielding to the
    bus loop (MicroPython), else in one call (CPython: OpenSSL, on the server's thread).
    max_connections: MAX_CONNECTIONS on a board (its sockets and heap); more on Linux.
    history_csv: None, or () -> the history as pieces of CSV text (Linux, simulator).
    history_chart: None, or () -> PNG bytes of the history charts (Linux, simulator)."""
    app = BoundedMicrodot(max_connections)
    app.link = link
    app.auth = auth

    def client(request):
        addr = request.client_addr
        return addr[0] if isinstance(addr, (tuple, list)) and addr else str(addr)

    def session_of(request):
        return auth.session(request.cookies.get(COOKIE), clock_s())

    def need(request, role):
        """The session, or a refusal (401 not logged in, 403 a viewer, 403 no CSRF)."""
        s = session_of(request)
        if s is None:
            return None, _refuse(401, "log in first")
        if role == au.ROLE_ADMIN and s.role != au.ROLE_ADMIN:
            return None, _refuse(403, "your account (%s) may look, not change" % s.role)
        if request.method == "POST":
            if not au.csrf_ok(s, request.headers.get("X-CSRF-Token")):
                return None, _refuse(403, "missing or wrong CSRF token: reload the page")
            if not request.headers.get("Content-Type", "").startswith("application/json"):
                return None, _refuse(415, "send JSON")
        return s, None

    def body(request):
        try:
            obj = request.json
        except Exception:  # noqa: BLE001 - whatever the body is: a clear refusal
            obj = None
        return obj if isinstance(obj, dict) else None

    async def verify(name, password, address):
        now = clock_s()
        stored = auth.login_check(name, address, now)
        target = stored
        if target is None:  # the same work for an unknown name
            target = "pbkdf2-sha256$%d$%s$%s" % (auth.iterations, "00" * 16, "00" * 32)
        iterations, salt, want = au._parse_hash(target)
        if board_hash:
            dk = b""
            for step in au.pbkdf2_steps(password.encode(), salt, iterations):
                if step is None:
                    await asyncio.sleep(0)  # the bus loop's turn
                else:
                    dk = step
        else:
            dk = au.pbkdf2(password.encode(), salt, iterations)
        return auth.login_finish(name, stored is not None and au._same(dk, want), address, now)

    def cookie_headers(value, max_age):
        c = "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d" % (COOKIE, value, max_age)
        if secure_cookie:
            c += "; Secure"
        return {"Set-Cookie": c}

    @app.route("/")
    async def index(request):
        h = {"Content-Type": "text/html; charset=utf-8"}
        h.update(SECURITY_HEADERS)
        return Response(PAGE_HTML, 200, h)

    @app.route("/app.js")
    async def script(request):
        h = {"Content-Type": "application/javascript; charset=utf-8"}
        h.update(SECURITY_HEADERS)
        return Response(APP_JS, 200, h)

    @app.route("/api/me")
    async def me(request):
        s = session_of(request)
        out = {"setup": auth.needs_setup(), "problem": auth.problem or users_problem}
        if s is not None:
            out.update({"user": s.user, "role": s.role, "csrf": s.csrf})
        return _json(out)

    @app.route("/api/setup", methods=["POST"])
    async def setup(request):
        b = body(request)
        if b is None:
            return _refuse(400, "send JSON: code, user, password")
        try:
            name = auth.create_first_admin(
                str(b.get("code", "")),
                str(b.get("user", "")),
                str(b.get("password", "")),
                client(request),
                clock_s(),
            )
        except au.AuthError as e:
            return _refuse(403, str(e))
        s = auth._new_session(name, clock_s())
        link.submit("log", {"op": lk.OP_USER_ADDED}, name, auth.user_number(name))
        return _json({"ok": True, "user": name, "role": s.role, "csrf": s.csrf},
                     headers=cookie_headers(s.token, au.SESSION_MAX_S))  # fmt: skip

    @app.route("/api/login", methods=["POST"])
    async def login(request):
        b = body(request)
        if b is None:
            return _refuse(400, "send JSON: user, password")
        try:
            s = await verify(str(b.get("user", "")), str(b.get("password", "")), client(request))
        except au.AuthError as e:
            return _refuse(403, str(e))
        link.submit("log", {"op": lk.OP_LOGIN}, s.user, auth.user_number(s.user))
        return _json({"ok": True, "user": s.user, "role": s.role, "csrf": s.csrf},
                     headers=cookie_headers(s.token, au.SESSION_MAX_S))  # fmt: skip

    @app.route("/api/logout", methods=["POST"])
    async def logout(request):
        s, refusal = need(request, au.ROLE_VIEWER)
        if refusal:
            return refusal
        auth.logout(s.token)
        return _json({"ok": True}, headers=cookie_headers("", 0))

    @app.route("/api/status")
    async def status(request):
        s, refusal = need(request, au.ROLE_VIEWER)
        if refusal:
            return refusal
        h = {"Content-Type": "application/json"}
        h.update(SECURITY_HEADERS)
        if link.board:  # one string at a time, never the whole text in memory
            return Response(link.chunks(), 200, h)
        return Response(link.latest(), 200, h)

    @app.route("/api/stream")
    async def stream(request):
        s, refusal = need(request, au.ROLE_VIEWER)
        if refusal:
            return refusal
        if app.streams >= MAX_STREAMS:
            return _refuse(503, "too many live pages open: this one refreshes by polling")
        from microdot.sse import sse_response

        async def events(request, sse):
            app.streams += 1
            try:
                seen = -1
                t0 = clock_s()
                while clock_s() - t0 < STREAM_S:
                    if link.version != seen:
                        seen = link.version
                        if link.board:  # the page fetches the (streamed) status itself
                            await sse.send(str(seen), event="changed")
                        else:
                            await sse.send(link.latest(), event="status")
                    await asyncio.sleep(1)
            finally:
                app.streams -= 1

        return sse_response(request, events)

    @app.route("/api/events")
    async def events(request):
        s, refusal = need(request, au.ROLE_VIEWER)
        if refusal:
            return refusal
        try:
            since = int(request.args.get("since", "0"))
        except ValueError:
            since = 0
        return _json({"events": link.events_since(since)})

    @app.route("/api/history.csv")
    async def history(request):
        s, refusal = need(request, au.ROLE_VIEWER)
        if refusal:
            return refusal
        if history_csv is None:
            return _refuse(404, "no history download on this manager")
        try:
            pieces = history_csv()
        except Exception as e:  # noqa: BLE001 - no store yet, a damaged one: say so
            return _refuse(503, "the history cannot be read: %s" % e)
        h = {"Content-Type": "text/csv; charset=utf-8",
             "Content-Disposition": "attachment; filename=stringcare-history.csv"}  # fmt: skip
        h.update(SECURITY_HEADERS)
        return Response(pieces, 200, h)

    @app.route("/api/history.png")
    async def chart(request):
        s, refusal = need(request, au.ROLE_VIEWER)
        if refusal:
            return refusal
        if history_chart is None:
            return _refuse(404, "no history charts on this manager")
        try:
            png = history_chart()
        except Exception as e:  # noqa: BLE001 - nothing recorded yet, a damaged store
            return _refuse(503, "no chart: %s" % e)
        h = {"Content-Type": "image/png"}
        h.update(SECURITY_HEADERS)
        return Response(png, 200, h)

    @app.route("/api/config")
    async def config_get(request):
        s, refusal = need(request, au.ROLE_VIEWER)
        if refusal:
            return refusal
        from manager_fw import config as cf

        store = link.config_store
        return _json(
            {
                "config": link.config_obj,
                "fields": [list(f) for f in cf.THRESHOLD_FIELDS],
                "source": store.source if store is not None else "",
                "problems": list(store.problems) if store is not None else [],
                "editable": link.config_obj is not None,
            }
        )

    async def run_command(kind, args, s):
        ticket = link.submit(kind, args, s.user, auth.user_number(s.user))
        if ticket < 0:
            return _refuse(503, "the manager is busy with earlier commands: try again")
        waited = 0
        while waited < ACTION_WAIT_S * 20:
            r = link.result(ticket)
            if r is not None:
                return _json({"ok": r[0], "text": r[1]}, 200 if r[0] else 422)
            await asyncio.sleep(0.05)
            waited += 1
        return _json({"ok": True, "text": "queued: the manager carries it out shortly"}, 202)

    @app.route("/api/config", methods=["POST"])
    async def config_post(request):
        s, refusal = need(request, au.ROLE_ADMIN)
        if refusal:
            return refusal
        b = body(request)
        if b is None or not isinstance(b.get("config"), dict):
            return _refuse(400, 'send JSON: {"config": {site.json\'s content}}')
        if link.config_obj is None:
            return _refuse(409, "this manager's configuration is not editable here")
        from manager_fw import config as cf

        try:  # the parser's own message, at once (the loop checks again)
            cf.parse_config(b["config"])
        except cf.ConfigError as e:
            return _refuse(422, str(e))
        return await run_command("config", b["config"], s)

    @app.route("/api/action", methods=["POST"])
    async def action(request):
        s, refusal = need(request, au.ROLE_ADMIN)
        if refusal:
            return refusal
        b = body(request)
        if b is None or b.get("action") not in lk.ACTIONS:
            return _refuse(400, "action: one of %s" % ", ".join(sorted(lk.ACTIONS)))
        args = {}
        for key in ("string", "module", "start", "end", "current", "new", "address"):
            v = b.get(key)
            if v is not None:
                if not isinstance(v, int):
                    return _refuse(400, "%s: a number" % key)
                args[key] = v
        return await run_command(b["action"], args, s)

    @app.route("/api/users", methods=["POST"])
    async def users(request):
        s, refusal = need(request, au.ROLE_ADMIN)
        if refusal:
            return refusal
        b = body(request)
        if b is None:
            return _refuse(400, "send JSON: user, role, password")
        try:
            name = auth.add_user(
                str(b.get("user", "")), str(b.get("role", "")), str(b.get("password", ""))
            )
        except au.AuthError as e:
            return _refuse(422, str(e))
        link.submit("log", {"op": lk.OP_USER_ADDED, "value": auth.user_number(name)},
                    s.user, auth.user_number(s.user))  # fmt: skip
        return _json({"ok": True, "text": "user %s added" % name})

    return app
