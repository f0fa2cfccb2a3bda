# A virtual RS-485 bus: real protocol bytes, timed at the configured baud, half-duplex.
#
# Discrete-event: a node calls transmit(node, data, start_us); the bytes occupy the
# line from start_us for len(data) character times; at the end every *other* node
# receives them (node.on_bus_bytes(data, end_us, bus)).  Two transmissions that
# overlap in time corrupt each other (what a receiver sees when two drivers fight),
# and fault injection adds bit errors, dropped bytes, noise bursts and unplugged
# nodes.  Deterministic for a given seed.  Written in the subset MicroPython runs, so
# dual tests, benchmarks and the simulator all use this one bus.

from shared import protocol as p
from shared.compat import TICKS_MAX


class Rng:
    """32-bit LCG (Numerical Recipes): identical sequences on every interpreter."""

    def __init__(self, seed: int) -> None:
        self.state = seed & 0xFFFFFFFF

    def next(self) -> int:
        self.state = (self.state * 1664525 + 1013904223) & 0xFFFFFFFF
        return self.state

    def below(self, n: int) -> int:
        return (self.next() >> 8) % n


class Transmission:
    def __init__(self, sender, data, start_us: int, end_us: int) -> None:
        self.sender = sender
        self.data = bytearray(data)
        self.start_us = start_us
        self.end_us = end_us
        self.collided = False


class VirtualBus:
    def __init__(self, baud: int = 115200, seed: int = 1) -> None:
        self.baud = baud
        self.rng = Rng(seed)
        self.nodes: list = []
        self.unplugged: list = []
        self.inflight: list = []
        self.now_us = 0
        # Faults: probabilities in parts per million
        self.bit_error_ppm = 0  # per bit
        self.drop_byte_ppm = 0  # per byte, per receiver
        self.noise_bursts: list = []  # [start_us, end_us]: everything on the line is garbled
        # Statistics
        self.frames = 0
        self.bytes = 0
        self.collisions = 0
        self.busy_us = 0
        self.corrupted_bytes = 0

    def attach(self, node) -> None:
        self.nodes.append(node)

    def unplug(self, node) -> None:
        if node not in self.unplugged:
            self.unplugged.append(node)

    def replug(self, node) -> None:
        if node in self.unplugged:
            self.unplugged.remove(node)

    def char_us(self, n: int) -> int:
        return p.wire_us(n, self.baud)

    def transmit(self, sender, data, start_us: int) -> int:
        """Queue data on the line from start_us (>= now); returns its end time."""
        if sender in self.unplugged:
            return start_us
        if start_us < self.now_us:
            start_us = self.now_us
        end_us = start_us + p.wire_us(len(data), self.baud)
        t = Transmission(sender, data, start_us, end_us)
        for other in self.inflight:
            if other.start_us < end_us and start_us < other.end_us:
                if not other.collided:
                    self.collisions += 1
                other.collided = True
                t.collided = True
        self.inflight.append(t)
        self.frames += 1
        self.bytes += len(data)
        self.busy_us += end_us - start_us
        return end_us

    def next_event_us(self) -> int:
        """Time of the next delivery, or -1 when nothing is on the line."""
        best = -1
        for t in self.inflight:
            if best < 0 or t.end_us < best:
                best = t.end_us
        return best

    def advance(self, until_us: int) -> None:
        """Deliver every transmission that ends at or before until_us, in time order."""
        while True:
            nxt = self.next_event_us()
            if nxt < 0 or nxt > until_us:
                break
            self.now_us = nxt
            done = []
            for t in self.inflight:
                if t.end_us == nxt:
                    done.append(t)
            for t in done:
                self.inflight.remove(t)
                self._deliver(t)
        if until_us > self.now_us:
            self.now_us = until_us

    def _garble(self, data) -> None:
        for i in range(len(data)):
            data[i] ^= 1 + self.rng.below(255)
        self.corrupted_bytes += len(data)

    def _in_noise(self, t: Transmission) -> bool:
        for start, end in self.noise_bursts:
            if start < t.end_us and t.start_us < end:
                return True
        return False

    def _deliver(self, t: Transmission) -> None:
        data = t.data
        garbled = t.collided or self._in_noise(t)
        if garbled:
            self._garble(data)
        elif self.bit_error_ppm:
            for i in range(len(data)):
                for bit in range(8):
                    if self.rng.below(1000000) < self.bit_error_ppm:
                        data[i] ^= 1 << bit
                        self.corrupted_bytes += 1
        # A node with skips_replies = True (a module: its responder drops other devices'
        # replies unread) is not handed intact reply frames; saves the simulator the
        # work of 64 modules deframing each other's replies.  Garbled bytes still go to
        # everyone.
        intact_reply = (
            not garbled and len(data) > 6 and data[0] == p.SYNC and data[6] & p.REPLY != 0
        )
        for node in self.nodes:
            if node is t.sender or node in self.unplugged:
                continue
            if intact_reply and getattr(node, "skips_replies", False):
                continue
            if self.drop_byte_ppm:
                kept = bytearray()
                for byte in data:
                    if self.rng.below(1000000) >= self.drop_byte_ppm:
                        kept.append(byte)
                node.on_bus_bytes(kept, t.end_us, self)
            else:
                node.on_bus_bytes(data, t.end_us, self)


