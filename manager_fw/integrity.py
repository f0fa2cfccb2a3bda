# What the manager watches so that only it commands the modules (docs/protocol.md,
# "Authentication"; docs/manager.md):
#
#   - the authentication counter: every module's floor (INFO at census) moves the
#     manager's counter past it, so a restarted manager is never taken for a replay;
#   - refusals: a module that refused unauthenticated or replayed commands raises its
#     ATTENTION flag; the manager reads its STATUS, and any refusal count it has not
#     seen before is a warning (a device on the bus sends commands without the key);
#   - relay/IO boxes (manager_fw/jobs/io.py): their INFO's refusal count (RELAY_SETs
#     the box refused, less those of this manager it answered with NAK 6) and counter
#     floor, read about once a minute;
#   - calibration: every channel of every module is read after the census and once a
#     day, kept, and every change is logged (EV_CALIBRATION) - a calibration the manager
#     did not write is a warning.
#
# Service jobs on the bus (manager_fw/bus.py), one transaction at a time, preallocated.

from array import array

from manager_fw import bus as b
from manager_fw import events as ev
from manager_fw import poller as pl
from shared import protocol as p
from shared.compat import const

CAL_CHANNELS = const(6)
CAL_PERIOD_S = const(86400)  # re-read every module's calibration daily
CTR_MARGIN = const(0x10000)  # frames the manager skips past a module's counter floor


class CalRead(b.BusJob):
    """CAL_READ of every channel of every answering module, one per turn."""

    def __init__(self, watch) -> None:
        self.watch = watch
        self.queued = False
        self.module = 0
        self.channel = 0
        self.active = False

    def start(self) -> None:
        self.module = 0
        self.channel = 0
        self.active = True

    def next_request(self, master, now_us: int) -> bool:
        self.queued = False
        w = self.watch
        core = w.core
        n = core.layout.module_count
        addrs = core.layout.addresses
        while self.module < n and core.poller.state[addrs[self.module]] != pl.ST_OK:
            self.module += 1
            self.channel = 0
        if self.module >= n:
            self.active = False
            return False
        master.tx[8] = self.channel
        master.request(addrs[self.module], p.CMD_CAL_READ, 1, b.EXPECT_ONE, 0)
        return True

    def on_reply(self, master, frame, now_us: int) -> bool:
        w = self.watch
        i = self.module
        if frame.src != w.core.layout.addresses[i]:
            return False
        if (
            frame.cmd == p.CMD_CAL_READ | p.REPLY
            and frame.length == 9
            and frame.u8(0) == self.channel
        ):
            w.calibration(i, self.channel, frame.i32(1), frame.i32(5))
        return True

    def on_window_end(self, master, now_us: int) -> None:
        self.channel += 1
        if self.channel >= CAL_CHANNELS:
            self.channel = 0
            self.module += 1
        if self.active:
            self.watch._enqueue(self)  # the next read, in the next free service turn


class StatusRead(b.BusJob):
    """STATUS of one module that raised ATTENTION: its refusal count."""

    def __init__(self, watch) -> None:
        self.watch = watch
        self.queued = False
        self.module = -1

    def next_request(self, master, now_us: int) -> bool:
        self.queued = False
        if self.module < 0:
            return False
        master.request(self.watch.core.layout.addresses[self.module], p.CMD_STATUS, 0,
                       b.EXPECT_ONE, 0)  # fmt: skip
        return True

    def on_reply(self, master, frame, now_us: int) -> bool:
        i = self.module
        w = self.watch
        if i < 0 or frame.src != w.core.layout.addresses[i]:
            return False
        if frame.cmd == p.CMD_STATUS | p.REPLY and frame.length == 16:
            w.refusals(i, frame.u16(14))
        return True

    def on_window_end(self, master, now_us: int) -> None:
        self.module = -1


