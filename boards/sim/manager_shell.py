# The manager core (manager_fw/core.py) on the virtual bus, in virtual time: the shell a
# board gives the core, with the VirtualBus in place of the UART and a virtual clock in
# place of ticks_us/ticks_ms and the RTC.  Dual tests and the simulator drive scenarios
# with it; it runs on both interpreters.
#
#   shell = SimManagerShell(core, bus, start_s=...)
#   shell.run_s(300)                     # five virtual minutes
#   shell.hooks.append(fn)               # fn(shell) after every core.step

from boards.sim.bus import MasterNode, VirtualBus
from shared.compat import TICKS_MAX

PERSIST_OPS = 4  # device operations per store and turn (core.persist: virtual time)


class ManagerBus(VirtualBus):
    """A VirtualBus on which the devices hear only the manager, not each other's replies.

    The protocol is the same (a device ignores every reply: docs/protocol.md §3), and
    collisions still garble what the manager hears; but 600 modules no longer each
    decode the 599 other replies of a cycle, which is what makes large sites fast to
    simulate."""

    def __init__(self, baud: int = 115200, seed: int = 1) -> None:
        super().__init__(baud, seed)
        self.manager: object = None
        self._manager_only: list = []

    def _deliver(self, t) -> None:
        if self.manager is None or t.sender is self.manager:
            VirtualBus._deliver(self, t)
            return
        everyone = self.nodes
        if not self._manager_only:
            self._manager_only.append(self.manager)
        self.nodes = self._manager_only
        try:
            VirtualBus._deliver(self, t)
        finally:
            self.nodes = everyone


class SimManagerShell:
    def __init__(self, core, bus, start_s: int = 0, step_ms: int = 100) -> None:
        self.core = core
        self.bus = bus
        self.node = MasterNode(core.master)
        bus.attach(self.node)
        if isinstance(bus, ManagerBus):
            bus.manager = self.node
        self.start_s = start_s
        self.step_us = step_ms * 1000
        self.next_step_us = bus.now_us
        self.hooks: list = []
        self.steps = 0

    def now_s(self) -> int:
        return self.start_s + self.bus.now_us // 1000000

    def now_ms(self) -> int:
        return (self.bus.now_us // 1000) & TICKS_MAX

    def _master_wake_us(self) -> int:
        """Absolute virtual time at which the core wants its next turn (it says so:
        core.next_wake_us; the shell reads none of the bus master's internals)."""
        now = self.bus.now_us
        return now + self.core.next_wake_us(now & TICKS_MAX)

    def run_until(self, until_us: int) -> None:
        bus = self.bus
        core = self.core
        while bus.now_us < until_us:
            now = bus.now_us
            if now >= self.next_step_us or core._cycle_ready:
                core.step(self.now_ms(), self.now_s())
                self.steps += 1
                for hook in self.hooks:
                    hook(self)
                while self.next_step_us <= now:
                    self.next_step_us += self.step_us
            core.persist(PERSIST_OPS)  # storage: outside the step, between replies
            self.node.poll(bus)
            t = self.next_step_us
            nxt = bus.next_event_us()
            if 0 <= nxt < t:
                t = nxt
            wake = self._master_wake_us()
            if wake > now and wake < t:
                t = wake
            elif wake == now:
                # the master had work but did not start it (a job waiting for its time),
                # or a cycle ended: look again one character later instead of spinning
                t2 = now + 100
                if t2 < t:
                    t = t2
            if t > until_us:
                t = until_us
            if t <= now:
                t = now + 1
            bus.advance(t)

    def run_s(self, seconds: int) -> None:
        self.run_until(self.bus.now_us + seconds * 1000000)

    def run_ms(self, ms: int) -> None:
        self.run_until(self.bus.now_us + ms * 1000)

    def run_until_s(self, now_s: int) -> None:
        """Run until the core's clock reads now_s."""
        self.run_until((now_s - self.start_s) * 1000000)
