# Measurement cycles over all strings, as a bus job (manager_fw/bus.py).
#
# One cycle, string by string:
#   SET_TARGET  broadcast for the string's address range (target, equalise/discharge
#               flags), authenticated (shared/auth.py); skipped without a site key
#   POLL_GROUP  broadcast for up to 64 consecutive addresses; each module answers with
#               a MEAS reply in its own time slot (docs/protocol.md, "POLL_GROUP timing")
# Results land in arrays indexed by module address (no object per module: 600 modules
# must fit a board's heap).  The manager core reads them after each cycle.

from array import array

from manager_fw import bus as b
from shared import protocol as p
from shared.compat import const, ticks_diff

ST_NOT_POLLED = const(0)  # configured, no poll answered yet
ST_OK = const(1)  # answered the last poll
ST_SILENT = const(2)  # answered before, missed the last poll(s)
ST_NEVER = const(3)  # polled at least once, never answered
ST_IMPLAUSIBLE = const(4)  # answered, but what it sent cannot be real: two devices
#                            answer as this module, or a reading outside what the
#                            module can measure.  Everything that takes ST_OK only
#                            (targets, averages, balancing, thresholds, runaway) leaves
#                            it out; it still counts as answering for the silent alarm.

# implausible[address] bits: why
IMPL_DUPLICATE = const(1)  # a second valid reply for this address in one POLL_GROUP window
IMPL_RANGE = const(2)  # voltage outside the variant's measuring range, or temperature
#                        outside TEMP_PLAUSIBLE_*
DUPLICATE_HOLD = const(20)  # cycles a module stays implausible after its last duplicate
# (two devices on one address collide: many windows show one reply, or none)
TEMP_PLAUSIBLE_MIN_CC = const(-3999)  # -40 °C and below: a sensor fault (open NTC)
TEMP_PLAUSIBLE_MAX_CC = const(10000)  # over 100 °C: no battery room reads this

# protocol.CMD_POLL_GROUP | protocol.REPLY and protocol.MEAS_LEN as constants of this
# module (compiled in; a module attribute is a dictionary look-up per use on
# MicroPython).  A test checks they equal the protocol's.
MEAS_REPLY_CMD = const(0x83)
MEAS_REPLY_LEN = const(6)

# What the operator is shown of a silent module: manager_fw/silence.py.


def _no_callback(poller, now_us: int) -> None:
    pass


