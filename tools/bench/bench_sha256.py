"""SHA-256 without hashlib (shared/sha256.py): what a board whose MicroPython image has
no hashlib (the stock NUCLEO_G474RE image before 1.27) pays for its MAC checks and its
bundle checks.

Counted on the emulated Cortex-M0 (MicroPython's qemu port built like the RP2040 port,
tools/m0/; code in place from ROMFS as frozen code on a board) by the QEMU
instruction-count plugin, as tools/bench/bench_m0.py does: one 64-byte block through
the plain-Python block function (16-bit halves) and the viper one; the module's MAC
verify of an authenticated SET_TARGET (shared/auth.check_request) over hashlib and over
shared/sha256; SHA-256 of the unix_module bundle's bytes in 512-byte pieces.  Times are
ESTIMATES at 125 MHz and 1.3 cycles per instruction (the assumption of bench_m0.py);
an STM32G474 at 170 MHz with Thumb-2 needs fewer cycles.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from stringcare import bundle
from stringcare.dev import layout, m0

M0_HZ = 125_000_000
CYCLES_PER_INSTR = 1.3
WORK = Path("tools") / "bench" / "mp" / "sha256_work.py"

METRICS = {
    "sha256.block_m0_kinstr.python": (
        "k instr", None, "one 64-byte SHA-256 block, plain-Python block function (16-bit "
        "halves), emulated Cortex-M0"),
    "sha256.block_m0_kinstr.viper": (
        "k instr", None, "the same block, viper block function (what boards use)"),
    "sha256.mac_verify_m0_kinstr.hashlib": (
        "k instr", None, "module: auth.check_request of an authenticated SET_TARGET, "
        "HMAC over hashlib.sha256, emulated Cortex-M0"),
    "sha256.mac_verify_m0_kinstr.fallback": (
        "k instr", None, "the same over shared/sha256.py (an image without hashlib)"),
    "sha256.mac_verify_est_ms.fallback": (
        "ms", None, "that at 125 MHz, 1.3 cycles per instruction; with the MEAS reply it "
        "must fit the POLL_GROUP's wire time plus the 2 ms group lead"),
    "sha256.mac_verify_alloc_bytes.fallback": (
        "bytes", "== 0", "heap the whole fallback verify (check_request) allocates"),
    "sha256.bundle_m0_minstr.fallback": (
        "M instr", None, "SHA-256 of the unix_module bundle's bytes in 512-byte pieces over "
        "shared/sha256.py (what the loader hashes at every boot)"),
    "sha256.bundle_est_s.fallback": (
        "s", None, "that at 125 MHz, 1.3 cycles per instruction"),
}  # fmt: skip


def run(progress: Callable[[str], None]) -> dict[str, float]:
    root = layout.repo_root()
    reason = m0.missing(root)
    if reason:
        progress("skipped: emulated Cortex-M0 not available: " + reason)
        return {}
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location("bench_m0_for_sha", root / "tools/bench/bench_m0.py")
    assert spec is not None and spec.loader is not None
    bench_m0 = module_from_spec(spec)
    spec.loader.exec_module(bench_m0)
    nbytes = bundle.build(root, "unix_module").total_bytes
    out: dict[str, float] = {}
    romfs = m0.build_romfs(root, extra=[root / WORK])
    c = bench_m0.Counter(root, romfs)
    try:
        _, marks = c.run("import sha256_work as w\nfor _ in range(3):\n    w.empty()\n")
        base = bench_m0.spans(marks, 0)[0]
        _, marks = c.run("w.blocks()\n")
        py, vi = bench_m0.spans(marks, base)
        out["sha256.block_m0_kinstr.python"] = round(py / 1000, 1)
        out["sha256.block_m0_kinstr.viper"] = round(vi / 1000, 1)
        progress("one block: %d instructions in Python, %d in viper" % (py, vi))
        text, marks = c.run("w.mac_verify()\n")
        fast, slow = bench_m0.spans(marks, base)
        m = re.search(r"@@ALLOC (-?\d+)", text)
        out["sha256.mac_verify_m0_kinstr.hashlib"] = round(fast / 1000, 1)
        out["sha256.mac_verify_m0_kinstr.fallback"] = round(slow / 1000, 1)
        ms = slow * CYCLES_PER_INSTR / M0_HZ * 1000
        out["sha256.mac_verify_est_ms.fallback"] = round(ms, 2)
        if m:
            out["sha256.mac_verify_alloc_bytes.fallback"] = int(m.group(1))
        progress("MAC verify: %d instructions over hashlib, %d over shared/sha256 (~%.2f ms)"
                 % (fast, slow, ms))  # fmt: skip
        _, marks = c.run("w.bundle_hash(%d)\n" % nbytes, 900)
        (total,) = bench_m0.spans(marks, base)
        out["sha256.bundle_m0_minstr.fallback"] = round(total / 1e6, 1)
        out["sha256.bundle_est_s.fallback"] = round(total * CYCLES_PER_INSTR / M0_HZ, 2)
        progress("bundle of %d bytes: %.1f M instructions" % (nbytes, total / 1e6))
    finally:
        c.close()
        if romfs.exists():
            romfs.unlink()
    return out
