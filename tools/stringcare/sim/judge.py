"""What a scenario expects, and the verdict after a run (docs/scenarios.md).

A scenario of the library says what must happen by when and what must not, in
``[[expect]]`` tables:

    [[expect]]
    what = "event"            # event, no_event, no_condition, trip, no_trip, bleed_wh_day
    tag = "ri"                # what kind of manager event (see TAGS)
    string = 1                # optional: the block the event must name
    block = 7
    after = "thermal_runaway" # a duration ("2h") or the type of a scenario event
    within = "3h"             # the window's length (default: to the end)
    why = "SPEC 3: new blocks within +-20 %, warn at +30 % over the accepted limit"

The manager's events are classified by what they say, not by their exact code, so a
scenario written from the physics and the SPEC keeps its meaning while the detectors
change: ``tags(event)`` below.  A verdict lists every expectation with pass/fail and
what was seen.
"""

from __future__ import annotations

from typing import Any

from manager_fw import events as mev
from shared import thresholds as thr

WHATS = ("event", "no_event", "no_condition", "trip", "no_trip", "bleed_wh_day")
# no_condition: a threshold condition (an EV_LEVEL tag: voltage*, temperature*, ri,
# spread) does not *stand* anywhere in the window - neither raised in it nor raised
# before it and still standing (a no_event would not see a warning raised before the
# window that never cleared).
CONDITION_TAGS = (
    "voltage",
    "voltage-low",
    "voltage-high",
    "voltage-alarm",
    "temperature",
    "temperature-high",
    "temperature-alarm",
    "ri",
    "spread",
)
CATEGORIES = ("runaway", "false-alarm", "ri", "balance", "discharge", "site", "sensor")
# Tags a manager event can carry (an expectation's `tag`):
#   <quantity>           any threshold condition other than normal on voltage,
#                        temperature, ri or spread; <quantity>-low, <quantity>-high;
#                        <quantity>-alarm (alarm level)
#   warning              any threshold warning or alarm, Ri trend, balancing or
#                        recharge complaint, runaway trip (what an operator is told)
#   runaway              a thermal-runaway judgement against a block: the trip
#                        (runaway-trip) or a block named a suspect (runaway-suspect)
#   ri                   Ri flagged: threshold on Ri, Ri trend, population outlier
#   balance              balancing gave up / cannot bring a block to target
#   recharge             a recharge is slow
#   replaced             a block was replaced (new module uid at an address)
#   probe                a module without a probe on its battery
#   discharge            a discharge started
TAGS = CONDITION_TAGS + (
    "warning",
    "runaway",
    "runaway-trip",
    "runaway-suspect",
    "balance",
    "recharge",
    "replaced",
    "probe",
    "discharge",
)


def event_name(code: int) -> str:
    names = mev.EVENT_NAMES
    return names[code] if code < len(names) else "event %d" % code


def tags(code: int, arg: int, extra: int) -> set[str]:
    """What an event says, as the tags of TAGS."""
    out: set[str] = set()
    if code == mev.EV_LEVEL:
        new = extra & 0xFF
        if new == thr.COND_NORMAL:
            return out
        q = thr.QUANTITY_NAMES[arg] if arg < len(thr.QUANTITY_NAMES) else "quantity"
        out.add(q)
        out.add("warning")
        if new in (thr.COND_LOW_WARNING, thr.COND_LOW_ALARM):
            out.add(q + "-low")
        else:
            out.add(q + "-high")
        if new in (thr.COND_LOW_ALARM, thr.COND_HIGH_ALARM):
            out.add(q + "-alarm")
        return out
    if code == mev.EV_DISCHARGE_START:
        out.add("discharge")
        return out
    if code == mev.EV_THERMAL_RUNAWAY:
        # a suspect is the warning before a trip; the operator's reset says nothing
        # against a block
        if arg == mev.RUNAWAY_TRIP:
            out.update(("runaway", "runaway-trip", "warning"))
        elif arg == mev.RUNAWAY_SUSPECT:
            out.update(("runaway", "runaway-suspect", "warning"))
        return out
    name = event_name(code).lower()
    if code == mev.EV_RI_MEASURED or code in (mev.EV_STARTUP, mev.EV_CENSUS, mev.EV_RELAY):
        return out
    words = name.replace("-", " ").split()
    # a flag, not a record: "ri measured" and a baseline learned or cleared say
    # nothing against the block
    informative = "baseline" in words or "measured" in words
    if ("ri" in words or "resistance" in words) and not informative:
        out.update(("ri", "warning"))
    if any(w.startswith("balanc") or w.startswith("bleed") for w in words):
        out.update(("balance", "warning"))
    if any(w.startswith("recharg") for w in words):
        out.update(("recharge", "warning"))
    if any(w.startswith("replac") for w in words):
        out.add("replaced")
    if any(w.startswith("probe") for w in words):
        out.add("probe")
    if "runaway" in words:
        out.update(("runaway", "warning"))
    return out


