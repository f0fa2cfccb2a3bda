"""The `make test` pipeline itself: it must reject code a board cannot run, name the
file and the construct, and count the cases it ran under each interpreter."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from host_support import REPO, run_tool

from stringcare.dev import m0

BAD_FILES = {
    "dataclass": (
        "from dataclasses import dataclass\n\n@dataclass\nclass Cell:\n    mv: int\n",
        ["import dataclasses", "@dataclass"],
    ),
    "fstring_equals": (
        "def show(voltage_uv):\n    return f'{voltage_uv=}'\n",
        ["f-string '=' specifier"],
    ),
    "typing_at_runtime": (
        "import typing\n\ndef f(x: typing.List[int]) -> int:\n    return 0\n",
        ["import typing"],
    ),
    "cpython_only_module": (
        "import threading\n\nLOCK = threading.Lock()\n",
        ["import threading", "CPython-only module"],
    ),
    "future_import": (
        "from __future__ import annotations\n\nX = 1\n",
        ["from __future__ import"],
    ),
    "float_in_core": (
        "GAIN = 1.0125\n",
        ["float literal 1.0125", "integers"],
    ),
    "enum": (
        "from enum import Enum\n\nclass Mode(Enum):\n    A = 1\n",
        ["import enum"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_incompatible_construct_fails_make_test_naming_file_and_construct(
    mini_checkout: Path, case: str
) -> None:
    source, expected = BAD_FILES[case]
    bad = mini_checkout / "shared" / ("bad_%s.py" % case)
    bad.write_text(source)
    proc = run_tool(
        [
            "-m",
            "stringcare.dev.check",
            "--root",
            str(mini_checkout),
            "--stages",
            "mpcompat,mpy-cross",
        ],
        cwd=mini_checkout,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "FAILED at stage mpcompat" in out
    for text in expected:
        assert "shared/bad_%s.py:" % case in out
        assert text in out, out


def test_clean_tree_passes_the_same_stages(mini_checkout: Path) -> None:
    (mini_checkout / "shared" / "good.py").write_text(
        "from shared.compat import const\n\nGAIN_PPM = const(1012500)\n"
        "def show(voltage_uv):\n    return f'voltage_uv={voltage_uv}'\n"
    )
    proc = run_tool(
        [
            "-m",
            "stringcare.dev.check",
            "--root",
            str(mini_checkout),
            "--stages",
            "mpcompat,mpy-cross",
        ],
        cwd=mini_checkout,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all 2 stages passed" in proc.stdout


def test_the_summary_gives_the_wall_time_and_says_when_burners_ran_beside(
    mini_checkout: Path,
) -> None:
    # `make test-loaded` is `with-burners.sh 2 ... stringcare.dev.check`: its summary line
    # gives the wall time and the load it ran under (docs/development.md)
    script = REPO / "tools" / "sh" / "with-burners.sh"
    check = [sys.executable, "-m", "stringcare.dev.check", "--root", str(mini_checkout)]
    proc = subprocess.run(
        [str(script), "1", *check, "--stages", "mpcompat"],
        cwd=mini_checkout, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "with-burners: 1 CPU-bound processes running beside" in proc.stdout
    assert re.search(r"stage times: mpcompat \d+ s", proc.stdout), proc.stdout
    line = proc.stdout.strip().splitlines()[-1]
    assert re.match(r"make test: all 1 stages passed in \d+ s with 1 CPU burners beside it", line)


def test_syntax_micropython_cannot_compile_fails_at_mpy_cross(mini_checkout: Path) -> None:
    # Python 3.12 generic syntax parses in neither; a CPython 3.11 `except*` group is
    # valid CPython that mpy-cross rejects.
    (mini_checkout / "shared" / "groups.py").write_text(
        "def f():\n    try:\n        pass\n    except* ValueError:\n        pass\n"
    )
    proc = run_tool(
        ["-m", "stringcare.dev.check", "--root", str(mini_checkout), "--stages", "mpy-cross"],
        cwd=mini_checkout,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "shared/groups.py (mpy-cross -march=armv6m)" in out


def test_unknown_stage_is_a_clear_usage_error(mini_checkout: Path) -> None:
    proc = run_tool(["-m", "stringcare.dev.check", "--stages", "lint,tests"], cwd=mini_checkout)
    assert proc.returncode == 2
    assert "unknown stage tests" in proc.stderr
    assert "pytest-micropython" in proc.stderr


def _pytest_in(root: Path, *args: str):
    return run_tool(
        [
            "-m",
            "pytest",
            "-p",
            "stringcare.dev.dualtest_plugin",
            "--rootdir",
            str(root),
            "-c",
            "/dev/null",
            "--import-mode=importlib",
            "-p",
            "no:cacheprovider",
            *args,
        ],
        cwd=root,
        root=root,
    )


def test_one_test_body_runs_under_both_interpreters_and_is_counted(mini_checkout: Path) -> None:
    (mini_checkout / "host_tests" / "dual" / "shared" / "test_where.py").write_text(
        "import sys\n\n"
        "def test_runs_anywhere():\n    assert 1 + 1 == 2\n\n"
        "def test_cpython_only_behaviour():\n"
        "    assert sys.implementation.name == 'cpython', 'not CPython'\n"
    )
    counts = mini_checkout / "counts.json"
    proc = _pytest_in(mini_checkout, "host_tests", "--counts-file", str(counts), "-q")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    # Each interpreter's case is its own result, and the MicroPython one fails with
    # MicroPython's own traceback (file and line of the failing assert).
    assert "test_where.py::test_runs_anywhere[micropython] PASSED" not in out
    assert (
        "FAILED host_tests/dual/shared/test_where.py::test_cpython_only_behaviour[micropython]"
        in out
    )
    assert (
        'File "host_tests/dual/shared/test_where.py", line 7, in test_cpython_only_behaviour' in out
    )
    assert "AssertionError: not CPython" in out
    assert json.loads(counts.read_text()) == {
        "cpython": 2,
        "micropython": 1,
        "m0": 0,
        "failed": 1,
        "skipped": 0,
    }


def test_keyword_selection_works_on_micropython_items(mini_checkout: Path) -> None:
    (mini_checkout / "host_tests" / "dual" / "shared" / "test_sel.py").write_text(
        "def test_alpha():\n    pass\n\ndef test_beta():\n    pass\n"
    )
    proc = _pytest_in(mini_checkout, "host_tests", "-k", "beta", "-q")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "INTERNALERROR" not in out
    assert "2 passed, 2 deselected" in out


def test_heap_budget_cannot_be_raised_above_the_board(mini_checkout: Path) -> None:
    (mini_checkout / "host_tests" / "dual" / "shared" / "test_greedy.py").write_text(
        "MICROPYTHON_HEAP_KB = 256\n\ndef test_x():\n    pass\n"
    )
    proc = _pytest_in(mini_checkout, "host_tests", "--interp=micropython", "-q")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "MICROPYTHON_HEAP_KB = 256 exceeds the 64 KB a board leaves free for shared code" in out


def test_micropython_heap_is_really_limited(mini_checkout: Path) -> None:
    # 64 KB heap: a 100 KB buffer must fail in MicroPython while CPython is unbounded.
    (mini_checkout / "host_tests" / "dual" / "shared" / "test_big.py").write_text(
        "def test_allocate_100k():\n"
        "    buf = bytearray(100 * 1024)\n"
        "    assert len(buf) == 102400\n"
    )
    proc = _pytest_in(mini_checkout, "host_tests", "-q", "-rA")
    out = proc.stdout + proc.stderr
    assert "PASSED host_tests/dual/shared/test_big.py::test_allocate_100k\n" in out
    assert "FAILED host_tests/dual/shared/test_big.py::test_allocate_100k[micropython]" in out
    assert "MemoryError" in out


def test_m0_stage_is_skipped_with_a_clear_line_without_its_firmware(mini_checkout: Path) -> None:
    proc = run_tool(
        ["-m", "stringcare.dev.check", "--root", str(mini_checkout), "--stages", "pytest-m0"],
        cwd=mini_checkout,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "skipped: emulated Cortex-M0 not available: no firmware at tools/m0/firmware.bin" in out
    assert "0 on the emulated Cortex-M0" in out


@pytest.mark.skipif(
    m0.missing(REPO) is not None, reason="emulated Cortex-M0: %s" % m0.missing(REPO)
)
def test_m0_cases_run_on_a_cortex_m0_with_the_board_budget_and_are_counted(
    mini_checkout: Path,
) -> None:
    (mini_checkout / "tools" / "m0").mkdir(parents=True)
    shutil.copy(REPO / m0.FIRMWARE, mini_checkout / m0.FIRMWARE)
    (mini_checkout / "host_tests" / "dual" / "shared" / "test_where.py").write_text(
        "import sys\n\n"
        "def test_on_a_cortex_m0():\n"
        "    assert 'Cortex-M0' in sys.implementation._machine, sys.implementation._machine\n"
        "    assert (1 << 30) - 1 + 1 == 1 << 30  # big ints still work above 31 bits\n\n"
        "def test_allocate_100k():\n"
        "    assert len(bytearray(100 * 1024)) == 102400\n"
    )
    counts = mini_checkout / "counts.json"
    proc = _pytest_in(
        mini_checkout, "host_tests", "--interp=m0", "--counts-file", str(counts), "-q", "-rA"
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "PASSED host_tests/dual/shared/test_where.py::test_on_a_cortex_m0[m0]" in out
    # the 64 KB budget of shared code holds on the emulated board too
    assert "FAILED host_tests/dual/shared/test_where.py::test_allocate_100k[m0]" in out
    assert "MemoryError" in out
    assert 'File "host_tests/dual/shared/test_where.py", line 8, in test_allocate_100k' in out
    assert json.loads(counts.read_text())["m0"] == 1


def test_repo_has_the_layout_of_the_design() -> None:
    for name in (
        "firmware",
        "module_fw",
        "manager_fw",
        "shared",
        "host_tests",
        "boards",
        "tools",
        "docs",
        "README.md",
        "Makefile",
        "pyproject.toml",
        ".ci/run",
    ):
        assert (REPO / name).exists(), name


def test_bytecode_is_cached_under_build_when_the_shell_says_dont_write_it(
    tmp_path: Path,
) -> None:
    # PYTHONDONTWRITEBYTECODE made every process of `make test` compile all it imported
    # again; the checks cache it under build/pycache instead, never beside the sources
    from stringcare.dev.check import bytecode_cache_is_cold, cache_bytecode

    assert cache_bytecode(tmp_path, {}) is None
    own = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": "/elsewhere"}
    assert cache_bytecode(tmp_path, own) and own == {"PYTHONPYCACHEPREFIX": "/elsewhere"}
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPYCACHEPREFIX", None)
    note = cache_bytecode(tmp_path, env)
    assert note and str(tmp_path / "build" / "pycache") in note
    assert "PYTHONDONTWRITEBYTECODE" not in env
    # cold: make test runs one collection first to fill it for the xdist workers
    assert bytecode_cache_is_cold(tmp_path, env)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "cached_mod.py").write_text("X = 1\n")
    proc = subprocess.run(
        [sys.executable, "-c", "import cached_mod"],
        cwd=tmp_path / "src", env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert list((tmp_path / "build" / "pycache").rglob("cached_mod.*.pyc"))
    assert not list((tmp_path / "src").rglob("*.pyc"))
    assert not bytecode_cache_is_cold(tmp_path, env)
