# Ri judgement without configuration (SPEC §3, §3a; docs/judgement.md, "Ri").
#
# Every valid Ri result of a module is judged twice:
#
#   against its string  the median of the latest results of the string's blocks (at
#                       least MIN_PEERS of them): SPEC §3 says new blocks of one type lie
#                       within +-20 % of their mean and warns 30 % above the accepted upper
#                       limit; the manager warns a block `pop_warn_pct` (30 %) or more over
#                       its string's median - the median, because the outlier itself must
#                       not move the reference.
#   against itself      its baseline: the mean of its first `baseline_count` valid results
#                       after the block was commissioned at its address (IEEE Std
#                       1188-2005 trends ohmic values against a baseline per cell; common
#                       practice warns at +25-30 % and replaces at +50 %): a warning at
#                       `trend_warn_pct` (30 %), an alarm at `trend_alarm_pct` (50 %).
#                       A result 25 % or more *below* the baseline is a new block under
#                       the same module (moved over with it) or reworked connections:
#                       the baseline is learned again from it.
#
# The baselines are kept with the block's uid (INFO, census) in a small table that the
# shell persists (`encode()` / `decode()`, manager_fw/ri_store.py): they survive restarts
# and firmware updates.  A different uid at an address is a replaced block: logged, its
# baseline learned anew.  The operator can re-baseline one module or all of them.

from array import array

from manager_fw.runaway import median_in_place
from shared.compat import const

MIN_PEERS = const(3)  # results in a string before the population is judged
HYST_PCT = const(5)  # a judged level leaves this many % below where it was entered
DROP_PCT = const(25)  # a result this much below the baseline: a new block, learn again
FORMAT = const(1)
RECORD = const(13)  # bytes per module: uid 8, baseline nΩ 4, count 1
LEVEL_NONE = const(0)
LEVEL_WARNING = const(1)
LEVEL_ALARM = const(2)
WHY_STRING = const(1)  # bit: over the string median
WHY_TREND = const(2)  # bit: over the module's own baseline


def _crc(data, n: int) -> int:
    from shared.protocol_frame import crc16

    return crc16(data, 0, n)