def check_expectation(sc: Any, e: Any, where: str, error: type[Exception]) -> dict[str, Any]:
    """Validate one [[expect]] table of a scenario; returns it normalised."""
    from stringcare.sim.scenario import EVENT_TYPES, parse_duration

    if not isinstance(e, dict):
        raise error("%s: must be a table with 'what' and 'why'" % where)
    allowed = {"what", "tag", "string", "block", "after", "within", "why", "max_c", "max_wh"}
    unknown = sorted(set(e) - allowed)
    if unknown:
        raise error(
            "%s.%s: unknown key; known: %s" % (where, unknown[0], ", ".join(sorted(allowed)))
        )
    what = e.get("what")
    if what not in WHATS:
        raise error("%s.what: %r is not one of %s" % (where, what, ", ".join(WHATS)))
    why = e.get("why")
    if not isinstance(why, str) or not why.strip():
        raise error("%s.why: say why this must (not) happen (physics, SPEC, a source)" % where)
    out: dict[str, Any] = {"what": what, "why": why.strip()}
    if what in ("event", "no_event"):
        tag = e.get("tag")
        if tag not in TAGS:
            raise error("%s.tag: %r is not one of %s" % (where, tag, ", ".join(TAGS)))
        out["tag"] = tag
    elif what == "no_condition":
        tag = e.get("tag")
        if tag not in CONDITION_TAGS:
            raise error(
                "%s.tag: %r is not a threshold condition; one of %s"
                % (where, tag, ", ".join(CONDITION_TAGS))
            )
        out["tag"] = tag
    elif "tag" in e:
        raise error("%s.tag: only event, no_event and no_condition expectations have a tag" % where)
    if "block" in e and "string" not in e:
        raise error("%s: a block needs its string" % where)
    if "string" in e:
        s, b = e["string"], e.get("block", 1)
        if not isinstance(s, int) or not isinstance(b, int) or isinstance(s, bool):
            raise error("%s: string and block are whole numbers" % where)
        if not (1 <= s <= sc.strings and 1 <= b <= sc.blocks):
            raise error(
                "%s: block %r of string %r does not exist (%d strings of %d blocks)"
                % (where, b, s, sc.strings, sc.blocks)
            )
        out["string"] = s
        if "block" in e:
            out["block"] = b
    after = e.get("after", 0)
    if isinstance(after, str) and after in EVENT_TYPES:
        if not any(ev.type == after for ev in sc.events):
            raise error("%s.after: the scenario has no %r event" % (where, after))
        out["after"] = after
    else:
        out["after"] = parse_duration(after, where + ".after")
    if "within" in e:
        out["within_s"] = parse_duration(e["within"], where + ".within")
    for key in ("max_c", "max_wh"):
        if key in e:
            v = e[key]
            if not isinstance(v, int | float) or isinstance(v, bool) or not v > 0:
                raise error("%s.%s: %r must be a positive number" % (where, key, v))
            out[key] = float(v)
    if what == "bleed_wh_day" and "max_wh" not in out:
        raise error("%s: a bleed_wh_day expectation needs max_wh (per string per day)" % where)
    return out


class Outcome:
    """What a run left for the verdict (filled by the engine while it runs)."""

    def __init__(self) -> None:
        # (t_s, code, arg, string 1-based or 0, block 1-based or 0, value, extra)
        self.events: list[tuple[float, int, int, int, int, int, int]] = []
        self.trip_s: float | None = None
        self.block_temp_at_trip_c: float | None = None
        self.scenario_events: list[tuple[float, str]] = []
        # per tick: (t_s, cumulative bleed energy per string in J)
        self.bleed_t_s: list[float] = []
        self.bleed_j: list[list[float]] = []


def _window(exp: dict[str, Any], outcome: Outcome, end_s: float) -> tuple[float, float]:
    after = exp["after"]
    if isinstance(after, str):
        start = next((t for t, kind in outcome.scenario_events if kind == after), end_s)
    else:
        start = float(after)
    stop = start + exp["within_s"] if "within_s" in exp else end_s
    return start, min(stop, end_s)


