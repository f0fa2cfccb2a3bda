"""Firmware integrity on the board: what the board's check of a signed bundle costs, and
what an interrupted deploy leaves (docs/deploy.md).

bundle.verify_s.unix_module: the unix_module bundle checked by shared/fwstore.check in
the MicroPython unix port (the virtual board's interpreter), as a board does at install:
the Ed25519 signature of the manifest (SHA-512 in Python) and the SHA-256 of every file.
Best of 5.  bundle.verify_minstr: the x86-64 instructions of that check (callgrind).

The RP2040 figures come from the emulated Cortex-M0 (MicroPython's qemu port built like
the RP2040 port: tools/m0/, with its instruction-count plugin tools/m0/insncount.c),
when the checkout has it: the exact Cortex-M0 instruction count of the Ed25519 verify
of the bundle's manifest and of SHA-256 over as many bytes as the bundle holds, in
512-byte pieces as fwstore does; the time is an ESTIMATE from that count at 125 MHz
and 1.3 cycles per instruction (the assumption tools/bench/bench_m0.py states).

deploy.interrupt_*: tools/stringcare/deploycut.py on one virtual board: the deploy of a
new bundle cut by a power failure at each file boundary, mid-file and at each step of
the switch; recovered = the board then boots the old or the new bundle and its
firmware starts.  The .fat figures: the same with the board renaming over a file in two
steps (remove, rename), as MicroPython's FAT driver does.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from shared import fwstore
from stringcare import bundle
from stringcare.deploycut import Campaign
from stringcare.dev import layout
from stringcare.dev.mpbench import collected, run_mp

M0_HZ = 125_000_000
M0_CYCLES_PER_INSTR = 1.3
M0_FIRMWARE = Path("tools") / "m0" / "firmware.bin"
M0_PLUGIN_SRC = Path("tools") / "m0" / "insncount.c"
M0_QEMU = [
    "qemu-system-arm", "-machine", "microbit",
    "-global", "nrf51-soc.flash-size=2097152", "-global", "nrf51-soc.sram-size=1048576",
    "-display", "none", "-monitor", "none", "-semihosting", "-serial", "stdio",
    "-icount", "shift=0",
]  # fmt: skip

METRICS: dict[str, tuple[str, str | None, str]] = {
    "bundle.verify_s.unix_module": (
        "s", None, "board check of a bundle (Ed25519 + SHA-256 of 25 files), unix port"),
    "bundle.sig_verify_s.unix_module": (
        "s", None, "of which the Ed25519 verify of the manifest, unix port"),
    "bundle.verify_minstr": (
        "M instr", None, "x86-64 instructions of the board check (callgrind)"),
    "bundle.verify_m0_minstr": (
        "M instr", None, "Cortex-M0 instructions of the board check (emulated, exact)"),
    "bundle.sig_verify_m0_minstr": (
        "M instr", None, "of which the Ed25519 verify (emulated Cortex-M0)"),
    "bundle.verify_est_s.rp2040": (
        "s", None, "ESTIMATE of the board check on an RP2040: M0 count, 125 MHz, 1.3 CPI"),
    "deploy.interrupt_cases": ("cases", ">= 20", "deploys cut by a power failure"),
    "deploy.interrupt_recovered_pct": (
        "%", "== 100", "of those, the board boots the old or the new bundle"),
    "deploy.interrupt_case_s": ("s", None, "wall time per cut case (restore, cut, reboot)"),
    "deploy.interrupt_cases.fat": (
        "cases", ">= 20", "deploys cut by a power failure, the board renaming as FAT does"),
    "deploy.interrupt_recovered_pct.fat": (
        "%", "== 100", "of those, the board boots the old or the new bundle"),
}  # fmt: skip


def _mp(folder: Path, args: list[str], valgrind: bool = False) -> str:
    return run_mp("bundle_verify.py", ["b/x", *args], valgrind, ("-X", "heapsize=256k"), folder)


def _instructions(folder: Path, what: str) -> int:
    counts = []
    for w in ("none", what):
        counts.append(collected(_mp(folder, [w, "1"], valgrind=True)))
    return counts[1] - counts[0]


class _M0:
    """MicroPython on the emulated Cortex-M0 in raw-REPL mode, with the plugin logging
    the instruction count at every mark()."""

    def __init__(self, root: Path, plugin: Path, log: Path) -> None:
        cmd = [*M0_QEMU, "-kernel", str(root / M0_FIRMWARE)]
        cmd += ["-plugin", "%s,out=%s" % (plugin, log)]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.buf = b""
        self._write(b"\r\x03\x03\x01")
        self._until(b"raw REPL; CTRL-B to exit\r\n>", 60)

    def _write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def _until(self, marker: bytes, timeout_s: float) -> bytes:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        while marker not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("emulated M0: no %r; it said %r" % (marker, self.buf[-300:]))
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise RuntimeError("emulated M0 exited: %r" % self.buf[-300:])
                self.buf += chunk
        head, _, self.buf = self.buf.partition(marker)
        return head

    def exec(self, code: str, timeout_s: float = 300) -> str:
        data = code.encode()
        for i in range(0, len(data), 256):  # what the emulated UART keeps up with
            self._write(data[i : i + 256])
            time.sleep(0.002)
        self._write(b"\x04")
        self._until(b"OK", 30)
        out = self._until(b"\x04", timeout_s)
        err = self._until(b"\x04", 30)
        self._until(b">", 30)
        if err.strip():
            raise RuntimeError("emulated M0: %s" % err.decode(errors="replace"))
        return out.decode(errors="replace")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


# Runs on the emulated M0: an empty mark pair (the baseline), the verify, the hashing.
M0_WORK = """
import hashlib, micropython
@micropython.asm_thumb
def mark():
    mov(r11, r11)
