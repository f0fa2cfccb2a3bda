"""`stringcare deploy`: put a board's signed firmware bundle onto a MicroPython board,
staged: the new bundle is written beside the running one, checked by the board, and
only then made active by replacing one small pointer file (docs/deploy.md).

Steps (each shown as it runs):
  1. build and sign the bundle for the board (tools/stringcare/bundle.py), or take a
     bundle built and signed before (--bundle DIR);
  2. probe the port: present, free, a MicroPython raw REPL behind it;
  3. with mpremote's serial transport (no soft reset on entry): read the board's
     MicroPython version, platform and free filesystem, its active bundle, the keys it
     trusts, and the SHA-256 of the new bundle's files already in their folder
     (b/<id>/, computed on the board with hashlib: a cut deploy resumes);
  4. refuse an unsupported version, a platform that is not the board's, a board
     without hashlib, a bundle signed by a key the board does not trust;
  5. copy the files whose hash differs into the bundle's folder, after checking they
     fit (folders of bundles that are neither active nor previous are removed first);
  6. the board checks the folder (shared/fwstore.py, with the installer of its active
     bundle): the MANIFEST's Ed25519 signature and every file's SHA-256;
  7. switch: the pointer /stringcare_active ("new, previous") is written aside and
     renamed over the old one; the loader /main.py is replaced the same way when it
     changed; bundles older than the previous one are removed;
  8. write the role's settings (stringcare_settings.py; --address/--variant also as a
     one-shot stringcare_provision.py the firmware applies to its store at boot);
  9. soft-reset (Ctrl-D at the friendly REPL: the loader checks and runs the bundle)
     and wait for the loader's line naming the new bundle and the firmware's start
     line; with --bus, a module must also answer DISCOVER on the bus.
A deploy cut at any point leaves a board that boots the old or the new bundle (the
loader checks every file at boot and falls back): host_tests/hil/test_deploy_cut.py.
Every failure is a DeployError whose message names the problem and what to do.
"""

from __future__ import annotations

import ast
import errno
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import serial

from shared import fwstore
from stringcare import bundle as bundle_mod

RAW_REPL_BANNER = b"raw REPL; CTRL-B to exit\r\n"
FREE_MARGIN_BYTES = 4096  # leave room for the store and the filesystem's own blocks
CHUNK_BYTES = 1024

PROBE_SCRIPT = """
import sys, os
_h = HASHLIB
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
def _read(p):
    try:
        with open(p) as f:
            return f.read()
    except OSError:
        return None
try:
    _dirs = os.listdir('b')
except OSError:
    _dirs = []
_s = os.statvfs('.')
print(repr({'version': tuple(sys.implementation.version[:3]), 'platform': sys.platform,
    'free': _s[0] * _s[4], 'hashlib': _h, 'binascii': _b,
    'hashes': {p: _hash(FOLDER + '/' + p) for p in PATHS},
    'pointer': _read('stringcare_active'), 'trust': _read('stringcare_trust'),
    'settings': _read('stringcare_settings.py'),
    'loader': _hash('main.py'), 'boot': _hash('boot.py'), 'bundles': _dirs,
    'legacy': [p for p in LEGACY if p in os.listdir()]}))
"""

# The board's check of a staged bundle (step 6).  It imports the installer
# (shared/fwstore) from VDIR: the active bundle when its installer is intact, else the
# new bundle itself (first install).  Modules of the running firmware are dropped first
# so the import comes from VDIR.
CHECK_SCRIPT = """
import sys
def _drop():
    for _k in list(sys.modules):
        if _k == 'shared' or _k.startswith('shared.'):
            del sys.modules[_k]
_drop()
sys.path.insert(0, VDIR)
try:
    from shared import fwstore as _fs
    _r = _fs.check(FOLDER, TRUST)
finally:
    sys.path.pop(0)
    _drop()
print(repr(_r))
"""

# Is an installed bundle's installer intact (its MANIFEST has the pointer's SHA-256 and
# the installer's files match it)?  Plain hashlib: nothing of the bundle is imported.
VDIR_SCRIPT = """
def _h(p):
    try:
        with open(p, 'rb') as f:
            return ''.join('%02x' % x for x in hashlib.sha256(f.read()).digest())
    except OSError:
        return None
def _ok(d, msha):
    if _h(d + '/MANIFEST') != msha:
        return False
    want = {}
    with open(d + '/MANIFEST') as f:
        for line in f:
            q = line.split()
            if len(q) == 4 and q[0] == 'file':
                want[q[3]] = q[1]
    # shared/sha256 is in the installer of bundles built since it exists
    return all(p in want and _h(d + '/' + p) == want[p] for p in INSTALLER) and all(
        _h(d + '/' + p) == want[p] for p in INSTALLER_NEW if p in want)
print(repr([d for d, m in CANDIDATES if _ok(d, m)]))
"""

