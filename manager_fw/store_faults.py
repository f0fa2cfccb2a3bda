# Storage of the manager core: the hand-off to the shell and the health of each store
# (docs/history.md, "When storage fails"); what happens when a store fails is
# manager_fw/store_report.py, loaded only then.  Stores that can queue (manager_fw/persist.py)
# only queue in core.step; the shell's core.persist(max_ops) writes and erases outside
# the step (persist()).  A store that cannot be opened or written never stops
# monitoring; it is reported (EV_STORAGE event, a warning in core.problems,
# core.store_health / store_problem for the status), a degraded store is tried again
# after a back-off that doubles up to 6 h, and the event that says it works again is
# written when it does.
#
# Functions of the core (they read and write its store_* arrays); ManagerCore keeps the
# public report_store(), store_fault() and store_health_name().

from manager_fw import events as ev
from shared.compat import const

# health of a store (core.store_health[ev.STORE_HISTORY / ev.STORE_EVENTS])
STORE_NONE = const(0)  # no store configured (tests, a shell without storage)
STORE_OK = const(1)
STORE_DEGRADED = const(2)  # a write failed: records are dropped, a write is retried
STORE_OFF = const(3)  # could not be opened at start: nothing is recorded until restart
STORE_HEALTH_NAMES = ("none", "ok", "degraded", "unavailable")
STORE_RETRY_FIRST_S = const(60)  # after a failed write, the next try; doubles up to
STORE_RETRY_MAX_S = const(21600)  # 6 h: a dying card is not hammered (each try may hang)
EVENT_QUEUE_SPARE = const(32)  # events queued beyond one per module (the worst burst of a step)


def open_events(core, event_log, event_device, segment_size: int):
    """The event log: the given one (any object with EventLog.append), or an EventLog on
    event_device, or None."""
    if event_log is not None:
        core.store_health[ev.STORE_EVENTS] = STORE_OK
        return event_log
    if event_device is not None:
        return open_store(core, ev.STORE_EVENTS, event_device, segment_size)
    return None


def open_history(core, history, history_device, segment_size: int):
    """The history writer: the given one (any object with HistoryWriter.append), or a
    HistoryWriter on history_device, or None."""
    if history is not None:
        core.store_health[ev.STORE_HISTORY] = STORE_OK
        return history
    if history_device is None:
        return None
    w = open_store(core, ev.STORE_HISTORY, history_device, segment_size)
    if w is not None:
        w.set_thresholds(core.cfg.thresholds)
    return w


def defer_stores(core) -> None:
    """Stores that can queue (manager_fw/persist.py) get their RAM queue: the step only
    queues, persist() writes and erases.  Objects with append() alone (tests' lists)
    are written at once."""
    lay = core.layout
    h = core.history
    if h is not None and hasattr(h, "enable_queue"):
        from manager_fw.history_store import queue_bytes

        h.enable_queue(queue_bytes(lay.module_count, lay.string_count))
        core._deferred[ev.STORE_HISTORY] = 1
    e = core.events
    if e is not None and hasattr(e, "enable_queue"):
        e.enable_queue(ev.QUEUED_EVENT_SIZE * (lay.module_count + EVENT_QUEUE_SPARE))
        core._deferred[ev.STORE_EVENTS] = 1


def persist(core, max_ops: int) -> int:
    """The shell's storage turn, outside the step: write and erase what the step
    queued, at most max_ops device operations per store (a block erase or one record
    each), nothing while the bus awaits a reply.  Returns the records still queued that
    a store could take now (not those of a failing store waiting out its back-off)."""
    if core.master.waiting:
        return queued(core)
    left = 0
    # (no tuple of the two stores: built at every call, it was the one allocation of a
    # steady cycle on a board, where ev.STORE_* are module attributes)
    if core._deferred[ev.STORE_HISTORY]:
        left += _persist_store(core, ev.STORE_HISTORY, max_ops)
    if core._deferred[ev.STORE_EVENTS]:
        left += _persist_store(core, ev.STORE_EVENTS, max_ops)
    return left


