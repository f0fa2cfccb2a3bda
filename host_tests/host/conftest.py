from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from host_support import REPO


@pytest.fixture
def mini_checkout(tmp_path: Path) -> Path:
    """A throw-away checkout holding the harness and shared/, to feed bad files through."""
    root = tmp_path / "checkout"
    root.mkdir()
    shutil.copytree(REPO / "shared", root / "shared", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "host_tests" / "dual" / "shared").mkdir(parents=True)
    for name in ("mp_runner.py", "m0_runner.py", "dualtest.py"):
        shutil.copy(REPO / "host_tests" / name, root / "host_tests" / name)
    return root
