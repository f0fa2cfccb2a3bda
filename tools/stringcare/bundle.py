"""Firmware bundles: what `stringcare deploy` puts on a board, built per board and role,
and signed with the builder's Ed25519 key (docs/deploy.md).

    build/firmware/<board>/
        stringcare_entry.py     the role's entry (firmware/<role>/main.py), as source
        stringcare_loader.py    the board's loader (firmware/loader/main.py with the
                                board's safe pins): becomes /main.py on the board
        stringcare_bundle.py    the stamp: BOARD (board.json), ROLE, VERSION, SOURCE_SHA
        <package>/<module>.mpy  every module the entry and the board's shell import, and
                                the installer (shared/fwstore, shared/ed25519), compiled
                                by mpy-cross for the board's architecture
        MANIFEST                path, SHA-256 and size of every file above (the text
                                format of shared/fwstore.py; what the board checks)
        MANIFEST.sig            Ed25519 signature of the MANIFEST by the signing key
        MANIFEST.json           the same for host tools, with the bundle id and signer

Which modules go in is found by following the imports from the entry and the board's
hal.py (only the role's share of shared/: a converter carries no measurement code).
The stamp's SOURCE_SHA is a hash of the sources, and Ed25519 signatures are
deterministic, so an unchanged checkout signed by the same key builds a byte-identical
bundle (same id) and a redeploy copies nothing.

Signing keys: `stringcare bundle --keygen PATH` writes PATH (private, mode 600) and
PATH.pub; `stringcare bundle --sign PATH` signs with it.  Without --sign the bundle is
signed with this checkout's development key build/keys/dev-signing.key (made on first
use); a board trusts the first key it is deployed with (docs/deploy.md, key handling).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from shared import ed25519, fwstore
from stringcare.dev import layout

# On every board, whatever the role: the installer the board runs on a new bundle.
INSTALLER_SOURCES = (
    "shared/__init__.py",
    "shared/fwstore.py",
    "shared/ed25519.py",
    "shared/sha256.py",
)
SHA256_SOURCE = "shared/sha256.py"  # inlined into the loader (boards without hashlib)
LOADER_SOURCE = "firmware/loader/main.py"
BOOT_SOURCE = "firmware/loader/boot.py"  # /boot.py: finishes a loader switch cut on FAT
PRIVATE_HEADER = "stringcare-ed25519-private-key"
PUBLIC_HEADER = "stringcare-ed25519-public-key"
DEV_KEY = "build/keys/dev-signing.key"
# Outputs the loader drives low when a board has no valid firmware (docs/deploy.md).
SAFE_OFF_PINS = ("bleed_pwm", "excitation", "bus_de", "alarm_relay")

PROJECT_PACKAGES = ("shared", "module_fw", "manager_fw", "boards")
# Libraries a role's code imports from outside the project (tools/stringcare/dev/
# mpcompat.py BUNDLED_LIBRARIES), taken from this venv's site-packages (requirements.txt
# pins them): the files a board needs of each.  Microdot is MIT-licensed; the project
# does not copy it into the tree (docs/operator.md, "On the Pico W").
LIBRARIES = {
    "microdot": (
        "microdot/__init__.py",
        "microdot/microdot.py",
        "microdot/sse.py",
        "microdot/helpers.py",  # sse.py imports it: without it no live page on a board
    )
}


class BundleError(Exception):
    """A board or bundle that cannot be built; the message says what to do."""


def boards_dir(root: Path) -> Path:
    return root / "boards"


def known_boards(root: Path) -> list[str]:
    return sorted(p.parent.name for p in boards_dir(root).glob("*/board.json"))


def load_board(root: Path, name: str) -> dict[str, Any]:
    path = boards_dir(root) / name / "board.json"
    if not path.exists():
        raise BundleError(
            "unknown board %r: known boards are %s" % (name, ", ".join(known_boards(root)))
        )
    board: dict[str, Any] = json.loads(path.read_text())
    return board


def _module_file(root: Path, dotted: str) -> Path | None:
    base = root.joinpath(*dotted.split("."))
    if base.with_suffix(".py").exists():
        return base.with_suffix(".py")
    if (base / "__init__.py").exists():
        return base / "__init__.py"
    return None


# What each source file imports, parsed once per version of the file (its size and
# mtime): a test session builds the same bundles dozens of times, and parsing the role's
# ~80 files (three times per build: role_sources, library_sources) was most of a build.
_SCANNED: dict[tuple[str, int, int, int], tuple[frozenset[str], frozenset[str]]] = {}


def _scan(path: Path) -> tuple[frozenset[str], frozenset[str]]:
    """(the dotted names a file imports, absolute, with `from x import y` as x and x.y;
    the top-level package of every import, relative ones included)."""
    st = path.stat()
    stamp = (str(path), st.st_mtime_ns, st.st_size, st.st_ino)
    got = _SCANNED.get(stamp)
    if got is not None:
        return got
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    tops: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
            tops.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            tops.add((node.module or "").split(".")[0])
            if node.module and node.level == 0:
                names.add(node.module)
                names.update(node.module + "." + a.name for a in node.names)
    got = (frozenset(names), frozenset(tops))
    _SCANNED[stamp] = got
    return got


def _imports(path: Path) -> set[str]:
    return {n for n in _scan(path)[0] if n.split(".")[0] in PROJECT_PACKAGES}


def role_sources(root: Path, board: dict[str, Any]) -> list[Path]:
    """Every project module the role's entry and the board's shell import (closure)."""
    entry = root / "firmware" / board["role"] / "main.py"
    hal = boards_dir(root) / board["name"] / "hal.py"
    todo = [entry, hal]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for dotted in _imports(path):
            found = _module_file(root, dotted)
            if found is not None:
                todo.append(found)
            parts = dotted.split(".")
            for k in range(1, len(parts)):  # the packages on the way
                init = root.joinpath(*parts[:k], "__init__.py")
                if init.exists():
                    todo.append(init)
    init = boards_dir(root) / board["name"] / "__init__.py"
    for extra in (boards_dir(root) / "__init__.py", init):
        if extra.exists():
            seen.add(extra)
    seen.discard(entry)
    return sorted(seen)


def _imports_library(path: Path, name: str) -> bool:
    return name in _scan(path)[1]


def library_sources(root: str | Path, board_name: str) -> list[tuple[Path, str]]:
    """The library files a role's code imports (LIBRARIES): (site-packages directory,
    path below it), e.g. the manager's web interface takes microdot."""
    root = Path(root)
    sources = role_sources(root, load_board(root, board_name))
    out: list[tuple[Path, str]] = []
    for name, files in sorted(LIBRARIES.items()):
        if any(_imports_library(src, name) for src in sources):
            lib = __import__(name)
            site = Path(str(lib.__file__)).resolve().parent.parent
            out.extend((site, f) for f in files)
    return out


