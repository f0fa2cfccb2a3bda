# Addressing and other setup work as foreground bus jobs (manager_fw/bus.py).
#
# While a job is the master's foreground job, normal polling stops (SPEC §3: setup
# mode).  Every job ends with `done` True and either `error` None (success; details
# in `result`) or `error` a sentence that says what went wrong and what to do.
#
#   AutoAddressing(start, end)    every unaddressed module joins addressing mode; each
#                                 button press takes the next address, in order;
#                                 on an error, `resume_at` says where to continue
#   SetAddress(current, new)      change one module's address (0 = a lone new module)
#   QueryLone()                   ask the only module on the bus its address
#   Identify(address, on)         blink a module until its button confirms (or stop())
#   ResetAddresses(address|None)  one module, or every module, back to address 0
#   DuplicateCheck(address)       list every module (by uid) answering to one address

from manager_fw import bus as b
from shared import protocol as p
from shared.compat import ticks_add, ticks_diff


def uid_hex(buf, off: int) -> str:
    return "".join("%02x" % buf[off + i] for i in range(8))


class Job(b.BusJob):
    def __init__(self) -> None:
        self.done = False
        self.error: str | None = None
        self.result: object = None
        self.stopped = False
        self._bad_before = 0

    def stop(self) -> None:
        """Operator stops the job; it winds down cleanly on its next turn."""
        self.stopped = True

    def _fail(self, message: str) -> None:
        self.error = message
        self.done = True

    def _mark(self, master) -> None:
        d = master.deframer
        self._bad_before = d.crc_errors + d.garbage

    def _corrupt_since_mark(self, master) -> bool:
        d = master.deframer
        return d.crc_errors + d.garbage != self._bad_before


def _reply_window_us(master, reply_len: int) -> int:
    return b.REPLY_DEADLINE_US + p.wire_us(p.OVERHEAD + reply_len, master.baud)


