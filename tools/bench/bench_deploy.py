"""Firmware integrity on the board: what the board's check of a signed bundle costs, and
what an interrupted deploy leaves (docs/deploy.md).

bundle.verify_s.unix_module: the unix_module bundle checked by shared/fwstore.check in
the MicroPython unix port (the virtual board's interpreter), as a board does at install:
the Ed25519 signature of the manifest (SHA-512 in Python) and the SHA-256 of every file.
Best of 5.  The RP2040 figure is an estimate, not a measurement: callgrind's x86-64
instruction count of the same work at 2.5 RP2040 cycles per instruction (the factor
docs/protocol.md §4 uses) and 125 MHz, times 4 for the big-integer arithmetic, which the
Cortex-M0+ build of MicroPython does in 16-bit digits where x86-64 uses 32-bit ones.

deploy.interrupt_*: tools/stringcare/deploycut.py on one virtual board: the deploy of a
new bundle cut by a power failure at each file boundary, mid-file and at each step of
the switch; recovered = the board then boots the old or the new bundle and its
firmware starts.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from stringcare import bundle
from stringcare.deploycut import Campaign
from stringcare.dev import layout

RP2040_CYCLES_PER_X86_INSTR = 2.5
RP2040_HZ = 125_000_000
MPZ_DIGIT_FACTOR = 4  # 16-bit digits on Cortex-M0+: four times the digit products

METRICS: dict[str, tuple[str, str | None, str]] = {
    "bundle.verify_s.unix_module": (
        "s", None, "board check of a bundle (Ed25519 + SHA-256 of 25 files), unix port"),
    "bundle.sig_verify_s.unix_module": (
        "s", None, "of which the Ed25519 verify of the manifest, unix port"),
    "bundle.verify_minstr": (
        "M instr", None, "x86-64 instructions of the board check (callgrind)"),
    "bundle.verify_est_s.rp2040": (
        "s", None, "ESTIMATE of the board check on a 125 MHz RP2040 (not measured)"),
    "deploy.interrupt_cases": ("cases", ">= 20", "deploys cut by a power failure"),
    "deploy.interrupt_recovered_pct": (
        "%", "== 100", "of those, the board boots the old or the new bundle"),
    "deploy.interrupt_case_s": ("s", None, "wall time per cut case (restore, cut, reboot)"),
}  # fmt: skip


def _mp(folder: Path, args: list[str], valgrind: bool = False) -> str:
    exe = str(Path(sys.executable).parent / "micropython")
    script = str(layout.repo_root() / "tools/bench/mp/bundle_verify.py")
    cmd = [exe, "-X", "heapsize=256k", script, "b/x", *args]
    if valgrind:
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=folder)
    if proc.returncode != 0:
        raise RuntimeError("MicroPython bench failed: %s" % (proc.stderr or proc.stdout)[-2000:])
    return proc.stdout + proc.stderr


def _instructions(folder: Path, what: str) -> int:
    counts = []
    for w in ("none", what):
        text = _mp(folder, [w, "1"], valgrind=True)
        m = re.search(r"Collected : (\d+)", text)
        if not m:
            raise RuntimeError("callgrind gave no count:\n" + text[-1000:])
        counts.append(int(m.group(1)))
    return counts[1] - counts[0]


def run(progress: Callable[[str], None]) -> dict[str, float]:
    root = layout.repo_root()
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        work = Path(tmp)
        b = bundle.build(root, "unix_module", work / "bundle")
        flash = work / "flash"
        shutil.copytree(b.out_dir, flash / "b" / "x")
        check_us = int(_mp(flash, ["check", "5", "t"]).split()[-1])
        sig_us = int(_mp(flash, ["sig", "5", "t"]).split()[-1])
        out["bundle.verify_s.unix_module"] = round(check_us / 1e6, 4)
        out["bundle.sig_verify_s.unix_module"] = round(sig_us / 1e6, 4)
        progress(
            "board check of the unix_module bundle: %.3f s (Ed25519 %.3f s), unix port"
            % (check_us / 1e6, sig_us / 1e6)
        )
        if shutil.which("valgrind"):
            instr = _instructions(flash, "check")
            est = instr * RP2040_CYCLES_PER_X86_INSTR / RP2040_HZ * MPZ_DIGIT_FACTOR
            out["bundle.verify_minstr"] = round(instr / 1e6, 1)
            out["bundle.verify_est_s.rp2040"] = round(est, 2)
            progress(
                "%.1f M x86 instructions: ~%.1f s on an RP2040 (estimate)" % (instr / 1e6, est)
            )
        camp = Campaign(root, work / "cut", progress)
        cases = camp.run()
        out["deploy.interrupt_cases"] = len(cases)
        out["deploy.interrupt_recovered_pct"] = round(100 * camp.recovered() / len(cases), 1)
        out["deploy.interrupt_case_s"] = round(sum(c.seconds for c in cases) / len(cases), 2)
    return out
