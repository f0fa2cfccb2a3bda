"""The Makefile front door: a second run reuses .venv instead of reinstalling."""

from __future__ import annotations

import subprocess

from host_support import REPO


def test_install_stamp_is_up_to_date_after_setup() -> None:
    # `make -q TARGET` exits 0 when TARGET needs no rebuild: the venv is not
    # reinstalled on the next `make test`/`make sim`/`make bench`.
    proc = subprocess.run(
        ["make", "-q", ".venv/.stringcare-installed"], cwd=REPO, capture_output=True
    )
    assert proc.returncode == 0


def test_dry_run_of_test_does_not_install() -> None:
    proc = subprocess.run(["make", "-n", "test"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0
    assert "setup-venv" not in proc.stdout
    assert "stringcare.dev.check" in proc.stdout


def test_every_target_of_the_readme_exists() -> None:
    proc = subprocess.run(["make", "-n", "sim", "bench"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "stringcare sim" in proc.stdout
    assert "stringcare bench" in proc.stdout
