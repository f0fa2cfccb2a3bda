# The manager's side of the module bus: a half-duplex transaction engine, sans-I/O.
#
# Exactly one request is outstanding at a time.  Work comes from *jobs*:
#   - a foreground job (addressing, manual setup) which, while present, is the only
#     one that talks: setup mode stops normal polling (SPEC §3);
#   - the poller (manager_fw/poller.py), which runs measurement cycles;
#   - service transactions (Ri start/read, status, info, discovery), at most
#     `service_per_cycle` between two measurement cycles.
#
# The shell loop:
#     n = master.step(now_us)            # > 0: send master.tx[:n] now
#     master.receive(data, now_us)       # bytes read from the bus
# Times are microsecond ticks (shared/compat ticks arithmetic, period 2**30).
#
# A job implements:
#     next_request(master, now_us) -> bool   # calls master.request(...) and returns True
#     on_reply(master, frame, now_us) -> bool # a reply during its window; True = done
#     on_window_end(master, now_us)           # the window closed (timeouts are decided here)

from shared import auth
from shared import protocol as p
from shared.compat import IS_MICROPYTHON, const, ticks_add, ticks_diff

# A module must start its reply within this time after the end of a unicast request
# (docs/protocol.md, "Timing").
REPLY_DEADLINE_US = const(5000)
GAP_CHARS = const(2)

EXPECT_NONE = const(0)
EXPECT_ONE = const(1)
EXPECT_GROUP = const(2)
EXPECT_WINDOW = const(3)

SERVICE_QUEUE = const(32)  # service transactions waiting at most (a ring: no allocation)

# protocol.REPLY and protocol.ADDR_MANAGER as constants of this module: on MicroPython a
# module attribute (p.REPLY) is a dictionary look-up at every use, a constant is compiled
# in.  (A test checks they equal the protocol's.)
REPLY_BIT = const(0x80)
MANAGER_ADDR = const(0xFFFE)


class BusJob:
    """What the BusMaster asks of whoever wants the bus (see the module comment)."""

    def next_request(self, master: "BusMaster", now_us: int) -> bool:
        raise NotImplementedError

    def on_reply(self, master: "BusMaster", frame, now_us: int) -> bool:
        return False

    def on_window_end(self, master: "BusMaster", now_us: int) -> None:
        pass

    def at_cycle_start(self) -> bool:
        """Only the poller has cycles; between two of them service requests run."""
        return True


class ServiceRequest(BusJob):
    """One unicast transaction queued by the manager core; `done(master, frame)` is
    called with the reply Frame or None on timeout."""

    def __init__(self, dst: int, cmd: int, payload: bytes, done, signed: bool = False) -> None:
        self.dst = dst
        self.cmd = cmd
        self.payload = payload
        self.done = done
        self.signed = signed  # append the authentication trailer (shared/auth.py)
        self.answered = False

    def next_request(self, master: "BusMaster", now_us: int) -> bool:
        tx = master.tx
        for i in range(len(self.payload)):
            tx[p.HEADER_LEN + i] = self.payload[i]
        master.request(self.dst, self.cmd, len(self.payload), EXPECT_ONE, 0, self.signed)
        return True

    def on_reply(self, master: "BusMaster", frame, now_us: int) -> bool:
        if frame.src != self.dst and self.dst != p.ADDR_BROADCAST:
            master.unexpected += 1
            return False
        self.answered = True
        self.done(master, frame)
        return True

    def on_window_end(self, master: "BusMaster", now_us: int) -> None:
        if not self.answered:
            self.done(master, None)


