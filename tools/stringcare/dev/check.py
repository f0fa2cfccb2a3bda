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

The last line states how many cases ran under each interpreter and the wall time.

Both cores busy to the end: when all three pytest stages are asked for, they run as
one pytest-xdist session (`--interp=all`: every worker takes CPython tests, MicroPython
cases and emulated-M0 files alike, the longest work units first, the short ones filling
in at the end; dualtest_plugin), and mypy runs beside it on its own output (printed
when it is done; a mypy failure stops the session).  A failure names its stage: the
test ids end in [micropython] or [m0] for those stages.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, MutableMapping
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

# Run as one pytest session when all three are asked for (see the module docstring).
PYTEST_STAGES = ("pytest-cpython", "pytest-micropython", "pytest-m0")

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
        self.cold_cache = False  # set by main() before mypy, which writes to the cache too

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
        cmds = self.mypy_cmds()
        if cmds is None:
            return False
        return all(self.run(cmd) == 0 for cmd in cmds)

    def mypy_cmds(self) -> list[list[str]] | None:
        """The mypy runs (host code, then each board against its stubs); None: a stub
        package is missing (said why)."""
        candidates = list(HOST_TYPED) + ["boards/%s" % b for b in layout.HOST_BOARDS]
        host = [p for p in candidates if any((self.root / p).rglob("*.py"))]
        cmds = [[self.tool("mypy"), *host]]
        for board_dir, stub_set in board_stub_sets(self.root):
            cmd = self.mypy_board(board_dir, stub_set)
            if cmd is None:
                return None
            cmds.append(cmd)
        return cmds

    def mypy_board(self, board_dir: Path, stub_set: str) -> list[str] | None:
        stubs = Path(sys.prefix) / "stubs" / stub_set
        if not stubs.is_dir():
            print(
                "  MicroPython stubs for %s are missing at %s: run `make test`, which "
                "installs %s there" % (stub_set, stubs, STUB_SETS[stub_set])
            )
            return None
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
        return [self.tool("mypy"), "--config-file", str(cfg), rel]

    def _pytest_cmd(self, interp: str, counts_file: Path) -> list[str]:
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
            # two workers more than cores: the HIL tests wait in real time on the
            # product's own timeouts (a box watchdog, a manager's exit) and leave a core
            # idle meanwhile (2026-12-03, fresh clones on 2 idle cores: cores 495 s,
            # +1 369 s, +2 329 s of pytest for ~650 CPU-s); a file with its own
            # expensive fixture and the HIL suite's rig users stay whole per worker
            # (dualtest_plugin groups them and orders the units longest first, so keep
            # xdist from reordering them), the rest spreads
            workers = len(os.sched_getaffinity(0)) + 2
            cmd += ["-n", str(workers), "--dist", "loadgroup", "--no-loadscope-reorder"]
        return cmd + self.pytest_args

    def _read_counts(self, counts_file: Path, interps: tuple[str, ...]) -> None:
        data = json.loads(counts_file.read_text()) if counts_file.exists() else {}
        for interp in interps:
            self.counts[interp] = data.get(interp, 0)

    def _pytest(self, interp: str) -> bool:
        counts_file = self.root / "build" / "test" / ("counts-%s.json" % interp)
        if counts_file.exists():
            counts_file.unlink()
        code = self.run(self._pytest_cmd(interp, counts_file))
        self._read_counts(counts_file, (interp,))
        return code == 0

    def pytest_all(self, beside: Beside | None) -> bool:
        """The three pytest stages as one session (see the module docstring); `beside`
        (mypy) runs meanwhile and stops the session when it fails."""
        reason = m0.missing(self.root)
        if reason:
            print("  the emulated Cortex-M0 is left out: " + reason)
            self.notes.append("emulated Cortex-M0 skipped (%s)" % reason)
        counts_file = self.root / "build" / "test" / "counts-all.json"
        if counts_file.exists():
            counts_file.unlink()
        self._warm_bytecode()
        cmd = self._pytest_cmd("all", counts_file)
        print("  $ " + " ".join(cmd), flush=True)
        proc = subprocess.Popen(cmd, cwd=self.root)
        while True:
            try:
                code = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                pass
            if beside is not None and beside.failed():
                print("\n  mypy failed beside the tests: stopping them", flush=True)
                proc.terminate()
                proc.wait()
                return False
        self._read_counts(counts_file, ("cpython", "micropython", "m0"))
        return code == 0

    def _warm_bytecode(self) -> None:
        """On a fresh checkout the xdist workers collect at the same time, and each
        compiles everything it imports and rewrites the asserts of every test file
        (~7.5 CPU-s a worker); one collection first fills the bytecode cache, the
        workers then take ~2.5 CPU-s each.  Only for the whole suite (no pytest
        arguments), under xdist, and while the cache is still empty."""
        if self.pytest_args or not _have_xdist() or not self.cold_cache:
            return
        print("  (a first collection fills the bytecode cache for the workers)", flush=True)
        subprocess.call(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "--interp=all"],
            cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

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


