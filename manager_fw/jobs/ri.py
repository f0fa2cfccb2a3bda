# Ri through the bus: RI_START to one module, then RI_READ once its measurement is
# done (docs/manager.md, "Ri schedule").

from manager_fw import bus as b
from manager_fw import events as ev
from shared import protocol as p
from shared.compat import const, ticks_diff

RI_READ_MARGIN_MS = const(200)  # after the duration the module announced
RI_BUSY_RETRY_MS = const(1000)
RI_BUSY_READS = const(10)
RI_START_TRIES = const(3)
# RI_READs left unanswered before the measurement counts as lost.  A module answers
# nothing while it acquires (a low-range repeat after the announced duration: probe and
# capture again) and answers RI_READ busy while it evaluates (in steps across its loop
# turns, docs/ri.md).  Asked again every RI_BUSY_RETRY_MS, so ~12 s of silence after
# the announced end.
RI_READ_MISSES = const(12)


class RiJob(b.BusJob):
    """RI_START to one module, then RI_READ once its measurement is done.

    The job decides what comes next from the replies; the core (which has the clock)
    times the pauses: state PAUSE lasts pause_ms from when the core noticed it.
    """

    IDLE = 0
    START = 1  # RI_START to send
    READ = 2  # RI_READ to send
    PAUSE = 3  # waiting pause_ms, then `after`
    DONE = 4  # result (or failure) ready for the core

    def __init__(self, core) -> None:
        self.core = core
        self.state = RiJob.IDLE
        self.after = RiJob.IDLE
        self.address = -1
        self.queued = False
        self.busy = False  # a request of this job is on the bus
        self.stamp = False  # a pause began: the core notes the time
        self.pause_ms = 0
        self.paused_at_ms = 0
        self.tries = 0
        self.reads = 0
        self.result_state = p.RI_NONE
        self.quality = 0
        self.ri_nohm = 0
        self._nak = 0
        self._answered = False

    def begin(self, address: int) -> None:
        self.address = address
        self.state = RiJob.START
        self.tries = 0
        self.reads = 0
        self.result_state = p.RI_NONE

    def _pause(self, ms: int, after: int) -> None:
        self.state = RiJob.PAUSE
        self.pause_ms = ms
        self.after = after
        self.stamp = True

    def next_request(self, master, now_us: int) -> bool:
        self.queued = False
        self._answered = False
        self._nak = 0
        if self.state == RiJob.START:
            master.tx[8] = self.core.cfg.ri_method
            master.request(self.address, p.CMD_RI_START, 1, b.EXPECT_ONE, 0, True)
        elif self.state == RiJob.READ:
            master.request(self.address, p.CMD_RI_READ, 0, b.EXPECT_ONE, 0)
        else:
            return False
        self.busy = True
        return True

    def on_reply(self, master, frame, now_us: int) -> bool:
        if frame.src != self.address:
            return False
        if frame.cmd == p.CMD_NAK and frame.length == 2:
            self._nak = frame.u8(1)
            self._answered = True
        elif self.state == RiJob.START and frame.cmd == p.CMD_RI_START | p.REPLY:
            if frame.length == 3:
                self._answered = True
                self.tries = 0  # from here on: unanswered RI_READs
                self._pause(frame.u16(1) + RI_READ_MARGIN_MS, RiJob.READ)
        elif self.state == RiJob.READ and frame.cmd == p.CMD_RI_READ | p.REPLY:
            if frame.length == 8:
                self._answered = True
                self.result_state = frame.u8(0)
                self.quality = frame.u8(1)
                self.ri_nohm = frame.u32(2)
                self.reads += 1
                if self.result_state == p.RI_BUSY and self.reads < RI_BUSY_READS:
                    self._pause(RI_BUSY_RETRY_MS, RiJob.READ)
                else:
                    self.state = RiJob.DONE
        return True

    def on_window_end(self, master, now_us: int) -> None:
        self.busy = False
        if self.state != RiJob.START and self.state != RiJob.READ:
            return  # a reply moved it on
        if self._nak == p.ERR_NOT_ALLOWED or self._nak == p.ERR_BAD_VALUE:
            self.result_state = p.RI_INHIBITED
            self.state = RiJob.DONE
            return
        self.tries += 1  # no answer, or NAK busy
        if self.state == RiJob.READ:
            # still evaluating (see RI_READ_MISSES): ask again a second later
            if self.tries >= RI_READ_MISSES:
                self.result_state = p.RI_NONE
                self.state = RiJob.DONE
            else:
                self._pause(RI_BUSY_RETRY_MS, RiJob.READ)
        elif self.tries >= RI_START_TRIES:
            self.result_state = p.RI_NONE
            self.state = RiJob.DONE
        else:
            self._pause(5000, RiJob.START)


# -- the core side: when to measure, what a result means (functions of the core) --


def _asked(core) -> int:
    """The address of the module an operator asked to measure now (core.measure_ri_now),
    or -1; not during a discharge (the ask waits)."""
    i = core._ri_asked
    if i < 0 or core.discharge.any_active():
        return -1
    core._ri_asked = -1
    return core.layout.addresses[i]


def ri_step(core, now_ms: int, now_s: int) -> None:
    """Ri on its schedule (or an operator's ask): start, time the pauses, read, done."""
    sch = core.ri_schedule
    if sch is None:
        return
    job = core.ri_job
    state = job.state
    if state == RiJob.IDLE:
        addr = _asked(core)
        if addr < 0:
            addr = sch.due(now_s, core.discharge.any_active(), core.poller.balance_pct)
        if addr >= 0:
            job.begin(addr)
            core.strings.start_standin(core.poller, addr)  # its dip leaves the target be
            core._enqueue(job)
        return
    if job.stamp:
        job.stamp = False
        job.paused_at_ms = now_ms
    if state == RiJob.PAUSE:
        due = ticks_diff(now_ms, job.paused_at_ms) >= job.pause_ms
        # the module announces its result with the RI_RESULT flag of its MEAS
        early = (
            job.after == RiJob.READ
            and job.reads == 0
            and core.poller.flags[job.address] & p.FLAG_RI_RESULT
        )
        if due or early:
            job.state = job.after
            core._enqueue(job)
    elif state == RiJob.START or state == RiJob.READ:
        if not job.queued and not job.busy:
            core._enqueue(job)  # again after a missed answer
    elif state == RiJob.DONE:
        ri_done(core, job, now_s)


def ri_done(core, job, now_s: int) -> None:
    a = job.address
    i = core.layout.module(a)
    k = core.layout.string_of(i)
    if job.result_state == p.RI_OK:
        v = job.ri_nohm + core.cfg.ri_offset_nohm
        if v < 0:
            v = 0
        core.ri_nohm[i] = v
        core._log(now_s, ev.EV_RI_MEASURED, i, k, v, p.RI_OK, job.quality)
        if core.ri_trend is not None:  # the last result per address
            core.ri_trend.add(a, v, job.quality, now_s)
        core.judge.ri_result(now_s, i, v)  # levels, string, own baseline
    else:
        core._log(now_s, ev.EV_RI_MEASURED, i, k, 0, job.result_state)
    core.strings.end_standin(a, now_s)
    sch = core.ri_schedule
    if sch is not None:
        sch.done(a, now_s)
    job.state = RiJob.IDLE
    job.address = -1
