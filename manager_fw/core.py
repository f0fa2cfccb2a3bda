# The manager core: everything a manager does, composed, without I/O (docs/manager.md).
#
#   core = ManagerCore(cfg, history_device, event_device, now_s)
#   shell loop:
#       n = core.master.step(now_us)              # > 0: send core.master.tx[:n] now
#       core.master.receive(data, now_us)         # bytes read from the bus
#       core.master.line_idle(now_us)             # the line has been silent >= 2 Tc
#       core.set_ups_input(level) / core.press_mute(now_s)   # digital inputs
#       core.step(now_ms, now_s)                  # often: every loop, or every 10-100 ms
#       pins <- core.outputs.buzzer, .led, .relay_energised  (manager_fw/outputs.py)
#
# now_us / now_ms are tick counters (shared/compat ticks arithmetic); now_s is StringCare
# seconds (since 2020-01-01, docs/history.md) on a steady clock: it never steps, every
# delay and timer (silence, alarm delays, discharge, runaway, Ri rounds, history cadence)
# counts on it.  The wall clock only stamps what is recorded: events and history get
# now_s + wall_offset_s, which a shell whose wall clock may step (NTP, an operator
# fixing the date) keeps current with set_wall_offset().  The core reads no clock.
#
# Life of a core (core.mode):
#   WAKING    WAKE broadcasts for 3 s: modules asleep after a silent bus wake up
#   CENSUS    INFO to every configured module (and IO_READ / CURRENT_READ to the relay
#             boxes and current sensors), 3 tries each: every module becomes
#             initialised, not reachable, or stays not yet polled (not asked yet)
#   RUNNING   measurement cycles (poller) and, between them, service transactions: MARK
#             on a change of a module's level, RI_START/RI_READ on the Ri schedule,
#             CURRENT_READ and IO_READ/RELAY_SET every cycle, INFO for a late module
#   REFUSED   incompatible hardware revisions, firmware majors or protocol versions on
#             the bus: no polling, no balancing, alarm; `refusal` names the modules
#   SLEEPING  after sleep_bus(): SLEEP sent, nothing polled until wake_bus()
#   SETUP     an operator job (addressing, manager_fw/addressing.py) owns the bus;
#             afterwards the census runs again
#
# Everything per module lives in arrays indexed by module index (manager_fw/config.py
# Layout): no object per module.

from array import array

from manager_fw import bus as b
from manager_fw import discharge as dis
from manager_fw import events as ev
from manager_fw import integrity as ig
from manager_fw import judge as jd
from manager_fw import outputs as out
from manager_fw import poller as pl
from manager_fw import silence as si
from manager_fw import strings as strs
from manager_fw.jobs import CoreJob
from manager_fw.jobs.census import (
    CENSUS_NOT_POLLED,
    CENSUS_OK,
    CENSUS_UNREACHABLE,
    CensusJob,
)
from manager_fw.jobs.current import SENSOR_LOST_MISSES, CurrentJob
from manager_fw.jobs.info import InfoJob
from manager_fw.jobs.io import BOX_FEED_MS, IoJob
from manager_fw.jobs.mark import MARK_REFRESH_S, MARK_UNKNOWN, MarkJob
from manager_fw.jobs.ri import RiJob
from manager_fw.jobs.wake import SleepJob, WakePreamble
from manager_fw.site import UPS_BOARD, UPS_BOX, VARIANT_MEASURE_MV, variant_name
from shared import protocol as p
from shared import thresholds as th
from shared import version
from shared.compat import const, ticks_diff

MODE_WAKING = const(0)
MODE_CENSUS = const(1)
MODE_RUNNING = const(2)
MODE_REFUSED = const(3)
MODE_SLEEPING = const(4)
MODE_SETUP = const(5)
MODE_NAMES = ("waking", "census", "running", "refused", "sleeping", "setup")


# census findings select modules without building lists of 600 indices
SEL_IN_LIST = const(0)  # arg: a short list of module indices
SEL_WRONG_FIRMWARE = const(1)
SEL_GENERATION = const(2)  # arg: the hardware generation
SEL_WRONG_VARIANT = const(3)

# health of a store (core.store_health[ev.STORE_HISTORY / ev.STORE_EVENTS])
STORE_NONE = const(0)  # no store configured (tests, a shell without storage)
STORE_OK = const(1)
STORE_DEGRADED = const(2)  # a write failed: records are dropped, a write is retried
STORE_OFF = const(3)  # could not be opened at start: nothing is recorded until restart
STORE_HEALTH_NAMES = ("none", "ok", "degraded", "unavailable")
STORE_RETRY_FIRST_S = const(60)  # after a failed write, the next try; doubles up to
STORE_RETRY_MAX_S = const(21600)  # 6 h: a dying card is not hammered (each try may hang)
EVENT_QUEUE_SPARE = const(32)  # events queued beyond one per module (the worst burst of a step)

# shared/history.py values, repeated so that a core without a history store does not
# load the history codec (a test checks they agree)
CURRENT_NONE = const(-8388608)  # no current reading (history.CURRENT_NONE)
HIST_FLOAT = const(0)  # history.MODE_FLOAT ...
HIST_DISCHARGE = const(1)
HIST_RECOVERY = const(2)
HIST_BOOST = const(3)
HIST_SILENT = const(4)  # history.STATE_SILENT
HIST_INTERVAL_S = (1200, 10, 60, 300)  # per mode: history.record_interval_s


LEVEL_NAMES = ("ok", "warning", "alarm")  # module_state_name()
RI_ROUND_OFF = const(-1)  # start_ri_round(): Ri is off in the configuration
RI_ROUND_RUNNING = const(0)  # a round runs already
RI_ROUND_STARTED = const(1)
STEP_EVERY_US = const(50000)  # next_wake_us: the core wants a step at least this often


def hw_generation(hw_rev: int) -> int:
    """Modules whose hw_rev share the high nibble are compatible on one bus
    (docs/manager.md, "Revision check")."""
    return hw_rev >> 4


def _errno(e) -> int:
    """The errno of an OSError (CPython and MicroPython alike), else 0."""
    if isinstance(e, OSError) and e.args and isinstance(e.args[0], int):
        return e.args[0]
    return 0


ERRNO_NAMES = {5: "EIO", 13: "EACCES", 28: "ENOSPC", 30: "EROFS", 2: "ENOENT", 19: "ENODEV"}


