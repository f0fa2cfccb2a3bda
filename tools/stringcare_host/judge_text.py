"""Texts of the manager's judgement events (manager_fw/judge.py, docs/judgement.md)."""

from __future__ import annotations

from typing import Any


def describe_judgement(ev: Any) -> str | None:
    """Texts of the judgement events (manager_fw/judge.py, docs/judgement.md)."""
    from manager_fw import events as mev
    from manager_fw.phases import PHASE_NAMES

    if ev.code == mev.EV_THERMAL_RUNAWAY:
        if ev.arg == 1:
            return "thermal runaway reset by the operator"
        if ev.arg == 2:
            return "thermal runaway suspect: %.1f K above the string median and warming" % (
                ev.value / 1000
            )
        return "thermal runaway: breaker tripped (warmed %.1f K over the string in the window)" % (
            ev.value / 1000
        )
    if ev.code == mev.EV_CHARGE_PHASE:
        name = PHASE_NAMES[ev.arg] if ev.arg < len(PHASE_NAMES) else str(ev.arg)
        was = PHASE_NAMES[ev.extra] if ev.extra < len(PHASE_NAMES) else str(ev.extra)
        return "charge phase %s (was %s)" % (name, was)
    if ev.code == mev.EV_RECHARGE_SLOW:
        return (
            "recharge slow: not back in float after %d min, lowest block at %.3f V; "
            "float voltage levels apply again" % (ev.extra, ev.value / 1000)
        )
    return None
