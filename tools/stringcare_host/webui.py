"""The operator's web interface (manager_fw/web/, docs/operator.md) on CPython: the
simulator and the Linux manager.

The Microdot application runs on its own thread with its own asyncio loop; the
manager's loop stays on the main thread and calls `WebUI.turn(core, now_s)` between
steps (about twice a second): the queued commands are carried out there, new events
and a fresh snapshot are handed over.  The server never touches the core.

No default password: while the users file holds no account, a one-time setup code is
printed on stderr; the first admin is created with it in the browser.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
import threading
import time
from typing import Any

from manager_fw import actions as act
from manager_fw import config as mcfg
from manager_fw import events as mev
from manager_fw.web import app as webapp
from manager_fw.web import auth as au
from manager_fw.web import link as lk
from stringcare_host import control
from stringcare_host.errors import UserError

ITERATIONS = au.ITERATIONS["cpython"]
MAX_CONNECTIONS = 64


class MemoryFiles:
    """A users file kept in memory (the simulator without --web-users)."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}

    def read(self, path: str) -> str | None:
        return self.files.get(path)

    def write(self, path: str, text: str) -> None:
        self.files[path] = text

    def rename(self, old: str, new: str) -> None:
        self.files[new] = self.files.pop(old)

    def remove(self, path: str) -> None:
        self.files.pop(path, None)


class PrivateFiles(mcfg.OsFiles):
    """The users file on Linux: readable by the manager's user only (mode 0600), since
    it holds the password hashes."""

    def write(self, path: str, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(path, 0o600)


def operator_text(auth: au.Auth, e: Any) -> str:
    what = act.OP_NAMES[e.arg] if e.arg < len(act.OP_NAMES) else "action %d" % e.arg
    if e.extra & act.FROM_CONTROL:
        who = control.who(e.extra)
    else:
        who = auth.user_by_number(e.extra) or "user #%d" % e.extra
    where = ""
    if e.string != mev.NO_STRING:
        where = " (string %d)" % (e.string + 1)
    return "%s%s by %s" % (what, where, who)


class WebUI:
    def __init__(
        self,
        host: str,
        port: int,
        users_path: str | None = None,
        config_obj: dict | None = None,
        config_store: Any = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        iterations: int = ITERATIONS,
        name: str = "stringcare",
        clock_s: Any = None,
        history_csv: Any = None,
        history_chart: Any = None,
        history_discharges: Any = None,
        history_module: Any = None,
    ) -> None:
        files: Any = PrivateFiles() if users_path else MemoryFiles()
        self.auth = au.Auth(files, users_path or "web_users.json", iterations, max_sessions=64)
        self.link = lk.WebLink(config_obj, config_store)
        self._events_taken = 0
        self.clock_s = clock_s or (lambda: int(time.monotonic()))
        context = None
        if certfile:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            try:
                context.load_cert_chain(certfile, keyfile)
            except (OSError, ssl.SSLError) as exc:
                raise UserError(
                    "--tls-cert %s: cannot load the certificate/key (%s); give a PEM "
                    "certificate and its key (--tls-key)" % (certfile, exc)
                ) from None
        self.scheme = "https" if context else "http"
        self.app = webapp.make_app(
            self.link,
            self.auth,
            self.clock_s,
            secure_cookie=bool(context),
            max_connections=MAX_CONNECTIONS,
            history_csv=history_csv,
            history_chart=history_chart,
            history_discharges=history_discharges,
            history_module=history_module,
        )
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(
            target=self._run, args=(host, port, context), name="web", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise UserError(
                "cannot serve the web interface on %s:%d: %s; pick another port with "
                "--serve HOST:PORT" % (host, port, self._error or "it did not start in 30 s")
            )
        sock = self.app.server.sockets[0]
        self.server_address = sock.getsockname()[:2]
        self.name = name

    def _run(self, host: str, port: int, context: Any) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def main() -> None:
            task = asyncio.ensure_future(self.app.start_server(host, port, ssl=context))
            while getattr(self.app, "server", None) is None and not task.done():
                await asyncio.sleep(0.01)
            if task.done() and task.exception() is not None:
                self._error = task.exception()
            self._ready.set()
            if self._error is None:
                await task

        try:
            loop.run_until_complete(main())
        except Exception as exc:  # noqa: BLE001 - reported by __init__
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    def url(self) -> str:
        host, port = self.server_address
        return "%s://%s:%d/" % (self.scheme, host, port)

    def announce(self, out: Any = None) -> None:
        """Tell the operator where the interface is and, on a first start, the setup code
        (stderr: it belongs to whoever runs the manager, not to a log reader)."""
        out = out or sys.stderr
        if self.auth.problem:
            print("%s: web: %s" % (self.name, self.auth.problem), file=out, flush=True)
        if self.auth.setup_code is not None:
            print(
                "%s: web setup code: %s (no account yet: create the admin at %s with it)"
                % (self.name, self.auth.setup_code, self.url()),
                file=out,
                flush=True,
            )

    def turn(
        self,
        core: Any,
        now_s: int,
        event_log: Any = None,
        describe: Any = None,
        when: Any = str,
    ) -> None:
        """From the manager's loop: commands, new events (describe(core, event) -> text,
        when(time_s) -> text), a fresh snapshot."""
        self.link.apply(core, now_s)
        if event_log is not None:
            recorded = event_log.recorded
            for e in recorded[self._events_taken :]:
                if e.code == mev.EV_OPERATOR:
                    text = operator_text(self.auth, e)
                else:
                    text = describe(core, e) if describe else mev.EVENT_NAMES[e.code]
                label, string = "", e.string
                if e.module != mev.NO_MODULE and e.module < core.layout.module_count:
                    label = core.layout.label(e.module)
                    string = core.layout.string_of(e.module)
                self.link.add_event(when(e.time_s), e.code, label, string, text)
            self._events_taken = len(recorded)
        self.link.publish(core, now_s)

    def shutdown(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self.app.shutdown)
            except RuntimeError:
                pass
        self._thread.join(timeout=5)