def _why(e) -> str:
    """An exception as the operator reads it: 'EIO (errno 5): Input/output error'."""
    n = _errno(e)
    if n:
        detail = getattr(e, "strerror", None) or (e.args[1] if len(e.args) > 1 else "")
        where = getattr(e, "filename", None)
        text = "%s (errno %d)" % (ERRNO_NAMES.get(n, "OSError"), n)
        if detail:
            text += ": %s" % detail
        if where:
            text += ": %s" % where
        return text
    return "%s: %s" % (type(e).__name__, e)


def _ms_since(now_ms: int, then_ms: int) -> int:
    return ticks_diff(now_ms, then_ms)


# --------------------------------------------------------------------------- the core


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
        lay = cfg.layout
        self.layout = lay
        n = lay.module_count
        k = lay.string_count
        self.started_s = now_s
        self.now_s = now_s
        self.wall_offset_s = 0  # wall clock - now_s: timestamps only, never timers
        self.now_ms = 0
        self._box_fed_ms = 0  # when the relay/IO boxes were last queued for a poll
        self.master = b.BusMaster(cfg.baud, site_key)
        self.poller = pl.Poller(lay.ranges, cfg.baud)
        self.poller.target_timeout_s = cfg.target_timeout_s
        self.poller.cycle_period_us = cfg.cycle_period_ms * 1000
        self.poller.on_cycle_end = self._on_cycle_end
        if 0 <= cfg.variant < len(VARIANT_MEASURE_MV):
            self.poller.voltage_min_mv, self.poller.voltage_max_mv = VARIANT_MEASURE_MV[cfg.variant]
        self.implausible = bytearray(lay.module_count)  # poller IMPL_* bits reported
        self._implausible_text: list = []  # (module index, problem text)
        self.strings = strs.Strings(lay.ranges, cfg.window_low_mv, cfg.window_high_mv, True)
        for s in range(k):
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
                lay.addresses,
                now_s,
                cfg.ri_first_delay_s,
                cfg.ri_initial_rounds,
                cfg.ri_initial_interval_s,
                cfg.ri_period_s,
                cfg.ri_spacing_s,
                cfg.ri_settle_s,
            )
        self.discharge = dis.Discharge(
            lay.ranges,
            cfg.discharge_drop_mv,
            cfg.discharge_current_ma,
            cfg.discharge_confirm_cycles,
            cfg.discharge_end_s,
            cfg.discharge_recovery_s,
        )
        # charge phases and thermal runaway (manager_fw/judge.py)
        self.judge = jd.Judge(self)
        self.runaway = self.judge.runaway
        self.outputs = out.AlarmOutputs()
        # storage (docs/history.md, "When storage fails"): a store that cannot be opened
        # or written never stops monitoring; it is reported (event, warning, status)
        self.store_health = bytearray(2)
        self.store_problem: list = [None, None]  # per store: the text, None when fine
        self.store_write_errors = array("i", bytes(8))
        self.store_dropped = array("i", bytes(8))  # records / events not stored
        self._store_retry_s = array("i", bytes(8))  # next write try while degraded
        self._store_backoff_s = array("i", bytes(8))
        self._store_pending: list | None = []  # (arg, store, value): logged after EV_STARTUP
        self.problems: list = []
        self.events = event_log
        if event_log is not None:
            self.store_health[ev.STORE_EVENTS] = STORE_OK
        elif event_device is not None:
            self.events = self._open_store(ev.STORE_EVENTS, event_device, event_segment_size)
        self.alarms = th.AlarmEvaluator(lay.sizes, cfg.thresholds, self)
        self.history = history
        if history is not None:
            self.store_health[ev.STORE_HISTORY] = STORE_OK
        elif history_device is not None:
            self.history = self._open_store(ev.STORE_HISTORY, history_device, history_segment_size)
            if self.history is not None:
                self.history.set_thresholds(cfg.thresholds)
        self._defer_stores(lay)
        # shared.history.HistoryCadence, inline: a snapshot at once on a change of mode,
        # then every HIST_INTERVAL_S of the mode
        self.history_last_s = -1
        self.history_last_mode = -1

        # per module (module index)
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
        # rare census findings, as lists of module indices (no array per module)
        self.store_lost: list = []  # INFO said: stored settings lost, defaults in use
        self.other_protocol: list = []  # answered in another protocol version
        self.other_protocol_version = 0
        # per string
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

        # service jobs, preallocated
        self.mark_job = MarkJob(self)
        self.info_job = InfoJob(self)
        self.ri_job = RiJob(self)
        self.current_jobs = [CurrentJob(self, s) for s in cfg.current_sensor if s]
        self.io_jobs = [IoJob(self, box) for box in cfg.boxes]
        for io in self.io_jobs:
            for box, relay, _mask in cfg.breaker_relays:
                if box == io.box:
                    io.mask |= 1 << relay
            if cfg.alarm_box == io.box:
                io.mask |= 1 << cfg.alarm_relay
        self.box_seen = bytearray(16)
        self.box_inputs = bytearray(16)
        self.master.service_per_cycle = len(self.current_jobs) + len(self.io_jobs) + 4

        # state
        self.mode = MODE_WAKING
        self.refusal: str | None = None
        self.refusal_reason = 0
        self.cycles = 0  # measurement cycles processed
        self.marks_sent = 0
        self.ups_level = False
        self.ups_on_battery = False
        self._ups_changed = False
        self._cycle_ready = False
        self._new_alarm = False
        self._late_info = -1
        self._next_mark_refresh_s = now_s + MARK_REFRESH_S
        self.trend_warnings = 0
        self.setup_job = None
        self.integrity = ig.IntegrityWatch(self)
        self._job: CoreJob | None = WakePreamble()
        self.master.foreground = self._job
        self._log(now_s, ev.EV_STARTUP, value=version.VERSION_MAJOR * 10000
                  + version.VERSION_MINOR * 100 + version.VERSION_PATCH)  # fmt: skip
        for arg, store, value in self._store_pending:
            self._log(now_s, ev.EV_STORAGE, value=value, arg=arg, extra=store)
        self._store_pending = None

    # -- storage -------------------------------------------------------------------

    def _defer_stores(self, lay) -> None:
        """Stores that can queue (manager_fw/persist.py) get their RAM queue: the step
        only queues, persist() writes and erases.  Objects with append() alone (tests'
        lists) are written at once."""
        self._deferred = bytearray(2)
        self._behind = array("i", bytes(8))  # not queued (queue full) since last drained
        self._probe_queued = False
        h = self.history
        if h is not None and hasattr(h, "enable_queue"):
            from manager_fw.history_store import queue_bytes

            h.enable_queue(queue_bytes(lay.module_count, lay.string_count))
            self._deferred[ev.STORE_HISTORY] = 1
        e = self.events
        if e is not None and hasattr(e, "enable_queue"):
            e.enable_queue(ev.QUEUED_EVENT_SIZE * (lay.module_count + EVENT_QUEUE_SPARE))
            self._deferred[ev.STORE_EVENTS] = 1

    def persist(self, max_ops: int = 1) -> int:
        """The shell's storage turn, outside the step: write and erase what the step
        queued, at most max_ops device operations per store (a block erase or one
        record each), nothing while the bus awaits a reply.  Failures are handled as
        in the step (docs/history.md, "When storage fails").  Returns the records
        still queued (call again soon while it is not 0)."""
        if self.master.waiting:
            return self._queued()
        # (no tuple of the two stores: built at every call, it was the one allocation of
        # a steady cycle on a board, where ev.STORE_* are module attributes)
        left = 0
        if self._deferred[ev.STORE_HISTORY]:
            left += self._persist_store(ev.STORE_HISTORY, max_ops)
        if self._deferred[ev.STORE_EVENTS]:
            left += self._persist_store(ev.STORE_EVENTS, max_ops)
        return left

    def _queued(self) -> int:
        n = 0
        if self._deferred[ev.STORE_HISTORY] and self.history is not None:
            n += self.history.pending()
        if self._deferred[ev.STORE_EVENTS] and self.events is not None:
            n += self.events.pending()
        return n

    def _persist_store(self, st: int, max_ops: int) -> int:
        w = self.history if st == ev.STORE_HISTORY else self.events
        if w is None:
            return 0
        now_s = self.now_s
        if self.store_health[st] == STORE_DEGRADED and not self._store_due(st, now_s):
            return w.pending()  # backing off: the queue waits for the next try
        written = w.snapshots_written if st == ev.STORE_HISTORY else w.events_written
        lost = w.dropped if st == ev.STORE_HISTORY else 0
        try:
            left = w.service(max_ops)
        except Exception as e:  # noqa: BLE001 - EIO, ENOSPC, EROFS, a broken device
            self.store_dropped[st] += w.discard()
            if st == ev.STORE_EVENTS:
                self._probe_queued = False
            self._store_failed(now_s, st, e)
            return w.pending()
        if st == ev.STORE_HISTORY:
            self.store_dropped[st] += w.dropped - lost
            done = w.snapshots_written != written
        else:
            done = w.events_written != written
        if done and self.store_health[st] == STORE_DEGRADED:
            self._store_recovered(now_s, st, st == ev.STORE_EVENTS and self._probe_queued)
            self._probe_queued = False
        if not left and self._behind[st]:
            behind = self._behind[st]
            self._behind[st] = 0
            self._log(now_s, ev.EV_STORAGE, value=behind, arg=ev.STORAGE_BEHIND, extra=st)
        return left

    def _fell_behind(self, st: int) -> None:
        """A record found its store's queue full: counted, logged once drained."""
        self.store_dropped[st] += 1
        self._behind[st] += 1

    def _open_store(self, store: int, device, segment_size: int):
        """The HistoryWriter / EventLog on device, or None (reported) when it cannot be
        opened: unreadable (OSError), another ring's geometry, a device too small."""
        try:
            if store == ev.STORE_EVENTS:
                w = ev.EventLog(device, segment_size)
            else:
                from manager_fw.history_store import HistoryWriter

                w = HistoryWriter(device, self.layout.sizes, segment_size)  # type: ignore[assignment]
        except Exception as e:  # noqa: BLE001 - whatever the device raises
            self.report_store(self.now_s, store, e)
            return None
        self.store_health[store] = STORE_OK
        damaged = w.ring.damaged
        pending = self._store_pending
        if damaged and pending is not None:
            pending.append((ev.STORAGE_DAMAGED, store, len(damaged)))
            self._problem(
                "%s: %d segment(s) have a damaged header (first at 0x%x): their records are "
                "lost; `stringcare history info` lists the damage"
                % (ev.STORE_NAMES[store], len(damaged), damaged[0])
            )
        return w

    def report_store(self, now_s: int, store: int, fault) -> None:
        """What the shell found opening a store file (manager_fw/ring_file.open_file_store):
        None (fine), a text (a foreign store was set aside, a new one started: reported
        only), or the exception that kept it from being opened (the store is off)."""
        if fault is None:
            return
        if isinstance(fault, str):
            self.store_fault(now_s, store, ev.STORAGE_FOREIGN, 0, fault, False)
            return
        foreign = type(fault).__name__ == "StoreFormatError"
        self.store_fault(
            now_s,
            store,
            ev.STORAGE_FOREIGN if foreign else ev.STORAGE_OPEN_FAILED,
            _errno(fault),
            "%s cannot be used: %s" % (ev.STORE_NAMES[store], _why(fault)),
        )

    def store_fault(self, now_s: int, store: int, what: int, errno: int, text: str,
                    off: bool = True) -> None:  # fmt: skip
        """Report a store problem: an EV_STORAGE event (arg what, value errno), a warning
        (core.problems) and the status (store_health, store_problem).  off: the store
        records nothing until restart."""
        if off:
            self.store_health[store] = STORE_OFF
            if store == ev.STORE_HISTORY:
                self.history = None
            text += "; monitoring, balancing and alarms go on without it"
        self.store_problem[store] = text
        self._problem(text)
        if self.events is None:
            return
        pending = self._store_pending
        if pending is not None:  # still starting: after EV_STARTUP
            pending.append((what, store, errno))
        else:
            self._log(now_s, ev.EV_STORAGE, value=errno, arg=what, extra=store)

    def _store_failed(self, now_s: int, store: int, e) -> None:
        self.store_write_errors[store] += 1
        self.store_dropped[store] += 1
        back = self._store_backoff_s[store]
        back = STORE_RETRY_FIRST_S if back == 0 else back * 2
        if back > STORE_RETRY_MAX_S:
            back = STORE_RETRY_MAX_S
        self._store_backoff_s[store] = back
        self._store_retry_s[store] = now_s + back
        if self.store_health[store] == STORE_DEGRADED:
            return  # reported at the first failure
        self.store_health[store] = STORE_DEGRADED
        what = "records" if store == ev.STORE_HISTORY else "events"
        text = (
            "%s: a write failed (%s): %s are not stored until a write succeeds again "
            "(tried again after %d s, then less often); monitoring, balancing and alarms "
            "go on" % (ev.STORE_NAMES[store], _why(e), what, back)
        )
        self.store_problem[store] = text
        self._problem(text)
        if store == ev.STORE_HISTORY:
            self._log(now_s, ev.EV_STORAGE, value=_errno(e), arg=ev.STORAGE_WRITE_FAILED,
                      extra=store)  # fmt: skip
            return
        # into the failing log itself: a shell that also keeps events in memory; queued,
        # it is the first thing tried when the back-off ends
        try:
            write = self.events.queue if self._deferred[store] else self.events.append
            write(now_s + self.wall_offset_s, ev.EV_STORAGE, ev.NO_MODULE, ev.NO_STRING,
                  _errno(e), ev.STORAGE_WRITE_FAILED, store)  # fmt: skip
        except Exception:  # noqa: BLE001
            pass

    def _store_recovered(self, now_s: int, store: int, logged: bool = False) -> None:
        text = self.store_problem[store]
        if text in self.problems:
            self.problems.remove(text)
        self.store_problem[store] = None
        self.store_health[store] = STORE_OK
        self._store_backoff_s[store] = 0
        if not logged:
            self._log(now_s, ev.EV_STORAGE, value=self.store_dropped[store],
                      arg=ev.STORAGE_RECOVERED, extra=store)  # fmt: skip

    def _probe_event_log(self, now_s: int) -> None:
        """A degraded event log is tried again when its back-off ends, with the event
        that says it works again (events are rare: waiting for the next one could take
        days)."""
        st = ev.STORE_EVENTS
        if not self._store_due(st, now_s):
            return
        if self._deferred[st]:
            # persist() writes it; the write that works ends the degraded state
            if not self._probe_queued and not self.events.pending():
                self._probe_queued = self.events.queue(
                    now_s + self.wall_offset_s, ev.EV_STORAGE, ev.NO_MODULE, ev.NO_STRING,
                    self.store_dropped[st], ev.STORAGE_RECOVERED, st)  # fmt: skip
            return
        if self._write_event(now_s, ev.EV_STORAGE, ev.NO_MODULE, ev.NO_STRING,
                             self.store_dropped[st], ev.STORAGE_RECOVERED, st):  # fmt: skip
            self._store_recovered(now_s, st, True)

    def _store_due(self, store: int, now_s: int) -> bool:
        """A degraded store's back-off is over (or the clock went back past it)."""
        return (
            now_s - self._store_retry_s[store] >= 0
            or now_s < self._store_retry_s[store] - (self._store_backoff_s[store])
        )

    def _store_may_try(self, store: int, now_s: int) -> bool:
        if self.store_health[store] != STORE_DEGRADED or self._store_due(store, now_s):
            return True
        self.store_dropped[store] += 1
        return False

    def _write_event(self, now_s, code, module, string, value, arg, extra) -> bool:
        try:
            self.events.append(now_s + self.wall_offset_s, code, module, string, value, arg, extra)
        except Exception as e:  # noqa: BLE001 - a failing event store must not stop us
            self._store_failed(now_s, ev.STORE_EVENTS, e)
            return False
        return True

    def store_health_name(self, store: int) -> str:
        """'none', 'ok', 'degraded' or 'unavailable' (status page, Modbus, MQTT)."""
        return STORE_HEALTH_NAMES[self.store_health[store]]

    # -- events --------------------------------------------------------------------

    def set_wall_offset(self, offset_s: int) -> None:
        """The wall clock is now_s + offset_s: events and history are stamped with it
        from now on; timers keep counting on now_s (a wall-clock step moves no delay)."""
        self.wall_offset_s = offset_s

    def _log(self, now_s, code, module=ev.NO_MODULE, string=ev.NO_STRING, value=0, arg=0, extra=0):
        if self.events is None:
            return
        st = ev.STORE_EVENTS
        if not self._store_may_try(st, now_s):
            return
        if self._deferred[st]:  # persist() writes it, outside the step
            if not self.events.queue(now_s + self.wall_offset_s, code, module, string, value,
                                     arg, extra):  # fmt: skip
                self._fell_behind(st)
            return
        if self._write_event(now_s, code, module, string, value, arg, extra):
            if self.store_health[st] == STORE_DEGRADED:
                self._store_recovered(now_s, st)

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

    # -- inputs from the shell -------------------------------------------------------

    def set_ups_input(self, level: bool) -> None:
        """The manager board's UPS input (io.ups_input.source "board"): True = closed."""
        if level != self.ups_level:
            self.ups_level = level
            self._ups_changed = True

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
        self._log(now_s, ev.EV_THERMAL_RUNAWAY, string=string, arg=1)
        self._want_relays()
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

    def set_equalising(self, string: int, on: bool) -> bool:
        """Operator: equalising of `string` (0-based) on or off until restart (the
        configuration's strings[].equalise is the default); False: no such string."""
        if not 0 <= string < self.layout.string_count:
            return False
        self.strings.enabled[string] = 1 if on else 0
        return True

    def sleep_bus(self, now_s: int) -> None:
        """Send SLEEP and stop polling until wake_bus()."""
        self.poller_detach()
        self._job = SleepJob()
        self.master.foreground = self._job
        self.mode = MODE_SLEEPING
        self._log(now_s, ev.EV_BUS_POWER, arg=0)

    def wake_bus(self, now_s: int) -> None:
        """WAKE preamble (3 s), then polling resumes."""
        if self.mode != MODE_SLEEPING:
            return
        self._job = WakePreamble()
        self.master.foreground = self._job
        self.mode = MODE_WAKING
        self._rearm_silence(now_s)

    def begin_setup(self, job, now_s: int) -> None:
        """An operator's addressing job owns the bus (setup mode stops polling)."""
        self.poller_detach()
        self.setup_job = job
        self.master.foreground = job
        self.mode = MODE_SETUP
        addr = getattr(job, "start", ev.NO_MODULE)
        self._log(now_s, ev.EV_ADDRESSING, module=addr, arg=ev.ADDR_START)

    def retry(self, now_s: int) -> None:
        """After a refusal (the operator replaced or removed modules): census again."""
        self._start_census(now_s)

    def poller_detach(self) -> None:
        self.master.poller = None

    # -- census ----------------------------------------------------------------------

    def _start_census(self, now_s: int) -> None:
        self.poller_detach()
        for i in range(self.layout.module_count):
            self.census[i] = CENSUS_NOT_POLLED
        del self.store_lost[:]
        del self.other_protocol[:]
        self.refusal = None
        self.refusal_reason = 0
        self._job = CensusJob(self)
        self.master.foreground = self._job
        self.mode = MODE_CENSUS

    def _module_info(self, i: int, frame) -> None:
        if frame.u8(0) != p.DEVICE_MODULE:
            self.census[i] = CENSUS_UNREACHABLE
            self._problem(
                "%s: the device at address %d is not a battery module (type %d)"
                % (self.layout.label(i), self.layout.addresses[i], frame.u8(0))
            )
            return
        self.census[i] = CENSUS_OK
        self.hw_rev[i] = frame.u8(1)
        self.fw_major[i] = frame.u8(2)
        self.variant[i] = frame.u8(5)
        self.judge.module_uid(i, frame, self.now_s)  # a replaced block: new Ri baseline
        if frame.u8(7) and i not in self.store_lost:
            self.store_lost.append(i)
        self.integrity.info(i, frame)

    def _wrong_protocol(self, kind: int, addr: int, which: int, version_seen: int) -> None:
        if kind == 2:
            if which not in self.other_protocol:
                self.other_protocol.append(which)
            self.other_protocol_version = version_seen
        else:
            self._problem(
                "the device at address 0x%04x speaks protocol version %d; this manager "
                "speaks %d" % (addr, version_seen, p.VERSION)
            )

    def _device_missing(self, kind: int, which: int) -> None:
        if kind == 0:
            self._problem(
                "relay/IO box %d does not answer (address 0x%04x): breaker trip, alarm "
                "relay and UPS input on it do not work" % (which, p.ADDR_RELAY_BOX_BASE + which)
            )
        else:
            self._problem(
                "current sensor %d does not answer: string %d has no current reading"
                % (which, self.string_of_sensor[which] + 1)
            )

    def _problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def census_counts(self):
        """(initialised, not reachable, not yet polled) module counts."""
        c = [0, 0, 0]
        for i in range(self.layout.module_count):
            c[self.census[i]] += 1
        return c[CENSUS_OK], c[CENSUS_UNREACHABLE], c[CENSUS_NOT_POLLED]

    def _selected(self, kind: int, i: int, arg) -> bool:
        if kind == SEL_IN_LIST:
            return i in arg
        if self.census[i] != CENSUS_OK:
            return False
        if kind == SEL_WRONG_FIRMWARE:
            return self.fw_major[i] != version.VERSION_MAJOR
        if kind == SEL_GENERATION:
            return hw_generation(self.hw_rev[i]) == arg
        return self.variant[i] != self.cfg.variant

    def _labels_where(self, kind: int, arg=None):
        """('1S1-3S1, 5S1', count, first module) of the selected modules (8 runs shown)."""
        lay = self.layout
        parts = []
        runs = 0
        count = 0
        first = -1
        start = -1
        prev = -1
        for i in range(lay.module_count + 1):
            sel = i < lay.module_count and self._selected(kind, i, arg)
            if sel:
                count += 1
                if first < 0:
                    first = i
            joins = (
                sel and start >= 0 and prev == i - 1 and lay.string_of(i) == lay.string_of(start)
            )
            if start >= 0 and not joins:
                runs += 1
                if runs <= 8:
                    if prev == start:
                        parts.append(lay.label(start))
                    else:
                        parts.append("%s-%s" % (lay.label(start), lay.label(prev)))
                start = -1
            if sel:
                if start < 0:
                    start = i
                prev = i
        if runs > 8:
            parts.append("and %d more" % (runs - 8))
        return ", ".join(parts), count, first

    def check_compatibility(self) -> bool:
        """SPEC §1/§3: refuse a bus with incompatible revisions.  Sets `refusal`."""
        if self.other_protocol:
            text, _count, first = self._labels_where(SEL_IN_LIST, self.other_protocol)
            self._refuse(
                ev.REFUSED_PROTOCOL,
                first,
                "refusing to run: module(s) %s answer in protocol version %d; this manager "
                "speaks version %d.  Update their firmware (or the manager's)."
                % (text, self.other_protocol_version, p.VERSION),
            )
            return False
        text, count, first = self._labels_where(SEL_WRONG_FIRMWARE)
        if count:
            self._refuse(
                ev.REFUSED_FIRMWARE,
                first,
                "refusing to run: module(s) %s run firmware %d.x; this manager (%s) needs "
                "firmware %d.x on every module.  Update them, then restart."
                % (text, self.fw_major[first], version.VERSION, version.VERSION_MAJOR),
            )
            return False
        gens = []
        for i in range(self.layout.module_count):
            if self.census[i] == CENSUS_OK:
                g = hw_generation(self.hw_rev[i])
                if g not in gens:
                    gens.append(g)
        if len(gens) > 1:
            groups = []
            odd = -1
            best = -1
            for g in gens:
                text, count, first = self._labels_where(SEL_GENERATION, g)
                if best < 0 or count < best:
                    best = count
                    odd = first
                low = g * 16 if g else 1
                groups.append("hw_rev %d-%d: %s" % (low, g * 16 + 15, text))
            self._refuse(
                ev.REFUSED_HARDWARE,
                odd,
                "refusing to run: modules of incompatible hardware revisions share the bus "
                "(%s).  Replace the odd ones out, then restart." % "; ".join(groups),
            )
            return False
        text, count, first = self._labels_where(SEL_WRONG_VARIANT)
        if count:
            self._problem(
                "%s: %s module(s); the site is configured for %s modules"
                % (text, variant_name(self.variant[first]), variant_name(self.cfg.variant))
            )
        if self.store_lost:
            text, _count, _first = self._labels_where(SEL_IN_LIST, self.store_lost)
            self._problem(
                "%s lost the settings they had stored: calibration defaults in use" % text
            )
        return True

    def _refuse(self, reason: int, module: int, text: str) -> None:
        self.refusal = text
        self.refusal_reason = reason
        self.poller_detach()
        self.mode = MODE_REFUSED
        self._new_alarm = True
        self._log(self.now_s, ev.EV_REFUSED, module, self.layout.string_of(module), 0, reason)

    def _census_done(self, now_s: int) -> None:
        ok, unreachable, _ = self.census_counts()
        self._log(now_s, ev.EV_CENSUS, value=ok, extra=unreachable)
        if not self.check_compatibility():
            return
        self._start_running(now_s)

    def _start_running(self, now_s: int) -> None:
        self.master.foreground = None
        self._job = None
        self.master.poller = self.poller
        self.mode = MODE_RUNNING
        self.integrity.running(now_s)
        self._want_relays()

    def _rearm_silence(self, now_s: int) -> None:
        """After a sleep or a setup: silence counts from now, not from before."""
        w = self.silence
        w.started_s = now_s
        for a in self.layout.addresses:
            if w.last_ok_s[a] >= 0:
                w.last_ok_s[a] = now_s

    # -- device replies (called from the jobs) ----------------------------------------

    def _sensor_reading(self, sensor: int, current_ma: int, flags: int) -> None:
        k = self.string_of_sensor[sensor]
        if k == 0xFF:
            return
        self.sensor_misses[sensor] = 0
        self.sensor_fault[sensor] = flags
        self.string_current_ma[k] = CURRENT_NONE if flags & 1 else current_ma
        self._current_new[k] = 1

    def _sensor_missed(self, sensor: int) -> None:
        k = self.string_of_sensor[sensor]
        if k == 0xFF:
            return
        m = self.sensor_misses[sensor]
        if m < 255:
            self.sensor_misses[sensor] = m + 1
        if m + 1 >= SENSOR_LOST_MISSES and self.string_current_ma[k] != CURRENT_NONE:
            self.string_current_ma[k] = CURRENT_NONE
            self._current_new[k] = 1

    def _box_state(self, box: int, relays: int, inputs: int) -> None:
        self.box_seen[box] = 1
        self.box_inputs[box] = inputs
        for job in self.io_jobs:
            if job.box == box:
                changed = (relays ^ job.relays) & job.mask if job.known else 0
                job.relays = relays
                job.inputs = inputs
                job.known = True
                if changed and job.mask:
                    self._log(self.now_s, ev.EV_RELAY, value=relays, arg=box, extra=changed)
        cfg = self.cfg
        if cfg.ups_source == UPS_BOX and box == cfg.ups_box:
            level = bool(inputs & (1 << cfg.ups_input))
            if level != self.ups_level:
                self.ups_level = level
                self._ups_changed = True

    def _want_relays(self) -> None:
        """What every relay/IO box should show: breaker trips and the alarm contact."""
        cfg = self.cfg
        tripped = 0
        if self.runaway is not None:
            for s in range(self.layout.string_count):
                if self.runaway.tripped[s]:
                    tripped |= 1 << s
        for job in self.io_jobs:
            want = 0
            for box, relay, mask in cfg.breaker_relays:
                if box == job.box and tripped & mask:
                    want |= 1 << relay
            if cfg.alarm_box == job.box and self.outputs.relay_energised:
                want |= 1 << cfg.alarm_relay
            job.wanted = want

    # -- the bus cycle -------------------------------------------------------------------

    def _on_cycle_end(self, poller, now_us: int) -> None:
        self._cycle_ready = True

    def _enqueue(self, job) -> None:
        if not job.queued and self.master.enqueue_service(job):
            job.queued = True

    # -- step --------------------------------------------------------------------------

    def next_wake_us(self, now_us: int) -> int:
        """Microseconds the shell may wait, from now_us (a µs tick), before the core
        wants its next turn: 0 when a measurement cycle ended (step now), else the bus
        master's next send or reply deadline or the next cycle, at most STEP_EVERY_US
        (the core's own timers).  Bytes arriving from the bus end the wait early."""
        if self._cycle_ready:
            return 0
        wait = self.master.wake_in_us(now_us)
        if wait < 0 or wait > STEP_EVERY_US:
            return STEP_EVERY_US
        return wait

    def step(self, now_ms: int, now_s: int) -> None:
        """Everything the core does besides moving bytes; call it often."""
        self.now_ms = now_ms
        self.now_s = now_s
        mode = self.mode
        if mode == MODE_WAKING:
            if self._job is not None and self._job.done:
                self._log(now_s, ev.EV_BUS_POWER, arg=1)
                if self.cycles == 0 or self.refusal is not None:
                    self._start_census(now_s)
                else:
                    self._start_running(now_s)
        elif mode == MODE_CENSUS:
            if self._job is not None and self._job.done:
                self._census_done(now_s)
        elif mode == MODE_SLEEPING:
            if self._job is not None and self._job.done:
                self.master.foreground = None
        elif mode == MODE_SETUP:
            job = self.setup_job
            if job is not None and job.done:
                self._setup_done(job, now_s)
        if self.mode == MODE_RUNNING:
            self._run(now_ms, now_s)
        if self.store_health[ev.STORE_EVENTS] == STORE_DEGRADED:
            self._probe_event_log(now_s)
        if self.io_jobs and (self.mode == MODE_RUNNING or self.mode == MODE_REFUSED):
            if ticks_diff(now_ms, self._box_fed_ms) >= BOX_FEED_MS:
                self._feed_boxes()
        self._update_outputs(now_s)

    def _feed_boxes(self) -> None:
        """Queue an IO_READ (or RELAY_SET) to every relay/IO box: feeds its watchdog."""
        self._box_fed_ms = self.now_ms
        for io in self.io_jobs:
            self._enqueue(io)

    def _run(self, now_ms: int, now_s: int) -> None:
        changed = False
        if self._ups_changed:
            self._ups_changed = False
            self._apply_ups()
            changed = True
        cur = self._current_new
        for k in range(self.layout.string_count):
            if cur[k]:
                cur[k] = 0
                ma = self.string_current_ma[k]
                if ma != CURRENT_NONE:
                    self.discharge.current(k, ma, now_s)
                else:
                    self.discharge.current(k, 0, now_s)
                changed = True
        if self._cycle_ready:
            self._cycle_ready = False
            self._process_cycle(now_s)
        elif changed:
            self._discharge_update(now_s)  # the fast sources act at once
        if self._late_info >= 0:
            self._late_info = -1
            if not self.check_compatibility():
                return
        self._ri_step(now_ms, now_s)

    def _apply_ups(self) -> None:
        cfg = self.cfg
        if cfg.ups_source != UPS_BOARD and cfg.ups_source != UPS_BOX:
            return
        on = self.ups_level == cfg.ups_active_closed
        self.ups_on_battery = on
        for k in range(self.layout.string_count):
            if cfg.ups_strings_mask & (1 << k):
                self.discharge.ups_input(k, on)

    def _discharge_update(self, now_s: int) -> None:
        d = self.discharge
        d.update(now_s, self.poller.voltage_mv, self.strings.sum_mv)
        for k in d.started:
            ma = self.string_current_ma[k]
            self._log(now_s, ev.EV_DISCHARGE_START, string=k,
                      value=0 if ma == CURRENT_NONE else ma, arg=d.sources[k])  # fmt: skip
        for k in d.ended:
            self._log(now_s, ev.EV_DISCHARGE_END, string=k,
                      value=now_s - d.started_s[k], extra=d.count[k], arg=d.sources[k])  # fmt: skip
        if d.ended and not d.any_active() and self.ri_schedule is not None:
            self.ri_schedule.discharge_ended(now_s)
        again = False
        st = self.strings
        for k in range(self.layout.string_count):
            if st.discharging[k] != d.active[k]:
                st.discharging[k] = d.active[k]
                again = True
        if again:
            st.update(self.poller)  # the next SET_TARGET carries DISCHARGE at once

    def _process_cycle(self, now_s: int) -> None:
        lay = self.layout
        poll = self.poller
        addrs = lay.addresses
        n = lay.module_count
        self.cycles += 1
        off = self.cfg.temp_offset_mc
        vu = self.voltage_uv
        tm = self.temp_mc
        fresh = self.fresh
        census = self.census
        late = -1
        impl = self.implausible
        for i in range(n):
            a = addrs[i]
            state = poll.state[a]
            if state == pl.ST_OK:
                fresh[i] = 1
                vu[i] = poll.voltage_uv[a]
                tm[i] = poll.temp_cc[a] * 10 + off
                self.balance_pct[i] = poll.balance_pct[a]
                if census[i] != CENSUS_OK and late < 0 and self.info_job.module < 0:
                    late = i
                if impl[i]:
                    self._plausible_again(i, now_s)
            else:
                fresh[i] = 0
                if state == pl.ST_IMPLAUSIBLE and poll.implausible[a] & ~impl[i]:
                    self._implausible(i, a, poll.implausible[a], now_s)
        if late < 0 and self.info_job.module < 0:
            late = self.judge.info_due(now_s)  # rolling INFO: a module swapped live
        if late >= 0:
            self.info_job.module = late
            self._enqueue(self.info_job)
        self.integrity.after_cycle(now_s)
        st = self.strings
        st.update(poll)
        d = self.discharge
        for k in range(lay.string_count):
            d.voltage(k, st.avg_mv[k], st.answered[k] == lay.sizes[k])
        self._apply_ups()
        self._discharge_update(now_s)
        self.judge.phases_update(now_s)
        # thresholds: the low levels and the spread follow the charge phase
        al = self.alarms
        for k in range(lay.string_count):
            disch = self.judge.relaxed(k)
            al.evaluate_modules(now_s, k, vu, tm, fresh, disch, self.judge.boost(k))
            al.evaluate_string(now_s, k, vu, fresh, disch)
        # silent modules
        w = self.silence
        back = None
        if w.system_alarm_since_s >= 0:  # how long the ones coming back were silent
            for a in addrs:
                if w.alarm[a] and poll.state[a] == pl.ST_OK:
                    if back is None:
                        back = []
                    back.append((a, w.silent_s(a, now_s)))
        w.update(poll, now_s)
        for a in w.raised:
            i = lay.module(a)
            self._log(now_s, ev.EV_MODULE_SILENT, i, lay.string_of(i))
            self._new_alarm = True
        if back is not None:
            for a, silent_s in back:
                i = lay.module(a)
                self._log(now_s, ev.EV_MODULE_BACK, i, lay.string_of(i), silent_s)
        # thermal runaway
        if self.judge.runaway_update(now_s):
            self._want_relays()
        self.judge.balance_update(now_s)  # blocks balancing cannot help, bleed energy
        # levels, marks, history state
        level = self.level
        marked = self.marked
        hs = self.history_state
        need_mark = False
        refresh = now_s >= self._next_mark_refresh_s
        if refresh:
            self._next_mark_refresh_s = now_s + MARK_REFRESH_S
        for i in range(n):
            lv = al.module_level(i)
            level[i] = lv
            if fresh[i]:
                hs[i] = lv
                if refresh and lv:
                    marked[i] = MARK_UNKNOWN
                if lv != marked[i]:
                    need_mark = True
            else:
                hs[i] = lv | HIST_SILENT
                marked[i] = MARK_UNKNOWN  # unpolled 60 s, a module drops its mark
        if need_mark:
            self._enqueue(self.mark_job)
        for cj in self.current_jobs:
            self._enqueue(cj)
        self._feed_boxes()
        # history
        hist = self.history
        if hist is not None:
            mode = self.history_mode(now_s)
            last = self.history_last_s
            if (
                last < 0
                or mode != self.history_last_mode
                or now_s < last
                or now_s - last >= HIST_INTERVAL_S[mode]
            ):
                self.history_last_s = now_s
                self.history_last_mode = mode
                self._history_append(hist, now_s, mode)

    def _history_append(self, hist, now_s: int, mode: int) -> None:
        """One snapshot; a failing store degrades the history, never the monitoring."""
        st = ev.STORE_HISTORY
        if not self._store_may_try(st, now_s):
            return
        if self._deferred[st]:  # queued: persist() writes it, outside the step
            if not hist.queue(now_s + self.wall_offset_s, mode, self.voltage_uv, self.temp_mc,
                              self.ri_nohm, self.balance_pct, self.history_state,
                              self.string_current_ma):  # fmt: skip
                self._fell_behind(st)
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
            self._store_failed(now_s, st, e)
            return
        if self.store_health[st] == STORE_DEGRADED:
            self._store_recovered(now_s, st)

    # -- implausible data (docs/manager.md, "Implausible data") ---------------------------

    def _implausible(self, i: int, a: int, bits: int, now_s: int) -> None:
        """Module i sent what cannot be real: left out of everything (the poller's
        ST_IMPLAUSIBLE), reported once per reason: event, warning, status."""
        new = bits & ~self.implausible[i]
        self.implausible[i] |= bits
        lay = self.layout
        k = lay.string_of(i)
        poll = self.poller
        unused = ("its readings are not used for targets, averages, balancing, thresholds "
                  "or the runaway trip")  # fmt: skip
        if new & pl.IMPL_DUPLICATE:
            self._log(now_s, ev.EV_IMPLAUSIBLE, i, k, 0, ev.IMPLAUSIBLE_DUPLICATE)
            self._implausible_note(i, "module %s (address %d): two devices answer as this "
                                   "module: %s until only one does; find the second device "
                                   "with this address" % (lay.label(i), a, unused))  # fmt: skip
        if new & pl.IMPL_RANGE:
            mv = poll.voltage_mv[a]
            cc = poll.temp_cc[a]
            lo, hi = poll.voltage_min_mv, poll.voltage_max_mv
            self._log(now_s, ev.EV_IMPLAUSIBLE, i, k, mv * 1000, ev.IMPLAUSIBLE_RANGE, cc & 0xFFFF)
            self._implausible_note(
                i,
                "module %s: reads %d.%03d V and %s%d.%02d °C, outside what a %s module "
                "measures (%d.%03d-%d.%03d V, above -40 and up to 100 °C): %s; check its "
                "sense wires, its temperature probe and the site's variant"
                % (lay.label(i), mv // 1000, mv % 1000, "-" if cc < 0 else "", abs(cc) // 100,
                   abs(cc) % 100, variant_name(self.cfg.variant), lo // 1000, lo % 1000,
                   hi // 1000, hi % 1000, unused),
            )  # fmt: skip

    def _implausible_note(self, i: int, text: str) -> None:
        self._implausible_text.append((i, text))
        self._problem(text)

    def _plausible_again(self, i: int, now_s: int) -> None:
        self.implausible[i] = 0
        self._log(now_s, ev.EV_IMPLAUSIBLE, i, self.layout.string_of(i), 0,
                  ev.IMPLAUSIBLE_CLEARED)  # fmt: skip
        keep = []
        for m, text in self._implausible_text:
            if m == i:
                if text in self.problems:
                    self.problems.remove(text)
            else:
                keep.append((m, text))
        self._implausible_text = keep

    def module_implausible(self, i: int):
        """Why module i's data is not used (a text), or None."""
        for m, text in self._implausible_text:
            if m == i:
                return text
        return None

    def history_mode(self, now_s: int) -> int:
        d = self.discharge
        if d.any_active():
            return HIST_DISCHARGE
        if d.history_interval_s(now_s) == dis.HISTORY_AFTER_S:
            return HIST_RECOVERY
        for k in range(self.layout.string_count):
            if self.strings.reason[k] == strs.REASON_HIGH:
                return HIST_BOOST
        return HIST_FLOAT

    # -- Ri ------------------------------------------------------------------------------

    def _ri_step(self, now_ms: int, now_s: int) -> None:
        sch = self.ri_schedule
        if sch is None:
            return
        job = self.ri_job
        state = job.state
        if state == RiJob.IDLE:
            addr = sch.due(now_s, self.discharge.any_active())
            if addr >= 0:
                job.begin(addr)
                self._enqueue(job)
            return
        if job.stamp:
            job.stamp = False
            job.paused_at_ms = now_ms
        if state == RiJob.PAUSE:
            due = _ms_since(now_ms, job.paused_at_ms) >= job.pause_ms
            # the module announces its result with the RI_RESULT flag of its MEAS
            early = (
                job.after == RiJob.READ
                and job.reads == 0
                and self.poller.flags[job.address] & p.FLAG_RI_RESULT
            )
            if due or early:
                job.state = job.after
                if job.state == RiJob.READ:
                    job.tries = 0
                self._enqueue(job)
        elif state == RiJob.START or state == RiJob.READ:
            if not job.queued and not job.busy:
                self._enqueue(job)  # again after a missed answer
        elif state == RiJob.DONE:
            self._ri_done(job, now_s)

    def _ri_done(self, job, now_s: int) -> None:
        a = job.address
        i = self.layout.module(a)
        k = self.layout.string_of(i)
        if job.result_state == p.RI_OK:
            v = job.ri_nohm + self.cfg.ri_offset_nohm
            if v < 0:
                v = 0
            self.ri_nohm[i] = v
            self._log(now_s, ev.EV_RI_MEASURED, i, k, v, p.RI_OK, job.quality)
            if self.ri_trend is not None:  # the last result per address
                self.ri_trend.add(a, v, job.quality, now_s)
            self.judge.ri_result(now_s, i, v)  # levels, string, own baseline
        else:
            self._log(now_s, ev.EV_RI_MEASURED, i, k, 0, job.result_state)
        sch = self.ri_schedule
        if sch is not None:
            sch.done(a, now_s)
        job.state = RiJob.IDLE
        job.address = -1

    # -- setup ---------------------------------------------------------------------------

    def _setup_done(self, job, now_s: int) -> None:
        assigned = getattr(job, "assigned", None)
        if assigned:
            for addr, _uid in assigned:
                self._log(now_s, ev.EV_ADDRESSING, module=addr, arg=ev.ADDR_ASSIGNED)
        if job.error is not None:
            where = getattr(job, "resume_at", ev.NO_MODULE)
            self._log(now_s, ev.EV_ADDRESSING, module=where, arg=ev.ADDR_ERROR)
        else:
            name = type(job).__name__
            if name == "SetAddress":
                self._log(now_s, ev.EV_ADDRESSING, module=job.new, value=job.current,
                          arg=ev.ADDR_CHANGED)  # fmt: skip
            elif name == "ResetAddresses":
                target = ev.NO_MODULE if job.address is None else job.address
                self._log(now_s, ev.EV_ADDRESSING, module=target, arg=ev.ADDR_RESET)
            else:
                self._log(now_s, ev.EV_ADDRESSING, arg=ev.ADDR_DONE)
        self.setup_job = None
        self.master.foreground = None
        self._rearm_silence(now_s)
        self._start_census(now_s)

    # -- outputs -------------------------------------------------------------------------

    def alarm_total(self) -> int:
        n = self.alarms.alarm_count
        if self.silence.system_alarm_since_s >= 0:
            n += 1
        if self.runaway is not None:
            for k in range(self.layout.string_count):
                if self.runaway.tripped[k]:
                    n += 1
        if self.mode == MODE_REFUSED:
            n += 1
        return n

    def warning_total(self) -> int:
        n = self.alarms.warning_count + self.trend_warnings + self.judge.warnings()
        return n + (1 if self.problems else 0)

    def contact(self, now_s: int) -> bool:
        """Whether the alarm contact signals an alarm (relay dropped)."""
        if self.alarms.alarm_count or self.mode == MODE_REFUSED:
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
            self._want_relays()
            for job in self.io_jobs:
                if job.pending() and (self.mode == MODE_RUNNING or self.mode == MODE_REFUSED):
                    self._enqueue(job)  # a refused core still drives the box's contact

    # -- status (docs/manager.md, "Status for web, Modbus and MQTT") -----------------------

    def mode_name(self) -> str:
        return MODE_NAMES[self.mode]

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
        """What the operator is shown of module i: 'not polled', 'implausible' (its
        readings are not used: module_implausible(i) says why), 'silent', 'ok',
        'warning' or 'alarm' (status page, web, Modbus, MQTT)."""
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
        if ma == CURRENT_NONE:
            return None
        return self.strings.sum_mv[k] * ma // 1000000

    def equalising_reason(self, k: int) -> str:
        return strs.REASON_TEXT[self.strings.reason[k]]