def frozen_sources(root: str | Path, board_name: str) -> list[str]:
    """What a role's freeze manifest puts into a MicroPython image for this board, as
    paths relative to the checkout: the same modules its bundle carries (the role's
    import closure and the installer), nothing of another role."""
    root = Path(root)
    board = load_board(root, board_name)
    sources = set(role_sources(root, board)) | {root / p for p in INSTALLER_SOURCES}
    return sorted(str(p.relative_to(root)) for p in sources)


def stamp_text(board: dict[str, Any], source_sha: str, label: str = "") -> str:
    from shared import version

    return (
        "# Generated by `stringcare bundle`: which board and firmware this is.\n"
        "BOARD = %r\nROLE = %r\nVERSION = %r\nSOURCE_SHA = %r\nLABEL = %r\n"
        % (board, board["role"], version.VERSION, source_sha, label)
    )


def _key_error(path: Path, what: str) -> BundleError:
    return BundleError(
        "signing key %s %s: give the private key file `stringcare bundle --keygen` wrote "
        "(not the .pub), or make one with `stringcare bundle --keygen NEW_PATH`" % (path, what)
    )


def keygen(path: Path) -> bytes:
    """Write a new private key to path (mode 600) and its public key to path.pub."""
    path = Path(path)
    if path.exists():
        raise BundleError(
            "%s exists: keygen never overwrites a key (bundles signed with it would no "
            "longer install on boards that trust it). Pick another path." % path
        )
    seed = os.urandom(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("%s %s\n" % (PRIVATE_HEADER, seed.hex()))
    pub = ed25519.public_key(seed)
    Path(str(path) + ".pub").write_text("%s %s\n" % (PUBLIC_HEADER, pub.hex()))
    return pub


def load_key(path: Path) -> bytes:
    """The 32-byte private key (seed) in a key file; BundleError names what is wrong."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise _key_error(path, "does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _key_error(path, "cannot be read (%s)" % exc) from None
    parts = text.split()
    if len(parts) == 2 and parts[0] == PUBLIC_HEADER:
        raise _key_error(path, "is a public key")
    try:
        if len(parts) != 2 or parts[0] != PRIVATE_HEADER:
            raise ValueError
        seed = bytes.fromhex(parts[1])
        if len(seed) != 32:
            raise ValueError
    except ValueError:
        raise _key_error(path, "is not a StringCare Ed25519 private key") from None
    return seed


def dev_key(root: Path) -> Path:
    """This checkout's development signing key, made on first use (atomically: parallel
    builds agree on one key)."""
    path = root / DEV_KEY
    if not path.exists():
        tmp = path.with_name("%s.%d.tmp" % (path.name, os.getpid()))
        tmp.unlink(missing_ok=True)
        Path(str(tmp) + ".pub").unlink(missing_ok=True)
        keygen(tmp)
        try:
            os.link(tmp, path)  # fails if another build made it first
            os.replace(str(tmp) + ".pub", str(path) + ".pub")
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
            Path(str(tmp) + ".pub").unlink(missing_ok=True)
    return path


def loader_text(root: Path, board: dict[str, Any]) -> str:
    """The loader for this board: firmware/loader/main.py with its safe pins filled in."""
    pins = board.get("pins") or {}
    if board.get("virtual"):
        safe: dict[str, Any] = {"status_file": True}
    else:
        # low = off for every one of them: bleed PWM, excitation, RS-485 driver (the
        # bus stays free), relay coils (released: the alarm contact drops)
        off = [pins[k] for k in SAFE_OFF_PINS if k in pins] + list(pins.get("relays", ()))
        safe = {
            "off": off,
            "off_level": 0,
            "leds": [pins[k] for k in ("led_red", "led_green", "led", "alarm_led") if k in pins],
        }
    text = (root / LOADER_SOURCE).read_text()
    marker = "SAFE = {}  # filled in per board by `stringcare bundle`"
    sha_marker = "# SHA256: shared/sha256.py goes here (`stringcare bundle`)"
    for m in (marker, sha_marker):
        if m not in text:
            raise BundleError("%s lost its line %r: restore it" % (LOADER_SOURCE, m))
    sha_src = (root / SHA256_SOURCE).read_text()
    text = text.replace(sha_marker, "# --- %s, inlined ---\n%s# --- end of %s ---" % (
        SHA256_SOURCE, sha_src, SHA256_SOURCE))  # fmt: skip
    return text.replace(marker, "SAFE = %r  # %s's safe outputs" % (safe, board["name"]))


class Bundle:
    def __init__(
        self,
        board: dict[str, Any],
        out_dir: Path,
        files: dict[str, dict[str, Any]],
        manifest: bytes,
        signature: bytes,
    ):
        self.board = board
        self.out_dir = out_dir
        self.files = files  # path in the bundle -> {"sha256", "size"} (what MANIFEST lists)
        self.manifest = manifest
        self.signature_line = signature
        self.manifest_sha = hashlib.sha256(manifest).hexdigest()
        self.id = self.manifest_sha[: fwstore.ID_HEX]
        self.signed_by = fwstore.parse_signature(signature)[0].hex()

    @property
    def total_bytes(self) -> int:
        return sum(f["size"] for f in self.files.values())

    @property
    def folder(self) -> str:
        """Where the bundle goes on the board."""
        return "%s/%s" % (fwstore.BUNDLES, self.id)

    def install_files(self) -> dict[str, str]:
        """Every file deploy copies into the bundle's folder -> its SHA-256 (the
        MANIFEST and its signature included)."""
        out = {p: f["sha256"] for p, f in self.files.items()}
        out["MANIFEST"] = self.manifest_sha
        out["MANIFEST.sig"] = hashlib.sha256(self.signature_line).hexdigest()
        return out

    def data(self, path: str) -> bytes:
        return (self.out_dir / path).read_bytes()


def load(out_dir: Path) -> Bundle:
    """A bundle built (and signed) before, from its folder (`stringcare deploy --bundle`).
    Only what the signed MANIFEST says is taken: files are checked by the board."""
    out_dir = Path(out_dir)
    try:
        manifest = (out_dir / "MANIFEST").read_bytes()
        signature = (out_dir / "MANIFEST.sig").read_bytes()
        meta, listed = fwstore.parse_manifest(manifest)
        fwstore.parse_signature(signature)
    except FileNotFoundError as exc:
        raise BundleError(
            "%s is not a built bundle: %s is missing. Build one with `stringcare bundle "
            "--board NAME --sign KEY`." % (out_dir, Path(exc.filename).name)
        ) from None
    except ValueError as exc:
        raise BundleError("%s: %s" % (out_dir, exc)) from None
    board = load_board(layout.repo_root(), meta.get("board", "?"))
    files = {p: {"sha256": sha, "size": size} for p, (sha, size) in listed.items()}
    return Bundle(board, out_dir, files, manifest, signature)


def _write_atomic(dst: Path, data: bytes) -> None:
    """Write under a private name, then rename: two builds of one board at once (two
    deploys in two terminals, parallel test workers) never read a half-written file."""
    tmp = dst.with_name("%s.%d.%d.tmp" % (dst.name, os.getpid(), threading.get_ident()))
    tmp.write_bytes(data)
    os.replace(tmp, dst)


def build(
    root: Path,
    board_name: str,
    out_dir: Path | None = None,
    key: Path | None = None,
    label: str = "",
) -> Bundle:
    """Build and sign the bundle of a board (key: private key file; None: the checkout's
    development key; label: a build name kept in the stamp, e.g. a release)."""
    if not all(c.isalnum() or c in "._-" for c in label):
        raise BundleError("--label %r: use letters, digits, '.', '_' and '-' only" % label)
    board = load_board(root, board_name)
    if board.get("shell") is False or board.get("arch") is None:
        raise BundleError(
            "board %s (%s) has no firmware shell in this checkout yet: nothing to build"
            % (board_name, board["role"])
        )
    seed = load_key(key if key is not None else dev_key(root))
    out = out_dir or root / "build" / "firmware" / board_name
    out.mkdir(parents=True, exist_ok=True)
    sources = sorted(set(role_sources(root, board)) | {root / p for p in INSTALLER_SOURCES})
    digest = hashlib.sha256()
    entry = root / "firmware" / board["role"] / "main.py"
    extra = [root / LOADER_SOURCE, root / BOOT_SOURCE, boards_dir(root) / board_name / "board.json"]
    for src in [entry, *sources, *extra]:
        digest.update(str(src.relative_to(root)).encode() + b"\0" + src.read_bytes())
    for site, lib_path in library_sources(root, board_name):  # microdot's version too
        digest.update(lib_path.encode() + b"\0" + (site / lib_path).read_bytes())
    digest.update(b"label\0" + label.encode())
    source_sha = digest.hexdigest()[:16]
    staging = root / "build" / "mpy-bundle" / board["arch"]
    errors = layout.compile_mpy(root, sources, staging, board["arch"])
    if errors:
        raise BundleError("mpy-cross failed:\n" + "\n".join(errors))
    wanted: dict[str, bytes] = {
        fwstore.ENTRY + ".py": entry.read_bytes(),
        fwstore.LOADER: loader_text(root, board).encode(),
        fwstore.BOOT: (root / BOOT_SOURCE).read_bytes(),
        "stringcare_bundle.py": stamp_text(board, source_sha, label).encode(),
    }
    for src in sources:
        rel = src.relative_to(root).with_suffix(".mpy")
        wanted[rel.as_posix()] = (staging / rel).read_bytes()
    for site, lib_path in library_sources(root, board_name):
        lib_staging = root / "build" / "mpy-bundle" / ("lib-" + board["arch"])
        errors = layout.compile_mpy(site, [site / lib_path], lib_staging, board["arch"])
        if errors:
            raise BundleError("mpy-cross failed on %s:\n%s" % (lib_path, "\n".join(errors)))
        rel = Path(lib_path).with_suffix(".mpy")
        wanted[rel.as_posix()] = (lib_staging / rel).read_bytes()
    files: dict[str, dict[str, Any]] = {
        p: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for p, d in wanted.items()
    }
    from shared import version

    manifest = fwstore.manifest_text(
        (board_name, board["role"], version.VERSION, source_sha),
        {p: (f["sha256"], f["size"]) for p, f in files.items()},
    ).encode()
    pub = ed25519.public_key(seed)
    signature = fwstore.signature_line(
        pub, ed25519.sign(seed, fwstore.signed_message(manifest))
    ).encode()
    wanted["MANIFEST"] = manifest
    wanted["MANIFEST.sig"] = signature
    for old in out.rglob("*"):
        if old.name.endswith(".tmp"):
            continue  # another build's file on its way in (_write_atomic)
        if old.is_file() and old.relative_to(out).as_posix() not in wanted:
            old.unlink()
    for rel_path, data in sorted(wanted.items()):
        dst = out / rel_path
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists() or dst.read_bytes() != data:
            _write_atomic(dst, data)
    result = Bundle(board, out, files, manifest, signature)
    summary = {
        "board": board_name,
        "role": board["role"],
        "arch": board["arch"],
        "source_sha": source_sha,
        "id": result.id,
        "manifest_sha256": result.manifest_sha,
        "signed_by": pub.hex(),
        "bytes": result.total_bytes,
        "files": files,
    }
    _write_atomic(
        out / "MANIFEST.json", (json.dumps(summary, indent=1, sort_keys=True) + "\n").encode()
    )
    return result
