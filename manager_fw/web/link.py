# The web application's only way to the manager core (docs/operator.md, "How it sits
# beside the battery").  The shell's loop owns the core; the web server never touches
# it.  The loop calls, between two steps of the core:
#
#     link.publish(core, now_s)   every second or so: a snapshot (integers with units in
#                                 the names, the page formats them) as JSON bytes
#     link.apply(core, now_s)     the operators' commands queued since (at most
#                                 MAX_PENDING), each logged with who gave it
#
# The server only reads the last snapshot and queues commands; a command's result is
# read back by its ticket.  On CPython the server runs on its own thread (a lock guards
# the queue); on the Pico W both are asyncio tasks and the bus loop goes first.

import json

from manager_fw import events as ev
from shared.compat import const

MAX_PENDING = const(16)
RESULTS_KEPT = const(32)

# EV_OPERATOR actions (arg); extra: the user's number in the users file
OP_MUTE = const(1)
OP_RUNAWAY_RESET = const(2)
OP_RI_NOW = const(3)
OP_EQUALISE_ON = const(4)
OP_EQUALISE_OFF = const(5)
OP_REBASELINE = const(6)
OP_CONFIG = const(7)
OP_LOGIN = const(8)
OP_USER_ADDED = const(9)
OP_ADDRESSING = const(10)  # value: the job (ADDR_JOB_*), module: its address or start
OP_NAMES = (
    "?",
    "mute",
    "runaway reset",
    "Ri now",
    "equalising on",
    "equalising off",
    "Ri re-baseline",
    "configuration saved",
    "login",
    "user added",
    "addressing",
)
ADDR_JOBS = ("address_auto", "address_set", "address_query", "identify", "address_reset")
ADDR_JOBS_STOP = const(5)  # EV_OPERATOR value of OP_ADDRESSING: ADDR_JOBS index, 5 = stop
ACTIONS = {
    "mute": OP_MUTE,
    "runaway_reset": OP_RUNAWAY_RESET,
    "ri_now": OP_RI_NOW,
    "equalise_on": OP_EQUALISE_ON,
    "equalise_off": OP_EQUALISE_OFF,
    "rebaseline": OP_REBASELINE,
    "address_auto": OP_ADDRESSING,
    "address_set": OP_ADDRESSING,
    "address_query": OP_ADDRESSING,
    "identify": OP_ADDRESSING,
    "address_reset": OP_ADDRESSING,
    "address_stop": OP_ADDRESSING,
}
STATE_NAMES = ("ok", "warning", "alarm")


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _lock():
    try:
        import _thread

        return _thread.allocate_lock()
    except ImportError:  # a port without threads: asyncio tasks only, nothing to guard
        return _NoLock()


def module_state(core, i) -> str:
    from manager_fw import poller as pl

    st = core.module_poll_state(i)
    if st == pl.ST_NOT_POLLED:
        return "not polled"
    if st == pl.ST_IMPLAUSIBLE:
        return "implausible"
    if not core.module_answering(i):
        return "silent"
    level = core.level[i]
    return STATE_NAMES[level] if level < 3 else "alarm"


def string_view(core, k: int) -> dict:
    """String k as the pages show it, in the core's own integer units."""
    lay = core.layout
    st = core.strings
    judge = getattr(core, "judge", None)
    mods = []
    first = lay.string_start[k]
    for pos in range(lay.sizes[k]):
        i = first + pos
        known = core.module_poll_state(i) != 0 and core.voltage_uv[i] > 0
        mods.append(
            [
                i,
                lay.label(i),
                core.module_address(i),
                core.voltage_uv[i] if known else None,
                core.temp_mc[i] if known else None,
                core.ri_nohm[i] or None,
                core.balance_pct[i] if known else None,
                module_state(core, i),
                core.hw_rev[i],  # from the census (INFO): hardware revision,
                core.fw_major[i],  # firmware major version,
                core.variant[i],  # variant code (0: not known yet)
            ]
        )
    bleed = None
    if judge is not None and getattr(judge, "balance", None) is not None:
        bleed = judge.bleed_wh_day_x1000(k)
    tripped = False
    if core.runaway is not None:
        tripped = bool(core.runaway.tripped[k])
    return {
        "modules": mods,
        "sum_mv": st.sum_mv[k],
        "target_uv": st.target_uv(k),
        "average_mv": st.avg_mv[k],
        "spread_mv": st.spread_mv[k],
        "equalising": bool(st.equalising[k]),
        "equalise_enabled": bool(st.enabled[k]),
        "reason": core.equalising_reason(k),
        "current_ma": core.string_current(k),
        "power_w": core.string_power_w(k),
        "bleed_mwh_day": bleed,
        "runaway_tripped": tripped,
    }


