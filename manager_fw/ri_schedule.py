# When to measure internal resistance, and each module's Ri trend (SPEC §3).
#
# Schedule: the first round starts 15 min after the manager starts; three more
# rounds follow at 15-min intervals (all four within the first hour on sites small
# enough; on larger sites a round starts as soon as the previous one has finished),
# then one round every 24 h.  A round measures every module, one at a time, 30-50 s
# apart (the module's bleed load and the charger need that time to settle), and
# nothing is measured during a discharge or for `settle_s` after one ends.
#
# Trend: the mean of a module's first `baseline_count` valid results is its baseline;
# a later result `trend_pct` % or more above it raises an Ri trend warning (ohmic
# monitoring practice: 20-50 % over baseline; default 30 %).

from array import array


class RiSchedule:
    def __init__(
        self,
        addresses,
        start_s: int,
        first_delay_s: int = 900,
        initial_rounds: int = 4,
        initial_interval_s: int = 900,
        period_s: int = 86400,
        spacing_s: int = 30,
        settle_s: int = 7200,
        keep_log: bool = False,
    ) -> None:
        if not 30 <= spacing_s <= 50:
            raise ValueError("Ri spacing_s must be 30..50 s (got %d)" % spacing_s)
        self.addresses = addresses
        self.initial_rounds = initial_rounds
        self.initial_interval_s = initial_interval_s
        self.period_s = period_s
        self.spacing_s = spacing_s
        self.settle_s = settle_s
        self.rounds_done = 0
        self.round_started_s = -1
        self.first_round_s = start_s + first_delay_s
        self.next_round_s = self.first_round_s
        self.pos = -1  # index in addresses of the module being measured; -1 between rounds
        self.next_module_s = 0
        self.waiting = -1  # address whose result is outstanding
        self.discharge_ended_s = -1
        # (round, address, start_s) of every measurement started, for tests and tools
        # only: on a manager that runs for years the list would grow without bound
        self.log: list | None = [] if keep_log else None

    def in_round(self) -> bool:
        return self.pos >= 0

    def due(self, now_s: int, discharging: bool) -> int:
        """The address to start measuring now, or -1.  One module at a time."""
        if self.waiting >= 0 or discharging:
            return -1
        if self.discharge_ended_s >= 0 and now_s - self.discharge_ended_s < self.settle_s:
            return -1
        if self.pos < 0:
            if now_s < self.next_round_s:
                return -1
            self.pos = 0
            self.round_started_s = now_s
            self.next_module_s = now_s
        if now_s < self.next_module_s:
            return -1
        addr = self.addresses[self.pos]
        self.waiting = addr
        if self.log is not None:
            self.log.append((self.rounds_done, addr, now_s))
        return addr

    def done(self, address: int, now_s: int) -> None:
        """The measurement of `address` is finished (result, error or no answer)."""
        if address != self.waiting:
            return
        self.waiting = -1
        self.pos += 1
        self.next_module_s = now_s + self.spacing_s
        if self.pos >= len(self.addresses):
            self.pos = -1
            self.rounds_done += 1
            if self.rounds_done < self.initial_rounds:
                nxt = self.first_round_s + self.rounds_done * self.initial_interval_s
            else:
                k = self.rounds_done - self.initial_rounds + 1
                nxt = (
                    self.first_round_s + (self.initial_rounds - 1) * self.initial_interval_s
                    + k * self.period_s
                )  # fmt: skip
            self.next_round_s = nxt if nxt > now_s + self.spacing_s else now_s + self.spacing_s

    def discharge_ended(self, now_s: int) -> None:
        self.discharge_ended_s = now_s


class RiTrend:
    def __init__(self, n_max: int, baseline_count: int = 4, trend_pct: int = 30) -> None:
        if not 5 <= trend_pct <= 200:
            raise ValueError("Ri trend_pct must be 5..200 %% (got %d)" % trend_pct)
        self.baseline_count = baseline_count
        self.trend_pct = trend_pct
        # per module, 4-byte items built from bytes: no temporary list of n_max ints
        # (600 modules must fit a board's heap; 'l' is 8 bytes on 64-bit ports)
        self.last_nohm = array("i", bytes(4 * (n_max + 1)))
        self.last_quality = bytearray(n_max + 1)
        self.last_s = array("i", b"\xff\xff\xff\xff" * (n_max + 1))  # -1: none yet
        self.baseline_nohm = array("i", bytes(4 * (n_max + 1)))
        self._sum = array("i", bytes(4 * (n_max + 1)))
        self.count = bytearray(n_max + 1)
        self.warning = bytearray(n_max + 1)

    def add(self, address: int, ri_nohm: int, quality: int, now_s: int) -> bool:
        """Record a valid result; True when the trend warning is newly raised."""
        self.last_nohm[address] = ri_nohm
        self.last_quality[address] = quality
        self.last_s[address] = now_s
        n = self.count[address]
        if n < self.baseline_count:
            self._sum[address] += ri_nohm
            self.count[address] = n + 1
            if n + 1 == self.baseline_count:
                self.baseline_nohm[address] = self._sum[address] // self.baseline_count
            return False
        base = self.baseline_nohm[address]
        # a result that is trend_pct % or more above the baseline: rise
        rising = ri_nohm * 100 >= base * (100 + self.trend_pct)
        newly = rising and not self.warning[address]
        self.warning[address] = 1 if rising else 0
        return newly

    def rise_pct(self, address: int) -> int:
        base = self.baseline_nohm[address]
        if not base:
            return 0
        return (self.last_nohm[address] - base) * 100 // base

    def reset_baseline(self, address: int) -> None:
        """A block was replaced: learn its baseline again."""
        self.count[address] = 0
        self._sum[address] = 0
        self.baseline_nohm[address] = 0
        self.warning[address] = 0