class Poller(b.BusJob):
    def __init__(self, strings, baud: int = 115200, group_max: int = p.GROUP_MAX) -> None:
        """strings: [(first_address, last_address), ...] inclusive, one per string."""
        if not strings:
            raise ValueError("at least one string")
        last_seen = 0
        for first, last in strings:
            if not (p.ADDR_MODULE_MIN <= first <= last <= p.ADDR_MODULE_MAX):
                raise ValueError("string address range %d..%d invalid" % (first, last))
            if first <= last_seen:
                raise ValueError("string address ranges overlap or are not ascending")
            last_seen = last
        if not 1 <= group_max <= p.GROUP_MAX:
            raise ValueError("group_max must be 1..%d" % p.GROUP_MAX)
        self.strings = strings
        self.baud = baud
        self.group_max = group_max
        n = last_seen + 1
        # What the modules measured: µV (10 µV steps on the wire), and the same
        # rounded to mV for the views that work in mV
        self.voltage_uv = array("i", bytes(4 * n))
        self.voltage_mv = array("H", bytes(2 * n))
        self.temp_cc = array("h", bytes(2 * n))  # 0.2 °C steps on the wire
        self.balance_pct = bytearray(n)
        self.flags = bytearray(n)
        self.state = bytearray(n)
        self.misses = array("H", bytes(2 * n))  # consecutive missed polls, saturating
        self.suspect = bytearray(n)  # missed while its window held corrupt frames
        self.duplicate = bytearray(n)  # two valid replies for one address in one window
        self.implausible = bytearray(n)  # IMPL_* bits of the last window (ST_IMPLAUSIBLE)
        self.dup_hold = bytearray(n)  # cycles left implausible after the last duplicate
        # what a reading may be (the core sets the variant's measuring range, mV)
        self.voltage_min_mv = 0
        self.voltage_max_mv = 0xFFFF
        # Per string: what SET_TARGET broadcasts (the manager core sets these)
        k = len(strings)
        self.target_uv = array("i", bytes(4 * k))  # sent in 10 µV steps
        self.target_flags = bytearray(k)
        self.target_timeout_s = 10
        # Cycle bookkeeping
        self.cycle_period_us = 0  # minimum time from one cycle start to the next
        self.cycle = 0
        self.cycle_started_us = 0
        self.last_cycle_us = 0
        self.on_cycle_end = _no_callback  # called as on_cycle_end(poller, now_us)
        self._in_cycle = False
        self._started_once = False
        self._string = 0
        self._phase = 0
        self._next_first = 0
        self._group_first = 0
        self._group_count = 0
        self._got = bytearray(p.GROUP_MAX)
        self._bad_before = 0

    def at_cycle_start(self) -> bool:
        return not self._in_cycle

    def wake_in_us(self, now_us: int) -> int:
        """µs until the next cycle may start (0: now, or a cycle is under way)."""
        if self._in_cycle or not self._started_once or not self.cycle_period_us:
            return 0
        since = ticks_diff(now_us, self.cycle_started_us)
        if 0 <= since < self.cycle_period_us:
            return self.cycle_period_us - since
        return 0

    # -- bus job -------------------------------------------------------------------

    def next_request(self, master, now_us: int) -> bool:
        if not self._in_cycle:
            if self._started_once and self.cycle_period_us:
                # a negative distance means the last start is more than half the tick
                # period (537 s) ago (polling was stopped): long enough
                since = ticks_diff(now_us, self.cycle_started_us)
                if 0 <= since < self.cycle_period_us:
                    return False
            self._in_cycle = True
            self._started_once = True
            self.cycle_started_us = now_us
            self._string = 0
            self._phase = 0
        first, last = self.strings[self._string]
        tx = master.tx
        if self._phase == 0:
            self._phase = 1
            self._next_first = first
            if master.signer.has_key():
                k = self._string
                n = p.put_set_target(tx, first, last, self.target_uv[k], self.target_flags[k],
                                     self.target_timeout_s)  # fmt: skip
                master.request(p.ADDR_BROADCAST, p.CMD_SET_TARGET, n, b.EXPECT_NONE, 0, True)
                return True
        start = self._next_first
        count = last - start + 1
        if count > self.group_max:
            count = self.group_max
        self._group_first = start
        self._group_count = count
        got = self._got
        for i in range(count):
            got[i] = 0
        p.put_u16(tx, 8, start)
        tx[10] = count
        master.request(p.ADDR_BROADCAST, p.CMD_POLL_GROUP, 3, b.EXPECT_GROUP, count)
        d = master.deframer
        self._bad_before = d.crc_errors + d.garbage
        return True

    def on_reply(self, master, frame, now_us: int) -> bool:
        # Every reply of a cycle passes here: frames kept within 11 words (locals plus
        # stack) so MicroPython does not allocate them per call (docs/benchmarks.md).
        addr = frame.src
        index = addr - self._group_first
        if (
            frame.cmd != MEAS_REPLY_CMD
            or frame.length != MEAS_REPLY_LEN
            or index < 0
            or index >= self._group_count
        ):
            master.unexpected += 1
            master.last_unexpected_src = addr
            return False
        if self._got[index]:
            self._duplicate(addr)
        else:
            self._got[index] = 1
            self._store(addr, frame.buf, frame.off)
        return False  # keep listening: a second reply in this window means a duplicate

    def _duplicate(self, addr: int) -> None:
        """A second device answers as this module: neither reply can be trusted."""
        if self.duplicate[addr] < 255:
            self.duplicate[addr] += 1
        self.dup_hold[addr] = DUPLICATE_HOLD
        self.implausible[addr] |= IMPL_DUPLICATE
        self.state[addr] = ST_IMPLAUSIBLE

    def _store(self, addr: int, buf, off: int) -> None:
        """The MEAS payload at buf[off] into the arrays (the layout of protocol.meas_voltage_uv
        and protocol.meas_temp_mc, read inline: two calls per reply saved)."""
        v = (buf[off] | (buf[off + 1] << 8) | ((buf[off + 2] & 0x3F) << 16)) * 10
        self.voltage_uv[addr] = v
        v = (v + 500) // 1000
        self.voltage_mv[addr] = v
        t = ((buf[off + 2] >> 6) | (buf[off + 3] << 2)) * 20 - 4000  # 0.2 °C from -40 °C, in cc
        self.temp_cc[addr] = t
        self.balance_pct[addr] = buf[off + 4]
        self.flags[addr] = buf[off + 5]
        self.misses[addr] = 0
        bits = 0
        if self.dup_hold[addr]:
            self.dup_hold[addr] -= 1
            bits = IMPL_DUPLICATE
        if (
            v < self.voltage_min_mv
            or v > self.voltage_max_mv
            or t < TEMP_PLAUSIBLE_MIN_CC
            or t > TEMP_PLAUSIBLE_MAX_CC
        ):
            bits |= IMPL_RANGE
        self.implausible[addr] = bits
        self.state[addr] = ST_IMPLAUSIBLE if bits else ST_OK

    def on_window_end(self, master, now_us: int) -> None:
        d = master.deframer
        corrupt = d.crc_errors + d.garbage != self._bad_before
        first = self._group_first
        got = self._got
        for i in range(self._group_count):
            if not got[i]:
                addr = first + i
                m = self.misses[addr]
                if m < 0xFFFF:
                    self.misses[addr] = m + 1
                st = self.state[addr]
                if st == ST_OK or st == ST_IMPLAUSIBLE:
                    self.state[addr] = ST_SILENT
                elif st == ST_NOT_POLLED:
                    self.state[addr] = ST_NEVER
                if corrupt and self.suspect[addr] < 255:
                    self.suspect[addr] += 1
        self._next_first = first + self._group_count
        if self._next_first > self.strings[self._string][1]:
            self._string += 1
            self._phase = 0
            if self._string == len(self.strings):
                self._in_cycle = False
                self.cycle += 1
                self.last_cycle_us = ticks_diff(now_us, self.cycle_started_us)
                if self.on_cycle_end is not None:
                    self.on_cycle_end(self, now_us)
