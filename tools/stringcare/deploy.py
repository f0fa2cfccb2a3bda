"""`stringcare deploy`: put a board's firmware bundle onto a MicroPython board.

Steps (each shown as it runs):
  1. build the bundle for the board (tools/stringcare/bundle.py);
  2. probe the port: present, free, a MicroPython raw REPL behind it;
  3. with mpremote's serial transport (no soft reset on entry): read the board's
     MicroPython version, platform and free filesystem, and the SHA-256 of every
     bundle file already on it (computed on the board with hashlib; boards without
     hashlib are read back and hashed here);
  4. refuse an unsupported version or a platform that is not the board's;
  5. copy only the files whose hash differs, after checking they fit;
  6. hash them again on the board: every file must match the bundle's manifest;
  7. write the role's settings (stringcare_settings.py; --address/--variant also as a
     one-shot stringcare_provision.py the firmware applies to its store at boot);
  8. soft-reset (Ctrl-D at the friendly REPL: the board runs main.py) and wait for the
     firmware's start line on the console; with --bus, a module must also answer
     DISCOVER on the bus.
Every failure is a DeployError whose message names the problem and what to do.
"""

from __future__ import annotations

import ast
import errno
import hashlib
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import serial

from stringcare import bundle as bundle_mod

RAW_REPL_BANNER = b"raw REPL; CTRL-B to exit\r\n"
FREE_MARGIN_BYTES = 4096  # leave room for the store and the filesystem's own blocks
CHUNK_BYTES = 1024

PROBE_SCRIPT = """
import sys, os
try:
    import hashlib
    _h = 1
except ImportError:
    _h = 0
try:
    import binascii
    _b = 1
except ImportError:
    _b = 0
def _hash(p):
    try:
        h = hashlib.sha256()
        b = bytearray(512)
        with open(p, 'rb') as f:
            while True:
                n = f.readinto(b)
                if not n:
                    break
                h.update(b if n == 512 else b[:n])
        return ''.join('%02x' % x for x in h.digest())
    except OSError:
        return None
def _size(p):
    try:
        return os.stat(p)[6]
    except OSError:
        return None
_s = os.statvfs('.')
print(repr({'version': tuple(sys.implementation.version[:3]), 'platform': sys.platform,
    'free': _s[0] * _s[4], 'hashlib': _h, 'binascii': _b,
    'hashes': {p: (_hash(p) if _h else None) for p in PATHS},
    'sizes': {p: _size(p) for p in PATHS}}))
"""


class DeployError(Exception):
    """Deploy failed; the message says what was wrong and what to do."""


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


def _holder_of(port: str) -> str:
    """Which process has the device open (Linux /proc scan), for the 'busy' message."""
    try:
        target = os.path.realpath(port)
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            fd_dir = "/proc/%s/fd" % pid
            try:
                for fd in os.listdir(fd_dir):
                    if os.path.realpath(os.path.join(fd_dir, fd)) == target:
                        with open("/proc/%s/comm" % pid) as f:
                            return " (held by process %s, %s)" % (pid, f.read().strip())
            except OSError:
                continue
    except OSError:
        pass
    return ""


def probe_port(port: str, timeout_s: float = 3.0) -> None:
    """Check that a MicroPython raw REPL answers on the port; DeployError otherwise."""
    if not port.startswith(("socket://", "rfc2217://", "loop://")) and not os.path.exists(port):
        raise DeployError(
            "no board on %s: the port does not exist. Plug the board in with a data USB "
            "cable and check the port name (`mpremote connect list`, or ls /dev/ttyACM*)." % port
        )
    try:
        ser = serial.Serial(port, 115200, timeout=0.05, exclusive=True)
    except serial.SerialException as exc:
        text = str(exc)
        if "exclusively lock" in text or "Errno 16" in text or "busy" in text.lower():
            raise DeployError(
                "port busy: %s is open in another program%s (a serial terminal, mpremote, "
                "Thonny, `stringcare sim`?). Close it and run deploy again."
                % (port, _holder_of(port))
            ) from None
        if "No such file" in text or "Errno 2" in text:
            raise DeployError(
                "no board on %s: the port does not exist. Plug the board in and check the "
                "port name (`mpremote connect list`)." % port
            ) from None
        raise DeployError("cannot open %s: %s" % (port, text)) from None
    try:
        ser.write(b"\r\x03\x03")
        said = _read_for(ser, 0.3)
        ser.write(b"\r\x01")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and RAW_REPL_BANNER not in said:
            said += ser.read(256)
        if RAW_REPL_BANNER in said:
            ser.write(b"\r\x02")  # back to the friendly REPL
            time.sleep(0.05)
            return
    finally:
        ser.close()
    if not said.strip():
        raise DeployError(
            "no board on %s: nothing answered within %.0f s. Is it a MicroPython board, "
            "powered and not in the bootloader? Unplug and replug it, then try again."
            % (port, timeout_s)
        )
    shown = said.decode("utf-8", "replace").strip().replace("\r", "")[-120:]
    raise DeployError(
        "not MicroPython: %s answered, but not like a MicroPython REPL (it said: %r). "
        "Flash MicroPython onto the board first (https://micropython.org/download), "
        "or check that --port names the board and not another device." % (port, shown)
    )


