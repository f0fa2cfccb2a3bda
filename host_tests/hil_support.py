"""Helpers of the HIL suite (host_tests/hil/; importable: host_tests/ is on sys.path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from host_support import REPO

from stringcare.deploy import Deployer
from stringcare.dev.protocol_vectors import TEST_KEY_HEX
from stringcare.vboard import BusHub, FirmwareProcess, VirtualBoard

TEST_SITE_KEY = bytes.fromhex(TEST_KEY_HEX)  # the published test key: test boards only


def wait_for(what: str, probe: Any, timeout_s: float) -> Any:
    """Poll probe() until it returns something truthy (that is returned); fail naming
    what never came.  A deadline, never a fixed sleep: a loaded machine is slow."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("%s: not within %.0f s" % (what, timeout_s))


class MicroPythonManagerRig:
    """The manager firmware in MicroPython (firmware/manager/main.py on the virtual
    unix_manager board) on the hub, beside virtual module boards with deployed module
    firmware and other roles' firmware run from the checkout (FirmwareProcess):

        rig.module(address, env)                 # a module board, deployed with the key
        rig.firmware("iobox", "unix_iobox", env) # a relay box, a current sensor, ...
        rig.site({...})                          # site.json (+ the key) in its run folder
        rig.start()                              # the manager, in the background
        wait_for("...", lambda: cond(rig.status()), 60)
        code = rig.stop()                        # ends its loop cleanly (stop file)

    Everything still running is stopped when the test ends."""

    def __init__(self, tmp_path: Path, hub: BusHub) -> None:
        self.tmp = tmp_path
        self.hub = hub
        self.run = tmp_path / "manager"
        self.run.mkdir()
        self.status_file = self.run / "status.json"
        self.stop_file = self.run / "stop"
        self.boards: list[Any] = []
        self.log = self.run / "console.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def module(
        self, address: int, env: dict[str, Any], site_key: bytes | None = TEST_SITE_KEY
    ) -> VirtualBoard:
        vb = VirtualBoard(
            self.tmp / ("module%d" % address), "unix_module", bus=self.hub, env=env
        ).start()
        self.boards.append(vb)
        Deployer(REPO, "unix_module", vb.device, address, None, self.hub.url,
                 progress=lambda t: None, site_key=site_key).run()  # fmt: skip
        return vb

    def firmware(
        self, name: str, board: str, env: dict[str, Any], site_key: bytes | None = TEST_SITE_KEY
    ) -> FirmwareProcess:
        """Another role's firmware from the checkout; a relay/IO box gets the site key as
        `stringcare deploy --site-key` gives it (RELAY_SET is authenticated)."""
        key = site_key if board.endswith("iobox") else None
        fw = FirmwareProcess(self.tmp / name, board, self.hub, env, site_key=key).start()
        self.boards.append(fw)
        return fw

    def site(self, site: dict[str, Any], site_key: bytes = TEST_SITE_KEY) -> Path:
        """site.json, the modules' key and the board's stamp in the run folder."""
        (self.run / "site.json").write_text(json.dumps(site))
        (self.run / "site_key.hex").write_text(site_key.hex() + "\n")
        board = json.loads((REPO / "boards/unix_manager/board.json").read_text())
        (self.run / "stringcare_bundle.py").write_text("BOARD = %r\n" % board)
        return self.run

    def start(self, max_s: int = 300) -> subprocess.Popen[bytes]:
        """The manager in the background; its loop ends at the stop file (stop()) or
        after max_s, a ceiling only."""
        env = dict(os.environ)
        env.update(
            MICROPYPATH="%s:%s" % (self.run, REPO),
            STRINGCARE_BUS=self.hub.url.removeprefix("socket://"),
            STRINGCARE_RUN_S=str(max_s),
            STRINGCARE_STATUS_FILE=str(self.status_file),
            STRINGCARE_STOP_FILE=str(self.stop_file),
        )
        exe = str(Path(sys.executable).parent / "micropython")
        with self.log.open("wb") as out:  # a file, not a pipe nobody reads while it runs
            self.proc = subprocess.Popen(
                [exe, "-X", "heapsize=1024k", str(REPO / "firmware/manager/main.py")],
                cwd=self.run, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        return self.proc

    @property
    def output(self) -> str:
        """What the manager printed so far."""
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def status(self) -> dict[str, Any]:
        """The manager's last status (written every second), {} before the first."""
        try:
            return dict(json.loads(self.status_file.read_text()))
        except (OSError, ValueError):
            return {}

    def stop(self, timeout_s: float = 60) -> int:
        """End the manager's loop (it leaves as at the end of its run); its exit code.
        Its console: self.output."""
        assert self.proc is not None
        self.stop_file.write_text("stop")
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                "the manager did not stop within %.0f s:\n%s" % (timeout_s, self.output)
            ) from None

    def kill(self) -> None:
        """SIGKILL: nothing runs on the manager's side any more."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for b in self.boards:
            b.stop()


# The manager's web API, as the Pico W tests call it
RATE_S = 8.0  # a cycle rate is measured over this span


def web_request(
    url: str, body: Any = None, cookie: str = "", csrf: str = ""
) -> urllib.request.Request:
    """A GET, or a POST of `body` as JSON, with the session cookie and CSRF token."""
    headers = {"Cookie": cookie} if cookie else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if csrf:
        headers["X-CSRF-Token"] = csrf
    return urllib.request.Request(url, data=data, headers=headers)


def call(url: str, body: Any = None, cookie: str = "", csrf: str = "") -> tuple[int, bytes, str]:
    """(HTTP status, body, Set-Cookie) of a GET, or of a POST of `body` as JSON."""
    req = web_request(url, body, cookie, csrf)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read(), r.headers.get("Set-Cookie", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), ""


def web_answers(url: str) -> bool:
    """Does the manager's web server answer url with 200 yet?  It prints its setup code
    before it listens: a refused connection (under load, for seconds) is "not yet"."""
    try:
        return call(url)[0] == 200
    except urllib.error.URLError as e:
        if isinstance(e.reason, ConnectionRefusedError):
            return False
        raise


def cycles_per_s(url: str, cookie: str) -> float:
    """The manager's cycles a second, from api/status over RATE_S."""

    def cycles() -> tuple[float, int]:
        return time.monotonic(), json.loads(call(url + "api/status", cookie=cookie)[1])["cycles"]

    t0, c0 = cycles()
    time.sleep(RATE_S)  # a rate over a span of time: the span is the measurement
    t1, c1 = cycles()
    return (c1 - c0) / (t1 - t0)
