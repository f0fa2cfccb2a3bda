# INFO to one module that was not reachable at the census and answers now (or the
# judge's rolling INFO: a block swapped with its module at the same address).

from manager_fw import bus as b
from shared import protocol as p


class InfoJob(b.BusJob):
    """INFO for one module that was not reachable at start-up and answers now."""

    def __init__(self, core) -> None:
        self.core = core
        self.module = -1
        self.queued = False
        self._version_errors = 0

    def next_request(self, master, now_us: int) -> bool:
        self.queued = False
        if self.module < 0:
            return False
        self._version_errors = master.deframer.version_errors
        master.request(self.core.layout.addresses[self.module], p.CMD_INFO, 0, b.EXPECT_ONE, 0)
        return True

    def on_reply(self, master, frame, now_us: int) -> bool:
        i = self.module
        if frame.src != self.core.layout.addresses[i] or frame.cmd != p.CMD_INFO | p.REPLY:
            return False
        if frame.length == 25:
            self.core._module_info(i, frame)
            self.core._late_info = i
        return True

    def on_window_end(self, master, now_us: int) -> None:
        if master.deframer.version_errors != self._version_errors:
            i = self.module
            self.core._wrong_protocol(
                2, self.core.layout.addresses[i], i, master.deframer.last_version
            )
            self.core._late_info = i
        self.module = -1