class Beside:
    """A stage run as a subprocess beside the pytest session, its output kept in a file
    and printed as one block when it is done."""

    def __init__(self, stage: Stage, name: str, cmds: list[list[str]]) -> None:
        self.name = name
        self.cmds = cmds
        self.log = stage.root / "build" / "test" / ("%s.log" % name)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.root = stage.root
        self.t0 = time.monotonic()
        self.took_s = 0.0
        self.ok: bool | None = None
        self._out = self.log.open("w")
        self._i = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._next()

    def _next(self) -> None:
        cmd = self.cmds[self._i]
        self._out.write("  $ " + " ".join(cmd) + "\n")
        self._out.flush()
        self._proc = subprocess.Popen(
            cmd, cwd=self.root, stdout=self._out, stderr=subprocess.STDOUT
        )

    def poll(self) -> bool | None:
        """None while running, else whether every command passed."""
        if self.ok is not None or self._proc is None:
            return self.ok
        code = self._proc.poll()
        if code is None:
            return None
        if code == 0 and self._i + 1 < len(self.cmds):
            self._i += 1
            self._next()
            return None
        self.ok = code == 0
        self.took_s = time.monotonic() - self.t0
        self._out.close()
        return self.ok

    def failed(self) -> bool:
        return self.poll() is False

    def finish(self) -> bool:
        while self.poll() is None:
            time.sleep(0.2)
        print("== %s (ran beside the tests)" % self.name)
        print(self.log.read_text(), end="", flush=True)
        return bool(self.ok)

    def stop(self) -> None:
        if self.ok is None and self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait()


def cache_bytecode(root: Path, env: MutableMapping[str, str]) -> str | None:
    """With PYTHONDONTWRITEBYTECODE set (some shells and CI images set it), every
    Python process of the run compiled every module it imported from source again:
    each pytest worker its collection (numpy, the plugins, the assertion rewrite of
    every test file), each `stringcare` CLI, manager, mpremote and simulator a test
    starts.  The checks then cache bytecode after all, but under build/pycache
    (PYTHONPYCACHEPREFIX), so nothing lands in the source tree or .venv, which is what
    that setting is for; `make clean` removes it.  Returns the note for the summary, or
    None when nothing was changed (a prefix of the caller's own is kept)."""
    if not env.get("PYTHONDONTWRITEBYTECODE"):
        return None
    del env["PYTHONDONTWRITEBYTECODE"]
    prefix = env.setdefault("PYTHONPYCACHEPREFIX", str(root / "build" / "pycache"))
    return "PYTHONDONTWRITEBYTECODE is set: bytecode cached under %s instead" % prefix


def bytecode_cache_is_cold(root: Path, env: MutableMapping[str, str]) -> bool:
    """No bytecode cached yet (a fresh checkout): the cache folder is not there."""
    if env.get("PYTHONDONTWRITEBYTECODE"):
        return False
    prefix = env.get("PYTHONPYCACHEPREFIX")
    return not (Path(prefix) if prefix else root / "host_tests" / "host" / "__pycache__").exists()


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
    cached = cache_bytecode(root, os.environ)
    if cached:
        stage.notes.append(cached)
    stage.cold_cache = bytecode_cache_is_cold(root, os.environ)
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

    def failed(name: str, took: float) -> int:
        print()
        print(
            "make test: FAILED at stage %s after %.0f s (passed before it: %s)"
            % (name, took, ", ".join(done) or "none")
        )
        return 1

    together = all(s in wanted for s in PYTEST_STAGES)
    beside: Beside | None = None
    for name in STAGES:
        if name not in wanted or (together and name in PYTEST_STAGES[1:]):
            continue
        if name == "mypy" and together:
            cmds = stage.mypy_cmds()
            if cmds is None:
                return failed(name, 0.0)
            print("== mypy: runs beside the tests, its output follows them", flush=True)
            beside = Beside(stage, "mypy", cmds)
            continue
        t0 = time.monotonic()
        if name == "pytest-cpython" and together:
            print("== %s (one session, both cores)" % " + ".join(PYTEST_STAGES), flush=True)
            ok = stage.pytest_all(beside)
            name = " + ".join(PYTEST_STAGES)
            if beside is not None and beside.failed():
                took = time.monotonic() - t0
                beside.finish()
                return failed("mypy", beside.took_s)
        else:
            print("== %s" % name, flush=True)
            ok = methods[name]()
        took = time.monotonic() - t0
        if not ok:
            if beside is not None:
                beside.stop()
            return failed(name, took)
        print("   %s ok (%.1f s)" % (name, took), flush=True)
        done.append(name)
        took_s[name] = took
        if beside is not None and name.startswith("pytest-cpython"):
            ok = beside.finish()
            if not ok:
                return failed("mypy", beside.took_s)
            print("   mypy ok (%.1f s, beside the tests)" % beside.took_s, flush=True)
            done.append("mypy")
            took_s["mypy (beside)"] = beside.took_s
            beside = None
    total = time.monotonic() - started
    print()
    for note in stage.notes:
        print("   " + note)
    print("   stage times: " + ", ".join("%s %.0f s" % (n, t) for n, t in took_s.items()))
    print(
        "make test: all %d stages passed in %.0f s%s — %d cases under CPython, %d under "
        "MicroPython, %d on the emulated Cortex-M0"
        % (
            sum(len(n.split(" + ")) for n in done),
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
