"""`make test`: every check of the project, in order, stopping at the first failure.

Stages:
  lint                ruff check
  format              ruff format --check
  mpcompat            MicroPython compatibility of deployable code (stringcare.dev.mpcompat)
  mypy                mypy on host code; board code against the MicroPython stub packages
  pytest-cpython      all of host_tests/ under CPython
  pytest-micropython  the dual tests of shared/, module_fw/, manager_fw/ in MicroPython
  pytest-m0           the same dual tests on an emulated Cortex-M0 (QEMU; skipped when absent)
  mpy-cross           everything deployable compiled for armv6m and armv7emsp

    python -m stringcare.dev.check [--root DIR] [--stages a,b,...] [-- pytest args]

The last line states how many cases ran under each interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from stringcare.dev import layout, m0, mpcompat

STAGES = (
    "lint",
    "format",
    "mpcompat",
    "mypy",
    "pytest-cpython",
    "pytest-micropython",
    "pytest-m0",
    "mpy-cross",
)

# Which stub package checks which board: the board's port.
STUB_SETS = {"rp2": "micropython-rp2-stubs", "stm32": "micropython-stm32-stubs"}
# Modules inside the stub packages whose own stubs do not pass mypy; not our code.
STUB_MODULES_WITH_ERRORS = "machine,vfs,_mpy_shed.*,rp2,rp2.*,pyb,stm,network,bluetooth"

HOST_TYPED = (
    "tools/stringcare",
    "tools/stringcare_host",
    "tools/bench",
    "shared",
    "module_fw",
    "manager_fw",
)


class Stage:
    def __init__(self, root: Path, pytest_args: list[str]) -> None:
        self.root = root
        self.pytest_args = pytest_args
        self.notes: list[str] = []
        self.counts: dict[str, int] = {}

    def run(self, cmd: list[str], env: dict[str, str] | None = None) -> int:
        print("  $ " + " ".join(cmd), flush=True)
        return subprocess.call(cmd, cwd=self.root, env=env)

    def tool(self, name: str) -> str:
        exe = Path(sys.executable).parent / name
        return str(exe) if exe.exists() else name

    # -- stages ------------------------------------------------------------------

    def lint(self) -> bool:
        return self.run([self.tool("ruff"), "check", "."]) == 0

    def format(self) -> bool:
        ok = self.run([self.tool("ruff"), "format", "--check", "."]) == 0
        if not ok:
            print("  fix: .venv/bin/ruff format .")
        return ok

    def mpcompat(self) -> bool:
        findings = mpcompat.check_tree(self.root)
        for f in findings:
            print("  " + str(f))
        files = len(layout.deployable_sources(self.root))
        self.notes.append("%d deployable files MicroPython-clean" % files)
        return not findings

    def mypy(self) -> bool:
        candidates = list(HOST_TYPED) + ["boards/%s" % b for b in layout.HOST_BOARDS]
        host = [p for p in candidates if any((self.root / p).rglob("*.py"))]
        if self.run([self.tool("mypy"), *host]) != 0:
            return False
        for board_dir, stub_set in board_stub_sets(self.root):
            if not self.mypy_board(board_dir, stub_set):
                return False
        return True

    def mypy_board(self, board_dir: Path, stub_set: str) -> bool:
        stubs = Path(sys.prefix) / "stubs" / stub_set
        if not stubs.is_dir():
            print(
                "  MicroPython stubs for %s are missing at %s: run `make test`, which "
                "installs %s there" % (stub_set, stubs, STUB_SETS[stub_set])
            )
            return False
        cfg = self.root / "build" / ("mypy-%s.ini" % stub_set)
        cfg.parent.mkdir(parents=True, exist_ok=True)
        cfg.write_text(
            "[mypy]\nmypy_path = %s:%s\nexplicit_package_bases = True\ncheck_untyped_defs = True\n"
            "cache_dir = %s\n[mypy-%s]\nignore_errors = True\n"
            # the firmware packages a shell imports are checked by the host stage
            "[mypy-shared.*,module_fw.*,manager_fw.*]\nignore_errors = True\n"
            % (
                stubs,
                self.root,
                self.root / "build" / ("mypy-cache-" + stub_set),
                STUB_MODULES_WITH_ERRORS,
            )
        )
        rel = str(board_dir.relative_to(self.root))
        return self.run([self.tool("mypy"), "--config-file", str(cfg), rel]) == 0

    def _pytest(self, interp: str) -> bool:
        counts_file = self.root / "build" / "test" / ("counts-%s.json" % interp)
        if counts_file.exists():
            counts_file.unlink()
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "--interp=" + interp,
            "--counts-file",
            str(counts_file),
            "-q",
        ]
        if _have_xdist():
            # every core: host test files and the HIL suite stay whole per worker
            # (dualtest_plugin groups them), MicroPython cases spread freely
            cmd += ["-n", "auto", "--dist", "loadgroup"]
        cmd += self.pytest_args
        code = self.run(cmd)
        if counts_file.exists():
            self.counts[interp] = json.loads(counts_file.read_text()).get(interp, 0)
        else:
            self.counts[interp] = 0
        return code == 0

    def pytest_cpython(self) -> bool:
        return self._pytest("cpython")

    def pytest_micropython(self) -> bool:
        return self._pytest("micropython")

    def pytest_m0(self) -> bool:
        reason = m0.missing(self.root)
        if reason:
            print("  skipped: emulated Cortex-M0 not available: " + reason)
            self.notes.append("emulated Cortex-M0 skipped (%s)" % reason)
            return True
        return self._pytest("m0")

    def mpy_cross(self) -> bool:
        sources = layout.mpy_cross_sources(self.root)
        ok = True
        for arch in layout.BOARD_ARCHES:
            errors = layout.compile_mpy(
                self.root, sources, self.root / "build" / "mpy" / arch, arch, prune=True
            )
            for e in errors:
                print("  " + e)
            ok = ok and not errors
        self.notes.append(
            "%d files compiled for %s" % (len(sources), " and ".join(layout.BOARD_ARCHES))
        )
        return ok


def load_note() -> str:
    """How busy the machine was made (tools/sh/with-burners.sh exports
    STRINGCARE_BURNERS), for the summary line: a wall time means little without it."""
    burners = os.environ.get("STRINGCARE_BURNERS", "")
    if burners.isdigit() and int(burners) > 0:
        return " with %s CPU burners beside it" % burners
    return ""


def _have_xdist() -> bool:
    import importlib.util

    return importlib.util.find_spec("xdist") is not None


def board_stub_sets(root: Path) -> list[tuple[Path, str]]:
    """(board folder, stub set) for every microcontroller board that declares its port."""
    out = []
    boards = root / "boards"
    for meta in sorted(boards.glob("*/board.json")) if boards.is_dir() else []:
        port = json.loads(meta.read_text()).get("port")
        # a board without a shell yet (the manager boards) has nothing to check
        if port in STUB_SETS and any(meta.parent.glob("*.py")):
            out.append((meta.parent, port))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", help="checkout to check (default: this one)")
    parser.add_argument(
        "--stages", default=",".join(STAGES), help="comma-separated subset of: " + ", ".join(STAGES)
    )
    parser.add_argument("pytest_args", nargs="*", help="extra arguments for both pytest stages")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve() if args.root else layout.repo_root()
    wanted = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in STAGES]
    if unknown:
        parser.error("unknown stage %s; known stages: %s" % (", ".join(unknown), ", ".join(STAGES)))
    os.environ["STRINGCARE_ROOT"] = str(root)
    stage = Stage(root, args.pytest_args)
    methods: dict[str, Callable[[], bool]] = {
        "lint": stage.lint,
        "format": stage.format,
        "mpcompat": stage.mpcompat,
        "mypy": stage.mypy,
        "pytest-cpython": stage.pytest_cpython,
        "pytest-micropython": stage.pytest_micropython,
        "pytest-m0": stage.pytest_m0,
        "mpy-cross": stage.mpy_cross,
    }
    started = time.monotonic()
    done: list[str] = []
    took_s: dict[str, float] = {}
    for name in STAGES:
        if name not in wanted:
            continue
        print("== %s" % name, flush=True)
        t0 = time.monotonic()
        ok = methods[name]()
        took = time.monotonic() - t0
        if not ok:
            print()
            print(
                "make test: FAILED at stage %s after %.0f s (passed before it: %s)"
                % (name, took, ", ".join(done) or "none")
            )
            return 1
        print("   %s ok (%.1f s)" % (name, took), flush=True)
        done.append(name)
        took_s[name] = took
    total = time.monotonic() - started
    print()
    for note in stage.notes:
        print("   " + note)
    print("   stage times: " + ", ".join("%s %.0f s" % (n, t) for n, t in took_s.items()))
    print(
        "make test: all %d stages passed in %.0f s%s — %d cases under CPython, %d under "
        "MicroPython, %d on the emulated Cortex-M0"
        % (
            len(done),
            total,
            load_note(),
            stage.counts.get("cpython", 0),
            stage.counts.get("micropython", 0),
            stage.counts.get("m0", 0),
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