def job_view(job):
    """An addressing job as the addressing page shows it (None: none started yet)."""
    if job is None:
        return None
    progress = job.progress() if hasattr(job, "progress") else ""
    result = job.result
    return {
        "job": type(job).__name__,
        "done": bool(job.done),
        "progress": progress,
        "error": job.error,
        "warning": getattr(job, "warning", None),
        "resume_at": getattr(job, "resume_at", None),
        "result": None if result is None else str(result),
    }


def site_view(core, now_s: int, config_store=None, job=None) -> dict:
    """Everything but the strings."""
    return {
        "setup": job_view(job),
        "site": core.cfg.site,
        "now_s": now_s,
        "mode": core.mode_name(),
        "refusal": core.refusal,
        "alarms": core.alarm_total(),
        "warnings": core.warning_total(),
        "problems": list(core.problems),
        "buzzer": bool(core.outputs.buzzer),
        "muted": bool(getattr(core.outputs, "muted", False)),
        "thresholds": threshold_values(core.cfg.thresholds),
        "config_source": config_store.source if config_store is not None else "",
    }


def snapshot(core, now_s: int, config_store=None, job=None) -> dict:
    """What the pages show, in the core's own integer units."""
    out = site_view(core, now_s, config_store, job)
    out["strings"] = [string_view(core, k) for k in range(core.layout.string_count)]
    return out


def snapshot_chunks(core, now_s: int, config_store=None, job=None):
    """The same snapshot as JSON text, one string at a time (the board: a 600-module
    snapshot would be 35 KB in one piece; a string of 60 is about 3.5 KB)."""
    head = json.dumps(site_view(core, now_s, config_store, job))
    yield head[:-1] + ', "strings": ['
    for k in range(core.layout.string_count):
        yield ("" if k == 0 else ", ") + json.dumps(string_view(core, k))
    yield "]}"


def threshold_values(t) -> dict:
    """The thresholds in force, in the units of site.json's thresholds section."""
    return {
        "voltage_low_alarm_mv": t.voltage_low_alarm_uv // 1000,
        "voltage_low_warning_mv": t.voltage_low_warning_uv // 1000,
        "voltage_high_warning_mv": t.voltage_high_warning_uv // 1000,
        "voltage_high_alarm_mv": t.voltage_high_alarm_uv // 1000,
        "voltage_hysteresis_mv": t.voltage_hysteresis_uv // 1000,
        "temp_low_alarm_mc": t.temp_low_alarm_mc,
        "temp_low_warning_mc": t.temp_low_warning_mc,
        "temp_high_warning_mc": t.temp_high_warning_mc,
        "temp_high_alarm_mc": t.temp_high_alarm_mc,
        "ri_warning_nohm": t.ri_warning_nohm,
        "ri_alarm_nohm": t.ri_alarm_nohm,
        "spread_warning_mv": t.spread_warning_uv // 1000,
        "spread_alarm_mv": t.spread_alarm_uv // 1000,
        "confirm_samples": t.confirm_samples,
    }


