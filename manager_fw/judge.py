# The manager's battery judgements, composed (docs/judgement.md): charge phases
# (manager_fw/phases.py), thermal runaway per block (manager_fw/runaway.py).  The core
# (manager_fw/core.py) calls two hooks per measurement cycle:
#
#   judge.phases_update(now_s)     after the discharge update, before the thresholds:
#                                  which strings float, discharge, recharge or boost;
#                                  judge.relaxed(k) tells the thresholds which low
#                                  levels apply
#   judge.runaway_update(now_s)    after the thresholds: True when a string tripped
#                                  (the core then drives the breaker relays)
#
# Events (manager_fw/events.py): EV_CHARGE_PHASE on every phase change, EV_RECHARGE_SLOW
# once per slow recharge, EV_THERMAL_RUNAWAY (arg 2: a suspect block, arg 0: the trip).

from manager_fw import events as ev
from manager_fw import phases as ph

CURRENT_NONE = -8388608  # core.CURRENT_NONE


class Judge:
    def __init__(self, core) -> None:
        self.core = core
        cfg = core.cfg
        lay = core.layout
        k = lay.string_count
        self.phases = ph.ChargePhases(k, cfg.recharge_max_s)
        self._currents = [None] * k  # runaway.update wants None for "no sensor"
        self.runaway = None
        if cfg.runaway_enabled:
            from manager_fw import runaway as rw

            self.runaway = rw.Runaway(
                lay.ranges,
                cfg.runaway_sample_s,
                cfg.runaway_rise_mc // 10,
                cfg.runaway_above_mc // 10,
                cfg.runaway_current_rise_pct,
                cfg.runaway_current_min_ma,
                cfg.runaway_sag_mv,
                cfg.runaway_confirm,
                cfg.runaway_alone_above_mc // 10,
            )

    # -- charge phases --------------------------------------------------------------

    def phases_update(self, now_s: int) -> None:
        core = self.core
        st = core.strings
        d = core.discharge
        lay = core.layout
        t = core.cfg.thresholds
        low_uv = t.voltage_low_warning_uv + t.voltage_hysteresis_uv
        phs = self.phases
        phs.begin_update()
        for k in range(lay.string_count):
            answered = st.answered[k]
            phs.update(
                now_s,
                k,
                d.active[k] != 0,
                answered > 0,
                st.avg_mv[k],
                st.window_low_mv,
                st.window_high_mv,
                answered > 0 and st.min_mv[k] * 1000 >= low_uv,
            )
        for k in phs.changed:
            core._log(now_s, ev.EV_CHARGE_PHASE, string=k, arg=phs.phase[k],
                      extra=phs.previous[k])  # fmt: skip
        for k in phs.slow_now:
            first, last = lay.ranges[k]
            low = first
            for a in range(first, last + 1):
                if core.poller.voltage_mv[a] < core.poller.voltage_mv[low]:
                    low = a
            i = lay.module(low)
            core._log(now_s, ev.EV_RECHARGE_SLOW, i, k, core.poller.voltage_mv[low],
                      extra=phs.in_phase_s(k, now_s) // 60)  # fmt: skip

    def relaxed(self, k: int) -> bool:
        """The end-of-discharge low levels apply and the spread is held."""
        return self.phases.relaxed(k)

    # -- thermal runaway -------------------------------------------------------------

    def runaway_update(self, now_s: int) -> bool:
        r = self.runaway
        if r is None:
            return False
        core = self.core
        lay = core.layout
        cur = self._currents
        for k in range(lay.string_count):
            ma = core.string_current_ma[k]
            cur[k] = None if ma == CURRENT_NONE else ma
        r.update(now_s, core.poller, cur, self.phases.phase)
        for a in r.newly_suspect:
            i = lay.module(a)
            k = lay.string_of(i)
            core._log(now_s, ev.EV_THERMAL_RUNAWAY, i, k, r.latest_excess_cc(a) * 10, 2)
        for k in r.newly_tripped:
            a = r.tripped_module[k]
            i = lay.module(a)
            core._log(now_s, ev.EV_THERMAL_RUNAWAY, i, k, r.tripped_rise_mc[k], 0)
            core._new_alarm = True
        return len(r.newly_tripped) > 0

    def runaway_probed(self, k: int):
        """(blocks with a battery probe, blocks) of string k at the last sample; None
        before the first sample or without the detector."""
        r = self.runaway
        if r is None or r.samples == 0:
            return None
        first, last = self.core.layout.ranges[k]
        return r.probed[k], last - first + 1
