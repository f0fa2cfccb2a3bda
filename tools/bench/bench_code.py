"""Size of the deployable code once compiled for the boards' architectures.

Deterministic (no timing): the sum of the .mpy files mpy-cross produces for
everything that goes onto a board, per architecture.  Compare with the board's
free filesystem (a Pico leaves about 1.4 MB).
"""

from __future__ import annotations

from collections.abc import Callable

from stringcare.dev import layout

METRICS = {
    "code.mpy_kb.armv6m": ("KB", None, "deployable code compiled for RP2040 (Cortex-M0+)"),
    "code.mpy_kb.armv7emsp": ("KB", None, "deployable code compiled for STM32F4/G4"),
    "code.deployable_files": ("files", None, "number of deployable source files"),
}


def run(progress: Callable[[str], None]) -> dict[str, float]:
    root = layout.repo_root()
    sources = layout.deployable_sources(root)
    out: dict[str, float] = {"code.deployable_files": len(sources)}
    for arch in layout.BOARD_ARCHES:
        target = root / "build" / "mpy" / arch
        errors = layout.compile_mpy(root, sources, target, arch, prune=True)
        if errors:
            raise RuntimeError("mpy-cross failed:\n" + "\n".join(errors))
        size = sum(
            (target / src.relative_to(root).with_suffix(".mpy")).stat().st_size for src in sources
        )
        out["code.mpy_kb.%s" % arch] = round(size / 1024, 1)
        progress("%s: %.1f KB in %d files" % (arch, size / 1024, len(sources)))
    return out
