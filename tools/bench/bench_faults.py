"""The fault campaign (`stringcare faults --all`, docs/reliability.md) as figures: how many
faults the real Linux manager on virtual boards survived with its guarantee held, how
long the relay box kept the alarm contact energised after a SIGKILL of the manager, and
the poll rate with 400 half-open connections to the status page as a ratio to the rate
without (measured before and after, in the same run).  The full report (every fault,
its guarantee, what was seen) goes to build/faults.json.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from stringcare.dev import layout

METRICS = {
    "faults.total": ("faults", ">= 12", "faults in the campaign (stringcare faults --all)"),
    "faults.held": ("faults", None, "faults whose guarantee held (equal to faults.total)"),
    "faults.alarm_contact_drop_s": (
        "s", "<= 15", "after SIGKILL of the manager, until the relay box dropped the alarm "
        "contact (its communication watchdog; the wait ends at 30 s)"),
    "faults.poll_rate_ratio.slow_clients": (
        "ratio", ">= 0.9", "polls per second with 400 half-open connections to the status "
        "page / without (mean of before and after)"),
}  # fmt: skip


def run(progress: Callable[[str], None]) -> dict[str, float]:
    from stringcare.faults import campaign

    root = layout.repo_root()
    result = campaign.run_faults(campaign.FAULTS, root / "build" / "faults", root, progress)
    report = root / "build" / "faults.json"
    report.write_text(json.dumps(result, indent=1) + "\n")
    progress("report in %s" % report)
    return dict(result["figures"])
