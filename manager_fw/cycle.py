# What the manager core does with a measurement cycle, as a pipeline of named steps
# (docs/manager.md, "The shape").  When the poller ends a cycle, core.step() runs
# PIPELINE in order, each step a function (core, now_s) -> None:
#
#   take_readings      the poller's replies into the core's per-module arrays; a module
#                      that sends what cannot be real is reported (implausible.py)
#   ask_late_info      INFO to a module that answers now but missed the census, or the
#                      judge's rolling INFO (a block swapped with its module)
#   check_integrity    calibration and firmware integrity (manager_fw/integrity.py)
#   update_strings     string averages and targets, discharge detection, charge phases
#   evaluate_limits    warning/alarm thresholds per module and string (SPEC §3)
#   watch_silence      the system alarm for modules that stopped answering
#   judge_blocks       thermal runaway (breaker relays), balancing limits
#   set_levels         each module's level, the history state, MARKs to send
#   queue_service      current sensors, relay/IO boxes: one request each per cycle
#   record_history     a history snapshot when the cadence says one is due
#
# Between cycles (run_between): the UPS input and the current sensors act on the
# discharge detection at once; a module found late is judged; Ri runs on its schedule.
# Functions of the core; nothing here allocates per module.

from manager_fw import events as ev
from manager_fw import modes as md
from manager_fw import poller as pl
from manager_fw import revisions as rv
from manager_fw import strings as strs
from manager_fw.discharge import HISTORY_AFTER_S
from manager_fw.jobs import io as jio
from manager_fw.jobs.census import CENSUS_OK
from manager_fw.jobs.mark import MARK_REFRESH_S, MARK_UNKNOWN
from manager_fw.jobs.ri import ri_step
from manager_fw.site import UPS_BOARD, UPS_BOX
from shared import history_cadence as hc


def take_readings(core, now_s: int) -> None:
    poll = core.poller
    addrs = core.layout.addresses
    off = core.cfg.temp_offset_mc
    vu = core.voltage_uv
    tm = core.temp_mc
    fresh = core.fresh
    census = core.census
    impl = core.implausible
    late = -1
    for i in range(core.layout.module_count):
        a = addrs[i]
        state = poll.state[a]
        if state == pl.ST_OK:
            fresh[i] = 1
            vu[i] = poll.voltage_uv[a]
            tm[i] = poll.temp_cc[a] * 10 + off
            core.balance_pct[i] = poll.balance_pct[a]
            if census[i] != CENSUS_OK and late < 0:
                late = i
            if impl[i]:
                from manager_fw import implausible as im  # loaded only when needed

                im.plausible_again(core, i, now_s)
        else:
            fresh[i] = 0
            if state == pl.ST_IMPLAUSIBLE and poll.implausible[a] & ~impl[i]:
                from manager_fw import implausible as im  # loaded only when needed

                im.found(core, i, a, poll.implausible[a], now_s)
    core._late_candidate = late


def ask_late_info(core, now_s: int) -> None:
    job = core.info_job
    if job.module >= 0:
        return  # one at a time
    late = core._late_candidate
    if late < 0:
        late = core.judge.info_due(now_s)  # rolling INFO: a module swapped live
    if late >= 0:
        job.module = late
        core._enqueue(job)


def check_integrity(core, now_s: int) -> None:
    core.integrity.after_cycle(now_s)


def update_strings(core, now_s: int) -> None:
    lay = core.layout
    st = core.strings
    st.standins(core.poller, now_s)
    st.update(core.poller)
    d = core.discharge
    for k in range(lay.string_count):
        d.voltage(k, st.avg_mv[k], st.answered[k] == lay.sizes[k])
    apply_ups(core)
    discharge_update(core, now_s)
    core.judge.phases_update(now_s)


def evaluate_limits(core, now_s: int) -> None:
    """The thresholds; the low levels and the spread follow the charge phase."""
    al = core.alarms
    for k in range(core.layout.string_count):
        relaxed = core.judge.relaxed(k)
        al.evaluate_modules(now_s, k, core.voltage_uv, core.temp_mc, core.fresh, relaxed,
                            core.judge.boost(k))  # fmt: skip
        al.evaluate_string(now_s, k, core.voltage_uv, core.fresh, relaxed)


def watch_silence(core, now_s: int) -> None:
    lay = core.layout
    poll = core.poller
    w = core.silence
    back = None
    if w.system_alarm_since_s >= 0:  # how long the ones coming back were silent
        for a in lay.addresses:
            if w.alarm[a] and poll.state[a] == pl.ST_OK:
                if back is None:
                    back = []
                back.append((a, w.silent_s(a, now_s)))
    w.update(poll, now_s)
    for a in w.raised:
        i = lay.module(a)
        core._log(now_s, ev.EV_MODULE_SILENT, i, lay.string_of(i))
        core._new_alarm = True
    if back is not None:
        for a, silent_s in back:
            i = lay.module(a)
            core._log(now_s, ev.EV_MODULE_BACK, i, lay.string_of(i), silent_s)


