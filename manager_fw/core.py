# The manager core: everything a manager does, composed, without I/O (docs/manager.md,
# "The shape").
#
#   core = ManagerCore(cfg, history_device, event_device, now_s)
#   the shell's loop (manager_fw/loop.py ManagerLoop does all of it):
#       n = core.master.step(now_us)              # > 0: send core.master.tx[:n] now
#       core.master.receive(data, now_us)         # bytes read from the bus
#       core.master.line_idle(now_us)             # the line has been silent >= 2 Tc
#       core.set_ups_input(level) / core.press_mute(now_s)   # digital inputs
#       core.step(now_ms, now_s)                  # often: every loop, or every 10-100 ms
#       core.next_wake_us(now_us)                 # how long the shell may sleep
#       pins <- core.outputs.buzzer, .led, .relay_energised  (manager_fw/outputs.py)
#
# now_us / now_ms are tick counters (shared/compat); now_s is StringCare seconds (since
# 2020-01-01, docs/history.md) on a steady clock that never steps: every delay and timer
# counts on it.  The wall clock only stamps what is recorded (events, history get now_s +
# wall_offset_s, which a shell whose wall clock may step keeps current with
# set_wall_offset()).  The core reads no clock.
#
# Its parts, one file each (docs/manager.md, "The shape"): modes.py (the mode table),
# cycle.py (the cycle's pipeline), jobs/ (bus jobs), revisions.py, implausible.py,
# store_faults.py.
#
# Everything per module lives in arrays indexed by module index (manager_fw/config.py
# Layout): no object per module.

from array import array

from manager_fw import bus as b
from manager_fw import cycle as cy
from manager_fw import discharge as dis
from manager_fw import events as ev
from manager_fw import integrity as ig
from manager_fw import judge as jd
from manager_fw import modes as md
from manager_fw import outputs as out
from manager_fw import poller as pl
from manager_fw import revisions as rv
from manager_fw import silence as si
from manager_fw import store_faults as sf
from manager_fw import strings as strs
from manager_fw.jobs import current as jcur
from manager_fw.jobs import io as jio
from manager_fw.jobs.info import InfoJob
from manager_fw.jobs.mark import MARK_REFRESH_S, MarkJob
from manager_fw.jobs.ri import RiJob
from manager_fw.jobs.wake import WakePreamble
from manager_fw.site import VARIANT_MEASURE_MV
from shared import protocol as p
from shared import thresholds as th
from shared import version
from shared.compat import ticks_diff
from shared.history_cadence import CURRENT_NONE, HistoryCadence

LEVEL_NAMES = ("ok", "warning", "alarm")  # module_state_name()

RI_ROUND_OFF = -1  # start_ri_round(): Ri is off in the configuration
RI_ROUND_RUNNING = 0  # a round runs already
RI_ROUND_STARTED = 1

STEP_EVERY_US = 50000  # next_wake_us: the core wants a step at least this often


