# The operator's web interface (docs/operator.md): one Microdot application, the same on
# the Pico W (MicroPython, microdot frozen into the image or bundled) and on the Linux
# manager and simulator (CPython, microdot from requirements.txt).
#
#   GET  /                 the page (one HTML file, tabs); /app.js its script
#   GET  /api/me           who is logged in, the CSRF token, whether setup is needed
#   POST /api/setup        the first admin, with the one-time setup code from the console
#   POST /api/login        user + password -> session cookie (HttpOnly, SameSite=Strict)
#   POST /api/logout
#   POST /api/password     your own password (the old one, the new one)       viewer
#   GET  /api/status       the latest snapshot (manager_fw/web/link.py)       viewer
#   GET  /api/stream       the same as Server-Sent Events, every new snapshot  viewer
#   GET  /api/events       the event log (?since=SEQ)                          viewer
#   GET  /api/module?i=N   one module: readings, Ri judgement and history, calibration
#   GET  /api/history.csv  .png  .bin (the store's image)  /api/discharges   viewer,
#                          where the manager has them (HISTORY)
#   GET  /api/config       site.json in use, the threshold fields and ranges   viewer
#   POST /api/config       validate and store a new site.json                  admin
#   POST /api/action       manager_fw/actions.py ACTIONS                       admin
#   GET  /api/users        the accounts                                        admin
#   POST /api/users        add a viewer or admin; /api/users/delete           admin
#
# Every POST but login/setup needs the session's CSRF token in X-CSRF-Token and a JSON
# body (a cross-site form cannot send either).  Bounds: MAX_CONNECTIONS at once (more are
# closed at once), a request must arrive within REQUEST_TIMEOUT_S, bodies <= 24 KB, an
# event stream lasts STREAM_S (the browser reconnects) and at most MAX_STREAMS run.

import asyncio
import json

from microdot import Microdot, Request, Response

from manager_fw import actions as act
from manager_fw.web import auth as au
from manager_fw.web.page import APP_JS, PAGE_HTML

