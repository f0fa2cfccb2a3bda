"""The status view of a running manager core as one plain dict (docs/manager.md, "Status
for web, Modbus and MQTT"): what the status page (stringcare_host/web.py) shows, the
same for the simulator and a Linux manager on real hardware."""

from __future__ import annotations

from typing import Any

from manager_fw import blockdev
from manager_fw import events as mev
from manager_fw.events import ADDRESSING_NAMES, EV_ADDRESSING, EV_LEVEL, EVENT_NAMES
from shared.thresholds import CONDITION_NAMES, QUANTITY_NAMES
from stringcare_host.judge_text import string_judgement


def module_state(core: Any, i: int) -> str:
    """What the operator is shown of module i (its one home: core.module_state_name)."""
    state: str = core.module_state_name(i)
    return state


def snapshot(core: Any, clock: str, events: list[dict[str, str]], uptime_s: float) -> dict:
    lay = core.layout
    strings = []
    for k in range(lay.string_count):
        mods = []
        first = lay.string_start[k]
        for pos in range(lay.sizes[k]):
            i = first + pos
            state = module_state(core, i)
            known = state not in ("not polled",) and core.voltage_uv[i] > 0
            ri = core.ri_nohm[i]
            mods.append(
                {
                    "label": lay.label(i),
                    "position": pos,
                    "address": core.module_address(i),
                    "voltage_v": core.voltage_uv[i] / 1e6 if known else None,
                    "temp_c": core.temp_mc[i] / 1000 if known else None,
                    "ri_mohm": ri / 1e6 if ri else None,
                    "balance_pct": int(core.balance_pct[i]) if known else None,
                    "state": state,
                    "missed_polls": int(core.poller.misses[core.module_address(i)]),
                }
            )
        st = core.strings
        cur = core.string_current(k)
        strings.append(
            {
                "modules": mods,
                "sum_v": st.sum_mv[k] / 1000,
                "target_v": st.target_uv(k) / 1e6,
                "average_v": st.avg_mv[k] / 1000,
                "spread_mv": st.spread_mv[k],
                "equalising": bool(st.equalising[k]),
                "reason": core.equalising_reason(k),
                "current_a": None if cur is None else cur / 1000,
                "power_w": core.string_power_w(k),
                "judgement": string_judgement(core, k),  # stringcare_host/judge_text.py
            }
        )
    return {
        "site": core.cfg.site,
        "clock": clock,
        "uptime_s": uptime_s,
        "mode": core.mode_name(),
        "refusal": core.refusal,
        "alarms": core.alarm_total(),
        "warnings": core.warning_total(),
        "problems": list(core.problems),
        "storage": storage(core),
        "outputs": {
            "buzzer": bool(core.outputs.buzzer),
            "relay_energised": bool(core.outputs.relay_energised),
        },
        "strings": strings,
        "events": events,
    }


def storage(core: Any) -> dict:
    """Health of the history store and the event log (docs/history.md, "When storage
    fails"): state none / ok / degraded / unavailable, the problem, the failed writes and
    the records or events that were not stored."""
    out = {}
    for store, name in ((mev.STORE_HISTORY, "history"), (mev.STORE_EVENTS, "events")):
        out[name] = {
            "state": core.store_health_name(store),
            "problem": core.store_problem[store],
            "write_errors": int(core.store_write_errors[store]),
            "not_stored": int(core.store_dropped[store]),
        }
    return out


class RecordingEventLog:
    """The manager's event log on its device, also kept in memory for the status page
    and reports (every event the core writes goes through append).  A device that is
    None or cannot be opened leaves the log in memory only: `open_error` says why (the
    shell hands it to core.report_store); a failing write is recorded in memory first,
    then raised for the core to report."""

    def __init__(self, device: blockdev.BlockDevice | None, segment_size: int = 4096) -> None:
        self.log: mev.EventLog | None = None
        self.open_error: Exception | None = None
        if device is not None:
            try:
                self.log = mev.EventLog(device, segment_size)
            except Exception as exc:  # noqa: BLE001 - reported by the core, never fatal
                self.open_error = exc
        self.recorded: list[mev.Event] = []
        self._taken = 0

    def append(
        self, time_s, code, module=mev.NO_MODULE, string=mev.NO_STRING, value=0, arg=0, extra=0
    ):
        e = mev.Event()
        e.time_s, e.code, e.module, e.string = time_s, code, module, string
        e.value, e.arg, e.extra = value, arg, extra
        self.recorded.append(e)
        if self.log is not None:
            self.log.append(time_s, code, module, string, value, arg, extra)

    # deferred writing (manager_fw/events.EventLog.queue): the event is kept in memory at
    # once, its device write waits for the core's persist() outside the step

    def enable_queue(self, capacity: int) -> None:
        if self.log is not None:
            self.log.enable_queue(capacity)

    def queue(
        self, time_s, code, module=mev.NO_MODULE, string=mev.NO_STRING, value=0, arg=0, extra=0
    ) -> bool:
        e = mev.Event()
        e.time_s, e.code, e.module, e.string = time_s, code, module, string
        e.value, e.arg, e.extra = value, arg, extra
        self.recorded.append(e)
        if self.log is None:
            return True
        return self.log.queue(time_s, code, module, string, value, arg, extra)

    def pending(self) -> int:
        return self.log.pending() if self.log is not None else 0

    @property
    def events_written(self) -> int:
        return self.log.events_written if self.log is not None else 0

    def service(self, max_ops: int = 1) -> int:
        return self.log.service(max_ops) if self.log is not None else 0

    def discard(self) -> int:
        return self.log.discard() if self.log is not None else 0

    def take_new(self) -> list[mev.Event]:
        """Events recorded since the last call."""
        new = self.recorded[self._taken :]
        self._taken = len(self.recorded)
        return new


