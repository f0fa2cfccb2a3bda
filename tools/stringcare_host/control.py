"""The local control channel of a running manager: operator actions from the command
line (`stringcare ctl`, docs/manager.md "Operator actions from the command line").

A unix-domain socket, mode 0600, in the manager's data folder (DATA/control.sock by
default): only the manager's own user (and root) may connect, and nothing of it reaches
the network.  Each connection carries one request and one answer, a line of JSON each:

    {"action": "runaway_reset", "string": 1}          ->  {"ok": true, "text": "..."}

The actions are the web interface's, with one dispatch for both (manager_fw/actions.py):
the request is checked here against the site's layout (string numbers, module labels),
queued on a WebLink (manager_fw/web/link.py; the web interface's own when it runs) and
carried out by the manager's loop between two steps of the core (`turn`), which logs it
as an EV_OPERATOR event.  Its `extra` is FROM_CONTROL | the Unix uid of the process
that sent it (SO_PEERCRED): the event log says who gave each command, and that it came
from the local control channel.

The server runs on its own thread and never touches the core.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import struct
import threading
import time
from typing import Any

from manager_fw import actions as act
from manager_fw.web import link as lk
from stringcare_host.errors import UserError

SOCKET_NAME = "control.sock"
REQUEST_MAX = 4096  # bytes of one request line
ANSWER_WAIT_S = 10.0  # the loop carries a command out within a turn; a deadline, not a sleep
UNIX_PATH_MAX = 107  # sun_path is 108 bytes with its NUL

# action -> what it needs besides itself ("string": 1-based string, "module": a label)
ACTIONS = {
    "mute": (),
    "runaway_reset": ("string",),
    "equalise_on": ("string",),
    "equalise_off": ("string",),
    "ri_now": (),
    "rebaseline": ("module",),
}


def who(extra: int) -> str:
    """The sender of an EV_OPERATOR event whose extra has FROM_CONTROL: 'stringcare ctl
    (uid 1000 alice)'."""
    uid = extra & act.CONTROL_UID_MASK
    if uid == act.CONTROL_UID_MASK:
        return "stringcare ctl"
    try:
        import pwd

        name = " " + pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        name = ""
    return "stringcare ctl (uid %d%s)" % (uid, name)


def peer_uid(conn: socket.socket) -> int:
    """The uid of the process at the other end (Linux SO_PEERCRED); the mask when the
    system cannot say."""
    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        return uid & act.CONTROL_UID_MASK
    except (AttributeError, OSError):
        return act.CONTROL_UID_MASK


def check_request(req: Any, layout: Any) -> tuple[str, dict]:
    """(link kind, link args) of a request, or UserError naming what is wrong."""
    if not isinstance(req, dict) or not isinstance(req.get("action"), str):
        raise UserError('a request is one JSON object with an "action"')
    action = req["action"]
    if action not in ACTIONS:
        raise UserError("unknown action %r; known: %s" % (action, ", ".join(ACTIONS)))
    args: dict = {}
    if "string" in ACTIONS[action]:
        k = req.get("string")
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= layout.string_count:
            raise UserError(
                "string %r does not exist; this site has strings 1..%d" % (k, layout.string_count)
            )
        args["string"] = k - 1
    if "module" in ACTIONS[action]:
        label = req.get("module")
        if label == "all":
            args["module"] = -1
        else:
            i = layout.find(str(label)) if isinstance(label, (str, int)) else -1
            if i < 0:
                raise UserError(
                    "no module %r in this site; give a label from %s to %s, or all"
                    % (label, layout.label(0), layout.label(layout.module_count - 1))
                )
            args["module"] = i
    return action, args