MAX_CONNECTIONS = 16  # a board's; the Linux manager and simulator allow 64
MAX_STREAMS = 6
REQUEST_TIMEOUT_S = 10
STREAM_S = 60
ACTION_WAIT_S = 10
COOKIE = "sc_session"
PUBLIC = None  # a route anyone may call (the page, login, setup)

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
# the history a manager may offer: (what, content type, file name for a download,
# what the operator is told where there is none)
HISTORY = {
    "csv": ("text/csv; charset=utf-8", "stringcare-history.csv", "no history download"),
    "png": ("image/png", None, "no history charts"),
    "bin": ("application/octet-stream", "history.bin", "no history image download"),
    "discharges": ("application/json", None, "no discharge list"),
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


async def _close(writer):
    try:
        await writer.aclose()
    except Exception:  # noqa: BLE001 - the client went away: nothing to do
        pass


class BoundedMicrodot(Microdot):
    """Microdot with a cap on open connections and a deadline on each (see above).
    max_active requests are served at once; up to max_waiting more wait their turn (a
    waiting connection holds its socket, not a parsed request: a board's heap); beyond
    that, or after waiting timeout_s, 503 at once."""

    def __init__(self, max_connections=MAX_CONNECTIONS, timeout_s=REQUEST_TIMEOUT_S):
        super().__init__()
        self.max_connections = max_connections
        self.max_active = max_connections
        self.max_waiting = 0
        self.timeout_s = timeout_s
        self.open_connections = 0
        self.active = 0
        self.streams = 0  # event streams open
        self.max_streams = MAX_STREAMS
        self.link = None
        self.auth = None
        self.refused = 0
        self.timed_out = 0

    async def _refuse(self, writer):
        self.refused += 1
        try:
            writer.write(b"HTTP/1.0 503 Busy\r\nContent-Length: 0\r\nRetry-After: 2\r\n\r\n")
        except Exception:  # noqa: BLE001
            pass
        await _close(writer)

    async def handle_request(self, reader, writer):
        if self.open_connections >= self.max_active + self.max_waiting:
            await self._refuse(writer)
            return
        self.open_connections += 1
        try:
            waited = 0
            while self.active >= self.max_active:  # its turn, or a refusal
                if waited >= self.timeout_s * 50:
                    await self._refuse(writer)
                    return
                await asyncio.sleep(0.02)
                waited += 1
            self.active += 1
            try:
                await self._serve(reader, writer)
            finally:
                self.active -= 1
        finally:
            self.open_connections -= 1

    async def _serve(self, reader, writer):
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
            await _close(writer)
        except Exception:  # noqa: BLE001 - one broken connection never ends the server
            pass


def _send(body, content_type="application/json", status=200, headers=None):
    h = {"Content-Type": content_type}
    h.update(SECURITY_HEADERS)
    if headers:
        h.update(headers)
    return Response(body, status, h)


def _json(obj, status=200, headers=None):
    return _send(json.dumps(obj), status=status, headers=headers)


def _refuse(status, text):
    return _json({"ok": False, "error": text}, status)


def _body(request):
    try:
        obj = request.json
    except Exception:  # noqa: BLE001 - whatever the body is: a clear refusal
        obj = None
    return obj if isinstance(obj, dict) else None


def _pieces(text, n=1024):
    """A long constant text in pieces: Microdot would encode a str body in one copy
    (the page and script are 30 KB: four browsers loading them at once on a board would
    take 120 KB of its heap); a piece at a time costs 2 KB."""
    for i in range(0, len(text), n):
        yield text[i : i + n]


def _with_rows(head, pieces):
    """A JSON object's text with "ri_history" added from pieces of text (a board's
    module history: never the whole list as objects in memory)."""
    yield head[:-1] + ', "ri_history": '
    yield from pieces
    yield "}"


def _client(request):
    addr = request.client_addr
    return addr[0] if isinstance(addr, (tuple, list)) and addr else str(addr)


class WebApp:
    """The handlers (routes in ROUTES), over a link, the accounts and a clock."""

    def __init__(self, app, link, auth, clock_s, secure_cookie, board_hash, users_problem,
                 history):  # fmt: skip
        self.app = app
        self.link = link
        self.auth = auth
        self.clock_s = clock_s
        self.secure_cookie = secure_cookie
        self.board_hash = board_hash
        self.users_problem = users_problem
        self.history = history  # what -> () -> body, or (i) -> rows for "module"
        self.routes: dict = {}  # "METHOD /path" -> (handler, role)

    # -- helpers ---------------------------------------------------------------------

    def need(self, request, role):
        """The session, or a refusal (401 not logged in, 403 a viewer, 403 no CSRF)."""
        s = self.auth.session(request.cookies.get(COOKIE), self.clock_s())
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

    async def dispatch(self, request, path=""):
        """Every request: its route (ROUTES), the caller's role checked first.  One
        Microdot route for all: Microdot compiles a pattern per route, which a board
        would hold on its heap for every route once it was matched."""
        found = self.routes.get(request.method + " " + request.path)
        if found is None:
            return _refuse(404, "%s %s: no such page" % (request.method, request.path))
        handler, role = found
        if role is PUBLIC:
            return await handler(request, None)
        s, refusal = self.need(request, role)
        if refusal:
            return refusal
        return await handler(request, s)

    async def pbkdf2(self, password, salt, iterations):
        """The hash; on a board in steps, giving the bus loop its turns between them."""
        if not self.board_hash:
            return au.pbkdf2(password.encode(), salt, iterations)
        dk = b""
        for step in au.pbkdf2_steps(password.encode(), salt, iterations, au.BOARD_CHUNK):
            if step is None:
                await asyncio.sleep(0)  # the bus loop's turn
            else:
                dk = step
        return dk

    async def new_hash(self, password):
        au.check_new_password(password)
        salt = au.random_bytes(au.SALT_BYTES)
        dk = await self.pbkdf2(password, salt, self.auth.iterations)
        return "pbkdf2-sha256$%d$%s$%s" % (self.auth.iterations, au._hex(salt), au._hex(dk))

    async def password_ok(self, stored, password):
        """Whether password matches the stored hash (None: the same work, False)."""
        target = stored
        if target is None:  # the same work for an unknown name
            target = "pbkdf2-sha256$%d$%s$%s" % (self.auth.iterations, "00" * 16, "00" * 32)
        iterations, salt, want = au._parse_hash(target)
        dk = await self.pbkdf2(password, salt, iterations)
        return stored is not None and au._same(dk, want)

    def session_answer(self, s):
        c = "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d" % (
            COOKIE, s.token if s else "", au.SESSION_MAX_S if s else 0)  # fmt: skip
        if self.secure_cookie:
            c += "; Secure"
        obj = {"ok": True}
        if s is not None:
            obj.update({"user": s.user, "role": s.role, "csrf": s.csrf})
        return _json(obj, headers={"Set-Cookie": c})

    def record(self, op, s_user, value=0):
        """The event log's record of who did it (the manager's loop writes it)."""
        self.link.submit("log", {"op": op, "value": value}, s_user,
                         self.auth.user_number(s_user))  # fmt: skip

    async def carried_out(self, kind, args, s):
        """Queue a command for the manager's loop and wait for it: (ok, text), or a
        refusal (busy), or None (not carried out within ACTION_WAIT_S)."""
        ticket = self.link.submit(kind, args, s.user, self.auth.user_number(s.user))
        if ticket < 0:
            return _refuse(503, "the manager is busy with earlier commands: try again")
        for _ in range(ACTION_WAIT_S * 20):
            r = self.link.result(ticket)
            if r is not None:
                return r
            await asyncio.sleep(0.05)
        return None

    async def command(self, kind, args, s):
        r = await self.carried_out(kind, args, s)
        if r is None:
            return _json({"ok": True, "text": "queued: the manager carries it out shortly"}, 202)
        if isinstance(r, tuple):
            return _json({"ok": r[0], "text": r[1]}, 200 if r[0] else 422)
        return r

    # -- public ----------------------------------------------------------------------

    async def index(self, request, s):
        return _send(_pieces(PAGE_HTML), "text/html; charset=utf-8")

    async def script(self, request, s):
        return _send(_pieces(APP_JS), "application/javascript; charset=utf-8")

    async def me(self, request, s):
        s = self.auth.session(request.cookies.get(COOKIE), self.clock_s())
        out = {"setup": self.auth.needs_setup(), "problem": self.auth.problem or self.users_problem,
               "history": sorted(self.history)}  # fmt: skip
        if s is not None:
            out.update({"user": s.user, "role": s.role, "csrf": s.csrf})
        return _json(out)

    async def setup(self, request, s):
        b = _body(request)
        if b is None:
            return _refuse(400, "send JSON: code, user, password")
        auth, now = self.auth, self.clock_s()
        try:
            code, name, password = str(b.get("code", "")), str(b.get("user", "")), str(
                b.get("password", ""))  # fmt: skip
            if auth.setup_code is not None and code.strip() == auth.setup_code:
                hashed = await self.new_hash(password)  # the slow part, before the rest
            else:
                hashed = None
            name = auth.create_first_admin(code, name, password, _client(request), now, hashed)
        except au.AuthError as e:
            return _refuse(403, str(e))
        s = auth._new_session(name, now)
        self.record(act.OP_USER_ADDED, name)
        return self.session_answer(s)

    async def login(self, request, s):
        b = _body(request)
        if b is None:
            return _refuse(400, "send JSON: user, password")
        name, address, now = str(b.get("user", "")), _client(request), self.clock_s()
        try:
            stored = self.auth.login_check(name, address, now)
            ok = await self.password_ok(stored, str(b.get("password", "")))
            s = self.auth.login_finish(name, ok, address, now)
        except au.AuthError as e:
            return _refuse(403, str(e))
        self.record(act.OP_LOGIN, s.user)
        return self.session_answer(s)

    # -- viewer ----------------------------------------------------------------------

    async def logout(self, request, s):
        self.auth.logout(s.token)
        return self.session_answer(None)

    async def password(self, request, s):
        b = _body(request) or {}
        stored = self.auth.users[s.user]["hash"]
        if not await self.password_ok(stored, str(b.get("old", ""))):
            return _refuse(403, "the old password is wrong: nothing changed")
        try:
            hashed = await self.new_hash(str(b.get("new", "")))
            self.auth.set_password(s.user, str(b.get("new", "")), s.token, hashed)
        except au.AuthError as e:
            return _refuse(422, str(e))
        self.record(act.OP_PASSWORD, s.user, self.auth.user_number(s.user))
        return _json({"ok": True, "text": "password changed; your other sessions ended"})

    async def status(self, request, s):
        if self.link.board:  # in pieces, never the whole text in memory
            return _send(self.link.chunks())
        return _send(self.link.latest())

    async def stream(self, request, s):
        app, link, clock_s = self.app, self.link, self.clock_s
        if app.streams >= app.max_streams:
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

    async def events(self, request, s):
        try:
            since = int(request.args.get("since", "0"))
        except ValueError:
            since = 0
        return _json({"events": self.link.events_since(since)})

    async def module(self, request, s):
        try:
            i = int(request.args.get("i", "-1"))
        except ValueError:
            i = -1
        r = await self.carried_out("module", {"module": i}, s)
        if not isinstance(r, tuple):
            return r or _refuse(503, "the manager did not answer in time: try again")
        view = r[1]
        if view is None:
            return _refuse(404, "module %d: no such module (or no status yet)" % i)
        rows = self.history.get("module")
        got = None
        if rows is not None:
            try:
                got = rows(i)
                if not isinstance(got, list):  # a board's: read in slices, then streamed
                    got = await got
            except Exception as e:  # noqa: BLE001 - no store yet, a damaged one: say so
                view["ri_history_problem"] = str(e)
                got = None
        if isinstance(got, list):
            view["ri_history"] = got
        elif got is not None:  # manager_fw/web/module_history.py: rows as pieces of text
            if got.problems:
                view["ri_history_problem"] = "; ".join(got.problems)
            return _send(_with_rows(json.dumps(view), got.json_pieces()))
        return _json(view)

    def download(self, what):
        kind, name, missing = HISTORY[what]

        async def get(request, s):
            source = self.history.get(what)
            if source is None:
                return _refuse(404, "%s on this manager" % missing)
            try:
                body = source()
            except Exception as e:  # noqa: BLE001 - no store yet, a damaged one: say so
                return _refuse(503, "the history cannot be read: %s" % e)
            if what == "discharges":
                body = json.dumps({"discharges": body})
            headers = {"Content-Disposition": "attachment; filename=" + name} if name else None
            return _send(body, kind, headers=headers)

        return get

    async def config_get(self, request, s):
        from manager_fw import config as cf

        store, link = self.link.config_store, self.link
        return _json({
            "config": link.config_obj,
            "fields": [list(f) for f in cf.THRESHOLD_FIELDS],
            "source": store.source if store is not None else "",
            "problems": list(store.problems) if store is not None else [],
            "editable": link.config_obj is not None,
        })  # fmt: skip

    # -- admin -----------------------------------------------------------------------

    async def config_post(self, request, s):
        b = _body(request)
        if b is None or not isinstance(b.get("config"), dict):
            return _refuse(400, 'send JSON: {"config": {site.json\'s content}}')
        if self.link.config_obj is None:
            return _refuse(409, "this manager's configuration is not editable here")
        from manager_fw import config as cf

        try:  # the parser's own message, at once (the loop checks again)
            cf.parse_config(b["config"])
        except cf.ConfigError as e:
            return _refuse(422, str(e))
        return await self.command("config", b["config"], s)

    async def action(self, request, s):
        b = _body(request)
        if b is None or b.get("action") not in act.ACTIONS:
            return _refuse(400, "action: one of %s" % ", ".join(sorted(act.ACTIONS)))
        args = {}
        for key in ("string", "module", "start", "end", "current", "new", "address"):
            v = b.get(key)
            if v is not None:
                if not isinstance(v, int):
                    return _refuse(400, "%s: a number" % key)
                args[key] = v
        return await self.command(b["action"], args, s)

    async def users_list(self, request, s):
        return _json({"users": self.auth.user_list()})

    async def users_add(self, request, s):
        b = _body(request)
        if b is None:
            return _refuse(400, "send JSON: user, role, password")
        try:
            name = au.check_username(str(b.get("user", "")))
            if name in self.auth.users:
                raise au.AuthError("user %s exists already" % name)
            password = str(b.get("password", ""))
            hashed = await self.new_hash(password)
            name = self.auth.add_user(name, str(b.get("role", "")), password, hashed)
        except au.AuthError as e:
            return _refuse(422, str(e))
        self.record(act.OP_USER_ADDED, s.user, self.auth.user_number(name))
        return _json({"ok": True, "text": "user %s added" % name})

    async def users_delete(self, request, s):
        b = _body(request) or {}
        try:
            number = self.auth.delete_user(str(b.get("user", "")), s.user)
        except au.AuthError as e:
            return _refuse(422, str(e))
        self.record(act.OP_USER_DELETED, s.user, number)
        return _json({"ok": True, "text": "user %s deleted" % b.get("user")})


# path, methods, handler (a WebApp method's name, or a download), who may call it
ROUTES = (
    ("/", "GET", "index", PUBLIC),
    ("/app.js", "GET", "script", PUBLIC),
    ("/api/me", "GET", "me", PUBLIC),
    ("/api/setup", "POST", "setup", PUBLIC),
    ("/api/login", "POST", "login", PUBLIC),
    ("/api/logout", "POST", "logout", au.ROLE_VIEWER),
    ("/api/password", "POST", "password", au.ROLE_VIEWER),
    ("/api/status", "GET", "status", au.ROLE_VIEWER),
    ("/api/stream", "GET", "stream", au.ROLE_VIEWER),
    ("/api/events", "GET", "events", au.ROLE_VIEWER),
    ("/api/module", "GET", "module", au.ROLE_VIEWER),
    ("/api/history.csv", "GET", "csv", au.ROLE_VIEWER),
    ("/api/history.png", "GET", "png", au.ROLE_VIEWER),
    ("/api/history.bin", "GET", "bin", au.ROLE_VIEWER),
    ("/api/discharges", "GET", "discharges", au.ROLE_VIEWER),
    ("/api/config", "GET", "config_get", au.ROLE_VIEWER),
    ("/api/config", "POST", "config_post", au.ROLE_ADMIN),
    ("/api/action", "POST", "action", au.ROLE_ADMIN),
    ("/api/users", "GET", "users_list", au.ROLE_ADMIN),
    ("/api/users", "POST", "users_add", au.ROLE_ADMIN),
    ("/api/users/delete", "POST", "users_delete", au.ROLE_ADMIN),
)


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
    history_image=None,
    history_discharges=None,
    history_module=None,
):
    """The application.  link: a WebLink; auth: an Auth; clock_s(): seconds (monotonic
    is fine); secure_cookie: served over TLS; board_hash: hash in steps, yielding to the
    bus loop (MicroPython), else in one call (CPython: OpenSSL, on the server's thread).
    max_connections: MAX_CONNECTIONS on a board (its sockets and heap); more on Linux.
    The history a manager offers, each None where it has none: history_csv() -> pieces
    of CSV text, history_chart() -> PNG bytes (Linux, simulator); history_image() ->
    pieces of the store's image (board); history_discharges() -> the discharges with
    each block at the deepest point; history_module(i) -> [[time_s, ri_nohm], ...] (Linux,
    simulator), or on a board an awaitable giving a module_history.ModuleHistory read
    (rows [time_s, ri_nohm, voltage_mv, temp_cc] from the store's key frames)."""
    app = BoundedMicrodot(max_connections)
    app.link = link
    app.auth = auth
    history = {}
    sources = (("csv", history_csv), ("png", history_chart), ("bin", history_image),
               ("discharges", history_discharges), ("module", history_module))  # fmt: skip
    for what, source in sources:
        if source is not None:
            history[what] = source
    web = WebApp(app, link, auth, clock_s, secure_cookie, board_hash, users_problem, history)
    routes = {}
    for path, method, name, role in ROUTES:
        handler = web.download(name) if name in HISTORY else getattr(web, name)
        routes[method + " " + path] = (handler, role)
    web.routes = routes
    app.route("/", methods=["GET", "POST"])(web.dispatch)
    app.route("/<path:path>", methods=["GET", "POST"])(web.dispatch)
    return app
