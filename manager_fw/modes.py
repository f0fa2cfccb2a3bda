# The manager core's modes as one table (docs/manager.md, "The shape"): every
# transition is a row (mode, event) -> (next mode, action), in the spirit of h11's
# _state.py.  An event the table does not list for a mode changes nothing.
#
#   mode       event          next       action
#   any        SLEEP          SLEEPING   send SLEEP twice, stop polling (sleep_bus)
#   any        SETUP          SETUP      an addressing job owns the bus (begin_setup)
#   any        RETRY          CENSUS     census again (retry: after a refusal)
#   WAKING     AWAKE          CENSUS     bus awake, nobody counted yet: census
#   WAKING     RESUMED        RUNNING    bus awake after a sleep: polling resumes
#   CENSUS     CENSUS_DONE    CENSUS     log the census, judge it (-> COMPATIBLE or
#                                        INCOMPATIBLE)
#   CENSUS     COMPATIBLE     RUNNING    the poller owns the bus
#   CENSUS     INCOMPATIBLE   REFUSED    no polling, alarm (core.refusal says why)
#   RUNNING    INCOMPATIBLE   REFUSED    a module found late does not fit
#   SLEEPING   ASLEEP         SLEEPING   both SLEEP broadcasts sent: the bus is free
#   SLEEPING   WAKE           WAKING     WAKE preamble, then RESUMED (or AWAKE)
#   SETUP      SETUP_DONE     CENSUS     log what the job did, census again
#
# The core raises the events: the operator methods (sleep_bus, wake_bus, begin_setup,
# retry) raise theirs; step() raises the one its foreground job's `done` means
# (job_event); an action may return a follow-up event (CENSUS_DONE does).  Functions
# of the core: they set core.mode and start its foreground jobs.

from manager_fw import events as ev
from manager_fw import revisions as rv
from manager_fw.jobs.census import CensusJob
from manager_fw.jobs.wake import SleepJob, WakePreamble
from shared.compat import const

MODE_WAKING = const(0)
MODE_CENSUS = const(1)
MODE_RUNNING = const(2)
MODE_REFUSED = const(3)
MODE_SLEEPING = const(4)
MODE_SETUP = const(5)
MODE_NAMES = ("waking", "census", "running", "refused", "sleeping", "setup")
ANY = const(-1)  # a row for every mode

NONE = const(-1)  # no event
AWAKE = const(0)
RESUMED = const(1)
CENSUS_DONE = const(2)
COMPATIBLE = const(3)
INCOMPATIBLE = const(4)
ASLEEP = const(5)
SLEEP = const(6)
WAKE = const(7)
SETUP = const(8)
SETUP_DONE = const(9)
RETRY = const(10)
EVENT_NAMES = ("awake", "resumed", "census done", "compatible", "incompatible", "asleep",
               "sleep", "wake", "setup", "setup done", "retry")  # fmt: skip


# -- actions: fn(core, now_s, arg) -> follow-up event or NONE -----------------------


def _set_foreground(core, job) -> None:
    core._job = job
    core.master.foreground = job


def start_census(core, now_s: int, arg) -> int:
    core.master.poller = None
    rv.reset(core)
    _set_foreground(core, CensusJob(core))
    return NONE


def awake_census(core, now_s: int, arg) -> int:
    core._log(now_s, ev.EV_BUS_POWER, arg=1)
    return start_census(core, now_s, arg)


def start_running(core, now_s: int, arg) -> int:
    _set_foreground(core, None)
    core.master.poller = core.poller
    core.integrity.running(now_s)
    core._want_relays()
    return NONE


def awake_running(core, now_s: int, arg) -> int:
    core._log(now_s, ev.EV_BUS_POWER, arg=1)
    return start_running(core, now_s, arg)


def census_done(core, now_s: int, arg) -> int:
    ok, unreachable, _ = rv.census_counts(core)
    core._log(now_s, ev.EV_CENSUS, value=ok, extra=unreachable)
    return COMPATIBLE if rv.check_compatibility(core) else INCOMPATIBLE


def refuse(core, now_s: int, arg) -> int:
    """No polling, an alarm; core.refusal (set by the revision check) says why."""
    core.master.poller = None
    core._new_alarm = True
    m = core.refusal_module
    core._log(now_s, ev.EV_REFUSED, m, core.layout.string_of(m), 0, core.refusal_reason)
    return NONE


def sleep(core, now_s: int, arg) -> int:
    core.master.poller = None
    _set_foreground(core, SleepJob())
    core._log(now_s, ev.EV_BUS_POWER, arg=0)
    return NONE