# Prepended to the scripts that hash on the board: hashlib, or on an image without it
# (stock NUCLEO_G474RE before MicroPython 1.27) shared/sha256.py sent from the host
# (the host's own code, like every script of this file).  HASHLIB says which.
HASHLIB_SHIM = """
try:
    import hashlib
    HASHLIB = 1
except ImportError:
    HASHLIB = 0
    _g = {}
    exec(SHA256_SOURCE, _g)
    class hashlib:
        sha256 = _g['Sha256']
"""


def hashlib_shim(root: Path) -> str:
    src = (root / bundle_mod.SHA256_SOURCE).read_text()
    return "SHA256_SOURCE = %r\n" % src + HASHLIB_SHIM


# Files and folders an earlier (flat, unstaged) deploy left at the top of the filesystem.
LEGACY = ("stringcare_bundle.py", "shared", "module_fw", "manager_fw", "boards")
INSTALLER_FILES = ("shared/__init__.mpy", "shared/fwstore.mpy", "shared/ed25519.mpy")
INSTALLER_NEW = ("shared/sha256.mpy",)


def fwstore_lines(text: str) -> list[tuple[str, str]]:
    """The pointer file's (folder, manifest sha) lines, active first."""
    out = []
    for line in text.split("\n"):
        parts = line.split(" ")
        if len(parts) == 2 and len(parts[1]) == 64:
            out.append((parts[0], parts[1]))
    return out


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
        again = time.monotonic() + 1.0
        while time.monotonic() < deadline and RAW_REPL_BANNER not in said:
            said += ser.read(256)
            if time.monotonic() > again:  # a board still booting may have dropped them
                again = time.monotonic() + 1.0
                ser.write(b"\r\x03\x03\r\x01")
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
        board_name: str | None,
        port: str,
        address: int | None = None,
        variant: str | None = None,
        bus: str | None = None,
        progress: Callable[[str], None] = print,
        start_timeout_s: float = 20.0,
        key: Path | None = None,
        bundle_dir: Path | None = None,
        trust_key: bool = False,
        site_key: bytes | None = None,
    ) -> None:
        self.root = root
        # module, relay/IO box: the site key, given over USB (physical presence)
        self.site_key = site_key
        self.board_name = board_name
        self.port = port
        self.address = address
        self.variant = variant
        self.bus = bus
        self.progress = progress
        self.start_timeout_s = start_timeout_s
        self.key = key
        self.bundle_dir = bundle_dir
        self.trust_key = trust_key
        self.copied: list[str] = []
        self.unchanged: list[str] = []
        self.removed: list[str] = []
        self.info: dict[str, Any] = {}
        self.banner = ""
        self.boot_line = ""
        self.discovered: dict[str, Any] | None = None
        self.switched = False

    # -- steps ------------------------------------------------------------------------

    def _bundle(self) -> bundle_mod.Bundle:
        try:
            if self.bundle_dir is not None:
                b = bundle_mod.load(self.bundle_dir)
                if self.board_name and b.board["name"] != self.board_name:
                    raise DeployError(
                        "the bundle in %s is for board %s, not %s: pick the matching bundle "
                        "or --board" % (self.bundle_dir, b.board["name"], self.board_name)
                    )
                return b
            if not self.board_name:
                raise DeployError("say which board: --board NAME (or --bundle DIR)")
            return bundle_mod.build(self.root, self.board_name, key=self.key)
        except bundle_mod.BundleError as exc:
            raise DeployError(str(exc)) from None

    def run(self) -> Deployer:
        b = self._bundle()
        self.bundle = b
        self.board_name = b.board["name"]
        board = b.board
        self._check_options(board)
        dev = self.bundle_dir is None and self.key is None
        self.progress(
            "bundle: %s (%s, %s), %d files, %.1f KB, id %s, signed by %s%s"
            % (
                self.board_name,
                board["role"],
                board["arch"],
                len(b.files),
                b.total_bytes / 1024,
                b.id,
                b.signed_by[:16],
                " (the development key %s; --key for yours)" % bundle_mod.DEV_KEY if dev else "",
            )
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
            self._check_trust()
            if self._up_to_date():
                self.progress("copy: nothing to do, bundle %s is active and intact" % b.id)
                self.unchanged = sorted(b.install_files())
            else:
                self._copy(t)
                self._board_check(t)
                self._switch(t)
            self._settings(t, board)
            t.exit_raw_repl()
        except (TransportError, serial.SerialException, OSError) as exc:
            raise DeployError(
                "the connection to %s broke off: %s. Unplug and replug the board and run "
                "deploy again (the board boots its previous firmware until a deploy "
                "completes)." % (self.port, exc)
            ) from None
        finally:
            try:
                t.close()
            except (serial.SerialException, OSError):
                pass
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

    def _exec(self, t: Any, code: str) -> Any:
        out = t.exec(code)
        return ast.literal_eval(out.decode().strip().splitlines()[-1])

    def _inspect(self, t: Any, board: dict[str, Any]) -> None:
        paths = sorted(self.bundle.install_files())
        info: dict[str, Any] = self._exec(
            t,
            hashlib_shim(self.root)
            + "PATHS = %r\nFOLDER = %r\nLEGACY = %r\n" % (paths, self.bundle.folder, LEGACY)
            + PROBE_SCRIPT,
        )
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
            self.progress(
                "board: no hashlib in this MicroPython image: the board hashes with "
                "shared/sha256.py (SHA-256 in Python; slower checks, same results)"
            )
        self.pointer = fwstore_lines(info["pointer"] or "")
        self.trusted = (info["trust"] or "").split()
        shown = ", ".join(d for d, _ in self.pointer) or "none (first staged install)"
        self.progress("board: bundles %s; trusts %s" % (
            shown, ", ".join(k[:16] for k in self.trusted) or "no key yet"))  # fmt: skip

    def _check_trust(self) -> None:
        signer = self.bundle.signed_by
        if not self.trusted or signer in self.trusted:
            return
        if self.trust_key:
            self.progress(
                "trust: --trust-key: the board's key %s is replaced by %s"
                % (", ".join(k[:16] for k in self.trusted), signer[:16])
            )
            return
        raise DeployError(
            "untrusted key: the bundle is signed by key %s, the board trusts only %s. Sign "
            "with the board's key (stringcare bundle --sign KEY), or, if the builder's key "
            "was replaced, deploy once with --trust-key over USB (docs/deploy.md, key "
            "handling)." % (signer[:16], ", ".join(k[:16] for k in self.trusted))
        )

    def _up_to_date(self) -> bool:
        b = self.bundle
        if not self.pointer or self.pointer[0] != (b.folder, b.manifest_sha):
            return False
        if self.info["loader"] != b.files[fwstore.LOADER]["sha256"] or self._trust_text():
            return False
        if self.info.get("boot") != b.files[fwstore.BOOT]["sha256"]:
            return False
        hashes = self.info["hashes"]
        return all(hashes.get(p) == sha for p, sha in b.install_files().items())

    def _trust_text(self) -> str | None:
        """What /stringcare_trust must become, or None when it stays."""
        signer = self.bundle.signed_by
        if self.trusted and (signer in self.trusted or not self.trust_key):
            return None
        return signer + "\n"

    def _copy(self, t: Any) -> None:
        b = self.bundle
        wanted = b.install_files()
        hashes = self.info["hashes"]
        todo = [p for p in sorted(wanted) if hashes.get(p) != wanted[p]]
        self.unchanged = [p for p in sorted(wanted) if p not in todo]
        keep = {d.split("/")[-1] for d, _ in self.pointer} | {b.id}
        stale = ["%s/%s" % (fwstore.BUNDLES, d) for d in self.info["bundles"] if d not in keep]
        for d in stale:  # cut deploys, bundles older than the previous one
            self._rmtree(t, d)
        sizes = {p: len(b.data(p)) for p in todo}
        need = sum(sizes.values())
        free = self.info["free"] + 0  # (stale folders freed more; statvfs is re-read below)
        if stale:
            free = self._exec(t, "import os\n_s = os.statvfs('.')\nprint(_s[0] * _s[4])")
        if need > 0 and need + FREE_MARGIN_BYTES > free:
            raise DeployError(
                "filesystem full: the bundle needs %.1f KB more, the board has %.1f KB free. "
                "A staged install keeps the running bundle until the new one is checked, so "
                "the filesystem must hold both. Remove other files (`mpremote fs ls`, "
                "`mpremote fs rm FILE`) or freeze the firmware into the MicroPython image "
                "(firmware/%s/manifest.py)."
                % ((need + FREE_MARGIN_BYTES) / 1024, free / 1024, b.board["role"])
            )
        self.progress(
            "copy: %d of %d files into %s%s"
            % (
                len(todo),
                len(wanted),
                b.folder,
                (" (%d already there)" % len(self.unchanged)) if self.unchanged else "",
            )
        )
        dirs = sorted(
            {b.folder}
            | {
                b.folder + "/" + "/".join(p.split("/")[:k])
                for p in todo
                for k in range(1, p.count("/") + 1)
            }
        )
        mk = "import os\nfor _d in %r:\n try:\n  os.mkdir(_d)\n except OSError:\n  pass" % (
            [fwstore.BUNDLES, *dirs],
        )
        t.exec(mk)
        for n, path in enumerate(todo, 1):
            self._write(t, b.folder + "/" + path, b.data(path))
            self.copied.append(path)
            self.progress("  [%d/%d] %s (%d B)" % (n, len(todo), path, sizes[path]))

    def _rmtree(self, t: Any, path: str) -> None:
        t.exec(
            "import os\n"
            "def _rm(p):\n"
            " try:\n"
            "  names = os.listdir(p)\n"
            " except OSError:\n"
            "  names = None\n"
            " if names is None:\n"
            "  os.remove(p)\n"
            "  return\n"
            " for n in names:\n"
            "  _rm(p + '/' + n)\n"
            " os.rmdir(p)\n"
            "_rm(%r)" % path
        )
        self.removed.append(path)

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
            if isinstance(exc, serial.SerialException):
                raise  # the port went away: run() says the connection broke off
            text = getattr(exc, "error_output", "") or str(exc)
            if re.search(r"ENOSPC|\b28\b", text) or getattr(exc, "errno", 0) == errno.ENOSPC:
                raise DeployError(
                    "filesystem full while writing %s: the board ran out of space. Remove old "
                    "files (`mpremote fs rm FILE`) or freeze the firmware "
                    "(firmware/%s/manifest.py)." % (path, self.bundle.board["role"])
                ) from None
            raise DeployError("writing %s on the board failed: %s" % (path, text.strip())) from None

    def _verifier_dir(self, t: Any) -> str:
        """Whose installer checks the new bundle: the active (else previous) bundle's when
        intact; the new bundle's own on a first install."""
        if self.pointer:
            good = self._exec(
                t,
                hashlib_shim(self.root)
                + "CANDIDATES = %r\nINSTALLER = %r\nINSTALLER_NEW = %r\n"
                % ([list(x) for x in self.pointer], INSTALLER_FILES, INSTALLER_NEW)
                + VDIR_SCRIPT,
            )
            if good:
                return str(good[0])
        return self.bundle.folder

    def _board_check(self, t: Any) -> None:
        b = self.bundle
        vdir = self._verifier_dir(t)
        trusted = [] if self._trust_text() else self.trusted
        started = time.monotonic()
        why, manifest_sha = self._exec(
            t,
            "VDIR = %r\nFOLDER = %r\nTRUST = %r\n" % (vdir, b.folder, trusted) + CHECK_SCRIPT,
        )
        self.verify_s = time.monotonic() - started
        if why is not None:
            if why.startswith("hash mismatch: "):
                path = why.split(" ")[2]
                rest = why[len("hash mismatch: ") + len(path) :]
                raise DeployError(
                    "hash mismatch after copy: %s on the board%s. The board's flash or the "
                    "USB link corrupted it, or the bundle was changed after it was signed: "
                    "run deploy again; if it repeats, rebuild the bundle, erase the "
                    "filesystem or replace the board. The board keeps running its previous "
                    "firmware." % (path, rest)
                )
            raise DeployError(
                "bundle refused by the board: %s. Nothing was switched: the board keeps "
                "its previous firmware. Deploy a bundle built and signed with "
                "`stringcare bundle --sign KEY` and not changed since." % why
            )
        if manifest_sha != b.manifest_sha:
            raise DeployError(
                "bundle refused: the board's MANIFEST in %s has SHA-256 %s, the bundle's is "
                "%s; deploy again" % (b.folder, manifest_sha[:16], b.manifest_sha[:16])
            )
        self.progress(
            "verify: the board checked the signature (key %s) and %d files (%s, %.2f s)"
            % (b.signed_by[:16], len(b.files), "installer of " + vdir, self.verify_s)
        )

    def _put_small(self, t: Any, path: str, text: str) -> None:
        """Write a small file aside (path + '.tmp') and rename it over path."""
        t.exec(
            "import os\n_f=open(%r,'w')\n_f.write(%r)\n_f.close()\nos.rename(%r, %r)"
            % (path + ".tmp", text, path + ".tmp", path)
        )

    def _copy_aside(self, t: Any, src: str, dst: str) -> None:
        """Copy a file of the bundle to dst + '.tmp' on the board, then rename it over dst."""
        t.exec(
            "import os\n_s=open(%r,'rb')\n_f=open(%r,'wb')\n"
            "while True:\n _c=_s.read(512)\n if not _c:\n  break\n _f.write(_c)\n"
            "_f.close()\n_s.close()\nos.rename(%r,%r)" % (src, dst + ".tmp", dst + ".tmp", dst)
        )

    def _switch(self, t: Any) -> None:
        b = self.bundle
        trust = self._trust_text()
        if trust is not None:
            self._put_small(t, fwstore.TRUST, trust)
            self.progress("trust: the board now trusts key %s" % b.signed_by[:16])
        lines = [(b.folder, b.manifest_sha)]
        lines += [x for x in self.pointer if x[0] != b.folder][:1]
        self._put_small(t, fwstore.POINTER, "".join("%s %s\n" % x for x in lines))
        self.switched = True
        if self.info.get("boot") != b.files[fwstore.BOOT]["sha256"]:
            # /boot.py first: it finishes a loader replacement that a power cut split on
            # FAT (docs/deploy.md, "Filesystems"); a cut while it is replaced leaves the
            # old one, none, or the new one - all harmless
            self._copy_aside(t, b.folder + "/" + fwstore.BOOT, "boot.py")
        if self.info["loader"] != b.files[fwstore.LOADER]["sha256"]:
            self._copy_aside(t, b.folder + "/" + fwstore.LOADER, "main.py")
            self.progress("switch: active bundle %s, loader /main.py replaced" % b.id)
        else:
            self.progress("switch: active bundle %s" % b.id)
        keep = {d for d, _ in lines}
        for d in self.info["bundles"]:
            folder = "%s/%s" % (fwstore.BUNDLES, d)
            if folder not in keep and folder not in self.removed:
                self._rmtree(t, folder)
        for name in self.info["legacy"]:  # the flat layout of earlier deploys
            self._rmtree(t, name)

    def _settings(self, t: Any, board: dict[str, Any]) -> None:
        settings: dict[str, Any] = {"baud": board.get("baud", 115200)}
        if board["role"] == "module":
            settings["variant"] = self.variant or board.get("variant_default", "12v")
        text = "# Written by `stringcare deploy`.\nSETTINGS = %r\n" % settings
        if self.info.get("settings") != text:  # aside and renamed: a cut leaves old or new
            self._put_small(t, "stringcare_settings.py", text)
        provision: dict[str, Any] = {}
        if self.address is not None:
            provision["address"] = self.address
        if self.site_key is not None and board["role"] in ("module", "iobox"):
            provision["site_key"] = self.site_key.hex()  # docs/protocol.md, "Authentication"
        if self.variant is not None:
            from shared import variants

            provision["variant"] = variants.by_code(self.variant).id
        if provision:
            text = (
                "# One-shot, applied to the store at boot: `stringcare deploy`.\nPROVISION = %r\n"
                % provision
            )
            self._put_small(t, "stringcare_provision.py", text)
        shown = dict(provision)
        if "site_key" in shown:
            shown["site_key"] = "(the site key)"  # not into logs
        self.progress(
            "settings: %r%s" % (settings, (", provision %r" % shown) if provision else "")
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
                if b"NO VALID FIRMWARE" in said and said.endswith(b"\n"):
                    break
        finally:
            ser.close()
        text = said.decode("utf-8", "replace").replace("\r", "")
        boot = [ln for ln in text.split("\n") if ln.startswith("stringcare: boot: ")]
        expected = "stringcare: boot: bundle %s" % self.bundle.folder
        if boot and not boot[0].startswith(expected):
            raise DeployError(
                "the board did not boot the new bundle %s: its loader said %r. Deploy again; "
                "if it repeats, the board's flash is failing."
                % (self.bundle.folder, boot[0][len("stringcare: boot: ") :])
            )
        if boot:
            self.boot_line = boot[0]
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