class AutoAddressing(Job):
    ENTER = 0
    CHECK = 1
    OFFER = 2
    CONFIRM = 3
    LEAVE = 4

    def __init__(self, start: int, end: int, offer_interval_ms: int = 300, retries: int = 3):
        super().__init__()
        if not (p.ADDR_MODULE_MIN <= start <= end <= p.ADDR_MODULE_MAX):
            raise ValueError(
                "addresses must satisfy %d <= start <= end <= %d (got %d..%d)"
                % (p.ADDR_MODULE_MIN, p.ADDR_MODULE_MAX, start, end)
            )
        self.start = start
        self.end = end
        self.next = start
        self.resume_at = start
        self.assigned: list = []  # (address, uid hex) in order
        self.offer_interval_us = offer_interval_ms * 1000
        self.retries = retries
        self.collisions = 0
        self.warning: str | None = None
        self._state = AutoAddressing.ENTER
        self._enters = 0
        self._next_offer_us = 0
        self._claim_uid = bytearray(8)
        self._claimed = False
        self._confirmed = False
        self._tries = 0
        self._taken_uid: str | None = None

    def progress(self) -> str:
        return "%d of %d addressed, next %d" % (
            len(self.assigned),
            self.end - self.start + 1,
            self.next,
        )

    def next_request(self, master, now_us: int) -> bool:
        tx = master.tx
        if self.stopped and self._state != AutoAddressing.LEAVE:
            self._state = AutoAddressing.LEAVE
        s = self._state
        if s == AutoAddressing.ENTER:
            if not master.signer.has_key():
                self._fail("no site key configured: a module addressed now could not be "
                           "commanded; set the site key first (docs/protocol.md)")  # fmt: skip
                return False
            tx[8] = 1
            master.request(p.ADDR_BROADCAST, p.CMD_ADDR_MODE, 1, b.EXPECT_NONE, 0)
            self._enters += 1
            if self._enters >= 2:  # twice: one lost broadcast must not leave a module out
                self._state = AutoAddressing.CHECK
            return True
        if s == AutoAddressing.CHECK:
            tx[8] = 1
            self._taken_uid = None
            master.request(self.next, p.CMD_DISCOVER, 1, b.EXPECT_ONE, 0)
            return True
        if s == AutoAddressing.OFFER:
            if ticks_diff(now_us, self._next_offer_us) < 0:
                return False
            p.put_u16(tx, 8, self.next)
            self._claimed = False
            self._mark(master)
            master.request(
                p.ADDR_BROADCAST, p.CMD_ADDR_OFFER, 2, b.EXPECT_WINDOW, _reply_window_us(master, 10)
            )
            return True
        if s == AutoAddressing.CONFIRM:
            for i in range(8):
                tx[8 + i] = self._claim_uid[i]
            p.put_u16(tx, 16, self.next)
            # The site key goes to the module whose button was pressed (it claimed):
            # the one moment it crosses the bus (docs/protocol.md, "Authentication").
            key = master.signer.mac.key
            for i in range(p.KEY_LEN):
                tx[18 + i] = key[i]
            self._confirmed = False
            master.request(
                p.ADDR_BROADCAST, p.CMD_ADDR_CONFIRM, 10 + p.KEY_LEN, b.EXPECT_WINDOW,
                _reply_window_us(master, 10),
            )  # fmt: skip
            return True
        if s == AutoAddressing.LEAVE:
            if self.done:
                return False
            tx[8] = 0
            master.request(p.ADDR_BROADCAST, p.CMD_ADDR_MODE, 1, b.EXPECT_NONE, 0)
            self.done = True
            if self.stopped and self.error is None:
                self.result = "stopped by the operator; resume at %d" % self.next
            elif self.error is None:
                self.result = "addressed %d..%d" % (self.start, self.end)
            return True
        return False

    def on_reply(self, master, frame, now_us: int) -> bool:
        s = self._state
        if s == AutoAddressing.CHECK and frame.cmd == p.CMD_DISCOVER | p.REPLY:
            self._taken_uid = uid_hex(frame.buf, frame.off + 6)
            return True
        if (
            s == AutoAddressing.OFFER
            and frame.cmd == p.CMD_ADDR_OFFER | p.REPLY
            and frame.src == p.ADDR_UNADDRESSED
            and frame.length == 10
            and frame.u16(0) == self.next
        ):
            for i in range(8):
                self._claim_uid[i] = frame.u8(2 + i)
            self._claimed = True
            return True
        if (
            s == AutoAddressing.CONFIRM
            and frame.cmd == p.CMD_ADDR_CONFIRM | p.REPLY
            and frame.src == self.next
            and frame.length == 10
        ):
            ok = True
            for i in range(8):
                if frame.u8(2 + i) != self._claim_uid[i]:
                    ok = False
            self._confirmed = ok
            return ok
        return False

    def on_window_end(self, master, now_us: int) -> None:
        s = self._state
        if s == AutoAddressing.CHECK:
            if self._taken_uid is not None:
                self.resume_at = self.next
                self.error = (
                    "address %d is already used by module %s; reset that module to 0 or "
                    "resume at %d" % (self.next, self._taken_uid, self.next + 1)
                )
                self._state = AutoAddressing.LEAVE
            else:
                self._state = AutoAddressing.OFFER
                self._next_offer_us = now_us
            return
        if s == AutoAddressing.OFFER:
            if self._claimed:
                self._state = AutoAddressing.CONFIRM
                self._tries = 0
                return
            if self._corrupt_since_mark(master):
                self.collisions += 1
                if self.collisions >= 3:
                    self.warning = (
                        "several modules answered the same offer: press one button at a time"
                    )
            self._next_offer_us = ticks_add(now_us, self.offer_interval_us)
            return
        if s == AutoAddressing.CONFIRM:
            if self._confirmed:
                self.assigned.append((self.next, uid_hex(self._claim_uid, 0)))
                self.collisions = 0
                self.next += 1
                self.resume_at = self.next
                if self.next > self.end:
                    self._state = AutoAddressing.LEAVE
                else:
                    self._state = AutoAddressing.CHECK
                return
            self._tries += 1
            if self._tries > self.retries:
                self.resume_at = self.next
                self.error = (
                    "module %s took address %d but did not confirm it (bus noise or a bad "
                    "cable at that module); check it, then resume at %d"
                    % (uid_hex(self._claim_uid, 0), self.next, self.next)
                )
                self._state = AutoAddressing.LEAVE


