"""Texts of the manager's judgement events (manager_fw/judge.py, docs/judgement.md)."""

from __future__ import annotations

from typing import Any


def describe_judgement(ev: Any) -> str | None:
    """Texts of the judgement events (manager_fw/judge.py, docs/judgement.md)."""
    from manager_fw import events as mev
    from manager_fw.phases import PHASE_NAMES

    if ev.code == mev.EV_THERMAL_RUNAWAY:
        if ev.arg == mev.RUNAWAY_RESET:
            return "thermal runaway reset by the operator"
        if ev.arg == mev.RUNAWAY_SUSPECT:
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
    if ev.code == mev.EV_RI_TREND:
        return "Ri %+d %% over its own baseline (%s)" % (ev.value, "alarm" if ev.arg else "warning")
    if ev.code == mev.EV_RI_STRING:
        return "Ri %+d %% over its string's median" % ev.value
    if ev.code == mev.EV_BLOCK_REPLACED:
        return "block replaced (another module uid at this address): Ri baseline learned anew"
    if ev.code == mev.EV_RI_BASELINE:
        if ev.arg == 1:
            return "Ri baseline cleared by the operator: learned again from the next results"
        if ev.arg == 2:
            return (
                "Ri fell to %.3f mΩ, a quarter below its baseline: a new block or reworked "
                "connections; baseline learned again" % (ev.value / 1e6)
            )
        return "Ri baseline learned: %.3f mΩ" % (ev.value / 1e6)
    if ev.code == mev.EV_BALANCE_LIMIT:
        from manager_fw.balance_limits import CAUSE_TEXT

        why = CAUSE_TEXT[ev.arg] if ev.arg < len(CAUSE_TEXT) else "cause %d" % ev.arg
        if ev.arg == 0:
            return "balancing: %s, back in the string's target" % why
        return (
            "balancing cannot bring it to target (%d mV below): %s; left out of the target, "
            "the others stop bleeding" % (ev.value, why)
        )
    if ev.code == mev.EV_NO_PROBE:
        if ev.arg == 1:
            return (
                "battery probe reading fell %.1f K in one sample, faster than a block can "
                "cool: is the probe off its block? Its thermal-runaway protection is blind "
                "until it is refitted" % (ev.value / 1000)
            )
        return (
            "no battery probe: the module reports its board's temperature, which gives "
            "no thermal-runaway evidence"
        )
    if ev.code == mev.EV_BLEED_CAP:
        if ev.arg == 2:
            return (
                "balancing limited to balance.max_wh_day: %.1f Wh bled in the last 24 h; "
                "blocks are held up to 8 mV per cell above the target as far as needed to "
                "bleed within the cap's average power, until the day falls below 90 %% of "
                "the cap" % (ev.value / 1000)
            )
        if ev.arg:
            return (
                "balancing paused: %.1f Wh bled in the last 24 h (balance.max_wh_day), "
                "more than the cap allows even at the band's top" % (ev.value / 1000)
            )
        return "balancing resumed: %.1f Wh bled in the last 24 h" % (ev.value / 1000)
    return None


def string_judgement(core: Any, k: int) -> dict[str, Any]:
    """String k's judgements for the status view (docs/judgement.md): charge phase, bleed
    energy, thermal-runaway coverage by battery probes, blocks balancing cannot help,
    Ri outliers."""
    from manager_fw.balance_limits import CAP_LIMITED, CAUSE_NAMES
    from shared.protocol import FLAG_PROBE

    judge = core.judge
    lay = core.layout
    first = lay.string_start[k]
    no_probe = []
    unbalanceable = []
    ri_flagged = []
    for i in range(first, first + lay.sizes[k]):
        a = lay.addresses[i]
        if core.fresh[i] and not core.poller.flags[a] & FLAG_PROBE:
            no_probe.append(lay.label(i))
        if core.strings.excluded[a]:
            cause = judge.balance.cause[a]
            unbalanceable.append({"label": lay.label(i), "cause": CAUSE_NAMES[cause]})
        ri = judge.ri
        if ri is not None and ri.level[i]:
            ri_flagged.append(
                {
                    "label": lay.label(i),
                    "level": "alarm" if ri.level[i] == 2 else "warning",
                    "over_string_pct": int(ri.over_string_pct[i]),
                    "over_baseline_pct": ri.rise_pct(i) if ri.baseline_nohm[i] else None,
                }
            )
    probed = judge.runaway_probed(k)
    runaway: dict[str, Any] = {"enabled": judge.runaway is not None}
    if probed is not None:
        runaway["probed_blocks"], runaway["blocks"] = probed
        runaway["protected_by_temperature"] = probed[0] >= 3
    if no_probe:
        runaway["note"] = (
            "%d module(s) have no battery probe (%s): they report their board's temperature, "
            "which gives no thermal-runaway evidence" % (len(no_probe), ", ".join(no_probe[:8]))
        )
    return {
        "phase": judge.phases.name(k),
        "recharge_slow": bool(judge.phases.slow[k]),
        "bleed_wh_day": judge.bleed_wh_day_x1000(k) / 1000,
        "bleed_capped": bool(judge.balance.capped[k]),
        # past the cap: "limited" to its average power, or "paused" (even the band's top
        # bled faster)
        "bleed_cap": ("limited" if judge.balance.capped[k] == CAP_LIMITED else "paused")
        if judge.balance.capped[k]
        else None,
        # the hold budget's allowance: blocks are held up to this far above the target
        "hold_above_target_mv": core.strings.allow_uv[k] / 1000,
        "unbalanceable": unbalanceable,
        "runaway": runaway,
        "ri_flagged": ri_flagged,
    }
