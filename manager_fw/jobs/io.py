# One relay/IO box per job: an authenticated RELAY_SET of the relays the core wants
# (breaker trips, the alarm contact) at every turn - only that feeds the box's
# watchdog (docs/protocol.md §5.1) - whose reply also brings the inputs (the UPS
# signal); INFO first and about once a minute (its refusal count and counter floor,
# manager_fw/integrity.py).  Without a site key the manager can only IO_READ: the box
# then releases its fail-safe relays, the alarm contact shows the alarm.

from manager_fw import bus as b
from manager_fw import events as ev
from manager_fw.site import UPS_BOX
from shared import protocol as p
from shared.compat import const

# Every relay/IO box hears the manager at least this often, whatever the cycle period:
# its communication watchdog (shared/relaybox.py, 10 s by default, 3 s at the least)
# releases the alarm contact when the manager falls silent.
BOX_FEED_MS = const(2000)
INFO_EVERY = const(30)  # RELAY_SETs between two INFO reads of a box (~1 min)


class IoJob(b.BusJob):
    """One relay/IO box: INFO when due, else an authenticated RELAY_SET (IO_READ
    without a site key); the replies bring its relays and inputs (the UPS signal)."""

    def __init__(self, core, box: int) -> None:
        self.core = core
        self.box = box
        self.queued = False
        self.mask = 0  # relays of this box the configuration uses
        self.wanted = 0
        self.known = False  # relays read back at least once
        self.relays = 0
        self.inputs = 0
        self.misses = 0
        self.info_due = True  # INFO next: the box's counter floor and refusals
        self._had_info = False
        self._feeds = 0
        self._asked = 0  # the command of the request in flight

    def next_request(self, master, now_us: int) -> bool:
        self.queued = False
        addr = p.ADDR_RELAY_BOX_BASE + self.box
        # a relay change (the alarm contact) does not wait for a due INFO
        if self.info_due and not (self._had_info and self.pending()):
            self._asked = p.CMD_INFO
            master.request(addr, p.CMD_INFO, 0, b.EXPECT_ONE, 0)
        elif master.signer.has_key():
            master.tx[8] = self.mask
            master.tx[9] = self.wanted & self.mask
            self._asked = p.CMD_RELAY_SET
            master.request(addr, p.CMD_RELAY_SET, 2, b.EXPECT_ONE, 0, True)
            self._feeds += 1
            if self._feeds >= INFO_EVERY:
                self._feeds = 0
                self.info_due = True
        else:
            self._asked = p.CMD_IO_READ
            master.request(addr, p.CMD_IO_READ, 0, b.EXPECT_ONE, 0)
        self.misses += 1  # cleared by the reply
        return True

    def on_reply(self, master, frame, now_us: int) -> bool:
        if frame.src != p.ADDR_RELAY_BOX_BASE + self.box:
            return False
        cmd = frame.cmd
        if cmd == p.CMD_INFO | p.REPLY and self._asked == p.CMD_INFO:
            self.misses = 0
            self.info_due = False
            self._had_info = True
            self.core.integrity.box_info(self.box, frame)
        elif cmd == self._asked | p.REPLY and frame.length == 2:
            self.misses = 0
            self.core.integrity.box_accepted(self.box)
            self.core._box_state(self.box, frame.u8(0), frame.u8(1))
        elif cmd == p.CMD_NAK and frame.length == 2 and frame.u8(1) == p.ERR_NOT_AUTHENTIC:
            self.misses = 0
            self.info_due = True  # its floor may be ahead: read it, then sign past it
            self.core.integrity.box_refused_us(self.box)
        return True

    def pending(self) -> bool:
        return bool(self.mask) and (not self.known or bool((self.relays ^ self.wanted) & self.mask))


# -- the boxes in the core (functions of the core) ---------------------------


def box_state(core, box: int, relays: int, inputs: int) -> None:
    core.box_seen[box] = 1
    core.box_inputs[box] = inputs
    for job in core.io_jobs:
        if job.box == box:
            changed = (relays ^ job.relays) & job.mask if job.known else 0
            job.relays = relays
            job.inputs = inputs
            job.known = True
            if changed and job.mask:
                core._log(core.now_s, ev.EV_RELAY, value=relays, arg=box, extra=changed)
    cfg = core.cfg
    if cfg.ups_source == UPS_BOX and box == cfg.ups_box:
        level = bool(inputs & (1 << cfg.ups_input))
        if level != core.ups_level:
            core.ups_level = level
            core._ups_changed = True


def want_relays(core) -> None:
    """What every relay/IO box should show: breaker trips and the alarm contact."""
    cfg = core.cfg
    tripped = 0
    if core.runaway is not None:
        for s in range(core.layout.string_count):
            if core.runaway.tripped[s]:
                tripped |= 1 << s
    for job in core.io_jobs:
        want = 0
        for box, relay, mask in cfg.breaker_relays:
            if box == job.box and tripped & mask:
                want |= 1 << relay
        if cfg.alarm_box == job.box and core.outputs.relay_energised:
            want |= 1 << cfg.alarm_relay
        job.wanted = want


def feed_boxes(core) -> None:
    """Queue an IO_READ (or RELAY_SET) to every relay/IO box: feeds its watchdog."""
    core._box_fed_ms = core.now_ms
    for io in core.io_jobs:
        core._enqueue(io)


def make_jobs(core) -> list:
    """One IoJob per configured box, each with the mask of the relays the site uses."""
    cfg = core.cfg
    jobs = [IoJob(core, box) for box in cfg.boxes]
    for io in jobs:
        for box, relay, _mask in cfg.breaker_relays:
            if box == io.box:
                io.mask |= 1 << relay
        if cfg.alarm_box == io.box:
            io.mask |= 1 << cfg.alarm_relay
    return jobs