class RiJudge:
    def __init__(
        self,
        string_of_module,
        module_ranges,
        baseline_count: int = 4,
        pop_warn_pct: int = 30,
        trend_warn_pct: int = 30,
        trend_alarm_pct: int = 50,
    ) -> None:
        """module_ranges: [(first, last) module index per string]."""
        n = len(string_of_module)
        self.n = n
        self.ranges = module_ranges
        self.string_of = string_of_module
        self.baseline_count = baseline_count
        self.pop_warn_pct = pop_warn_pct
        self.trend_warn_pct = trend_warn_pct
        self.trend_alarm_pct = trend_alarm_pct
        self.uid = bytearray(8 * n)  # all zero: not known yet
        self.baseline_nohm = array("i", bytes(4 * n))  # 0: not learned yet
        self.count = bytearray(n)  # results in the baseline so far
        self._sum = array("i", bytes(4 * n))
        self.last_nohm = array("i", bytes(4 * n))  # 0: no result since start
        self.over_string_pct = array("h", bytes(2 * n))  # last judgement vs the median
        self.level = bytearray(n)  # judged level, LEVEL_*
        self.why = bytearray(n)  # WHY_* bits of the level
        biggest = 1
        for first, last in module_ranges:
            if last - first + 1 > biggest:
                biggest = last - first + 1
        self._buf = array("i", bytes(4 * biggest))
        self.dirty = False  # the table changed since the last encode()
        # news of the last call, for the core's events
        self.replaced = False
        self.baseline_new = False
        self.string_newly = False  # became an outlier of its string
        self.trend_newly = False
        self.dropped = False  # fell DROP_PCT below its baseline: learned again

    # -- uids and baselines ----------------------------------------------------------

    def module_uid(self, i: int, frame, off: int) -> bool:
        """The uid module i reported (frame.u8(off..off+7)); True if it differs from the
        one its baseline belongs to: a replaced block, whose baseline starts again."""
        base = 8 * i
        u = self.uid
        known = False
        same = True
        for j in range(8):
            b = frame.u8(off + j)
            if u[base + j]:
                known = True
            if u[base + j] != b:
                same = False
        if same:
            return False
        for j in range(8):
            u[base + j] = frame.u8(off + j)
        self.dirty = True
        self.rebaseline(i)
        return known

    def rebaseline(self, i: int) -> None:
        """Learn module i's baseline again from its next results."""
        self.baseline_nohm[i] = 0
        self.count[i] = 0
        self._sum[i] = 0
        if self.why[i] & WHY_TREND:
            self.why[i] &= ~WHY_TREND
            self.level[i] = LEVEL_WARNING if self.why[i] else LEVEL_NONE
        self.dirty = True

    # -- a result ---------------------------------------------------------------------

    def add(self, i: int, ri_nohm: int) -> int:
        """A valid result of module i; returns its judged level (LEVEL_*)."""
        self.replaced = False
        self.baseline_new = False
        self.string_newly = False
        self.trend_newly = False
        self.dropped = False
        self.last_nohm[i] = ri_nohm
        base = self.baseline_nohm[i]
        if base and ri_nohm * 100 <= base * (100 - DROP_PCT):
            # Ri does not fall by a quarter as a block ages: the block was replaced
            # under the same module (moved to the new block), or its connections were
            # reworked.  Its baseline starts again from this result.
            self.rebaseline(i)
            self.dropped = True
        why = 0
        level = LEVEL_NONE
        # against its own baseline
        n = self.count[i]
        if n < self.baseline_count:
            self._sum[i] += ri_nohm
            self.count[i] = n + 1
            if n + 1 == self.baseline_count:
                self.baseline_nohm[i] = self._sum[i] // self.baseline_count
                self.baseline_new = True
                self.dirty = True
        base = self.baseline_nohm[i]
        if base and n >= self.baseline_count:
            pct = self.rise_pct(i)
            was = self.why[i] & WHY_TREND
            hyst = HYST_PCT if was else 0
            if pct >= self.trend_alarm_pct - (hyst if self.level[i] == LEVEL_ALARM else 0):
                why |= WHY_TREND
                level = LEVEL_ALARM
            elif pct >= self.trend_warn_pct - hyst:
                why |= WHY_TREND
                level = LEVEL_WARNING
            if why & WHY_TREND and not was:
                self.trend_newly = True
        # against its string
        pct = self._over_string_pct(i)
        self.over_string_pct[i] = pct if -32768 < pct < 32767 else 32767
        if pct != -32768:
            was = self.why[i] & WHY_STRING
            if pct >= self.pop_warn_pct - (HYST_PCT if was else 0):
                why |= WHY_STRING
                if level == LEVEL_NONE:
                    level = LEVEL_WARNING
                if not was:
                    self.string_newly = True
        elif self.why[i] & WHY_STRING:
            why |= WHY_STRING  # too few peers now: keep what was judged
            if level == LEVEL_NONE:
                level = LEVEL_WARNING
        self.why[i] = why
        self.level[i] = level
        return level

    def rise_pct(self, i: int) -> int:
        base = self.baseline_nohm[i]
        if not base:
            return 0
        # nΩ up to 2**30: the difference times 100 stays an int on both interpreters
        return (self.last_nohm[i] - base) * 100 // base

    def _over_string_pct(self, i: int) -> int:
        """Module i's latest result over the median of its string's latest results, %;
        -32768 with fewer than MIN_PEERS results."""
        first, last = self.ranges[self.string_of[i]]
        buf = self._buf
        n = 0
        for j in range(first, last + 1):
            v = self.last_nohm[j]
            if v:
                buf[n] = v
                n += 1
        if n < MIN_PEERS:
            return -32768
        med = median_in_place(buf, n)
        if med <= 0:
            return -32768
        return (self.last_nohm[i] - med) * 100 // med

    def warnings(self) -> int:
        c = 0
        for i in range(self.n):
            if self.level[i]:
                c += 1
        return c

    # -- persistence ------------------------------------------------------------------

    def encode(self) -> bytes:
        """The table as bytes: format, module count, per module uid + baseline + count
        (count saturates at baseline_count: a partial baseline starts again), CRC-16."""
        n = self.n
        out = bytearray(3 + RECORD * n + 2)
        out[0] = FORMAT
        out[1] = n & 0xFF
        out[2] = n >> 8
        for i in range(n):
            o = 3 + RECORD * i
            out[o : o + 8] = self.uid[8 * i : 8 * i + 8]
            b = self.baseline_nohm[i]
            for j in range(4):
                out[o + 8 + j] = (b >> (8 * j)) & 0xFF
            out[o + 12] = self.count[i] if b else 0
        crc = _crc(out, 3 + RECORD * n)
        out[3 + RECORD * n] = crc & 0xFF
        out[4 + RECORD * n] = crc >> 8
        self.dirty = False
        return bytes(out)

    def decode(self, data) -> str:
        """Take a table from encode(); '' when taken, else why not (nothing changes)."""
        n = self.n
        if data is None or len(data) < 5:
            return "no Ri baseline table"
        if data[0] != FORMAT:
            return "Ri baseline table of format %d, this manager reads %d" % (data[0], FORMAT)
        count = data[1] | (data[2] << 8)
        size = 3 + RECORD * count
        if len(data) != size + 2 or _crc(data, size) != data[size] | (data[size + 1] << 8):
            return "Ri baseline table damaged (size or CRC): baselines are learned again"
        if count != n:
            return "Ri baseline table for %d modules, the site has %d: learned again" % (count, n)
        for i in range(n):
            o = 3 + RECORD * i
            self.uid[8 * i : 8 * i + 8] = data[o : o + 8]
            b = data[o + 8] | (data[o + 9] << 8) | (data[o + 10] << 16) | (data[o + 11] << 24)
            self.baseline_nohm[i] = b
            self.count[i] = data[o + 12] if b else 0
            self._sum[i] = 0
        self.dirty = False
        return ""