def judge_blocks(core, now_s: int) -> None:
    if core.judge.runaway_update(now_s):
        jio.want_relays(core)
    core.judge.balance_update(now_s)  # blocks balancing cannot help, bleed energy


def set_levels(core, now_s: int) -> None:
    """Each module's level, its history state, and MARK where it shows another."""
    al = core.alarms
    level = core.level
    marked = core.marked
    hs = core.history_state
    fresh = core.fresh
    need_mark = False
    refresh = now_s >= core._next_mark_refresh_s
    if refresh:
        core._next_mark_refresh_s = now_s + MARK_REFRESH_S
    for i in range(core.layout.module_count):
        lv = al.module_level(i)
        level[i] = lv
        if fresh[i]:
            hs[i] = lv
            if refresh and lv:
                marked[i] = MARK_UNKNOWN
            if lv != marked[i]:
                need_mark = True
        else:
            hs[i] = lv | hc.STATE_SILENT
            marked[i] = MARK_UNKNOWN  # unpolled 60 s, a module drops its mark
    if need_mark:
        core._enqueue(core.mark_job)


def queue_service(core, now_s: int) -> None:
    for cj in core.current_jobs:
        core._enqueue(cj)
    jio.feed_boxes(core)


def record_history(core, now_s: int) -> None:
    hist = core.history
    if hist is None:
        return
    mode = history_mode(core, now_s)
    cadence = core.history_cadence
    if cadence.due(now_s, mode):
        cadence.recorded(now_s, mode)
        core._history_append(hist, now_s, mode)


PIPELINE = (
    take_readings,
    ask_late_info,
    check_integrity,
    update_strings,
    evaluate_limits,
    watch_silence,
    judge_blocks,
    set_levels,
    queue_service,
    record_history,
)


def process_cycle(core, now_s: int) -> None:
    """One measurement cycle through the pipeline."""
    core.cycles += 1
    for step in PIPELINE:
        step(core, now_s)


# -- between cycles -----------------------------------------------------------------


def run_between(core, now_ms: int, now_s: int) -> None:
    """RUNNING: the fast inputs, the cycle when one ended, a late module, Ri."""
    changed = take_fast_inputs(core, now_s)
    if core._cycle_ready:
        core._cycle_ready = False
        process_cycle(core, now_s)
    elif changed:
        discharge_update(core, now_s)  # the fast sources act at once
    if core._late_info >= 0:
        core._late_info = -1
        if not rv.check_compatibility(core):
            md.fire(core, md.INCOMPATIBLE, now_s)
            return
    ri_step(core, now_ms, now_s)


def take_fast_inputs(core, now_s: int) -> bool:
    """The UPS input and new current readings into the discharge detection; True when
    one changed."""
    changed = False
    if core._ups_changed:
        core._ups_changed = False
        apply_ups(core)
        changed = True
    cur = core._current_new
    for k in range(core.layout.string_count):
        if cur[k]:
            cur[k] = 0
            ma = core.string_current_ma[k]
            core.discharge.current(k, 0 if ma == hc.CURRENT_NONE else ma, now_s)
            changed = True
    return changed


def apply_ups(core) -> None:
    cfg = core.cfg
    if cfg.ups_source != UPS_BOARD and cfg.ups_source != UPS_BOX:
        return
    on = core.ups_level == cfg.ups_active_closed
    core.ups_on_battery = on
    for k in range(core.layout.string_count):
        if cfg.ups_strings_mask & (1 << k):
            core.discharge.ups_input(k, on)


def discharge_update(core, now_s: int) -> None:
    d = core.discharge
    d.update(now_s, core.poller.voltage_mv, core.strings.sum_mv)
    for k in d.started:
        ma = core.string_current_ma[k]
        core._log(now_s, ev.EV_DISCHARGE_START, string=k,
                  value=0 if ma == hc.CURRENT_NONE else ma, arg=d.sources[k])  # fmt: skip
    for k in d.ended:
        core._log(now_s, ev.EV_DISCHARGE_END, string=k,
                  value=now_s - d.started_s[k], extra=d.count[k], arg=d.sources[k])  # fmt: skip
    if d.ended and not d.any_active() and core.ri_schedule is not None:
        core.ri_schedule.discharge_ended(now_s)
    again = False
    st = core.strings
    for k in range(core.layout.string_count):
        if st.discharging[k] != d.active[k]:
            st.discharging[k] = d.active[k]
            again = True
    if again:
        st.update(core.poller)  # the next SET_TARGET carries DISCHARGE at once


def history_mode(core, now_s: int) -> int:
    """Why a snapshot is taken now (shared/history_cadence.py MODE_*)."""
    d = core.discharge
    if d.any_active():
        return hc.MODE_DISCHARGE
    if d.history_interval_s(now_s) == HISTORY_AFTER_S:
        return hc.MODE_RECOVERY
    for k in range(core.layout.string_count):
        if core.strings.reason[k] == strs.REASON_HIGH:
            return hc.MODE_BOOST
    return hc.MODE_FLOAT