class BusMaster:
    def __init__(self, baud: int = 115200, key=None) -> None:
        self.baud = baud
        # The site key and the counter of authenticated requests (docs/protocol.md,
        # "Authentication").  Without a key no authenticated request can be sent.
        # On MicroPython the MAC runs on shared/sha256.py (viper), which allocates nothing:
        # hashlib's objects and digests would leave ~400 bytes of garbage per signed
        # request, ten a cycle (mcu.m0.loop_alloc_bytes, docs/benchmarks.md)
        self.signer = auth.Signer(key, IS_MICROPYTHON)
        self.tx = bytearray(p.FRAME_MAX)
        self.tx_len = 0
        self.seq = 0
        self.deframer = p.Deframer()
        self.foreground: BusJob | None = None
        self.poller: BusJob | None = None
        self._service: list = [None] * SERVICE_QUEUE
        self._service_head = 0
        self.service_count = 0  # waiting service transactions
        self.service_dropped = 0  # refused because the queue was full
        self.service_per_cycle = 2
        self._service_budget = 0
        self._current: BusJob | None = None
        self.waiting = False
        self.expect = EXPECT_NONE
        self.deadline_us = 0
        self.free_at_us = 0
        self.request_end_us = 0
        self.window_start_us = 0
        self._window_us = 0
        self._count = 0
        self.gap_us = p.wire_us(GAP_CHARS, baud)
        # Added to every reply window.  0 on a board's UART; a host behind a USB serial
        # adapter sets it to cover the adapter's latency (replies reach it late).
        self.window_slack_us = 0
        # Counters for diagnostics
        self.requests = 0
        self.replies = 0
        self.timeouts = 0
        self.unexpected = 0
        self.last_unexpected_src = -1
        self.busy_us = 0  # wire time of requests plus reply windows, for statistics

    # -- called by jobs --------------------------------------------------------------

    def request(
        self, dst: int, cmd: int, length: int, expect: int, arg: int, signed: bool = False
    ) -> None:
        """Encode the request whose payload fields a job put in tx[8:8+length].

        expect: EXPECT_NONE (broadcast, no reply), EXPECT_ONE (unicast reply),
        EXPECT_GROUP (arg = count of POLL_GROUP slots), EXPECT_WINDOW (arg = µs to
        listen after the request, e.g. DISCOVER with slots or addressing offers).
        signed: append the counter and MAC (raises ValueError without a site key).
        """
        self.seq = (self.seq + 1) & 0xFF
        if signed:
            if not self.signer.has_key():
                raise ValueError("no site key: authenticated commands cannot be sent")
            n = length + p.AUTH_LEN
            p.encode_header(self.tx, dst, p.ADDR_MANAGER, cmd, self.seq, n)
            self.signer.sign_request(self.tx, length)
            self.tx_len = p.finish_frame(self.tx, n)
        else:
            self.tx_len = p.encode_frame(self.tx, dst, p.ADDR_MANAGER, cmd, self.seq, length)
        self.expect = expect
        if expect == EXPECT_ONE:
            self._window_us = REPLY_DEADLINE_US + p.wire_us(p.FRAME_MAX, self.baud)
        elif expect == EXPECT_GROUP:
            # ends with the last slot's guard: the line is already idle for 2 chars
            self._window_us = p.group_slot_start_us(arg, self.baud)
            self._count = arg
        elif expect == EXPECT_WINDOW:
            self._window_us = arg
        else:
            self._window_us = 0
        if expect != EXPECT_NONE:
            self._window_us += self.window_slack_us

    def enqueue_service(self, req: BusJob) -> bool:
        """Queue one service transaction; False (and counted) when the queue is full."""
        if self.service_count >= SERVICE_QUEUE:
            self.service_dropped += 1
            return False
        self._service[(self._service_head + self.service_count) % SERVICE_QUEUE] = req
        self.service_count += 1
        return True

    # -- shell interface -------------------------------------------------------------

    def step(self, now_us: int) -> int:
        """Return the length of a frame in tx to send now, or 0."""
        if not self.requests and not self.waiting:
            # the very first step: the line is free now, whatever the tick counter reads
            # (free_at_us = 0 would be "in the future" for half of all start times)
            self.free_at_us = now_us
        if self.waiting:
            if ticks_diff(now_us, self.deadline_us) < 0:
                return 0
            self._close_window(now_us, timed_out=True)
        if ticks_diff(now_us, self.free_at_us) < 0:
            return 0
        # Keep the mark recent: tick comparisons hold for half the tick period (537 s),
        # and a bus idle longer than that (modules asleep) must not look busy.
        self.free_at_us = now_us
        job = self._pick_job(now_us)
        if job is None:
            return 0
        self._current = job
        n = self.tx_len
        wire = p.wire_us(n, self.baud)
        self.request_end_us = ticks_add(now_us, wire)
        self.requests += 1
        self.busy_us += wire + self._window_us
        if self.expect == EXPECT_NONE:
            self.free_at_us = ticks_add(self.request_end_us, self.gap_us)
            self.waiting = False
            self._current = None
        else:
            self.waiting = True
            self.window_start_us = self.request_end_us
            self.deadline_us = ticks_add(self.request_end_us, self._window_us)
        return n

    def receive(self, data, now_us: int, start: int = 0, end: int = -1) -> None:
        # (The hot path of a manager: every reply passes here.  Its functions keep their
        # frames within 11 words, locals plus stack, so MicroPython keeps them on the C
        # stack instead of allocating them per call: docs/benchmarks.md.)
        if end < 0:
            end = len(data)
        while start < end:
            start += self.deframer.feed(data, start, end)
            self._frames(now_us)

    def line_idle(self, now_us: int) -> None:
        """The shell saw the line silent for 2+ character times: settle partial frames."""
        self.deframer.idle()
        self._frames(now_us)

    def wake_in_us(self, now_us: int) -> int:
        """µs from now_us until step() may have something to do: a reply window closes,
        the line is free again, the next cycle is due; 0: now; -1: nothing to do until
        work is queued (the core's step queues it)."""
        if self.waiting:
            d = ticks_diff(self.deadline_us, now_us)
            return d if d > 0 else 0
        d = ticks_diff(self.free_at_us, now_us)
        if d > 0:
            return d
        if self.foreground is not None:
            return 1000  # foreground jobs pace themselves (WAKE every 100 ms, offers)
        if self.service_count:
            return 0
        poller = self.poller
        if poller is not None:
            return poller.wake_in_us(now_us)  # type: ignore[attr-defined]
        return -1

    # -- internals ---------------------------------------------------------------------

    def _pick_job(self, now_us: int):
        fg = self.foreground
        if fg is not None:
            return fg if fg.next_request(self, now_us) else None
        poller = self.poller
        if poller is not None and not poller.at_cycle_start():
            return poller if poller.next_request(self, now_us) else None
        # Between two cycles: a few service transactions, then the next cycle.  While
        # the poller waits for its cycle period, service transactions run freely.
        if self.service_count and self._service_budget > 0:
            self._service_budget -= 1
            return self._next_service(now_us)
        if poller is not None and poller.next_request(self, now_us):
            self._service_budget = self.service_per_cycle
            return poller
        if self.service_count:
            return self._next_service(now_us)
        return None

    def _next_service(self, now_us: int):
        req = self._service[self._service_head]
        self._service[self._service_head] = None
        self._service_head = (self._service_head + 1) % SERVICE_QUEUE
        self.service_count -= 1
        return req if req.next_request(self, now_us) else None

    def _frames(self, now_us: int) -> None:
        """Hand every complete frame to the job whose window is open."""
        d = self.deframer
        frame = d.poll()
        while frame is not None:
            if not frame.cmd & REPLY_BIT:
                pass  # our own request echoed by a bus transceiver, or another master
            elif self.waiting and frame.seq == self.seq and frame.dst == MANAGER_ADDR:
                self.replies += 1
                job = self._current
                if job is not None and job.on_reply(self, frame, now_us):
                    self._close_window(now_us, False)
            else:
                self.unexpected += 1
                self.last_unexpected_src = frame.src
            frame = d.poll()

    def _close_window(self, now_us: int, timed_out: bool) -> None:
        job = self._current
        self.waiting = False
        self._current = None
        if timed_out and self.expect == EXPECT_ONE:
            self.timeouts += 1
        # Closed by a reply: wait the inter-frame gap after it.  Closed by the deadline:
        # the line has been idle at least that long already.
        self.free_at_us = now_us if timed_out else ticks_add(now_us, self.gap_us)
        if job is not None:
            job.on_window_end(self, now_us)
