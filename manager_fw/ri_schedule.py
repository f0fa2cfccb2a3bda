# When to measure internal resistance, and each module's Ri trend (SPEC §3).
#
# Schedule: the first round starts 15 min after the manager starts; three more
# rounds follow at 15-min intervals (all four within the first hour on sites small
# enough; on larger sites a round starts as soon as the previous one has finished),
# then one round every 24 h.  A round measures every module, one at a time, 30-50 s
# apart (the module's bleed load and the charger need that time to settle), and
# nothing is measured during a discharge or for `settle_s` after one ends.
#
# The round's order (order_by(), at each round's start, from the modules' balancing
# levels): the blocks bleeding hardest first, and the blocks not bleeding spread evenly
# through the round.  A capture draws ~1.6 As from its block.  A block that bleeds gets
# it back by bleeding less; one that does not bleed gets it only from the string
# current, which the charger raises for it through every block.  The others bleed that
# away, except a block already bleeding at its thermal cap: it charges up, ~2 mV a
# capture at the nominal interface capacitance, and in address order the string's
# non-bleeding blocks came in a run (C x 1 seed 4 of the band: +14 mV in 7 min, out of
# +-10 mV).  Spread, each of their captures is 1 in n/z, and the capped block relaxes
# in between; first, its own capture gives it room before the others' come.
#
# The last result of each module is kept here (RiResults); what the results mean - a
# block against its string and against its own persistent baseline - is judged in
# manager_fw/ri_judge.py.

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
        # this round's order (order_by()), and its working space: allocated here, so
        # ordering a round allocates nothing (a manager's heap runs for years)
        self.order = array("H", addresses)
        self._tmp = array("H", addresses)
        self._count = array("H", [0] * 101)
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

    def order_by(self, level) -> None:
        """Set the round's order from `level` (per address: the module's balancing
        level, % of full bleed): the highest first, the ones at 0 spread evenly among
        them (see the module comment).  A counting sort on the levels (0..100), stable
        in address order; allocates nothing."""
        addrs = self.addresses
        n = len(addrs)
        cnt = self._count
        for i in range(101):
            cnt[i] = 0
        for a in addrs:
            v = level[a]
            if v > 100:
                v = 100
            cnt[v] += 1
        z = cnt[0]
        b = n - z
        # where each level's run starts in tmp: the bleeding ones from 100 down to 1,
        # then the idle ones
        pos = 0
        for v in range(100, -1, -1):
            c = cnt[v]
            cnt[v] = pos
            pos += c
        tmp = self._tmp
        for a in addrs:
            v = level[a]
            if v > 100:
                v = 100
            tmp[cnt[v]] = a
            cnt[v] += 1
        order = self.order
        bi = 0
        zi = 0
        for i in range(n):
            if zi < z and ((i + 1) * z // n > zi or bi >= b):
                order[i] = tmp[b + zi]
                zi += 1
            else:
                order[i] = tmp[bi]
                bi += 1

    def due(self, now_s: int, discharging: bool, level=None) -> int:
        """The address to start measuring now, or -1.  One module at a time.  `level`:
        the modules' balancing levels per address, for a new round's order (None:
        address order)."""
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
            if level is not None:
                self.order_by(level)
        if now_s < self.next_module_s:
            return -1
        addr = self.order[self.pos]
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


class RiResults:
    """The last valid Ri result of every address (value, quality, when): what the
    status view and the simulator report.  Judging the results (the string's
    population, each module's own baseline) is manager_fw/ri_judge.py's."""

    def __init__(self, n_max: int) -> None:
        # per address, 4-byte items built from bytes: no temporary list of n_max ints
        # (600 modules must fit a board's heap; 'l' is 8 bytes on 64-bit ports)
        self.last_nohm = array("i", bytes(4 * (n_max + 1)))
        self.last_quality = bytearray(n_max + 1)
        self.last_s = array("i", b"\xff\xff\xff\xff" * (n_max + 1))  # -1: none yet

    def add(self, address: int, ri_nohm: int, quality: int, now_s: int) -> None:
        self.last_nohm[address] = ri_nohm
        self.last_quality[address] = quality
        self.last_s[address] = now_s
