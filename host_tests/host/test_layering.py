"""The layering of the host side (issue 14): board shells use the host runtime package
(tools/stringcare_host), never the developer CLI package (tools/stringcare), and the
runtime package does not reach back into the CLI either."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from host_support import REPO

CLI_PACKAGE = "stringcare"


def cli_imports(path: Path) -> list[str]:
    """Every import of the CLI package in one file, as 'file:line: statement'."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            if name == CLI_PACKAGE or name.startswith(CLI_PACKAGE + "."):
                where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
                found.append("%s:%d: %s" % (where, node.lineno, name))
    return found


def python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def test_cli_imports_finds_every_form(tmp_path: Path) -> None:
    # the checker itself must see each spelling, or the tests below prove nothing
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import stringcare\nimport stringcare.web as w\nfrom stringcare import status\n"
        "from stringcare.transport import BusDriver\ndef f():\n    import stringcare.cli\n"
        "import stringcare_host\nfrom stringcare_host import web\nfrom . import stringcare\n"
    )
    lines = [f.split(": ", 1)[1] for f in cli_imports(sample)]
    assert lines == ["stringcare", "stringcare.web", "stringcare", "stringcare.transport",
                     "stringcare.cli"]  # fmt: skip


def test_no_board_imports_the_cli_package() -> None:
    found = [f for path in python_files(REPO / "boards") for f in cli_imports(path)]
    assert not found, (
        "boards/ must not import the developer CLI package `stringcare`; use the host "
        "runtime package `stringcare_host` (tools/stringcare_host) instead:\n  "
        + "\n  ".join(found)
    )


def test_the_host_runtime_does_not_import_the_cli_package() -> None:
    found = [f for p in python_files(REPO / "tools" / "stringcare_host") for f in cli_imports(p)]
    assert not found, "stringcare_host must not import the CLI package:\n  " + "\n  ".join(found)


def test_the_linux_shell_loads_without_the_cli_package() -> None:
    # a real import in a fresh interpreter: nothing it pulls in, directly or not, is the CLI
    code = (
        "import sys, boards.linux_manager.shell, stringcare_host.web\n"
        "bad = sorted(m for m in sys.modules if m == 'stringcare' or m.startswith('stringcare.'))\n"
        "print(','.join(bad))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tools")]))
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", "the Linux shell loaded: " + proc.stdout
