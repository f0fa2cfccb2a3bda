"""The rig a fault runs on: the real `stringcare manager` (a separate process) polling
virtual module boards (the MicroPython unix port running the deployed module firmware,
tools/stringcare/vboard.py) and a virtual relay/IO box (boards/unix_iobox: the box
firmware, its communication watchdog included) on the virtual bus, with the box's relay
1 as the site's alarm contact (read from the box's status file, what an installer would
see on its terminals).

    rig = Rig(workdir).start()            # hub, 2 module boards, the relay box (deployed)
    mgr = rig.manager("run1")             # `stringcare manager` on the hub
    rig.wait(lambda: rig.contact_energised(), 60)   # "all well" once it runs
    mgr.signal(signal.SIGTERM)
    rig.wait(lambda: not rig.contact_energised(), 15)
    rig.close()

The boards keep running across faults; each fault starts its own manager with its own
data folder.  A listening drop on the bus counts the manager's requests by command (the
poll rate of the fault with slow clients).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared import protocol as p
from shared.compat import TICKS_MAX
from stringcare.vboard import BusHub, VirtualBoard

ALARM_BOX = 1
ALARM_RELAY = 1  # relay numbers count from 1 in site.json
MODULE_UV = (13480000, 13720000)


def _now_ms() -> int:
    return (time.monotonic_ns() // 1000000) & TICKS_MAX


# The virtual site's key of authenticated bus commands: the published test key
RIG_SITE_KEY = b"StringCare-test!"


class HubDevice:
    """A bus device (anything with the Responder interface: handle(frame, now_ms),
    tx, tx_delay_us) on its own drop of the hub; `tick(now_ms)`, when the device has
    one (the relay box's communication watchdog), runs every 50 ms."""

    def __init__(self, hub: BusHub, device: Any) -> None:
        self.device = device
        self.lock = threading.Lock()
        self.requests: dict[int, int] = {}  # the manager's requests seen, by command
        self.frames = 0
        self.sock = socket.create_connection(("127.0.0.1", hub.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hub-device", daemon=True)
        self._thread.start()

    def _handle(self, frame: Any) -> None:
        self.frames += 1
        if frame.src == p.ADDR_MANAGER and not frame.cmd & p.REPLY:
            self.requests[frame.cmd] = self.requests.get(frame.cmd, 0) + 1
        with self.lock:
            n = self.device.handle(frame, _now_ms())
            out = bytes(self.device.tx[:n]) if n else b""
        if out:
            try:
                self.sock.sendall(out)
            except OSError:
                pass

    def _run(self) -> None:
        d = p.Deframer()
        buf = bytearray(4096)
        next_tick = 0.0
        while not self._stop.is_set():
            try:
                readable, _, _ = select.select([self.sock], [], [], 0.02)
            except (OSError, ValueError):
                return
            if readable:
                try:
                    n = self.sock.recv_into(buf)
                except OSError:
                    return
                if not n:
                    return
                start = 0
                while start < n:
                    start += d.feed(buf, start, n)
                    frame = d.poll()
                    while frame is not None:
                        self._handle(frame)
                        frame = d.poll()
            else:
                d.idle()
                frame = d.poll()
                while frame is not None:
                    self._handle(frame)
                    frame = d.poll()
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + 0.05
                tick = getattr(self.device, "tick", None)
                if tick is not None:
                    with self.lock:
                        tick(_now_ms())

    def relays(self) -> int:
        with self.lock:
            return int(self.device.relays)

    def count(self, cmd: int) -> int:
        return self.requests.get(cmd, 0)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


class Listener:
    """A drop that only listens (the Responder interface, never a reply)."""

    tx = bytearray(0)
    tx_delay_us = 0

    def handle(self, frame: Any, now_ms: int) -> int:
        return 0


class ManagerProc:
    """One `stringcare manager` process; its console goes to `log`."""

    def __init__(self, cmd: list[str], log: Path, cwd: Path) -> None:
        self.cmd = cmd
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            cmd, stdout=self._out, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True
        )

    def output(self) -> str:
        if not self._out.closed:
            self._out.flush()
        return self.log.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout_s: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after 10 s; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if self.wait(10) is None:
                self.proc.kill()
        code = self.proc.wait()
        self._out.close()
        return code


def wait_for(cond: Callable[[], bool], timeout_s: float, step_s: float = 0.05) -> float | None:
    """Seconds until cond() held, or None when timeout_s passed first."""
    t0 = time.monotonic()
    while True:
        if cond():
            return time.monotonic() - t0
        if time.monotonic() - t0 >= timeout_s:
            return None
        time.sleep(step_s)


def site_config(modules: int, **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "site": "fault rig",
        "strings": [{"modules": modules}],
        "io": {"alarm_relay": {"box": ALARM_BOX, "relay": ALARM_RELAY}},
    }
    cfg.update(extra)
    return cfg


class Rig:
    def __init__(self, workdir: Path, root: Path, modules: int = 2, progress=None) -> None:
        self.workdir = Path(workdir)
        self.root = root
        self.module_count = modules
        self.progress = progress or (lambda text: None)
        self.hub: BusHub | None = None
        self.boards: list[VirtualBoard] = []
        self.box: HubDevice | None = None  # the listening drop (counts requests)
        self.iobox: VirtualBoard | None = None
        self.managers: list[ManagerProc] = []

    # -- bring-up -------------------------------------------------------------------

    def start(self) -> Rig:
        from stringcare.deploy import Deployer

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.hub = BusHub()
        for i in range(self.module_count):
            vb = VirtualBoard(
                self.workdir / ("module%d" % (i + 1)),
                "unix_module",
                bus=self.hub,
                env={"block_uv": MODULE_UV[i % 2], "uid": "53545247000003%02x" % i},
            ).start()
            self.boards.append(vb)
            self.progress("deploying module firmware to virtual module %d" % (i + 1))
            Deployer(
                self.root, vb.board, vb.device, i + 1, None, self.hub.url, progress=lambda t: None,
                site_key=RIG_SITE_KEY,
            ).run()  # fmt: skip
        self.iobox = VirtualBoard(
            self.workdir / "iobox", "unix_iobox", bus=self.hub, env={"box": ALARM_BOX}
        ).start()
        self.progress("deploying relay box firmware to the virtual relay/IO box")
        Deployer(
            self.root, "unix_iobox", self.iobox.device, None, None, self.hub.url,
            progress=lambda t: None, site_key=RIG_SITE_KEY,
        ).run()  # fmt: skip
        self.box = HubDevice(self.hub, Listener())
        return self

    def close(self) -> None:
        for m in self.managers:
            if m.alive():
                m.proc.kill()
                m.proc.wait()
        if self.box is not None:
            self.box.close()
        if self.iobox is not None:
            self.iobox.stop()
        for vb in self.boards:
            vb.stop()
        if self.hub is not None:
            self.hub.close()

    def __enter__(self) -> Rig:
        return self if self.hub is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the manager ----------------------------------------------------------------

    def write_config(self, name: str, cfg: dict[str, Any] | None = None) -> Path:
        path = self.workdir / (name + "-site.json")
        path.write_text(json.dumps(cfg or site_config(self.module_count)))
        return path

    def manager(
        self,
        name: str,
        config: Path | None = None,
        args: list[str] | None = None,
        data: Path | None = None,
        port: str | None = None,
    ) -> ManagerProc:
        """Start `stringcare manager` (this interpreter's) on the hub."""
        assert self.hub is not None
        exe = str(Path(sys.executable).parent / "stringcare")
        cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "stringcare"]
        folder = data or self.workdir / (name + "-data")
        try:  # the modules' site key (docs/protocol.md, "Authentication")
            folder.mkdir(parents=True, exist_ok=True)
            if not (folder / "site_key.hex").exists():
                (folder / "site_key.hex").write_text(RIG_SITE_KEY.hex() + "\n")
        except OSError:
            pass  # a storage fault under test: the manager reports it
        cmd += [
            "manager",
            "--config",
            str(config or self.write_config(name)),
            "--port",
            port or self.hub.url,
            "--data",
            str(data or self.workdir / (name + "-data")),
            *(args or []),
        ]
        m = ManagerProc(cmd, self.workdir / (name + ".log"), self.root)
        self.managers.append(m)
        return m

    def fresh_data(self, name: str) -> Path:
        d = self.workdir / (name + "-data")
        if d.exists():
            shutil.rmtree(d)
        return d

    # -- what the site sees ---------------------------------------------------------

    def box_status(self) -> dict[str, Any]:
        """What the virtual box reports: relays, fed, expiries, changes."""
        assert self.iobox is not None
        try:
            return dict(json.loads(Path(str(self.iobox.config_path) + ".status.json").read_text()))
        except (OSError, ValueError):
            return {}

    def contact_energised(self) -> bool:
        """The alarm contact says "all well" (its relay energised)."""
        return bool(int(self.box_status().get("relays", 0)) & (1 << (ALARM_RELAY - 1)))

    def reset_box(self) -> None:
        """Power-cycle the relay box: every relay released, as at its power-up (between
        faults, so that a contact left energised cannot pass for the next manager's)."""
        assert self.iobox is not None
        self.iobox.power_cycle()
        wait_for(lambda: not self.contact_energised(), 15)

    def polls(self) -> int:
        """The manager's measurement requests seen on the bus so far."""
        assert self.box is not None
        return self.box.count(p.CMD_POLL_GROUP) + self.box.count(p.CMD_READ_MEAS)
