# The WAKE preamble and the SLEEP broadcast: the foreground jobs that wake a bus of
# sleeping modules and put it to sleep (docs/protocol.md §5, SLEEP/WAKE).  The mode
# table (manager_fw/modes.py) starts them; the core watches `done`.

from manager_fw import bus as b
from manager_fw.jobs import CoreJob
from shared import protocol as p
from shared.compat import const, ticks_add, ticks_diff

WAKE_PREAMBLE_MS = const(3000)  # docs/protocol.md §5 SLEEP/WAKE
WAKE_INTERVAL_MS = const(100)


class WakePreamble(CoreJob):
    """WAKE broadcasts every WAKE_INTERVAL_MS for WAKE_PREAMBLE_MS (foreground)."""

    def __init__(self) -> None:
        self.done = False
        self.sent = 0
        self._start_us = 0
        self._next_us = 0

    def next_request(self, master, now_us: int) -> bool:
        if self.done:
            return False
        if self.sent == 0:
            self._start_us = now_us
            self._next_us = now_us
        if ticks_diff(now_us, self._next_us) < 0:
            return False
        if ticks_diff(now_us, self._start_us) >= WAKE_PREAMBLE_MS * 1000:
            self.done = True
            return False
        master.request(p.ADDR_BROADCAST, p.CMD_WAKE, 0, b.EXPECT_NONE, 0)
        self.sent += 1
        self._next_us = ticks_add(self._next_us, WAKE_INTERVAL_MS * 1000)
        return True


class SleepJob(CoreJob):
    """SLEEP broadcast, twice (one lost broadcast must not leave a module awake)."""

    def __init__(self) -> None:
        self.done = False
        self.sent = 0

    def next_request(self, master, now_us: int) -> bool:
        if self.sent >= 2:
            self.done = True
            return False
        master.request(p.ADDR_BROADCAST, p.CMD_SLEEP, 0, b.EXPECT_NONE, 0)
        self.sent += 1
        return True
