"""Bus transports for the host tools: a real serial port, or a simulated bus.

The manager's bus master (manager_fw/bus.py) is sans-I/O: it says when to send which
bytes and is told which bytes came back, and when.  A :class:`Transport` is where the
bytes go and where the time comes from; :class:`BusDriver` moves bytes between the two.

    transport = SerialTransport("/dev/ttyUSB0", 115200)       # real hardware
    transport = SimTransport(modules, 115200, press_every_s=2) # virtual bus, virtual time
    driver = BusDriver(transport)
    driver.run_job(job, on_tick=print_progress)

A transport provides (the lead's simulator plugs its richer bus in through the same
four methods):

    baud                the line rate (bits/s)
    window_slack_us     extra time the master waits for replies (USB adapter latency)
    now_us()            a microsecond clock; virtual on a simulated bus
    send(data)          put one frame on the line now
    wait(until_us)      bytes received until until_us; returns early, after a burst of
                        bytes followed by an idle line, or b"" when nothing came
    close()
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from boards.sim.bus import ResponderNode, VirtualBus
from manager_fw.bus import BusMaster
from module_fw import ui
from module_fw.responder import Responder
from module_fw.state import ModuleState
from shared import protocol as p
from shared.compat import TICKS_MAX
from stringcare_host.errors import UserError

# A simulated bus's site key: the published test key (docs/protocol-vectors.json)
SIM_SITE_KEY = b"StringCare-test!"


class Transport:
    baud = 115200
    window_slack_us = 0
    name = "bus"
    site_key: bytes | None = None  # for the BusMaster's authenticated commands

    def now_us(self) -> int:
        raise NotImplementedError

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def wait(self, until_us: int) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- serial


class SerialTransport(Transport):
    """An RS-485 converter on a serial port (pyserial; URLs such as loop:// work too).

    Replies from a USB serial adapter arrive in chunks, up to its latency timer late (16 ms
    by default on FTDI chips; set it to 1 ms where the OS allows), so the master waits
    `latency_ms` longer for every reply, and a burst counts as over once the line has
    been quiet for `idle_ms`.
    """

    def __init__(self, port: str, baud: int = 115200, latency_ms: int = 20, idle_ms: int = 3):
        try:
            import serial  # pyserial
        except ImportError:  # pragma: no cover - pinned in requirements.txt
            raise UserError("pyserial is not installed: run `make` to set up .venv") from None
        try:
            self.ser = serial.serial_for_url(port, baudrate=baud, timeout=0, write_timeout=2)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise UserError(
                "cannot open %s: %s; check the port name (stringcare lists none: try "
                "`python -m serial.tools.list_ports`), the cable, and that you may use it "
                "(on Linux: member of the dialout group)" % (port, exc)
            ) from None
        self.baud = baud
        self.name = port
        self.window_slack_us = latency_ms * 1000
        self.idle_us = max(idle_ms * 1000, p.wire_us(2, baud))

    def now_us(self) -> int:
        return time.monotonic_ns() // 1000

    def send(self, data: bytes) -> None:
        self.ser.write(data)
        self.ser.flush()

    def wait(self, until_us: int) -> bytes:
        buf = bytearray()
        last = 0
        while True:
            now = self.now_us()
            waiting = self.ser.in_waiting
            if waiting:
                buf += self.ser.read(waiting)
                last = now
                continue
            if buf and now - last >= self.idle_us:
                return bytes(buf)
            if now >= until_us and not buf:
                return b""
            time.sleep(0.0005)

    def close(self) -> None:
        self.ser.close()


# --------------------------------------------------------------------------- simulated


class _Capture:
    """The manager's end of the virtual bus: collects what it hears."""

    def __init__(self) -> None:
        self.rx = bytearray()

    def on_bus_bytes(self, data: Any, end_us: int, bus: VirtualBus) -> None:
        self.rx += data


class Installer:
    """The person at the string: presses module buttons on a simulated bus.

    Every `every_s` seconds of virtual time, one press on the next module that waits for
    one: a module in addressing mode without an address takes the next offer, a module
    in identify mode confirms.  `order`: "cable" (the order of the modules list),
    "reverse", or "random" (seeded).
    """

    def __init__(self, modules: Sequence[ModuleState], every_s: float, order: str, seed: int):
        self.modules = list(modules)
        self.every_us = int(every_s * 1e6)
        self.order = order
        self.rng = random.Random(seed)
        self.next_us = self.every_us
        self.presses: list[tuple[int, int]] = []  # (virtual µs, module index)
        self.actions = [ui.ButtonActions() for _ in self.modules]
        self.pending: list[int] = []  # modules pressed whose claim is not yet confirmed

    def _candidates(self) -> list[int]:
        out = []
        for i, m in enumerate(self.modules):
            if (m.addressing and not m.claim_armed and m.address == 0) or m.identify:
                out.append(i)
        if self.order == "reverse":
            out.reverse()
        elif self.order == "random":
            self.rng.shuffle(out)
        return out

    def tick(self, now_us: int) -> None:
        if self.every_us <= 0 or now_us < self.next_us:
            return
        # one module at a time: wait while a pressed module still waits for its offer
        if any(self.modules[i].claim_armed for i in range(len(self.modules))):
            return
        candidates = self._candidates()
        if not candidates:
            return
        i = candidates[0]
        actions = self.actions[i]
        actions.apply(self.modules[i], ui.EV_PRESS)
        actions.apply(self.modules[i], ui.EV_SHORT)  # a short press: under 2 s
        self.presses.append((now_us, i))
        self.next_us = now_us + self.every_us


class SimTransport(Transport):
    """Module responders on the virtual bus (boards/sim/bus.py), in virtual time.

    speed: 0 runs as fast as the computer can; 1.0 paces virtual time to the wall clock
    (so a person can watch the flow); 10 is ten times faster.
    """

    interrupt_at_us = -1  # tests: a Ctrl-C (KeyboardInterrupt) at this virtual time

    def __init__(
        self,
        modules: Sequence[ModuleState],
        baud: int = 115200,
        seed: int = 1,
        press_every_s: float = 0.0,
        press_order: str = "cable",
        speed: float = 0.0,
    ) -> None:
        self.baud = baud
        self.site_key = SIM_SITE_KEY
        self.name = "simulated bus of %d module%s" % (
            len(modules),
            "" if len(modules) == 1 else "s",
        )
        self.bus = VirtualBus(baud, seed)
        self.capture = _Capture()
        self.bus.attach(self.capture)
        self.modules = list(modules)
        for m in self.modules:
            self.bus.attach(ResponderNode(Responder(m)))
        self.installer = Installer(self.modules, press_every_s, press_order, seed)
        self.speed = speed
        self._wall0 = time.monotonic()

    @staticmethod
    def unaddressed(count: int, addresses: Sequence[int] | None = None) -> list[ModuleState]:
        """count modules (uids 5c a1 ...), at address 0 or at the given addresses."""
        out = []
        for i in range(count):
            uid = bytes([0x5C, 0xA1, 0, 0, (i + 1) >> 8, (i + 1) & 0xFF, 0x42, (i + 1) & 0x7F])
            m = ModuleState(uid, variant_id=3)
            m.address = addresses[i] if addresses else 0
            if m.address:
                m.key = SIM_SITE_KEY  # an addressed module learnt the key then
            m.voltage_uv = 13600000
            m.temp_mc = 22000
            out.append(m)
        return out

    def now_us(self) -> int:
        return self.bus.now_us

    def send(self, data: bytes) -> None:
        self.bus.transmit(self.capture, bytes(data), self.bus.now_us)

    def _pace(self, t_us: int) -> None:
        if self.speed > 0:
            ahead = t_us / 1e6 / self.speed - (time.monotonic() - self._wall0)
            if ahead > 0:
                time.sleep(ahead)

    def wait(self, until_us: int) -> bytes:
        bus = self.bus
        while bus.now_us < until_us:
            nxt = bus.next_event_us()
            t = until_us if nxt < 0 or nxt > until_us else nxt
            self._pace(t)
            bus.advance(t)
            self.installer.tick(bus.now_us)
            if 0 <= self.interrupt_at_us <= bus.now_us:
                self.interrupt_at_us = -1
                raise KeyboardInterrupt
            if self.capture.rx:
                out = bytes(self.capture.rx)
                self.capture.rx.clear()
                return out
        return b""


# --------------------------------------------------------------------------- driver


class BusDriver:
    """Runs a BusMaster over a Transport."""

    def __init__(self, transport: Transport, master: BusMaster | None = None) -> None:
        self.transport = transport
        self.master = (
            master if master is not None else BusMaster(transport.baud, transport.site_key)
        )
        self.master.window_slack_us = transport.window_slack_us

    def _next_wake_us(self, now: int) -> int:
        d = self.master.wake_in_us(now & TICKS_MAX)
        if d > 0:
            return now + d
        return now + 1000  # nothing scheduled: look again in 1 ms

    def step(self) -> None:
        """Send what the master wants to send, then wait for and deliver replies."""
        t = self.transport
        m = self.master
        now = t.now_us()
        n = m.step(now & TICKS_MAX)
        if n:
            t.send(bytes(m.tx[:n]))
            now = t.now_us()
        data = t.wait(self._next_wake_us(now))
        if data:
            at = t.now_us() & TICKS_MAX
            m.receive(data, at)
            m.line_idle(at)

    def run(self, done: Callable[[], bool], timeout_s: float | None = None,
            on_tick: Callable[[], None] | None = None) -> bool:  # fmt: skip
        """Step until done() (True) or the transport clock passed timeout_s (False)."""
        t = self.transport
        end = None if timeout_s is None else t.now_us() + int(timeout_s * 1e6)
        while not done():
            if end is not None and t.now_us() >= end:
                return False
            self.step()
            if on_tick is not None:
                on_tick()
        return True

    def run_job(self, job: Any, timeout_s: float | None = None,
                on_tick: Callable[[], None] | None = None) -> bool:  # fmt: skip
        """A foreground job (manager_fw/addressing.py) until it is done; then the last
        broadcast is given time to reach the modules."""
        self.master.foreground = job
        try:
            ok = self.run(lambda: job.done, timeout_s, on_tick)
            if ok:
                self.transport.wait(self.transport.now_us() + 5000)
            return ok
        finally:
            self.master.foreground = None