class SetAddress(Job):
    def __init__(self, current: int, new: int) -> None:
        super().__init__()
        if not (0 <= current <= p.ADDR_MODULE_MAX):
            raise ValueError("current address must be 0..%d" % p.ADDR_MODULE_MAX)
        if not (p.ADDR_MODULE_MIN <= new <= p.ADDR_MODULE_MAX):
            raise ValueError("new address must be %d..%d" % (p.ADDR_MODULE_MIN, p.ADDR_MODULE_MAX))
        self.current = current
        self.new = new
        self._step = 0 if current != new else 1
        self._answer: int | None = None
        self._nak = -1

    def next_request(self, master, now_us: int) -> bool:
        if self.done:
            return False
        if self._step == 0:  # is the new address free?
            master.tx[8] = 1
            self._answer = None
            master.request(self.new, p.CMD_DISCOVER, 1, b.EXPECT_ONE, 0)
            return True
        p.put_u16(master.tx, 8, self.new)
        self._answer = None
        self._nak = -1
        master.request(self.current, p.CMD_SET_ADDRESS, 2, b.EXPECT_ONE, 0, True)
        return True

    def on_reply(self, master, frame, now_us: int) -> bool:
        if frame.cmd == p.CMD_NAK:
            self._nak = frame.u8(1) if frame.length == 2 else 0
            return True
        self._answer = frame.src
        return True

    def on_window_end(self, master, now_us: int) -> None:
        if self._step == 0:
            if self._answer is not None:
                self._fail(
                    "address %d is already taken by another module; choose a free one" % self.new
                )
            else:
                self._step = 1
            return
        if self._nak == p.ERR_NOT_AUTHENTIC:
            self._fail(
                "the module at %d refused: it does not hold this site's key (a new module "
                "has none).  Address it with `address auto %d %d` and its button, or "
                "deploy the key over USB (--site-key)" % (self.current, self.new, self.new)
            )
        elif self._nak >= 0:
            self._fail("the module at %d refused address %d (error %d)" % (
                self.current, self.new, self._nak))  # fmt: skip
        elif self._answer is None:
            self._fail(
                "no module answered at address %d; check that exactly one module with "
                "that address is on the bus" % self.current
            )
        elif self._answer != self.new:
            self._fail("the module answered from %d instead of %d" % (self._answer, self.new))
        else:
            self.result = "module %d is now %d" % (self.current, self.new)
            self.done = True


class QueryLone(Job):
    def __init__(self) -> None:
        super().__init__()
        self._answers = 0
        self._sent = False

    def next_request(self, master, now_us: int) -> bool:
        if self._sent:
            return False
        self._sent = True
        self._mark(master)
        master.request(
            p.ADDR_BROADCAST, p.CMD_GET_ADDRESS, 0, b.EXPECT_WINDOW, _reply_window_us(master, 10)
        )
        return True

    def on_reply(self, master, frame, now_us: int) -> bool:
        if frame.cmd == p.CMD_GET_ADDRESS | p.REPLY and frame.length == 10:
            self._answers += 1
            self.result = (frame.u16(0), uid_hex(frame.buf, frame.off + 2))
        return False

    def on_window_end(self, master, now_us: int) -> None:
        if self._answers > 1 or (self._corrupt_since_mark(master) and self._answers <= 1):
            self.result = None
            self._fail(
                "more than one module answered; disconnect all modules but one and ask again"
            )
        elif self._answers == 0:
            self._fail("no module answered; check the cable and the module's power")
        else:
            self.done = True


