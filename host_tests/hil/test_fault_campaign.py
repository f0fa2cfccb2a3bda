"""`stringcare faults`, the fault campaign (docs/reliability.md): its fast subset runs
here against the real Linux manager on virtual boards; `make bench` runs them all."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from host_support import REPO

EXE = str(Path(sys.executable).parent / "stringcare")


def test_list_names_every_fault_with_its_guarantee() -> None:
    proc = subprocess.run([EXE, "faults", "--list"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) >= 12
    names = [ln.split()[0] for ln in lines]
    for must in ("manager-sigkill", "slow-clients-400", "wall-clock-back-1h", "history-eio",
                 "site-json-not-utf8", "power-loss-during-history-write"):  # fmt: skip
        assert must in names
    assert (REPO / "docs" / "reliability.md").read_text().count("`") > 0
    doc = (REPO / "docs" / "reliability.md").read_text()
    missing = [n for n in names if "`%s`" % n not in doc]
    assert not missing, "docs/reliability.md does not list: %s" % ", ".join(missing)


def test_an_unknown_fault_is_named() -> None:
    proc = subprocess.run([EXE, "faults", "no-such"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2
    assert "no fault named no-such" in proc.stderr and "--list" in proc.stderr


def test_the_fast_subset_holds(tmp_path: Path) -> None:
    report = tmp_path / "faults.json"
    proc = subprocess.run(
        [EXE, "faults", "--fast", "--report", str(report), "--workdir", str(tmp_path / "rig")],
        capture_output=True, text=True, cwd=REPO, timeout=400,
    )  # fmt: skip
    assert report.exists(), "no report:\n" + proc.stdout + proc.stderr
    result = json.loads(report.read_text())
    broken = [(f["name"], f["detail"]) for f in result["faults"] if not f["held"]]
    assert not broken, proc.stdout
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figs = result["figures"]
    assert figs["faults.total"] == figs["faults.held"] == len(result["faults"]) >= 2