def release_bus(core, now_s: int, arg) -> int:
    core.master.foreground = None
    return NONE


def wake(core, now_s: int, arg) -> int:
    _set_foreground(core, WakePreamble())
    rearm_silence(core, now_s)
    return NONE


def setup(core, now_s: int, job) -> int:
    core.master.poller = None
    core.setup_job = job
    core.master.foreground = job
    addr = getattr(job, "start", ev.NO_MODULE)
    core._log(now_s, ev.EV_ADDRESSING, module=addr, arg=ev.ADDR_START)
    return NONE


def setup_done(core, now_s: int, arg) -> int:
    _log_setup(core, now_s, core.setup_job)
    core.setup_job = None
    core.master.foreground = None
    rearm_silence(core, now_s)
    return start_census(core, now_s, None)


def _log_setup(core, now_s: int, job) -> None:
    assigned = getattr(job, "assigned", None)
    if assigned:
        for addr, _uid in assigned:
            core._log(now_s, ev.EV_ADDRESSING, module=addr, arg=ev.ADDR_ASSIGNED)
    if job.error is not None:
        where = getattr(job, "resume_at", ev.NO_MODULE)
        core._log(now_s, ev.EV_ADDRESSING, module=where, arg=ev.ADDR_ERROR)
        return
    name = type(job).__name__
    if name == "SetAddress":
        core._log(now_s, ev.EV_ADDRESSING, module=job.new, value=job.current,
                  arg=ev.ADDR_CHANGED)  # fmt: skip
    elif name == "ResetAddresses":
        target = ev.NO_MODULE if job.address is None else job.address
        core._log(now_s, ev.EV_ADDRESSING, module=target, arg=ev.ADDR_RESET)
    else:
        core._log(now_s, ev.EV_ADDRESSING, arg=ev.ADDR_DONE)


def rearm_silence(core, now_s: int) -> None:
    """After a sleep or a setup: silence counts from now, not from before."""
    w = core.silence
    w.started_s = now_s
    for a in core.layout.addresses:
        if w.last_ok_s[a] >= 0:
            w.last_ok_s[a] = now_s


# -- the table ------------------------------------------------------------------------

TABLE = (
    # mode, event, next mode, action
    (ANY, SLEEP, MODE_SLEEPING, sleep),
    (ANY, SETUP, MODE_SETUP, setup),
    (ANY, RETRY, MODE_CENSUS, start_census),
    (MODE_WAKING, AWAKE, MODE_CENSUS, awake_census),
    (MODE_WAKING, RESUMED, MODE_RUNNING, awake_running),
    (MODE_CENSUS, CENSUS_DONE, MODE_CENSUS, census_done),
    (MODE_CENSUS, COMPATIBLE, MODE_RUNNING, start_running),
    (MODE_CENSUS, INCOMPATIBLE, MODE_REFUSED, refuse),
    (MODE_RUNNING, INCOMPATIBLE, MODE_REFUSED, refuse),
    (MODE_SLEEPING, ASLEEP, MODE_SLEEPING, release_bus),
    (MODE_SLEEPING, WAKE, MODE_WAKING, wake),
    (MODE_SETUP, SETUP_DONE, MODE_CENSUS, setup_done),
)


def transition(mode: int, event: int):
    """The row of (mode, event), or None: nothing happens."""
    for row in TABLE:
        if (row[0] == mode or row[0] == ANY) and row[1] == event:
            return row
    return None


def fire(core, event: int, now_s: int, arg=None) -> bool:
    """Raise event: the core takes the row's next mode, then its action runs (and the
    follow-up event it returns, if any).  False when the table has no row for it."""
    fired = False
    while event != NONE:
        row = transition(core.mode, event)
        if row is None:
            return fired
        core.mode = row[2]
        fired = True
        event = row[3](core, now_s, arg)
    return fired


def job_event(core) -> int:
    """The event the finished foreground job of the current mode means, or NONE."""
    mode = core.mode
    if mode == MODE_SETUP:
        job = core.setup_job
        return SETUP_DONE if job is not None and job.done else NONE
    job = core._job
    if job is None or not job.done:
        return NONE
    if mode == MODE_WAKING:
        return RESUMED if core.cycles and core.refusal is None else AWAKE
    if mode == MODE_CENSUS:
        return CENSUS_DONE
    if mode == MODE_SLEEPING and core.master.foreground is job:
        return ASLEEP
    return NONE