class MasterNode:
    """The manager's BusMaster on the virtual bus."""

    def __init__(self, master) -> None:
        self.master = master

    def on_bus_bytes(self, data, end_us: int, bus: VirtualBus) -> None:
        # Every transmission on the virtual line is followed by silence (or by a
        # collision the deframer rejects anyway), so the receiver sees an idle gap.
        self.master.receive(data, end_us & TICKS_MAX)
        self.master.line_idle(end_us & TICKS_MAX)

    def poll(self, bus: VirtualBus) -> None:
        n = self.master.step(bus.now_us & TICKS_MAX)
        if n:
            bus.transmit(self, self.master.tx[:n], bus.now_us)

    def wake_us(self, bus: VirtualBus) -> int:
        """Earliest time the master may want to act again."""
        d = self.master.wake_in_us(bus.now_us & TICKS_MAX)
        return bus.now_us + (d if d > 0 else 0)


class ResponderNode:
    """A module's protocol side on the virtual bus: deframer + responder.

    latency_us models the module's processing time before an immediate reply
    (POLL_GROUP replies go at their slot time, plus jitter_us of random lateness).
    """

    def __init__(self, responder, latency_us: int = 500, jitter_us: int = 0) -> None:
        self.responder = responder
        self.deframer = p.Deframer()
        self.latency_us = latency_us
        self.jitter_us = jitter_us

    def on_bus_bytes(self, data, end_us: int, bus: VirtualBus) -> None:
        d = self.deframer
        start = 0
        n = len(data)
        while start < n:
            start += d.feed(data, start, n)
            frame = d.poll()
            while frame is not None:
                self._handle(frame, end_us, bus)
                frame = d.poll()
        d.idle()
        frame = d.poll()
        while frame is not None:
            self._handle(frame, end_us, bus)
            frame = d.poll()

    def _handle(self, frame, end_us: int, bus: VirtualBus) -> None:
        r = self.responder
        n = r.handle(frame, (end_us // 1000) & TICKS_MAX)
        if n:
            delay = r.tx_delay_us if r.tx_delay_us else self.latency_us
            if self.jitter_us:
                delay += bus.rng.below(self.jitter_us + 1)
            bus.transmit(self, r.tx[:n], end_us + delay)


def run(bus: VirtualBus, master_node: MasterNode, until_us: int, idle_step_us: int = 1000):
    """Drive master and bus in virtual time until until_us."""
    while bus.now_us < until_us:
        master_node.poll(bus)
        nxt = bus.next_event_us()
        wake = master_node.wake_us(bus)
        if wake <= bus.now_us:
            wake = bus.now_us + idle_step_us
        if nxt < 0 or wake < nxt:
            nxt = wake
        if nxt > until_us:
            nxt = until_us
        bus.advance(nxt)