def _read_for(ser: serial.Serial, seconds: float) -> bytes:
    out = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        out += ser.read(256)
    return out


class Deployer:
    def __init__(
        self,
        root: Path,
        board_name: str,
        port: str,
        address: int | None = None,
        variant: str | None = None,
        bus: str | None = None,
        progress: Callable[[str], None] = print,
        start_timeout_s: float = 20.0,
    ) -> None:
        self.root = root
        self.board_name = board_name
        self.port = port
        self.address = address
        self.variant = variant
        self.bus = bus
        self.progress = progress
        self.start_timeout_s = start_timeout_s
        self.copied: list[str] = []
        self.unchanged: list[str] = []
        self.info: dict[str, Any] = {}
        self.banner = ""
        self.discovered: dict[str, Any] | None = None

    # -- steps ------------------------------------------------------------------------

    def run(self) -> Deployer:
        try:
            b = bundle_mod.build(self.root, self.board_name)
        except bundle_mod.BundleError as exc:
            raise DeployError(str(exc)) from None
        self.bundle = b
        board = b.board
        self._check_options(board)
        self.progress(
            "bundle: %s (%s, %s), %d files, %.1f KB"
            % (self.board_name, board["role"], board["arch"], len(b.files), b.total_bytes / 1024)
        )
        self.progress("probing %s ..." % self.port)
        probe_port(self.port)
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        try:
            t = SerialTransport(self.port, baudrate=115200)
        except TransportError as exc:
            raise DeployError("cannot open %s with mpremote: %s" % (self.port, exc)) from None
        try:
            t.enter_raw_repl(soft_reset=False)
            self._inspect(t, board)
            self._copy(t)
            self._verify(t)
            self._settings(t, board)
            t.exit_raw_repl()
        except TransportError as exc:
            raise DeployError(
                "the connection to %s broke off: %s. Unplug and replug the board and run "
                "deploy again." % (self.port, exc)
            ) from None
        finally:
            t.close()
        self._restart_and_confirm(board)
        return self

    def _check_options(self, board: dict[str, Any]) -> None:
        if board["role"] != "module" and (self.address is not None or self.variant is not None):
            raise DeployError(
                "--address and --variant are module settings; %s is a %s"
                % (self.board_name, board["role"])
            )
        if self.address is not None and not 0 <= self.address <= 999:
            raise DeployError("--address %d is outside 0..999 (0: unaddressed)" % self.address)
        if self.variant is not None:
            from shared import variants

            try:
                variants.by_code(self.variant)
            except ValueError as exc:
                raise DeployError(str(exc)) from None

    def _inspect(self, t: Any, board: dict[str, Any]) -> None:
        paths = sorted(self.bundle.files)
        out = t.exec("PATHS = %r\n" % paths + PROBE_SCRIPT)
        info: dict[str, Any] = ast.literal_eval(out.decode().strip().splitlines()[-1])
        self.info = info
        version = ".".join(str(x) for x in info["version"])
        self.progress(
            "board: MicroPython %s on %s, %.0f KB free"
            % (version, info["platform"], info["free"] / 1024)
        )
        rng = board.get("micropython") or {}
        lo, hi = rng.get("min", "0.0.0"), rng.get("max", "99.0.0")
        if not _version_tuple(lo) <= tuple(info["version"]) <= _version_tuple(hi):
            raise DeployError(
                "unsupported MicroPython version %s on %s: board %s needs %s to %s. Flash a "
                "supported MicroPython (https://micropython.org/download) and deploy again."
                % (version, self.port, self.board_name, lo, hi)
            )
        if board.get("platform") and info["platform"] != board["platform"]:
            raise DeployError(
                "wrong board: %s runs MicroPython for %r, but board %s is a %r board. "
                "Pick the matching --board (known: %s)."
                % (
                    self.port,
                    info["platform"],
                    self.board_name,
                    board["platform"],
                    ", ".join(bundle_mod.known_boards(self.root)),
                )
            )
        if not info["hashlib"]:
            info["hashes"] = {p: self._readback_hash(t, p) for p in paths}

    def _readback_hash(self, t: Any, path: str) -> str | None:
        try:
            return hashlib.sha256(bytes(t.fs_readfile(path))).hexdigest()
        except OSError:
            return None

    def _copy(self, t: Any) -> None:
        files = self.bundle.files
        hashes = self.info["hashes"]
        sizes = self.info["sizes"]
        todo = [p for p in sorted(files) if hashes.get(p) != files[p]["sha256"]]
        self.unchanged = [p for p in sorted(files) if p not in todo]
        need = sum(files[p]["size"] - (sizes.get(p) or 0) for p in todo)
        if need > 0 and need + FREE_MARGIN_BYTES > self.info["free"]:
            raise DeployError(
                "filesystem full: the bundle needs %.1f KB more, the board has %.1f KB free. "
                "Remove old files (`mpremote fs ls`, `mpremote fs rm FILE`) or freeze the "
                "firmware into the MicroPython image (firmware/%s/manifest.py)."
                % (
                    (need + FREE_MARGIN_BYTES) / 1024,
                    self.info["free"] / 1024,
                    self.bundle.board["role"],
                )
            )
        if not todo:
            self.progress("copy: nothing to do, all %d files up to date" % len(files))
            return
        self.progress("copy: %d of %d files changed" % (len(todo), len(files)))
        dirs = sorted(
            {"/".join(p.split("/")[:k]) for p in todo for k in range(1, p.count("/") + 1)}
        )
        for d in dirs:
            t.exec("import os\ntry:\n os.mkdir(%r)\nexcept OSError:\n pass" % d)
        for n, path in enumerate(todo, 1):
            self._write(t, path, self.bundle.data(path))
            self.copied.append(path)
            self.progress("  [%d/%d] %s (%d B)" % (n, len(todo), path, files[path]["size"]))

    def _write(self, t: Any, path: str, data: bytes) -> None:
        from mpremote.transport import TransportExecError

        try:
            if self.info.get("binascii"):
                import binascii

                t.exec(
                    "import binascii\n_f=open(%r,'wb')\n_w=_f.write\n_d=binascii.a2b_base64" % path
                )
                for k in range(0, len(data), CHUNK_BYTES):
                    chunk = binascii.b2a_base64(data[k : k + CHUNK_BYTES], newline=False)
                    t.exec("_w(_d(%r))" % chunk.decode())
                t.exec("_f.close()")
            else:
                t.fs_writefile(path, data)
        except (TransportExecError, OSError) as exc:
            text = getattr(exc, "error_output", "") or str(exc)
            if re.search(r"ENOSPC|\b28\b", text) or getattr(exc, "errno", 0) == errno.ENOSPC:
                raise DeployError(
                    "filesystem full while writing %s: the board ran out of space. Remove old "
                    "files (`mpremote fs rm FILE`) or freeze the firmware "
                    "(firmware/%s/manifest.py)." % (path, self.bundle.board["role"])
                ) from None
            raise DeployError("writing %s on the board failed: %s" % (path, text.strip())) from None

    def _verify(self, t: Any) -> None:
        paths = sorted(self.bundle.files)
        if self.info["hashlib"]:
            out = t.exec("PATHS = %r\n" % paths + PROBE_SCRIPT)
            hashes = ast.literal_eval(out.decode().strip().splitlines()[-1])["hashes"]
        else:
            hashes = {p: self._readback_hash(t, p) for p in paths}
        bad = [p for p in paths if hashes.get(p) != self.bundle.files[p]["sha256"]]
        if bad:
            p = bad[0]
            raise DeployError(
                "hash mismatch after copy: %s on the board has SHA-256 %s, the bundle %s "
                "(%d file%s wrong). The board's flash or the USB link corrupted it: run deploy "
                "again; if it repeats, erase the filesystem or replace the board."
                % (
                    p,
                    (hashes.get(p) or "none")[:16],
                    self.bundle.files[p]["sha256"][:16],
                    len(bad),
                    "" if len(bad) == 1 else "s",
                )
            )
        self.progress("verify: %d files match the manifest (SHA-256)" % len(paths))

    def _settings(self, t: Any, board: dict[str, Any]) -> None:
        settings: dict[str, Any] = {"baud": board.get("baud", 115200)}
        if board["role"] == "module":
            settings["variant"] = self.variant or board.get("variant_default", "12v")
        text = "# Written by `stringcare deploy`.\nSETTINGS = %r\n" % settings
        t.exec("_f=open('stringcare_settings.py','w')\n_f.write(%r)\n_f.close()" % text)
        provision: dict[str, int] = {}
        if self.address is not None:
            provision["address"] = self.address
        if self.variant is not None:
            from shared import variants

            provision["variant"] = variants.by_code(self.variant).id
        if provision:
            text = (
                "# One-shot, applied to the store at boot: `stringcare deploy`.\nPROVISION = %r\n"
                % provision
            )
            t.exec("_f=open('stringcare_provision.py','w')\n_f.write(%r)\n_f.close()" % text)
        self.progress(
            "settings: %r%s" % (settings, (", provision %r" % provision) if provision else "")
        )

    def _restart_and_confirm(self, board: dict[str, Any]) -> None:
        self.progress("soft reset, waiting for the firmware to start ...")
        role = board["role"]
        marker = ("stringcare: %s" % role).encode()
        try:
            ser = serial.Serial(self.port, 115200, timeout=0.05, exclusive=True)
        except serial.SerialException as exc:
            raise DeployError("cannot reopen %s after copying: %s" % (self.port, exc)) from None
        said = b""
        try:
            ser.write(b"\r\x02")
            time.sleep(0.05)
            ser.reset_input_buffer()
            ser.write(b"\x04")  # soft reset at the friendly REPL: runs main.py
            deadline = time.monotonic() + self.start_timeout_s
            while time.monotonic() < deadline:
                said += ser.read(256)
                if marker in said and said.endswith(b"\n"):
                    break
                if b"Traceback" in said and b">>> " in said:
                    break
        finally:
            ser.close()
        text = said.decode("utf-8", "replace").replace("\r", "")
        lines = [ln for ln in text.split("\n") if ln.startswith(marker.decode())]
        if "Traceback" in text or not lines:
            tail = text.strip()[-400:]
            raise DeployError(
                "the firmware did not start on %s (no 'stringcare: %s' line within %.0f s). "
                "The board said:\n%s\nLook at the traceback, or open the REPL with "
                "`mpremote connect %s` and run `import main`."
                % (self.port, role, self.start_timeout_s, tail or "(nothing)", self.port)
            )
        self.banner = lines[0]
        self.progress("started: %s" % self.banner)
        if self.bus and role == "module":
            self._discover()

    def _discover(self) -> None:
        from stringcare.busport import BusError, BusPort

        address = self.address if self.address is not None else 0
        try:
            with BusPort(self.bus or "") as bp:
                deadline = time.monotonic() + 5
                while True:
                    try:
                        self.discovered = bp.discover(address)
                        break
                    except BusError:
                        if time.monotonic() > deadline:
                            raise
        except BusError as exc:
            raise DeployError(
                "the firmware started, but the module does not answer DISCOVER at address %d "
                "on %s (%s). Check the bus wiring (A/B swapped? terminated?), the converter "
                "and the baud rate." % (address, self.bus, exc)
            ) from None
        self.progress(
            "bus: address %d answers DISCOVER: firmware %s, variant %d, uid %s"
            % (
                address,
                self.discovered["firmware"],
                self.discovered["variant"],
                self.discovered["uid"],
            )
        )