def event_text(core: Any, e: mev.Event) -> str:
    """An event as the operator reads it, with the module's label."""
    text = describe(e)
    if e.module != mev.NO_MODULE:
        return "module %s: %s" % (core.layout.label(e.module), text)
    if e.string != mev.NO_STRING:
        return "string %d: %s" % (e.string + 1, text)
    return text


def describe(ev: Any) -> str:
    """An event's text (as `stringcare history events` and the status page show it)."""
    if ev.code == EV_LEVEL:
        q = QUANTITY_NAMES[ev.arg] if ev.arg < len(QUANTITY_NAMES) else "quantity %d" % ev.arg
        old, new = ev.extra >> 8, ev.extra & 0xFF
        unit = {0: (1e6, "V"), 1: (1e3, "°C"), 2: (1e6, "mΩ"), 3: (1e6, "V")}.get(ev.arg, (1, ""))
        name = CONDITION_NAMES[new] if new < len(CONDITION_NAMES) else str(new)
        was = CONDITION_NAMES[old] if old < len(CONDITION_NAMES) else str(old)
        return "%s %s (was %s) at %.3f %s" % (q, name, was, ev.value / unit[0], unit[1])
    if ev.code == EV_ADDRESSING:
        step = ADDRESSING_NAMES[ev.arg] if ev.arg < len(ADDRESSING_NAMES) else str(ev.arg)
        return "addressing %s" % step
    if ev.code == mev.EV_STORAGE:
        store = (
            mev.STORE_NAMES[ev.extra] if ev.extra < len(mev.STORE_NAMES) else "store %d" % ev.extra
        )
        what = mev.STORAGE_NAMES[ev.arg] if ev.arg < len(mev.STORAGE_NAMES) else str(ev.arg)
        if ev.arg == mev.STORAGE_DAMAGED:
            return "%s: %d damaged segment(s)" % (store, ev.value)
        if ev.arg == mev.STORAGE_RECOVERED:
            return "%s: writes work again (%d not stored)" % (store, ev.value)
        return "%s: %s%s" % (store, what, " (errno %d)" % ev.value if ev.value else "")
    if ev.code == mev.EV_IMPLAUSIBLE:
        why = mev.IMPLAUSIBLE_NAMES[ev.arg] if ev.arg < len(mev.IMPLAUSIBLE_NAMES) else str(ev.arg)
        if ev.arg == mev.IMPLAUSIBLE_RANGE:
            return "implausible data: %s (%.3f V)" % (why, ev.value / 1e6)
        return "implausible data: %s" % why
    if ev.code == mev.EV_CONFIG:
        what = mev.CONFIG_NAMES[ev.arg] if ev.arg < len(mev.CONFIG_NAMES) else str(ev.arg)
        return "configuration %s (CRC 0x%04x)" % (what, ev.value & 0xFFFF)
    if ev.code == mev.EV_OPERATOR:
        from manager_fw import actions as act
        from stringcare_host import control

        what = act.OP_NAMES[ev.arg] if ev.arg < len(act.OP_NAMES) else "action %d" % ev.arg
        if ev.extra & act.FROM_CONTROL:
            return "%s by %s" % (what, control.who(ev.extra))
        return "%s by web user #%d" % (what, ev.extra)
    from stringcare_host.judge_text import describe_judgement

    judged = describe_judgement(ev)
    if judged is not None:
        return judged
    return EVENT_NAMES[ev.code] if ev.code < len(EVENT_NAMES) else "event %d" % ev.code
