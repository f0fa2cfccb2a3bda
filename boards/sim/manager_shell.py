# The manager core (manager_fw/core.py) on the virtual bus, in virtual time: the HAL a
# board gives the one manager loop (manager_fw/loop.py), with the VirtualBus in place of
# the UART and a virtual clock in place of ticks_us and the RTC.  Dual tests and the
# simulator drive scenarios with it; it runs on both interpreters.
#
#   shell = SimManagerShell(core, bus, start_s=...)
#   shell.run_s(300)                     # five virtual minutes
#   shell.hooks.append(fn)               # fn(shell) after every core.step

from boards.sim.bus import VirtualBus
from manager_fw.loop import ManagerLoop
from shared.compat import TICKS_MAX, ticks_diff

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


class SimBoard:
    """The HAL of the manager loop (manager_fw/loop.py) on the virtual bus: the manager's
    end of the line (received bytes wait in a buffer until the loop reads them, as in a
    UART's) and its clocks in virtual time; the wall clock may be stepped
    (wall_offset_s: an NTP step, a date fixed by hand)."""

    def __init__(self, bus, start_s: int) -> None:
        self.bus = bus
        self.start_s = start_s
        self.wall_offset_s = 0
        self.hooks: list = []  # fn(shell) after every step of the core
        self.shell: object = None
        self._rx: list = []  # received, not read yet (chunks)
        self._rx_pos = 0
        self.outputs = (False, 0, False)
        self.persist_ops = PERSIST_OPS

    def ticks_us(self) -> int:
        return self.bus.now_us & TICKS_MAX

    def ticks_diff_us(self, a: int, b: int) -> int:
        return ticks_diff(a, b)

    def ticks_ms(self) -> int:
        return (self.bus.now_us // 1000) & TICKS_MAX

    def steady_s(self) -> int:
        return self.start_s + self.bus.now_us // 1000000

    def now_s(self) -> int:
        return self.steady_s() + self.wall_offset_s

    def bus_tx(self, buf, n: int) -> None:
        self.bus.transmit(self, buf[:n], self.bus.now_us)

    def bus_rx(self, buf) -> int:
        rx = self._rx
        if not rx:
            return 0
        data = rx[0]
        n = len(data) - self._rx_pos
        if n > len(buf):
            n = len(buf)
        pos = self._rx_pos
        for j in range(n):
            buf[j] = data[pos + j]
        pos += n
        if pos >= len(data):
            rx.pop(0)
            pos = 0
        self._rx_pos = pos
        return n

    def on_bus_bytes(self, data, end_us: int, bus: VirtualBus) -> None:
        self._rx.append(data)

    def set_outputs(self, buzzer: bool, led: int, relay_energised: bool) -> None:
        self.outputs = (buzzer, led, relay_energised)

    def status(self, core, wall_s: int) -> None:
        for hook in self.hooks:
            hook(self.shell)

    def feed_watchdog(self) -> None:
        pass


class SimManagerShell:
    """The core and the one manager loop on the virtual bus, run in virtual time."""

    def __init__(self, core, bus, start_s: int = 0, step_ms: int = 100) -> None:
        self.core = core
        self.bus = bus
        self.board = SimBoard(bus, start_s)
        self.board.shell = self
        self.node = self.board  # what the bus delivers to and sends from
        bus.attach(self.board)
        if isinstance(bus, ManagerBus):
            bus.manager = self.board
        self.start_s = start_s
        self.hooks = self.board.hooks
        self.loop = ManagerLoop(core, self.board, step_ms * 1000)

    @property
    def step_us(self) -> int:
        return self.loop.step_us

    @step_us.setter
    def step_us(self, us: int) -> None:
        self.loop.step_us = us

    @property
    def steps(self) -> int:
        return self.loop.steps

    def now_s(self) -> int:
        """The core's (steady) seconds."""
        return self.board.steady_s()

    def now_ms(self) -> int:
        return self.board.ticks_ms()

    def run_until(self, until_us: int) -> None:
        """Turns of the loop, the virtual time advancing as far as the loop may wait
        (a delivery on the bus ends the wait early)."""
        bus = self.bus
        loop = self.loop
        while bus.now_us < until_us:
            now = bus.now_us
            t = now + loop.poll()
            nxt = bus.next_event_us()
            if 0 <= nxt < t:
                t = nxt
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
