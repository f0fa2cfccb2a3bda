# One relay/IO box per job: RELAY_SET while its relays differ from what the core wants
# (breaker trips, the alarm contact), else IO_READ (the UPS input).

from manager_fw import bus as b
from shared import protocol as p
from shared.compat import const

# Every relay/IO box hears the manager at least this often, whatever the cycle period:
# its communication watchdog (shared/relaybox.py, 10 s by default, 3 s at the least)
# releases the alarm contact when the manager falls silent.
BOX_FEED_MS = const(2000)


class IoJob(b.BusJob):
    """One relay/IO box: RELAY_SET while its relays differ from what the core wants,
    else IO_READ (its inputs: the UPS signal)."""

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
        self._setting = False

    def next_request(self, master, now_us: int) -> bool:
        self.queued = False
        addr = p.ADDR_RELAY_BOX_BASE + self.box
        if self.mask and (not self.known or (self.relays ^ self.wanted) & self.mask):
            master.tx[8] = self.mask
            master.tx[9] = self.wanted & self.mask
            self._setting = True
            master.request(addr, p.CMD_RELAY_SET, 2, b.EXPECT_ONE, 0)
        else:
            self._setting = False
            master.request(addr, p.CMD_IO_READ, 0, b.EXPECT_ONE, 0)
        self.misses += 1  # cleared by the reply
        return True

    def on_reply(self, master, frame, now_us: int) -> bool:
        if frame.src != p.ADDR_RELAY_BOX_BASE + self.box:
            return False
        want = (p.CMD_RELAY_SET if self._setting else p.CMD_IO_READ) | p.REPLY
        if frame.cmd == want and frame.length == 2:
            self.misses = 0
            self.core._box_state(self.box, frame.u8(0), frame.u8(1))
        return True

    def pending(self) -> bool:
        return bool(self.mask) and (not self.known or bool((self.relays ^ self.wanted) & self.mask))