def verdict(sc: Any, outcome: Outcome, end_s: float) -> list[dict[str, Any]]:
    """Every expectation of the scenario, judged: {what, why, passed, seen}."""
    results = []
    for exp in sc.expect:
        start, stop = _window(exp, outcome, end_s)
        what = exp["what"]
        seen: str
        if what in ("event", "no_event"):
            hits = []
            for t, code, arg, s, b, _value, extra in outcome.events:
                if not start <= t <= stop:
                    continue
                if exp["tag"] not in tags(code, arg, extra):
                    continue
                if "string" in exp and s != exp["string"]:
                    continue
                if "block" in exp and b != exp["block"]:
                    continue
                hits.append((t, code, s, b))
            if hits:
                t, code, s, b = hits[0]
                where = " naming block %d of string %d" % (b, s) if s else ""
                seen = "%d matching; first '%s' at %.2f h%s" % (
                    len(hits),
                    event_name(code),
                    t / 3600,
                    where,
                )
            else:
                seen = "none between %.2f h and %.2f h" % (start / 3600, stop / 3600)
            passed = bool(hits) if what == "event" else not hits
        elif what == "no_condition":
            stood = standing(exp, outcome, start, stop)
            if stood:
                t0, t1, s, b = stood[0]
                where = (
                    " of string %d" % s
                    if exp["tag"] == "spread"
                    else " on block %d of string %d" % (b, s)
                )
                seen = "%d standing; first '%s'%s from %.2f h to %.2f h" % (
                    len(stood),
                    exp["tag"],
                    where,
                    t0 / 3600,
                    t1 / 3600,
                )
            else:
                seen = "none standing between %.2f h and %.2f h" % (start / 3600, stop / 3600)
            passed = not stood
        elif what in ("trip", "no_trip"):
            tripped = outcome.trip_s is not None and start <= outcome.trip_s <= stop
            if outcome.trip_s is None:
                seen = "no trip"
            else:
                seen = "trip at %.2f h (%.1f min after %.2f h), hottest block %.1f degC" % (
                    outcome.trip_s / 3600,
                    (outcome.trip_s - start) / 60,
                    start / 3600,
                    outcome.block_temp_at_trip_c or 0.0,
                )
            passed = tripped if what == "trip" else not tripped
            if what == "trip" and passed and "max_c" in exp:
                hottest = outcome.block_temp_at_trip_c  # not known: not shown to be cool
                passed = hottest is not None and hottest <= exp["max_c"]
        else:  # bleed_wh_day
            wh_day = bleed_wh_per_day(outcome, start, stop)
            if wh_day:
                seen = "worst string %.1f Wh/day" % max(wh_day)
                passed = max(wh_day) <= exp["max_wh"]
            else:  # nothing measured is no proof of a cap
                seen = "no bleed record between %.2f h and %.2f h" % (start / 3600, stop / 3600)
                passed = False
        results.append(
            {
                "what": what,
                "tag": exp.get("tag"),
                "why": exp["why"],
                "passed": passed,
                "seen": seen,
                "window_h": [round(start / 3600, 3), round(stop / 3600, 3)],
            }
        )
    return results


def standing(
    exp: dict[str, Any], outcome: Outcome, start: float, stop: float
) -> list[tuple[float, float, int, int]]:
    """Where the condition exp["tag"] stood within [start, stop]: (from, to, string,
    block), clipped to the window.  A condition is kept per quantity and block (the
    spread per string: its events name the block at the extreme); an EV_LEVEL event of
    that quantity sets it on when its tags carry the tag, off otherwise."""
    tag = exp["tag"]
    quantity = tag.split("-")[0]
    on: dict[tuple[int, int], float] = {}  # key -> since
    spans: list[tuple[float, float, int, int]] = []
    for t, code, arg, s, b, _value, extra in outcome.events:
        if t > stop:
            break
        if code != mev.EV_LEVEL or arg >= len(thr.QUANTITY_NAMES):
            continue
        if thr.QUANTITY_NAMES[arg] != quantity:
            continue
        if "string" in exp and s != exp["string"]:
            continue
        if "block" in exp and b != exp["block"] and quantity != "spread":
            continue
        key = (s, 0) if quantity == "spread" else (s, b)
        if tag in tags(code, arg, extra):
            on.setdefault(key, t)
        elif key in on:
            since = on.pop(key)
            if t >= start:
                spans.append((max(since, start), t, key[0], key[1] or b))
    for (s, b), since in on.items():
        spans.append((max(since, start), stop, s, b))
    return sorted(spans)


def bleed_wh_per_day(outcome: Outcome, start: float, stop: float) -> list[float]:
    """Bleed energy per string per day (Wh/day) over [start, stop]."""
    ts = outcome.bleed_t_s
    if len(ts) < 2:
        return []
    i0 = next((i for i, t in enumerate(ts) if t >= start), len(ts) - 1)
    i1 = max((i for i, t in enumerate(ts) if t <= stop), default=0)
    if i1 <= i0:
        return []
    days = (ts[i1] - ts[i0]) / 86400.0
    first, last = outcome.bleed_j[i0], outcome.bleed_j[i1]
    return [(b - a) / 3600.0 / days for a, b in zip(first, last, strict=True)]
