"""Helpers for the CPython-only host tests (importable: host_tests/ is on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_tool(
    args: list[str], cwd: Path, root: Path | None = None, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    """Run a command with this venv's Python; STRINGCARE_ROOT points at `root`."""
    env = dict(os.environ)
    if root is not None:
        env["STRINGCARE_ROOT"] = str(root)
        env["PYTHONPATH"] = os.pathsep.join([str(root), str(root / "host_tests")])
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