class WebLink:
    """Snapshot out, commands in (see the module comment)."""

    def __init__(
        self, config_obj=None, config_store=None, describe_event=None, board=False
    ) -> None:
        self._lock = _lock()
        self._json = b"{}"
        self._pending: list = []  # (ticket, kind, args, user, number)
        self._results: dict = {}  # ticket -> (ok, text)
        self._ticket = 0
        self.config_obj = config_obj  # the site.json object in use (None: not editable)
        self.config_store = config_store  # manager_fw.config.ConfigStore or None
        self.describe_event = describe_event  # (core, event) -> text, for the events page
        self._events: list = []  # [seq, time_s, code, module_label, string, text]
        self._event_seq = 0
        self._events_taken = 0
        self.max_events = 200
        self.version = 0  # snapshots published
        self.job = None  # the last addressing job started from the web
        # board: one asyncio loop runs the bus loop and the server, so a request handler
        # runs only while the bus loop waits: it may read the core directly, one string
        # at a time, instead of a copy of everything (snapshot_chunks)
        self.board = board
        self.core = None
        self.now_s = 0
        if board:
            self.max_events = 40

    # -- the loop's side -------------------------------------------------------------

    def publish(self, core, now_s: int) -> None:
        if self.board:
            self.core = core
            self.now_s = now_s
            self.version += 1
            return
        data = json.dumps(snapshot(core, now_s, self.config_store, self.job)).encode()
        with self._lock:
            self._json = data
            self.version += 1

    def add_event(self, when: str, code: int, label: str, string: int, text: str) -> None:
        """An event for the events page: [seq, when, code, module label, string, text]."""
        with self._lock:
            self._event_seq += 1
            self._events.append([self._event_seq, when, code, label, string, text])
            if len(self._events) > self.max_events:
                del self._events[0]

    def apply(self, core, now_s: int) -> int:
        """Carry out the queued commands; how many."""
        with self._lock:
            work = self._pending
            self._pending = []
        for ticket, kind, args, _user, number in work:
            try:
                ok, text = self._do(core, now_s, kind, args, number)
            except Exception as e:  # noqa: BLE001 - a bad command never stops the loop
                ok, text = False, "%s failed: %s" % (kind, e)
            with self._lock:
                self._results[ticket] = (ok, text)
                if len(self._results) > RESULTS_KEPT:
                    for old in list(self._results):
                        if old <= ticket - RESULTS_KEPT:
                            del self._results[old]
        return len(work)

    def _log(self, core, now_s, op, number, module=ev.NO_MODULE, string=ev.NO_STRING, value=0):
        core._log(now_s, ev.EV_OPERATOR, module, string, value, op, number)

    def _do(self, core, now_s, kind, args, number):
        if kind == "log":  # a login, a user added: only the record of who
            self._log(core, now_s, args.get("op", 0), number, value=args.get("value", 0))
            return True, "logged"
        if kind == "mute":
            core.press_mute(now_s)
            self._log(core, now_s, OP_MUTE, number)
            return True, "buzzer muted until the next new alarm"
        if kind == "config":
            return self._apply_config(core, now_s, args, number)
        if kind in ADDR_JOBS or kind == "address_stop":
            return self._addressing(core, now_s, kind, args, number)
        string = args.get("string", -1)
        k = core.layout.string_count
        if kind in ("runaway_reset", "equalise_on", "equalise_off", "ri_now"):
            if kind != "ri_now" and not 0 <= string < k:
                return False, "string %d: choose 1..%d" % (string + 1, k)
        if kind == "runaway_reset":
            if core.runaway is None:
                return False, "string %d: thermal runaway detection is off" % (string + 1)
            done = core.reset_runaway(string, now_s)
            self._log(core, now_s, OP_RUNAWAY_RESET, number, string=string, value=int(done))
            if done:
                return True, "string %d: thermal-runaway trip reset" % (string + 1)
            return True, "string %d had no thermal-runaway trip latched" % (string + 1)
        if kind in ("equalise_on", "equalise_off"):
            on = kind == "equalise_on"
            core.strings.enabled[string] = 1 if on else 0
            op = OP_EQUALISE_ON if on else OP_EQUALISE_OFF
            self._log(core, now_s, op, number, string=string)
            return True, "string %d: equalising %s" % (string + 1, "on" if on else "off")
        if kind == "ri_now":
            sched = core.ri_schedule
            if sched is None:
                return False, "Ri measurement is off in the configuration (ri.enabled)"
            if sched.in_round():
                return True, "an Ri round is running already"
            sched.next_round_s = now_s  # the scheduler starts the round on its next turn
            self._log(core, now_s, OP_RI_NOW, number)
            return True, "Ri round started: one module at a time, 30-50 s apart"
        if kind == "rebaseline":
            module = args.get("module", -1)
            if not -1 <= module < core.layout.module_count:
                return False, "module %d: no such module" % module
            core.rebaseline_ri(module, now_s)
            self._log(core, now_s, OP_REBASELINE, number, module=module & 0xFFFF)
            return True, "Ri baseline of %s learned again from the next results" % (
                "every module" if module < 0 else "module " + core.layout.label(module)
            )
        return False, "unknown action %r" % kind

    def _addressing(self, core, now_s, kind, args, number):
        """Setup mode (docs/manager.md, "Addressing"): polling stops while a job owns
        the bus; the core starts its census again when the job is done."""
        from manager_fw import addressing as mad

        job = core.setup_job
        if kind == "address_stop":
            if job is None:
                return False, "no addressing job is running"
            job.stop()
            self._log(core, now_s, OP_ADDRESSING, number, value=ADDR_JOBS_STOP)
            return True, "stopping %s; polling resumes after it" % type(job).__name__
        if job is not None:
            return False, "%s is still running: stop it first" % type(job).__name__
        address = args.get("address", -1)
        try:
            if kind == "address_auto":
                job = mad.AutoAddressing(args.get("start", 1), args.get("end", 1))
                text = "automatic addressing %d..%d: press each module's button in turn" % (
                    job.start,
                    job.end,
                )
            elif kind == "address_set":
                job = mad.SetAddress(args.get("current", -1), args.get("new", -1))
                text = "setting address %d to %d (one module on the bus)" % (job.current, job.new)
            elif kind == "address_query":
                job = mad.QueryLone()
                text = "asking the lone module on the bus its address"
            elif kind == "identify":
                if not 1 <= address <= 0xFFFF:
                    return False, "identify: give the module's address"
                job = mad.Identify(address)
                text = "module %d blinks red/green until its button is pressed" % address
            else:
                job = mad.ResetAddresses(None if address < 0 else address)
                text = "resetting %s to address 0" % (
                    "every module" if address < 0 else "module %d" % address
                )
        except ValueError as e:
            return False, str(e)
        self.job = job
        core.begin_setup(job, now_s)
        op_module = getattr(job, "start", address if address >= 0 else ev.NO_MODULE)
        self._log(core, now_s, OP_ADDRESSING, number, module=op_module & 0xFFFF,
                  value=ADDR_JOBS.index(kind))  # fmt: skip
        return True, text

    def _apply_config(self, core, now_s, obj, number):
        from manager_fw import config

        try:
            cfg = config.parse_config(obj)
        except config.ConfigError as e:
            return False, str(e)
        store = self.config_store
        if store is not None:
            try:
                store.save(obj)
            except Exception as e:  # noqa: BLE001 - storage fault: the old one stays
                return False, "not stored (%s): the configuration in use is unchanged" % e
        else:
            store = _TextOnly(json.dumps(obj))
        self.config_obj = obj
        core.config_saved(now_s, store)
        self._log(core, now_s, OP_CONFIG, number)
        # thresholds apply at once; the rest when the shell starts the core again
        core.cfg.thresholds = cfg.thresholds
        alarms = core.alarms
        for s in range(len(alarms.thresholds)):
            alarms.thresholds[s] = cfg.thresholds
        if core.history is not None and hasattr(core.history, "set_thresholds"):
            core.history.set_thresholds(cfg.thresholds)
        return True, ("saved; thresholds apply now, other changes when the manager restarts")

    # -- the server's side -------------------------------------------------------------

    def latest(self) -> bytes:
        if self.board:
            return "".join(self.chunks()).encode() if self.core is not None else b"{}"
        with self._lock:
            return self._json

    def chunks(self):
        """The snapshot as pieces of JSON text (board), or the one published (host)."""
        if self.board:
            if self.core is None:
                yield "{}"
                return
            yield from snapshot_chunks(self.core, self.now_s, self.config_store, self.job)
            return
        yield self.latest().decode()

    def events_since(self, seq: int) -> list:
        with self._lock:
            return [e for e in self._events if e[0] > seq]

    def submit(self, kind: str, args, user: str, number: int) -> int:
        """Queue a command for the loop; its ticket, or -1 when the queue is full."""
        with self._lock:
            if len(self._pending) >= MAX_PENDING:
                return -1
            self._ticket += 1
            self._pending.append((self._ticket, kind, args, user, number))
            return self._ticket

    def result(self, ticket: int):
        """(ok, text) once the loop carried the command out, else None."""
        with self._lock:
            return self._results.get(ticket)


class _TextOnly:
    """What core.config_saved needs when there is no store (the simulator)."""

    def __init__(self, text):
        self.text = text
