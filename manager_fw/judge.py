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
# once per slow recharge, EV_THERMAL_RUNAWAY (RUNAWAY_SUSPECT, RUNAWAY_TRIP).

from manager_fw import events as ev
from manager_fw import phases as ph
from manager_fw import poller as pl
from shared.history_cadence import CURRENT_NONE

INFO_REFRESH_S = 5  # 600 modules in 50 min


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
        from manager_fw import balance_limits as bl
        from shared import variants

        var = variants.by_id(cfg.variant)
        self.balance = bl.BalanceLimits(lay.ranges, var.bleed_ma, var.float_uv // 1000,
                                        cfg.cells, cfg.balance_max_wh_day,
                                        cfg.balance_give_up_s, 60,
                                        cfg.balance_hold_wh_day)  # fmt: skip
        self._floating = bytearray(k)
        # rolling INFO: one module every INFO_REFRESH_S, so a module swapped at its
        # address without a census (a block replaced with its own module) shows its uid
        self._info_cursor = 0
        self._info_next_s = -1
        self._probe_told = bytearray(lay.max_address + 1)  # EV_NO_PROBE logged
        self.ri = None
        self.ri_store = None
        if cfg.ri_enabled:
            from manager_fw import ri_judge as rj

            string_of = bytearray(lay.module_count)
            ranges = []
            first = 0
            for s in range(k):
                size = lay.sizes[s]
                for i in range(first, first + size):
                    string_of[i] = s
                ranges.append((first, first + size - 1))
                first += size
            self.ri = rj.RiJudge(string_of, ranges, cfg.ri_baseline_count,
                                 cfg.ri_string_pct, cfg.ri_trend_pct,
                                 cfg.ri_trend_alarm_pct)  # fmt: skip

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

    def boost(self, k: int) -> bool:
        """String k is on boost charge: the high voltage levels follow the charger."""
        return self.phases.phase[k] == ph.PH_BOOST

    def relaxed(self, k: int) -> bool:
        """The end-of-discharge low levels apply and the spread is held."""
        return self.phases.relaxed(k)

    # -- Ri ----------------------------------------------------------------------------

    def attach_ri_store(self, store, now_s: int) -> None:
        """The shell's store of the Ri baselines (manager_fw/ri_store.py): the table is
        read now and written whenever a baseline or a uid changes."""
        self.ri_store = store
        if self.ri is None:
            return
        data = store.load()
        if data is not None:
            why = self.ri.decode(data)
            if why:
                self.core._problem(why)

    def _persist(self) -> None:
        ri = self.ri
        if ri is not None and ri.dirty and self.ri_store is not None:
            try:
                self.ri_store.save(ri.encode())
            except OSError as e:
                self.core._problem("Ri baselines not stored: %s" % e)

    def module_uid(self, i: int, frame, now_s: int) -> None:
        """INFO of module i (census): its uid at payload offset 8."""
        ri = self.ri
        if ri is None:
            return
        core = self.core
        if ri.module_uid(i, frame, 8):
            k = core.layout.string_of(i)
            core._log(now_s, ev.EV_BLOCK_REPLACED, i, k)
            core.alarms.clear_module(now_s, i)
            self.balance.forget(core.layout.addresses[i], core.strings)
        self._persist()

    def info_due(self, now_s: int) -> int:
        """The module whose INFO to read again now (its uid), or -1."""
        if self.ri is None:
            return -1
        if self._info_next_s >= 0 and now_s < self._info_next_s:
            return -1
        self._info_next_s = now_s + INFO_REFRESH_S
        core = self.core
        n = core.layout.module_count
        i = self._info_cursor % n
        self._info_cursor = i + 1
        if core.fresh[i]:
            return i
        return -1

    def rebaseline(self, i: int, now_s: int) -> None:
        """Operator: learn module i's Ri baseline again (-1: every module)."""
        ri = self.ri
        if ri is None:
            return
        core = self.core
        for j in range(ri.n) if i < 0 else (i,):
            ri.rebaseline(j)
            core._log(now_s, ev.EV_RI_BASELINE, j, core.layout.string_of(j), 0, 1)
        self._persist()

    def ri_result(self, now_s: int, i: int, ri_nohm: int) -> None:
        """A valid Ri result (offset applied): the absolute levels, the string and the
        module's own baseline decide its Ri condition together."""
        from shared import thresholds as th

        core = self.core
        al = core.alarms
        k = core.layout.string_of(i)
        t = al.thresholds[k]
        slot = i * th.MODULE_QUANTITIES + th.Q_RI
        target = th.target_condition(al.cond[slot], ri_nohm, th.OFF_LOW, th.OFF_LOW + 1,
                                     t.ri_warning_nohm, t.ri_alarm_nohm,
                                     t.ri_hysteresis_nohm)  # fmt: skip
        ri = self.ri
        if ri is not None:
            level = ri.add(i, ri_nohm)
            if ri.dropped:
                core._log(now_s, ev.EV_RI_BASELINE, i, k, ri_nohm, 2)
            if level == 2:
                target = th.COND_HIGH_ALARM
            elif level == 1 and target == th.COND_NORMAL:
                target = th.COND_HIGH_WARNING
            if ri.baseline_new:
                core._log(now_s, ev.EV_RI_BASELINE, i, k, ri.baseline_nohm[i], 0)
            if ri.trend_newly:
                core._log(now_s, ev.EV_RI_TREND, i, k, ri.rise_pct(i), level - 1)
            if ri.string_newly:
                core._log(now_s, ev.EV_RI_STRING, i, k, ri.over_string_pct[i])
            self._persist()
        before = al.alarm_count
        al._step(now_s, i, k, th.Q_RI, slot, target, 1, ri_nohm)
        if al.alarm_count > before:
            core._new_alarm = True

    # -- balancing limits ---------------------------------------------------------------

    def balance_update(self, now_s: int) -> None:
        core = self.core
        lay = core.layout
        fl = self._floating
        phase = self.phases.phase
        for k in range(lay.string_count):
            fl[k] = 1 if phase[k] == ph.PH_FLOAT else 0
        b = self.balance
        b.update(now_s, core.poller, core.strings, fl)
        for a, cause in b.news:
            i = lay.module(a)
            k = lay.string_of(i)
            deficit = core.strings.target_mv[k] - core.poller.voltage_mv[a]
            core._log(now_s, ev.EV_BALANCE_LIMIT, i, k, deficit, cause)
        for k, on in b.cap_news:
            core._log(now_s, ev.EV_BLEED_CAP, string=k, value=b.wh_day_x1000(k), arg=on)

    def bleed_wh_day_x1000(self, k: int) -> int:
        """String k's bleed energy over the last 24 h, mWh."""
        return self.balance.wh_day_x1000(k)

    def warnings(self) -> int:
        """Judgement warnings that are not threshold conditions: blocks balancing cannot
        help, strings limited or paused by the bleed cap."""
        b = self.balance
        n = b.excluded_count
        for k in range(len(b.capped)):
            if b.capped[k]:  # limited to its average power, or paused
                n += 1
        return n

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
        if r.samples >= 2 and r.next_s == now_s + r.sample_s:  # just sampled
            self._no_probe(now_s)
        for a in r.newly_suspect:
            i = lay.module(a)
            k = lay.string_of(i)
            core._log(
                now_s, ev.EV_THERMAL_RUNAWAY, i, k, r.latest_excess_cc(a) * 10, ev.RUNAWAY_SUSPECT
            )
        for a in r.newly_probe_off:
            i = lay.module(a)
            core._log(now_s, ev.EV_NO_PROBE, i, lay.string_of(i), r.probe_drop_cc[a] * 10, 1)
        for k in r.newly_tripped:
            a = r.tripped_module[k]
            i = lay.module(a)
            core._log(now_s, ev.EV_THERMAL_RUNAWAY, i, k, r.tripped_rise_mc[k], ev.RUNAWAY_TRIP)
            core._new_alarm = True
        return len(r.newly_tripped) > 0

    def _no_probe(self, now_s: int) -> None:
        """EV_NO_PROBE once per module that reports its board's temperature: its
        battery's temperature is unknown to the thermal-runaway judgement."""
        from shared.protocol import FLAG_PROBE

        core = self.core
        lay = core.layout
        poll = core.poller
        told = self._probe_told
        for i in range(lay.module_count):
            a = lay.addresses[i]
            if poll.state[a] != pl.ST_OK:
                continue
            probe = poll.flags[a] & FLAG_PROBE
            if not probe and not told[a]:
                told[a] = 1
                core._log(now_s, ev.EV_NO_PROBE, i, lay.string_of(i))
            elif probe:
                told[a] = 0

    def runaway_probed(self, k: int):
        """(blocks with a battery probe, blocks) of string k at the last sample; None
        before the first sample or without the detector."""
        r = self.runaway
        if r is None or r.samples == 0:
            return None
        first, last = self.core.layout.ranges[k]
        return r.probed[k], last - first + 1
