"""The `stringcare` console script: version, help, and clear errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from host_support import REPO

import stringcare


def stringcare_cmd(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("stringcare", path=str(Path(sys.executable).parent))
    assert exe, "the console script is installed into the venv by `make`"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_version_is_the_firmware_version() -> None:
    proc = stringcare_cmd("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == "stringcare %s" % stringcare.__version__
    from shared import version

    assert stringcare.__version__ == version.VERSION
    assert version.VERSION == "%d.%d.%d" % (
        version.VERSION_MAJOR,
        version.VERSION_MINOR,
        version.VERSION_PATCH,
    )


def test_help_lists_every_subcommand() -> None:
    proc = stringcare_cmd("--help")
    assert proc.returncode == 0
    commands = sorted(p.stem for p in (REPO / "tools/stringcare/commands").glob("[a-z]*.py"))
    assert commands, "at least one subcommand"
    for name in commands:
        assert name.replace("_", "-") in proc.stdout


def test_unknown_subcommand_is_rejected_with_usage() -> None:
    proc = stringcare_cmd("frobnicate")
    assert proc.returncode == 2
    assert "invalid choice: 'frobnicate'" in proc.stderr


def test_bench_writes_flat_json_and_a_table(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = stringcare_cmd("bench", "code", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert set(data) >= {"code.mpy_kb.armv6m", "code.mpy_kb.armv7emsp"}
    assert all(isinstance(v, int | float) for v in data.values())
    assert data["code.mpy_kb.armv6m"] > 0
    assert "metric" in proc.stdout and "code.mpy_kb.armv6m" in proc.stdout


def test_bench_unknown_name_says_what_exists() -> None:
    proc = stringcare_cmd("bench", "nosuch")
    assert proc.returncode == 2
    assert "no benchmark matches nosuch" in proc.stderr
    assert "code" in proc.stderr


def test_every_metric_is_explained_in_docs() -> None:
    import re

    doc = (REPO / "docs" / "benchmarks.md").read_text()
    for bench in (REPO / "tools" / "bench").glob("bench_*.py"):
        for key in re.findall(r'^\s+"([a-z0-9_.]+)": \(', bench.read_text(), re.M):
            assert "`%s`" % key in doc, "docs/benchmarks.md does not explain %s" % key
