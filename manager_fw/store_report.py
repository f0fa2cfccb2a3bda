# A store of the manager core that fails (docs/history.md, "When storage fails"): it is
# reported (EV_STORAGE event, a warning in core.problems, core.store_health /
# store_problem), retried after a back-off, and its recovery logged.  Loaded only when
# a store fails or is reported at start: a manager whose stores work never holds this
# code in RAM (manager_fw/store_faults.py does the rest).

from manager_fw import events as ev
from manager_fw.store_faults import (
    STORE_DEGRADED,
    STORE_OFF,
    STORE_OK,
    STORE_RETRY_FIRST_S,
    STORE_RETRY_MAX_S,
    due,
    write_event,
)

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