class IntegrityWatch:
    def __init__(self, core) -> None:
        self.core = core
        n = core.layout.module_count
        self.cal_offset = array("i", bytes(4 * n * CAL_CHANNELS))
        self.cal_gain_ppm = array("i", bytes(4 * n * CAL_CHANNELS))
        self.cal_known = bytearray(n * CAL_CHANNELS)
        self.cal_changes = 0
        self.refused = array("H", bytes(2 * n))  # the refusal count each module last reported
        self.refusing: list = []  # modules that reported refusals (indices)
        self.box_refused = array("H", bytes(2 * 16))  # per box number: its INFO count
        self.box_ours = array("H", bytes(2 * 16))  # of which this manager's (NAK 6)
        self.box_naks = bytearray(16)  # NAK 6 in a row to this manager
        self.cal_job = CalRead(self)
        self.status_job = StatusRead(self)
        self._cursor = 0
        self._next_cal_s = -1
        if not core.master.signer.has_key():
            core._problem(
                "no site key: the manager cannot send authenticated commands (targets, "
                "addresses, calibration), so no module balances; install the site key "
                "(docs/protocol.md, 'Authentication')"
            )

    # -- from the census and the jobs ------------------------------------------------

    def info(self, i: int, frame) -> None:
        """An INFO reply (25 bytes): key state, refusal count, counter floor."""
        core = self.core
        if frame.u8(16) == 0:
            core._problem(
                "%s (address %d) has no site key: press its button during addressing, "
                "or deploy the key over USB" % (core.layout.label(i), core.layout.addresses[i])
            )
        self.refusals(i, frame.u16(17))
        o = frame.off + 19
        lo = frame.buf[o] | (frame.buf[o + 1] << 8) | (frame.buf[o + 2] << 16)
        hi = frame.buf[o + 3] | (frame.buf[o + 4] << 8) | (frame.buf[o + 5] << 16)
        core.master.signer.advance_past(hi, lo, CTR_MARGIN)

    def box_info(self, box: int, frame) -> None:
        """A relay/IO box's INFO reply: key state, refusal count, counter floor."""
        core = self.core
        if frame.length != 25:
            core._problem(
                "relay/IO box %d answers INFO without the authentication fields: its "
                "firmware predates authenticated RELAY_SET; deploy it again (with --site-key)" % box
            )
            return
        if frame.u8(16) == 0:
            core._problem(
                "relay/IO box %d has no site key: it refuses RELAY_SET and keeps its "
                "fail-safe relays (the alarm contact) released; deploy it with --site-key "
                "over USB (docs/protocol.md, 'Authentication')" % box
            )
        o = frame.off + 19
        lo = frame.buf[o] | (frame.buf[o + 1] << 8) | (frame.buf[o + 2] << 16)
        hi = frame.buf[o + 3] | (frame.buf[o + 4] << 8) | (frame.buf[o + 5] << 16)
        core.master.signer.advance_past(hi, lo, CTR_MARGIN)
        count = frame.u16(17)
        if count < self.box_refused[box]:  # the box restarted: its count too
            self.box_ours[box] = 0
        foreign = count - self.box_ours[box]
        if foreign > 0 and count > self.box_refused[box]:
            core._log(core.now_s, ev.EV_AUTH_REFUSED, value=count, arg=box)
            core._problem(
                "relay/IO box %d refused unauthenticated or replayed RELAY_SET: a device "
                "on the bus sends commands without the site key" % box
            )
        self.box_refused[box] = count

    def box_refused_us(self, box: int) -> None:
        """The box answered this manager's RELAY_SET with NAK 6."""
        core = self.core
        if self.box_ours[box] < 0xFFFF:
            self.box_ours[box] += 1
        n = self.box_naks[box] + 1
        self.box_naks[box] = n if n < 255 else 255
        if n == 2:  # not only a counter behind its floor (INFO is read in between)
            core._log(core.now_s, ev.EV_AUTH_REFUSED, value=n, arg=box, extra=1)
            core._problem(
                "relay/IO box %d refuses this manager's RELAY_SET: it holds another site "
                "key or none; its fail-safe relays (the alarm contact) stay released. "
                "Deploy it with --site-key over USB" % box
            )

    def box_accepted(self, box: int) -> None:
        self.box_naks[box] = 0

    def refusals(self, i: int, count: int) -> None:
        core = self.core
        if count > self.refused[i] or (count and i not in self.refusing):
            if i not in self.refusing:
                self.refusing.append(i)
            core._log(core.now_s, ev.EV_AUTH_REFUSED, module=i, value=count)
            core._problem(
                "%s (address %d) refused unauthenticated or replayed commands: a device "
                "on the bus sends commands without the site key" %
                (core.layout.label(i), core.layout.addresses[i])
            )  # fmt: skip
        self.refused[i] = count

    def calibration(self, i: int, ch: int, offset: int, gain_ppm: int) -> None:
        core = self.core
        j = i * CAL_CHANNELS + ch
        if self.cal_known[j] and (self.cal_offset[j] != offset or self.cal_gain_ppm[j] != gain_ppm):
            self.cal_changes += 1
            core._log(core.now_s, ev.EV_CALIBRATION, module=i, value=offset, arg=ch,
                      extra=gain_ppm)  # fmt: skip
            core._problem(
                "%s (address %d): calibration channel %d changed (offset %d, gain %d ppm) "
                "without this manager writing it" %
                (core.layout.label(i), core.layout.addresses[i], ch, offset, gain_ppm)
            )  # fmt: skip
        self.cal_known[j] = 1
        self.cal_offset[j] = offset
        self.cal_gain_ppm[j] = gain_ppm

    # -- from the core ---------------------------------------------------------------

    def running(self, now_s: int) -> None:
        """Census done: read every calibration now (and daily from now on)."""
        self._next_cal_s = now_s

    def after_cycle(self, now_s: int) -> None:
        core = self.core
        if self._next_cal_s >= 0 and now_s >= self._next_cal_s and not self.cal_job.active:
            self._next_cal_s = now_s + CAL_PERIOD_S
            self.cal_job.start()
        if self.cal_job.active:
            self._enqueue(self.cal_job)
        if self.status_job.module < 0:
            poll = core.poller
            addrs = core.layout.addresses
            n = core.layout.module_count
            for _ in range(n):
                i = self._cursor
                self._cursor = i + 1 if i + 1 < n else 0
                a = addrs[i]
                if poll.state[a] == pl.ST_OK and poll.flags[a] & p.FLAG_ATTENTION:
                    self.status_job.module = i
                    self._enqueue(self.status_job)
                    break

    def _enqueue(self, job) -> None:
        if not job.queued and self.core.master.enqueue_service(job):
            job.queued = True