_buf = bytearray(512)
mark(); mark()
mark(); _ok = _ed['verify'](PUB, MSG, SIG); mark()
mark()
_h = hashlib.sha256()
for _ in range(NBYTES // 512):
    _h.update(_buf)
_h.update(_buf[: NBYTES % 512])
_h.digest()
mark()
print(_ok)
"""


def m0_counts(root: Path, b: bundle.Bundle, work: Path) -> tuple[int, int] | None:
    """(Ed25519 verify, SHA-256 of the bundle's bytes) in Cortex-M0 instructions, or None
    when this checkout has no emulated M0 (tools/m0) or no qemu-system-arm/gcc."""
    if not (root / M0_FIRMWARE).exists() or not (root / M0_PLUGIN_SRC).exists():
        return None
    if shutil.which(M0_QEMU[0]) is None or shutil.which("gcc") is None:
        return None
    plugin = work / "insncount.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O2", "-o", str(plugin), str(root / M0_PLUGIN_SRC)],
        check=True,
    )
    log = work / "m0-marks.txt"
    pub, sig = fwstore.parse_signature(b.signature_line)
    emu = _M0(root, plugin, log)
    try:
        emu.exec("_ed = {}\nexec(%r, _ed)\n" % (root / "shared" / "ed25519.py").read_text())
        out = emu.exec(
            "PUB = %r\nSIG = %r\nMSG = %r\nNBYTES = %d\n"
            % (pub, sig, fwstore.signed_message(b.manifest), b.total_bytes)
            + M0_WORK
        )
    finally:
        emu.close()
    if out.strip() != "True":
        raise RuntimeError("the emulated M0 did not verify the signature: %r" % out)
    marks = [int(x) for x in log.read_text().split()]
    empty = marks[1] - marks[0]
    return marks[3] - marks[2] - empty, marks[5] - marks[4] - empty


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
            out["bundle.verify_minstr"] = round(instr / 1e6, 1)
            progress("%.1f M x86-64 instructions (callgrind)" % (instr / 1e6))
        counts = m0_counts(root, b, work)
        if counts is None:
            progress("no emulated Cortex-M0 in this checkout (tools/m0): no RP2040 figures")
        else:
            sig_i, sha_i = counts
            est = (sig_i + sha_i) * M0_CYCLES_PER_INSTR / M0_HZ
            out["bundle.sig_verify_m0_minstr"] = round(sig_i / 1e6, 1)
            out["bundle.verify_m0_minstr"] = round((sig_i + sha_i) / 1e6, 1)
            out["bundle.verify_est_s.rp2040"] = round(est, 2)
            progress(
                "emulated Cortex-M0: Ed25519 %.1f M + SHA-256 of %d B %.1f M instructions: "
                "~%.2f s on an RP2040 (estimate: 125 MHz, 1.3 cycles per instruction)"
                % (sig_i / 1e6, b.total_bytes, sha_i / 1e6, est)
            )
        camp = Campaign(root, work / "cut", progress)
        cases = camp.run()
        out["deploy.interrupt_cases"] = len(cases)
        out["deploy.interrupt_recovered_pct"] = round(100 * camp.recovered() / len(cases), 1)
        out["deploy.interrupt_case_s"] = round(sum(c.seconds for c in cases) / len(cases), 2)
        fat = Campaign(root, work / "cut-fat", progress, fat=True)
        cases = fat.run()
        out["deploy.interrupt_cases.fat"] = len(cases)
        out["deploy.interrupt_recovered_pct.fat"] = round(100 * fat.recovered() / len(cases), 1)
    return out
