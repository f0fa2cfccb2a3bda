"""Size of each board's firmware bundle (what deploy copies) against its filesystem.

Deterministic: the bytes of the bundle stringcare bundle builds for every board with a
firmware shell (.mpy for the board's architecture, the entry, the stamp).
"""

from __future__ import annotations

from collections.abc import Callable

from stringcare import bundle
from stringcare.dev import layout

BOARDS = (
    "rp2040_module", "stm32_module", "rp2040_converter", "rp2040_iobox", "rp2040_current",
    "unix_module", "unix_converter", "unix_iobox", "unix_current",
)  # fmt: skip

METRICS: dict[str, tuple[str, str | None, str]] = {
    "firmware.bundle_kb.%s" % b: ("KB", None, "firmware bundle of board %s" % b) for b in BOARDS
}
METRICS.update(
    {
        "firmware.fs_share_pct.%s" % b: ("%", "<= 50", "bundle as % of the board's filesystem")
        for b in BOARDS
    }
)


def run(progress: Callable[[str], None]) -> dict[str, float]:
    root = layout.repo_root()
    out: dict[str, float] = {}
    for name in BOARDS:
        b = bundle.build(root, name)
        kb = b.total_bytes / 1024
        out["firmware.bundle_kb.%s" % name] = round(kb, 1)
        fs_kb = b.board.get("filesystem_kb") or 0
        if fs_kb:
            out["firmware.fs_share_pct.%s" % name] = round(100 * kb / fs_kb, 1)
        progress("%s: %d files, %.1f KB of %s KB" % (name, len(b.files), kb, fs_kb))
    return out
