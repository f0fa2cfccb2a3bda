"""A benchmark's MicroPython half (a script under tools/bench/mp/) run from its
bench_*.py: the script's output, or, under callgrind, how many instructions it took."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from stringcare.dev import layout
from stringcare.vboard import micropython_executable


def run_mp(
    script: str,
    args: list[str],
    valgrind: bool = False,
    options: tuple[str, ...] = (),
    cwd: Path | None = None,
) -> str:
    """Run tools/bench/mp/<script> with args on the unix port (the one the tests use) (with
    its options, e.g. "-X", "heapsize=256k"); its stdout and stderr.  valgrind: under
    callgrind, whose summary (collected()) is in the text."""
    path = str(layout.repo_root() / "tools/bench/mp" / script)
    cmd = [micropython_executable(), *options, path, *args]
    if valgrind:
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=cwd)
    if proc.returncode != 0:
        raise RuntimeError("MicroPython bench failed: %s" % (proc.stderr or proc.stdout)[-2000:])
    return proc.stdout + proc.stderr


def collected(text: str) -> int:
    """The instruction count in the output of a run_mp(..., valgrind=True)."""
    m = re.search(r"Collected : (\d+)", text)
    if not m:
        raise RuntimeError("callgrind gave no count:\n" + text[-1000:])
    return int(m.group(1))


def need_valgrind(purpose: str) -> None:
    """Install valgrind when it is missing (tools/sh/need-deb.sh says how, or fails)."""
    if shutil.which("valgrind") is None:
        need = str(layout.repo_root() / "tools/sh/need-deb.sh")
        subprocess.run([need, "valgrind", "valgrind", purpose], check=True)