class Identify(Job):
    """Identify on: the module alternates red/green until its button is pressed
    (STATUS shows the confirmation) or stop() is called; then identify off."""

    def __init__(self, address: int, on: bool = True, poll_ms: int = 500) -> None:
        super().__init__()
        self.address = address
        self.on = on
        self.confirmed = False
        self.poll_us = poll_ms * 1000
        self._step = 0  # 0 send on/off, 1 poll status, 2 send off, 3 done
        self._next_us = 0
        self._answered = False

    def next_request(self, master, now_us: int) -> bool:
        if self.done:
            return False
        if self._step == 1:
            if self.stopped:
                self._step = 2
            elif ticks_diff(now_us, self._next_us) < 0:
                return False
            else:
                self._answered = False
                master.request(self.address, p.CMD_STATUS, 0, b.EXPECT_ONE, 0)
                return True
        master.tx[8] = 1 if (self._step == 0 and self.on) else 0
        self._answered = False
        master.request(self.address, p.CMD_IDENTIFY, 1, b.EXPECT_ONE, 0)
        return True

    def on_reply(self, master, frame, now_us: int) -> bool:
        if frame.src != self.address:
            return False
        self._answered = True
        if frame.cmd == p.CMD_STATUS | p.REPLY and frame.length == 16:
            if frame.u16(0) & 0x0100:  # STATUS_IDENTIFY_CONFIRMED
                self.confirmed = True
        return True

    def on_window_end(self, master, now_us: int) -> None:
        if not self._answered:
            self._fail("module %d did not answer; is it powered and addressed?" % self.address)
            return
        if self._step == 0:
            if not self.on:
                self.done = True
                self.result = "identify off"
                return
            self._step = 1
            self._next_us = ticks_add(now_us, self.poll_us)
        elif self._step == 1:
            if self.confirmed:
                self.done = True
                self.result = "module %d confirmed by its button" % self.address
            else:
                self._next_us = ticks_add(now_us, self.poll_us)
        else:
            self.done = True
            self.result = "identify stopped by the operator"


class ResetAddresses(Job):
    def __init__(self, address=None) -> None:
        super().__init__()
        self.address = address
        self._sent = 0
        self._answered = False

    def next_request(self, master, now_us: int) -> bool:
        if self.done:
            return False
        if self.address is None:
            master.request(p.ADDR_BROADCAST, p.CMD_RESET_ADDRESS, 0, b.EXPECT_NONE, 0, True)
            self._sent += 1
            if self._sent >= 2:  # twice, as for every setup broadcast
                self.done = True
                self.result = "every module reset to address 0"
            return True
        master.request(self.address, p.CMD_RESET_ADDRESS, 0, b.EXPECT_ONE, 0, True)
        return True

    def on_reply(self, master, frame, now_us: int) -> bool:
        self._answered = frame.src == self.address and frame.cmd == p.CMD_RESET_ADDRESS | p.REPLY
        return True

    def on_window_end(self, master, now_us: int) -> None:
        if self.address is None:
            return
        if self._answered:
            self.done = True
            self.result = "module %d reset to address 0" % self.address
        else:
            self._fail("module %d did not confirm the reset; is it on the bus?" % self.address)


class DuplicateCheck(Job):
    """DISCOVER with uid slots: modules sharing an address answer in different slots."""

    def __init__(self, address: int, slots: int = 16) -> None:
        super().__init__()
        self.address = address
        self.slots = slots
        self.uids: list = []
        self._sent = False

    def next_request(self, master, now_us: int) -> bool:
        if self._sent:
            return False
        self._sent = True
        master.tx[8] = self.slots
        window = p.discover_slot_start_us(self.slots, master.baud)
        self._mark(master)
        master.request(self.address, p.CMD_DISCOVER, 1, b.EXPECT_WINDOW, window)
        return True

    def on_reply(self, master, frame, now_us: int) -> bool:
        if frame.cmd == p.CMD_DISCOVER | p.REPLY and frame.length == 14:
            uid = uid_hex(frame.buf, frame.off + 6)
            if uid not in self.uids:
                self.uids.append(uid)
        return False

    def on_window_end(self, master, now_us: int) -> None:
        self.done = True
        self.result = self.uids
        if len(self.uids) > 1:
            self.error = "address %d is used by %d modules (uids %s); re-address all but one" % (
                self.address,
                len(self.uids),
                ", ".join(self.uids),
            )
