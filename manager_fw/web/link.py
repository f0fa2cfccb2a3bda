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

from manager_fw import actions as act
from shared.compat import const

MAX_PENDING = const(16)
RESULTS_KEPT = const(32)
STATUS_PIECE = const(15)  # modules per piece of the board's streamed status
CAL_CHANNELS = const(6)  # manager_fw/integrity.py

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


def module_row(core, i: int) -> list:
    """Module i as the status table shows it, in the core's own integer units."""
    known = core.module_poll_state(i) != 0 and core.voltage_uv[i] > 0
    return [
        i,
        core.layout.label(i),
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


def module_view(core, i: int):
    """Module i in detail (the module page), or None: its row, its Ri as judged (last
    result, baseline and how many results made it, rise over it, over its string's
    median), its block's uid, and every calibration channel as the manager last read
    it (at the census and daily: manager_fw/integrity.py)."""
    if not 0 <= i < core.layout.module_count:
        return None
    cal: list = []
    out: dict = {"row": module_row(core, i), "ri": None, "calibration": cal, "refusals": 0}
    ri = core.judge.ri
    if ri is not None:
        out["ri"] = {
            "last_nohm": ri.last_nohm[i] or None,
            "baseline_nohm": ri.baseline_nohm[i] or None,
            "baseline_results": ri.count[i],
            "rise_pct": ri.rise_pct(i),
            "over_string_pct": ri.over_string_pct[i],
        }
        out["uid"] = "".join("%02x" % b for b in ri.uid[8 * i : 8 * i + 8])
    w = core.integrity
    for ch in range(CAL_CHANNELS):
        j = i * CAL_CHANNELS + ch
        if w.cal_known[j]:
            cal.append([ch, w.cal_offset[j], w.cal_gain_ppm[j]])
    out["refusals"] = w.refused[i]
    return out


def string_view(core, k: int, modules=True) -> dict:
    """String k as the pages show it, in the core's own integer units (modules=False:
    without its modules' rows, which the board streams in pieces)."""
    lay = core.layout
    st = core.strings
    judge = getattr(core, "judge", None)
    first = lay.string_start[k]
    mods = [module_row(core, first + pos) for pos in range(lay.sizes[k])] if modules else []
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
        "cycles": core.cycles,  # measurement cycles since the start
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


def _head_text(core, now_s, config_store, job, extra):
    head = site_view(core, now_s, config_store, job)
    if extra:
        head.update(extra)
    return json.dumps(head)[:-1] + ', "strings": ['


def snapshot_chunks(core, now_s: int, config_store=None, job=None, extra=None):
    """The same snapshot as JSON text in pieces of at most STATUS_PIECE modules (the
    board: a 600-module snapshot would be 35 KB in one piece, and each piece is work
    done between two turns of the bus).  extra: more keys for the head."""
    yield _head_text(core, now_s, config_store, job, extra)  # nothing of it kept after
    lay = core.layout
    for k in range(lay.string_count):
        yield '%s{"modules": [' % ("" if k == 0 else ", ")
        first = lay.string_start[k]
        for pos in range(0, lay.sizes[k], STATUS_PIECE):
            end = min(pos + STATUS_PIECE, lay.sizes[k])
            rows = [json.dumps(module_row(core, first + j)) for j in range(pos, end)]
            yield ("" if pos == 0 else ", ") + ", ".join(rows)
        rest = string_view(core, k, False)
        del rest["modules"]  # (MicroPython's dicts keep no order: no slicing by position)
        yield "], " + json.dumps(rest)[1:]
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
        # the board's heap, bytes free: after the last collection, the least seen, and
        # at the start (beside the core, after the web's code, with the app)
        self.heap_free = None
        self.heap_low = None
        self.heap_start: list | None = None
        self.history_slice_us_max = 0  # the longest a module page's history read held the loop
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
                if kind == "module":  # a view, not an action: nothing logged
                    ok, text = True, module_view(core, args.get("module", -1))
                elif kind == "config":
                    ok, text = act.save_config(core, now_s, args, number, self.config_store)
                    if ok:
                        self.config_obj = args
                else:
                    ok, text = act.carry_out(core, now_s, kind, args, number)
                    if ok and kind in act.ADDR_JOBS:
                        self.job = core.setup_job
            except Exception as e:  # noqa: BLE001 - a bad command never stops the loop
                ok, text = False, "%s failed: %s" % (kind, e)
            with self._lock:
                self._results[ticket] = (ok, text)
                if len(self._results) > RESULTS_KEPT:
                    for old in list(self._results):
                        if old <= ticket - RESULTS_KEPT:
                            del self._results[old]
        return len(work)

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
            extra = None
            if self.heap_free is not None:
                extra = {"heap_free": self.heap_free, "heap_low": self.heap_low,
                         "heap_start": self.heap_start,
                         "history_slice_us_max": self.history_slice_us_max}  # fmt: skip
            yield from snapshot_chunks(self.core, self.now_s, self.config_store, self.job, extra)
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
        """(ok, text) once the loop carried the command out, else None.  Read once: the
        waiting request takes it (RESULTS_KEPT only bounds those nobody waited for)."""
        with self._lock:
            return self._results.pop(ticket, None)
