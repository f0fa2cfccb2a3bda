# Storage of the manager core: the hand-off to the shell and the health of each store
# (docs/history.md, "When storage fails").  Stores that can queue (manager_fw/persist.py)
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

ERRNO_NAMES = {5: "EIO", 13: "EACCES", 28: "ENOSPC", 30: "EROFS", 2: "ENOENT", 19: "ENODEV"}


def _errno(e) -> int:
    """The errno of an OSError (CPython and MicroPython alike), else 0."""
    if isinstance(e, OSError) and e.args and isinstance(e.args[0], int):
        return e.args[0]
    return 0


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
    each), nothing while the bus awaits a reply.  Returns the records still queued."""
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
        return w.pending()  # backing off: the queue waits for the next try
    written = w.snapshots_written if st == ev.STORE_HISTORY else w.events_written
    lost = w.dropped if st == ev.STORE_HISTORY else 0
    try:
        left = w.service(max_ops)
    except Exception as e:  # noqa: BLE001 - EIO, ENOSPC, EROFS, a broken device
        core.store_dropped[st] += w.discard()
        if st == ev.STORE_EVENTS:
            core._probe_queued = False
        write_failed(core, now_s, st, e)
        return w.pending()
    if st == ev.STORE_HISTORY:
        core.store_dropped[st] += w.dropped - lost
        done = w.snapshots_written != written
    else:
        done = w.events_written != written
    if done and core.store_health[st] == STORE_DEGRADED:
        recovered(core, now_s, st, st == ev.STORE_EVENTS and core._probe_queued)
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
        report_store(core, core.now_s, store, e)
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


def report_store(core, now_s: int, store: int, fault) -> None:
    """What the shell found opening a store file (manager_fw/ring_file.open_file_store):
    None (fine), a text (a foreign store was set aside, a new one started: reported
    only), or the exception that kept it from being opened (the store is off)."""
    if fault is None:
        return
    if isinstance(fault, str):
        store_fault(core, now_s, store, ev.STORAGE_FOREIGN, 0, fault, False)
        return
    foreign = type(fault).__name__ == "StoreFormatError"
    store_fault(
        core,
        now_s,
        store,
        ev.STORAGE_FOREIGN if foreign else ev.STORAGE_OPEN_FAILED,
        _errno(fault),
        "%s cannot be used: %s" % (ev.STORE_NAMES[store], _why(fault)),
    )


def store_fault(core, now_s: int, store: int, what: int, errno: int, text: str,
                off: bool = True) -> None:  # fmt: skip
    """Report a store problem: an EV_STORAGE event (arg what, value errno), a warning
    (core.problems) and the status (store_health, store_problem).  off: the store
    records nothing until restart."""
    if off:
        core.store_health[store] = STORE_OFF
        if store == ev.STORE_HISTORY:
            core.history = None
        text += "; monitoring, balancing and alarms go on without it"
    core.store_problem[store] = text
    core._problem(text)
    if core.events is None:
        return
    pending = core._store_pending
    if pending is not None:  # still starting: after EV_STARTUP
        pending.append((what, store, errno))
    else:
        core._log(now_s, ev.EV_STORAGE, value=errno, arg=what, extra=store)


def write_failed(core, now_s: int, store: int, e) -> None:
    core.store_write_errors[store] += 1
    core.store_dropped[store] += 1
    back = core._store_backoff_s[store]
    back = STORE_RETRY_FIRST_S if back == 0 else back * 2
    if back > STORE_RETRY_MAX_S:
        back = STORE_RETRY_MAX_S
    core._store_backoff_s[store] = back
    core._store_retry_s[store] = now_s + back
    if core.store_health[store] == STORE_DEGRADED:
        return  # reported at the first failure
    core.store_health[store] = STORE_DEGRADED
    what = "records" if store == ev.STORE_HISTORY else "events"
    text = (
        "%s: a write failed (%s): %s are not stored until a write succeeds again "
        "(tried again after %d s, then less often); monitoring, balancing and alarms "
        "go on" % (ev.STORE_NAMES[store], _why(e), what, back)
    )
    core.store_problem[store] = text
    core._problem(text)
    if store == ev.STORE_HISTORY:
        core._log(now_s, ev.EV_STORAGE, value=_errno(e), arg=ev.STORAGE_WRITE_FAILED,
                  extra=store)  # fmt: skip
        return
    # into the failing log itself: a shell that also keeps events in memory; queued,
    # it is the first thing tried when the back-off ends
    try:
        write = core.events.queue if core._deferred[store] else core.events.append
        write(now_s + core.wall_offset_s, ev.EV_STORAGE, ev.NO_MODULE, ev.NO_STRING,
              _errno(e), ev.STORAGE_WRITE_FAILED, store)  # fmt: skip
    except Exception:  # noqa: BLE001
        pass


def recovered(core, now_s: int, store: int, logged: bool = False) -> None:
    text = core.store_problem[store]
    if text in core.problems:
        core.problems.remove(text)
    core.store_problem[store] = None
    core.store_health[store] = STORE_OK
    core._store_backoff_s[store] = 0
    if not logged:
        core._log(now_s, ev.EV_STORAGE, value=core.store_dropped[store],
                  arg=ev.STORAGE_RECOVERED, extra=store)  # fmt: skip


def probe_event_log(core, now_s: int) -> None:
    """A degraded event log is tried again when its back-off ends, with the event
    that says it works again (events are rare: waiting for the next one could take
    days)."""
    st = ev.STORE_EVENTS
    if not due(core, st, now_s):
        return
    if core._deferred[st]:
        # persist() writes it; the write that works ends the degraded state
        if not core._probe_queued and not core.events.pending():
            core._probe_queued = core.events.queue(
                now_s + core.wall_offset_s, ev.EV_STORAGE, ev.NO_MODULE, ev.NO_STRING,
                core.store_dropped[st], ev.STORAGE_RECOVERED, st)  # fmt: skip
        return
    if write_event(core, now_s, ev.EV_STORAGE, ev.NO_MODULE, ev.NO_STRING,
                   core.store_dropped[st], ev.STORAGE_RECOVERED, st):  # fmt: skip
        recovered(core, now_s, st, True)


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
        write_failed(core, now_s, ev.STORE_EVENTS, e)
        return False
    return True
