# MARK: a module shows the threshold level the manager judged for it (its LED).
# One module per transaction, round robin over the modules whose shown level differs.

from manager_fw import bus as b
from manager_fw import poller as pl
from shared import protocol as p
from shared.compat import const

MARK_REFRESH_S = const(600)  # re-send non-zero marks (a module that rebooted forgot its mark)
MARK_UNKNOWN = const(0xFF)


class MarkJob(b.BusJob):
    """MARK to the next module whose threshold level differs from the one it shows."""

    def __init__(self, core) -> None:
        self.core = core
        self.cursor = 0
        self.module = -1
        self.level = 0
        self.queued = False

    def next_request(self, master, now_us: int) -> bool:
        self.queued = False
        core = self.core
        n = core.layout.module_count
        addrs = core.layout.addresses
        state = core.poller.state
        level = core.level
        marked = core.marked
        i = self.cursor
        for _ in range(n):
            if i >= n:
                i = 0
            if level[i] != marked[i] and state[addrs[i]] == pl.ST_OK:
                self.module = i
                self.level = level[i]
                self.cursor = i + 1
                master.tx[8] = self.level
                master.request(addrs[i], p.CMD_MARK, 1, b.EXPECT_ONE, 0)
                return True
            i += 1
        self.module = -1
        return False

    def on_reply(self, master, frame, now_us: int) -> bool:
        i = self.module
        core = self.core
        if i < 0 or frame.src != core.layout.addresses[i]:
            return False
        if frame.cmd == p.CMD_MARK | p.REPLY and frame.length == 1:
            core.marked[i] = frame.u8(0)
            core.marks_sent += 1
        return True