def queued(core) -> int:
    n = 0
    if core._deferred[ev.STORE_HISTORY] and core.history is not None:
        n += core.history.pending()
    if core._deferred[ev.STORE_EVENTS] and core.events is not None:
        n += core.events.pending()
    return n


def _persist_store(core, st: int, max_ops: int) -> int:
    w = core.history if st == ev.STORE_HISTORY else core.events
    if w is None:
        return 0
    now_s = core.now_s
    if core.store_health[st] == STORE_DEGRADED and not due(core, st, now_s):
        # backing off: the queue waits for the next try, and nothing is there to do
        # until then (counted as queued, the loop would turn every character time)
        return 0
    written = w.snapshots_written if st == ev.STORE_HISTORY else w.events_written
    lost = w.dropped if st == ev.STORE_HISTORY else 0
    try:
        left = w.service(max_ops)
    except Exception as e:  # noqa: BLE001 - EIO, ENOSPC, EROFS, a broken device
        core.store_dropped[st] += w.discard()
        if st == ev.STORE_EVENTS:
            core._probe_queued = False
        from manager_fw import store_report as sr

        sr.write_failed(core, now_s, st, e)
        return w.pending()
    if st == ev.STORE_HISTORY:
        core.store_dropped[st] += w.dropped - lost
        done = w.snapshots_written != written
    else:
        done = w.events_written != written
    if done and core.store_health[st] == STORE_DEGRADED:
        from manager_fw import store_report as sr

        sr.recovered(core, now_s, st, st == ev.STORE_EVENTS and core._probe_queued)
        core._probe_queued = False
    if not left and core._behind[st]:
        behind = core._behind[st]
        core._behind[st] = 0
        core._log(now_s, ev.EV_STORAGE, value=behind, arg=ev.STORAGE_BEHIND, extra=st)
    return left


def fell_behind(core, st: int) -> None:
    """A record found its store's queue full: counted, logged once drained."""
    core.store_dropped[st] += 1
    core._behind[st] += 1


def started(core, now_s: int) -> None:
    """After EV_STARTUP: log what opening the stores found."""
    for arg, store, value in core._store_pending:
        core._log(now_s, ev.EV_STORAGE, value=value, arg=arg, extra=store)
    core._store_pending = None


def open_store(core, store: int, device, segment_size: int):
    """The HistoryWriter / EventLog on device, or None (reported) when it cannot be
    opened: unreadable (OSError), another ring's geometry, a device too small."""
    try:
        if store == ev.STORE_EVENTS:
            w = ev.EventLog(device, segment_size)
        else:
            from manager_fw.history_store import HistoryWriter

            w = HistoryWriter(device, core.layout.sizes, segment_size)  # type: ignore[assignment]
    except Exception as e:  # noqa: BLE001 - whatever the device raises
        from manager_fw import store_report as sr

        sr.report_store(core, core.now_s, store, e)
        return None
    core.store_health[store] = STORE_OK
    damaged = w.ring.damaged
    pending = core._store_pending
    if damaged and pending is not None:
        pending.append((ev.STORAGE_DAMAGED, store, len(damaged)))
        core._problem(
            "%s: %d segment(s) have a damaged header (first at 0x%x): their records are "
            "lost; `stringcare history info` lists the damage"
            % (ev.STORE_NAMES[store], len(damaged), damaged[0])
        )
    return w


def due(core, store: int, now_s: int) -> bool:
    """A degraded store's back-off is over (or the clock went back past it)."""
    return (
        now_s - core._store_retry_s[store] >= 0
        or now_s < core._store_retry_s[store] - (core._store_backoff_s[store])
    )


def may_try(core, store: int, now_s: int) -> bool:
    if core.store_health[store] != STORE_DEGRADED or due(core, store, now_s):
        return True
    core.store_dropped[store] += 1
    return False


def write_event(core, now_s, code, module, string, value, arg, extra) -> bool:
    try:
        core.events.append(now_s + core.wall_offset_s, code, module, string, value, arg, extra)
    except Exception as e:  # noqa: BLE001 - a failing event store must not stop us
        from manager_fw import store_report as sr

        sr.write_failed(core, now_s, ev.STORE_EVENTS, e)
        return False
    return True