class ManagerCore:
    def __init__(
        self,
        cfg,
        history_device=None,
        event_device=None,
        now_s: int = 0,
        history_segment_size: int = 65536,
        event_segment_size: int = 4096,
        event_log=None,
        history=None,
        site_key=None,
    ) -> None:
        """history_device, event_device: block devices (manager_fw/blockdev.py) for the
        history store and the event log, or None.  event_log / history: instead of a
        device, any object with the append() of EventLog / HistoryWriter (tests keep
        them in lists).  site_key: the 16-byte key of authenticated commands
        (manager_fw/sitekey.py; docs/protocol.md, "Authentication")."""
        self.cfg = cfg
        self.layout = cfg.layout
        self.started_s = now_s
        self.now_s = now_s
        self.wall_offset_s = 0  # wall clock - now_s: timestamps only, never timers
        self.now_ms = 0
        self.problems: list = []
        self._init_bus(site_key)
        self._init_logic(now_s)
        self._init_stores()
        self.events = sf.open_events(self, event_log, event_device, event_segment_size)
        self.alarms = th.AlarmEvaluator(self.layout.sizes, cfg.thresholds, self)
        self.history = sf.open_history(self, history, history_device, history_segment_size)
        sf.defer_stores(self)
        self.history_cadence = HistoryCadence()
        self._init_modules()
        self._init_strings()
        self._init_jobs()
        self._init_state(now_s)
        self.integrity = ig.IntegrityWatch(self)
        self._job = WakePreamble()
        self.master.foreground = self._job
        self._log(now_s, ev.EV_STARTUP, value=version.VERSION_MAJOR * 10000
                  + version.VERSION_MINOR * 100 + version.VERSION_PATCH)  # fmt: skip
        sf.started(self, now_s)

    def _init_bus(self, site_key) -> None:
        """The bus master and the poller that runs the measurement cycles."""
        cfg = self.cfg
        self.master = b.BusMaster(cfg.baud, site_key)
        poll = pl.Poller(self.layout.ranges, cfg.baud)
        poll.target_timeout_s = cfg.target_timeout_s
        poll.cycle_period_us = cfg.cycle_period_ms * 1000
        poll.on_cycle_end = self._on_cycle_end
        if 0 <= cfg.variant < len(VARIANT_MEASURE_MV):
            poll.voltage_min_mv, poll.voltage_max_mv = VARIANT_MEASURE_MV[cfg.variant]
        self.poller = poll

    def _init_logic(self, now_s: int) -> None:
        """Strings, silence, Ri, discharge, the judge (phases, runaway), the outputs."""
        cfg = self.cfg
        lay = self.layout
        from shared import variants  # (the judge's too)

        back_uv = variants.by_id(cfg.variant).deadband_uv  # a captured block is back
        self.strings = strs.Strings(
            lay.ranges, cfg.window_low_mv, cfg.window_high_mv, True, back_uv
        )  # fmt: skip
        for s in range(lay.string_count):
            self.strings.enabled[s] = 1 if cfg.equalise[s] else 0
        self.silence = si.SilenceWatch(
            lay.addresses, lay.max_address, cfg.silent_delay_s, cfg.silent_contact_delay_s
        )
        # Ri and thermal runaway are loaded only when the configuration uses them
        self.ri_schedule = None
        self.ri_trend = None
        if cfg.ri_enabled:
            from manager_fw import ri_schedule as ris

            self.ri_trend = ris.RiResults(lay.max_address)
            self.ri_schedule = ris.RiSchedule(
                lay.addresses, now_s, cfg.ri_first_delay_s, cfg.ri_initial_rounds,
                cfg.ri_initial_interval_s, cfg.ri_period_s, cfg.ri_spacing_s, cfg.ri_settle_s,
            )  # fmt: skip
        self.discharge = dis.Discharge(
            lay.ranges, cfg.discharge_drop_mv, cfg.discharge_current_ma,
            cfg.discharge_confirm_cycles, cfg.discharge_end_s, cfg.discharge_recovery_s,
        )  # fmt: skip
        # charge phases and thermal runaway (manager_fw/judge.py)
        self.judge = jd.Judge(self)
        self.runaway = self.judge.runaway
        self.outputs = out.AlarmOutputs()

    def _init_stores(self) -> None:
        """Storage (docs/history.md, "When storage fails"): a store that cannot be opened
        or written never stops monitoring; it is reported (event, warning, status)."""
        self.events = None
        self.history = None
        self.store_health = bytearray(2)
        self.store_problem: list = [None, None]  # per store: the text, None when fine
        self.store_write_errors = array("i", bytes(8))
        self.store_dropped = array("i", bytes(8))  # records / events not stored
        self._store_retry_s = array("i", bytes(8))  # next write try while degraded
        self._store_backoff_s = array("i", bytes(8))
        self._store_pending: list | None = []  # (arg, store, value): logged after EV_STARTUP
        self._deferred = bytearray(2)  # per store: queued, written by persist()
        self._behind = array("i", bytes(8))  # not queued (queue full) since last drained
        self._probe_queued = False

    def _init_modules(self) -> None:
        """Per module (module index): the readings, levels and census findings."""
        n = self.layout.module_count
        self.voltage_uv = array("i", bytes(4 * n))
        self.temp_mc = array("i", bytes(4 * n))
        self.ri_nohm = array("i", bytes(4 * n))  # 0: not measured yet
        self.balance_pct = bytearray(n)
        self.fresh = bytearray(n)  # answered the last cycle
        self.level = bytearray(n)  # 0 normal, 1 warning, 2 alarm
        self.history_state = bytearray(n)
        self.marked = bytearray(b"\xff" * n)  # level the module last confirmed (MARK)
        self.census = bytearray(n)
        self.hw_rev = bytearray(n)
        self.fw_major = bytearray(n)
        self.variant = bytearray(n)
        self.implausible = bytearray(n)  # poller IMPL_* bits reported
        self._implausible_text: list = []  # (module index, problem text)
        # rare census findings, as lists of module indices (no array per module)
        self.store_lost: list = []  # INFO said: stored settings lost, defaults in use
        self.other_protocol: list = []  # answered in another protocol version
        self.other_protocol_version = 0

    def _init_strings(self) -> None:
        """Per string: the current and its sensor."""
        cfg = self.cfg
        k = self.layout.string_count
        self.string_current_ma = array("i", b"\x00\x00\x80\xff" * k)  # CURRENT_NONE
        self.sensor_of_string = bytearray(k)
        self.string_of_sensor = bytearray(b"\xff" * 9)
        for s in range(k):
            sensor = cfg.current_sensor[s]
            self.sensor_of_string[s] = sensor
            if sensor:
                self.string_of_sensor[sensor] = s
        self.sensor_misses = bytearray(9)
        self.sensor_fault = bytearray(9)
        self._current_new = bytearray(k)

    def _init_jobs(self) -> None:
        """The service jobs, preallocated."""
        cfg = self.cfg
        self.mark_job = MarkJob(self)
        self.info_job = InfoJob(self)
        self.ri_job = RiJob(self)
        self.current_jobs = [jcur.CurrentJob(self, s) for s in cfg.current_sensor if s]
        self.io_jobs = jio.make_jobs(self)
        self.box_seen = bytearray(16)
        self.box_inputs = bytearray(16)
        self._box_fed_ms = 0  # when the relay/IO boxes were last queued for a poll
        self.master.service_per_cycle = len(self.current_jobs) + len(self.io_jobs) + 4

    def _init_state(self, now_s: int) -> None:
        self.mode = md.MODE_WAKING
        self.refusal: str | None = None
        self.refusal_reason = 0
        self.refusal_module = -1
        self.cycles = 0  # measurement cycles processed
        self.marks_sent = 0
        self.ups_level = False
        self.ups_on_battery = False
        self._ups_changed = False
        self._cycle_ready = False
        self._new_alarm = False
        self._late_info = -1
        self._late_candidate = -1
        self._ri_asked = -1  # measure_ri_now(): the module asked for
        self._next_mark_refresh_s = now_s + MARK_REFRESH_S
        self.trend_warnings = 0
        self.setup_job = None

    # -- storage (manager_fw/store_faults.py) ---------------------------------------

    def report_store(self, now_s: int, store: int, fault) -> None:
        """What the shell found opening a store file (manager_fw/ring_file.open_file_store):
        None (fine), a text (a foreign store was set aside, a new one started: reported
        only), or the exception that kept it from being opened (the store is off)."""
        if fault is not None:
            from manager_fw import store_report as sr

            sr.report_store(self, now_s, store, fault)

    def store_fault(self, now_s: int, store: int, what: int, errno: int, text: str,
                    off: bool = True) -> None:  # fmt: skip
        """Report a store problem: an EV_STORAGE event (arg what, value errno), a warning
        (core.problems) and the status (store_health, store_problem).  off: the store
        records nothing until restart."""
        from manager_fw import store_report as sr

        sr.store_fault(self, now_s, store, what, errno, text, off)

    def _store_report(self):
        """manager_fw/store_report.py, loaded when a store fails (not before)."""
        from manager_fw import store_report as sr

        return sr

    def persist(self, max_ops: int = 1) -> int:
        """The shell's storage turn, outside the step (manager_fw/loop.py calls it after
        each turn): write and erase what the step queued, at most max_ops device
        operations per store, nothing while the bus awaits a reply.  Failures are
        handled as in the step (docs/history.md, "When storage fails").  Returns the
        records still queued, less a failing store's waiting out its back-off."""
        return sf.persist(self, max_ops)

    def store_health_name(self, store: int) -> str:
        """'none', 'ok', 'degraded' or 'unavailable' (status page, Modbus, MQTT)."""
        return sf.STORE_HEALTH_NAMES[self.store_health[store]]

    def _history_append(self, hist, now_s: int, mode: int) -> None:
        """One snapshot; a failing store degrades the history, never the monitoring."""
        st = ev.STORE_HISTORY
        if not sf.may_try(self, st, now_s):
            return
        if self._deferred[st]:  # queued: persist() writes it, outside the step
            if not hist.queue(now_s + self.wall_offset_s, mode, self.voltage_uv, self.temp_mc,
                              self.ri_nohm, self.balance_pct, self.history_state,
                              self.string_current_ma):  # fmt: skip
                sf.fell_behind(self, st)
            return
        try:
            hist.append(
                now_s + self.wall_offset_s,
                mode,
                self.voltage_uv,
                self.temp_mc,
                self.ri_nohm,
                self.balance_pct,
                self.history_state,
                self.string_current_ma,
            )
        except Exception as e:  # noqa: BLE001 - EIO, ENOSPC, EROFS, a broken device
            self._store_report().write_failed(self, now_s, st, e)
            return
        if self.store_health[st] == sf.STORE_DEGRADED:
            self._store_report().recovered(self, now_s, st)

    # -- events --------------------------------------------------------------------

    def set_wall_offset(self, offset_s: int) -> None:
        """The wall clock is now_s + offset_s: events and history are stamped with it
        from now on; timers keep counting on now_s (a wall-clock step moves no delay)."""
        self.wall_offset_s = offset_s

    def _log(self, now_s, code, module=ev.NO_MODULE, string=ev.NO_STRING, value=0, arg=0, extra=0):
        if self.events is None:
            return
        st = ev.STORE_EVENTS
        if not sf.may_try(self, st, now_s):
            return
        if self._deferred[st]:  # persist() writes it, outside the step
            if not self.events.queue(now_s + self.wall_offset_s, code, module, string, value,
                                     arg, extra):  # fmt: skip
                sf.fell_behind(self, st)
            return
        if sf.write_event(self, now_s, code, module, string, value, arg, extra):
            if self.store_health[st] == sf.STORE_DEGRADED:
                self._store_report().recovered(self, now_s, st)

    def level_changed(self, now_s, module, string, quantity, old, new, value):
        """AlarmEvaluator sink: every confirmed threshold transition."""
        self._log(now_s, ev.EV_LEVEL, module, string, value, quantity, (old << 8) | new)
        if th.level_of(new) == th.LEVEL_ALARM and th.level_of(old) != th.LEVEL_ALARM:
            self._new_alarm = True

    def config_loaded(self, now_s: int, store) -> None:
        """Log which configuration is in use (a ConfigStore after load()); a fallback to
        the last good copy also becomes a problem the status shows."""
        raw = store.text.encode()
        crc = p.crc16(raw, 0, len(raw))
        self._log(now_s, ev.EV_CONFIG, value=crc, arg=ev.CFG_LOADED)
        if store.fell_back:
            self._log(now_s, ev.EV_CONFIG, value=crc, arg=ev.CFG_FALLBACK)
            for text in store.problems:
                self._problem(text)

    def config_saved(self, now_s: int, store) -> None:
        """Log a new configuration stored with ConfigStore.save() (it takes effect when
        the shell builds a new core with it)."""
        raw = store.text.encode()
        self._log(now_s, ev.EV_CONFIG, value=p.crc16(raw, 0, len(raw)), arg=ev.CFG_SAVED)

    def _problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    # -- inputs from the shell -------------------------------------------------------

    def set_ups_input(self, level: bool) -> None:
        """The manager board's UPS input (io.ups_input.source "board"): True = closed."""
        if level != self.ups_level:
            self.ups_level = level
            self._ups_changed = True

    # -- operator actions (the web interface, the `stringcare` CLI, buttons) ----------

    def press_mute(self, now_s: int) -> None:
        """The mute button: silence the buzzer until a new alarm."""
        self.outputs.mute()
        self._log(now_s, ev.EV_ALARM_MUTED)

    def reset_runaway(self, string: int, now_s: int) -> bool:
        """Operator reset of a thermal-runaway trip of `string` (0-based); True if one
        was latched.  The breaker relay is released on the next cycle."""
        if self.runaway is None or not self.runaway.tripped[string]:
            return False
        self.runaway.reset(string)
        self._log(now_s, ev.EV_THERMAL_RUNAWAY, string=string, arg=ev.RUNAWAY_RESET)
        jio.want_relays(self)
        return True

    def rebaseline_ri(self, module: int, now_s: int) -> None:
        """Operator: learn module `module`'s Ri baseline again (-1: every module)."""
        self.judge.rebaseline(module, now_s)

    def start_ri_round(self, now_s: int) -> int:
        """Operator: an Ri round now (every module, one at a time, 30-50 s apart).
        RI_ROUND_STARTED, RI_ROUND_RUNNING (one runs already) or RI_ROUND_OFF."""
        sched = self.ri_schedule
        if sched is None:
            return RI_ROUND_OFF
        if sched.pos >= 0:
            return RI_ROUND_RUNNING
        sched.next_round_s = now_s  # the schedule starts the round on its next turn
        return RI_ROUND_STARTED

    def measure_ri_now(self, module: int, now_s: int) -> bool:
        """Operator: measure module `module`'s Ri next (after the one under way, never
        during a discharge); False when Ri is off or there is no such module."""
        if self.ri_schedule is None or not 0 <= module < self.layout.module_count:
            return False
        self._ri_asked = module
        return True

    def set_equalising(self, string: int, on: bool) -> bool:
        """Operator: equalising of `string` (0-based) on or off until restart (the
        configuration's strings[].equalise is the default); False: no such string."""
        if not 0 <= string < self.layout.string_count:
            return False
        self.strings.enabled[string] = 1 if on else 0
        return True

    # -- the bus and the modes (manager_fw/modes.py) -------------------------------

    def sleep_bus(self, now_s: int) -> None:
        """Send SLEEP and stop polling until wake_bus()."""
        md.fire(self, md.SLEEP, now_s)

    def wake_bus(self, now_s: int) -> None:
        """WAKE preamble (3 s), then polling resumes (only while sleeping)."""
        md.fire(self, md.WAKE, now_s)

    def begin_setup(self, job, now_s: int) -> None:
        """An operator's addressing job owns the bus (setup mode stops polling)."""
        md.fire(self, md.SETUP, now_s, job)

    def retry(self, now_s: int) -> None:
        """After a refusal (the operator replaced or removed modules): census again."""
        md.fire(self, md.RETRY, now_s)

    def poller_detach(self) -> None:
        self.master.poller = None

    def census_counts(self):
        """(initialised, not reachable, not yet polled) module counts."""
        return rv.census_counts(self)

    def check_compatibility(self) -> bool:
        """SPEC §1/§3: False (and `refusal` says why) for a bus of incompatible revisions."""
        return rv.check_compatibility(self)

    def _start_running(self, now_s: int) -> None:
        """Skip the wake-up and the census (benchmarks of the running core only)."""
        self.mode = md.MODE_RUNNING
        md.start_running(self, now_s, None)

    # -- what the jobs found (called from manager_fw/jobs/) ----------------------------

    def _module_info(self, i: int, frame) -> None:
        rv.module_info(self, i, frame)

    def _wrong_protocol(self, kind: int, addr: int, which: int, version_seen: int) -> None:
        rv.wrong_protocol(self, kind, addr, which, version_seen)

    def _device_missing(self, kind: int, which: int) -> None:
        rv.device_missing(self, kind, which)

    def _sensor_reading(self, sensor: int, current_ma: int, flags: int) -> None:
        jcur.sensor_reading(self, sensor, current_ma, flags)

    def _sensor_missed(self, sensor: int) -> None:
        jcur.sensor_missed(self, sensor)

    def _box_state(self, box: int, relays: int, inputs: int) -> None:
        jio.box_state(self, box, relays, inputs)

    def _want_relays(self) -> None:
        jio.want_relays(self)

    def _on_cycle_end(self, poller, now_us: int) -> None:
        self._cycle_ready = True

    def _enqueue(self, job) -> None:
        if not job.queued and self.master.enqueue_service(job):
            job.queued = True

    # -- step ----------------------------------------------------------------------

    def step(self, now_ms: int, now_s: int) -> None:
        """Everything the core does besides moving bytes; call it often."""
        self.now_ms = now_ms
        self.now_s = now_s
        md.fire(self, md.job_event(self), now_s)
        mode = self.mode
        if mode == md.MODE_RUNNING:
            cy.run_between(self, now_ms, now_s)
        if self.store_health[ev.STORE_EVENTS] == sf.STORE_DEGRADED:
            self._store_report().probe_event_log(self, now_s)
        if self.io_jobs and (self.mode == md.MODE_RUNNING or self.mode == md.MODE_REFUSED):
            if ticks_diff(now_ms, self._box_fed_ms) >= jio.BOX_FEED_MS:
                jio.feed_boxes(self)
        self._update_outputs(now_s)

    def wants_step(self) -> bool:
        """A measurement cycle ended: step now (its results are due)."""
        return self._cycle_ready

    def next_wake_us(self, now_us: int) -> int:
        """Microseconds the shell may wait, from now_us (a µs tick), before the core
        wants its next turn: the bus master's next send or reply deadline, a cycle that
        ended (0: step at once), and a core step at least every STEP_EVERY_US.  Bytes
        arriving from the bus end the wait early (the shell feeds them at once)."""
        if self._cycle_ready:
            return 0
        wait = self.master.wake_in_us(now_us)
        if wait < 0 or wait > STEP_EVERY_US:
            return STEP_EVERY_US
        return wait

    # -- status: what a module shows --------------------------------------------------

    def history_mode(self, now_s: int) -> int:
        return cy.history_mode(self, now_s)

    def module_implausible(self, i: int):
        """Why module i's data is not used (a text), or None."""
        for m, text in self._implausible_text:
            if m == i:
                return text
        return None

    # -- outputs -------------------------------------------------------------------------

    def alarm_total(self) -> int:
        n = self.alarms.alarm_count
        if self.silence.system_alarm_since_s >= 0:
            n += 1
        if self.runaway is not None:
            for k in range(self.layout.string_count):
                if self.runaway.tripped[k]:
                    n += 1
        if self.mode == md.MODE_REFUSED:
            n += 1
        return n

    def warning_total(self) -> int:
        n = self.alarms.warning_count + self.trend_warnings + self.judge.warnings()
        return n + (1 if self.problems else 0)

    def contact(self, now_s: int) -> bool:
        """Whether the alarm contact signals an alarm (relay dropped)."""
        if self.alarms.alarm_count or self.mode == md.MODE_REFUSED:
            return True
        if self.silence.contact(now_s):
            return True
        if self.runaway is not None:
            for k in range(self.layout.string_count):
                if self.runaway.tripped[k]:
                    return True
        return False

    def _update_outputs(self, now_s: int) -> None:
        o = self.outputs
        was = o.relay_energised
        o.update(self.alarm_total(), self.warning_total(), self.contact(now_s), self._new_alarm)
        self._new_alarm = False
        if was != o.relay_energised and self.io_jobs:
            jio.want_relays(self)
            for job in self.io_jobs:
                if job.pending() and (self.mode == md.MODE_RUNNING or self.mode == md.MODE_REFUSED):
                    self._enqueue(job)  # a refused core still drives the box's contact

    # -- status (docs/manager.md, "Status for web, Modbus and MQTT") -----------------------

    def mode_name(self) -> str:
        return md.MODE_NAMES[self.mode]

    def module_address(self, i: int) -> int:
        return self.layout.addresses[i]

    def module_poll_state(self, i: int) -> int:
        """manager_fw/poller.py ST_*: not polled, ok, silent, never answered."""
        return self.poller.state[self.layout.addresses[i]]

    def module_answering(self, i: int) -> bool:
        """Answering as the operator sees it (manager_fw/silence.py shown_answering)."""
        return self.silence.shown_answering(self.poller, self.layout.addresses[i], self.now_s)

    def module_silent_s(self, i: int, now_s: int) -> int:
        """Seconds since the module last answered (0 while it answers)."""
        return self.silence.shown_silent_s(self.poller, self.layout.addresses[i], now_s)

    def module_state_name(self, i: int) -> str:
        """What the operator is shown of module i: 'not polled', 'implausible' (its readings
        are not used: module_implausible(i) says why), 'silent', 'ok', 'warning', 'alarm'."""
        st = self.poller.state[self.layout.addresses[i]]
        if st == pl.ST_NOT_POLLED:
            return "not polled"
        if st == pl.ST_IMPLAUSIBLE:
            return "implausible"
        if not self.module_answering(i):
            return "silent"
        return LEVEL_NAMES[self.level[i]] if self.level[i] < 3 else "alarm"

    def string_current(self, k: int):
        """String k's current in mA (positive charging), None without a reading."""
        ma = self.string_current_ma[k]
        return None if ma == CURRENT_NONE else ma

    def string_power_w(self, k: int):
        """String power in W (sum voltage x current), None without a current reading."""
        ma = self.string_current_ma[k]
        return None if ma == CURRENT_NONE else self.strings.sum_mv[k] * ma // 1000000

    def equalising_reason(self, k: int) -> str:
        return strs.REASON_TEXT[self.strings.reason[k]]