def _refuse_live_socket(path: str) -> None:
    """A socket file left by a manager that died is removed; one that answers belongs to
    a manager still running on this data folder."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise UserError(
            "%s exists and is not a socket; move it away or give --control another path" % path
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody listens: left by a manager that was killed
        return
    finally:
        probe.close()
    raise UserError(
        "another manager is running with its control socket at %s (one manager per data "
        "folder); stop it, or give this one another --data" % path
    )


class ControlServer:
    """The manager's end (module comment).  `turn(core, now_s)` from the manager's loop
    carries out what came in; `close()` removes the socket."""

    def __init__(self, path: str, link: Any, layout: Any, name: str = "stringcare manager"):
        self.path = os.path.abspath(path)
        self.link = link
        self.layout = layout
        self.name = name
        if len(self.path.encode()) > UNIX_PATH_MAX:
            raise UserError(
                "control socket path %s is %d bytes; a unix socket path may have %d: give "
                "--control a shorter path" % (self.path, len(self.path.encode()), UNIX_PATH_MAX)
            )
        _refuse_live_socket(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # created 0600: the manager's user only
        try:
            self.sock.bind(self.path)
        except OSError as exc:
            self.sock.close()
            raise UserError(
                "cannot open the control socket %s: %s; give --control another path "
                "(or none)" % (self.path, exc.strerror or exc)
            ) from None
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self.sock.listen(8)
        self.sock.settimeout(0.5)
        self._stop = threading.Event()
        self.handled = 0
        self._thread = threading.Thread(target=self._serve, name="control", daemon=True)
        self._thread.start()

    # -- the loop's side ------------------------------------------------------------

    def turn(self, core: Any, now_s: int) -> int:
        """Carry out the commands queued since the last turn (how many)."""
        return int(self.link.apply(core, now_s))

    def close(self) -> None:
        self._stop.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept at once
        except OSError:
            pass
        self._thread.join(timeout=5)
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass

    # -- the server's side ------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            with conn:
                try:
                    self._one(conn)
                except OSError:
                    pass  # the client went away; nothing to answer
            self.handled += 1

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        data = b""
        while b"\n" not in data and len(data) <= REQUEST_MAX:
            chunk = conn.recv(REQUEST_MAX)
            if not chunk:
                break
            data += chunk
        answer = self.answer(data.split(b"\n")[0], peer_uid(conn))
        conn.sendall(json.dumps(answer).encode() + b"\n")

    def answer(self, line: bytes, uid: int) -> dict:
        try:
            req = json.loads(line.decode())
        except (UnicodeDecodeError, ValueError):
            return {"ok": False, "text": "not a JSON request line: %r" % line[:80]}
        try:
            kind, args = check_request(req, self.layout)
        except UserError as exc:
            return {"ok": False, "text": str(exc)}
        ticket = self.link.submit(kind, args, "ctl", act.FROM_CONTROL | uid)
        if ticket < 0:
            return {
                "ok": False,
                "text": "%d commands are waiting already; try again" % lk.MAX_PENDING,
            }
        deadline = time.monotonic() + ANSWER_WAIT_S
        while time.monotonic() < deadline:
            result = self.link.result(ticket)
            if result is not None:
                return {"ok": bool(result[0]), "text": str(result[1])}
            if self._stop.wait(0.01):
                break
        return {
            "ok": False,
            "text": "%s did not carry the command out within %.0f s (it may still do "
            "so); look at its event log" % (self.name, ANSWER_WAIT_S),
        }


# -- the client's side (stringcare ctl) -------------------------------------------------


def request(path: str, req: dict, timeout_s: float = ANSWER_WAIT_S + 5) -> dict:
    """Send one request to the manager whose control socket is `path`; its answer.
    UserError when no manager answers there, with what to do."""
    if os.path.isdir(path):
        path = os.path.join(path, SOCKET_NAME)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout_s)
    try:
        try:
            s.connect(path)
        except FileNotFoundError:
            raise UserError(
                "no manager is running with a control socket at %s; start `stringcare "
                "manager --data DIR` (its socket is DIR/%s) or give --to its socket"
                % (path, SOCKET_NAME)
            ) from None
        except ConnectionRefusedError:
            raise UserError(
                "the manager that made %s is not running any more; start it again" % path
            ) from None
        except PermissionError:
            raise UserError(
                "%s: permission denied; only the manager's own user may control it (run "
                "this as that user)" % path
            ) from None
        except OSError as exc:
            if exc.errno in (errno.ENOTSOCK, errno.ECONNREFUSED):
                raise UserError("%s is not a manager's control socket" % path) from None
            raise UserError("cannot reach the manager at %s: %s" % (path, exc)) from None
        s.sendall(json.dumps(req).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                raise UserError(
                    "the manager at %s gave no answer within %.0f s" % (path, timeout_s)
                ) from None
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    try:
        answer = json.loads(data.decode())
    except (UnicodeDecodeError, ValueError):
        raise UserError(
            "the manager at %s gave no answer (it closed the connection)" % path
        ) from None
    return dict(answer)
