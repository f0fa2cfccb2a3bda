"""The manager on Linux (CPython): the hardware shell of boards/linux_manager.

The same ManagerCore as on a Pico W, run by the same loop (manager_fw/loop.py; this
object is its HAL) over a stringcare_host.transport Transport: a serial port (the
StringCare converter or any USB-RS485 adapter, through pyserial; `socket://host:port`
reaches a networked converter or a virtual board's bus) or a simulated bus.  History
and events go to files (a FileBlockDevice each); the status page and its JSON are
served by stringcare_host.web.  A PC has no buzzer: alarm changes are logged, and
the alarm contact is the relay/IO box's alarm relay when the site configures one.

Clocks: every delay and timer runs on the monotonic clock (the core's now_s is a steady
count that starts at the wall-clock time of the start and never steps); the wall clock
only stamps events and history (core.set_wall_offset), so an NTP step or an operator
fixing the date moves timestamps, never an alarm delay.  Both clocks are injected
(wall_clock, mono_ns) so a test can step the wall clock.

Leaving: close() first releases the alarm contact (RELAY_SET clearing the alarm relay
on its box, confirmed by the box's reply), then closes the port.  `stringcare manager`
calls it on every exit path it sees: the end of --duration, an exception, SIGTERM,
SIGINT (Ctrl-C), SIGHUP.  A SIGKILL or a power cut leaves no chance: then the relay
box's communication watchdog releases the contact (docs/reliability.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from manager_fw import blockdev, ring, ring_file, sitekey
from manager_fw.bus import ServiceRequest
from manager_fw.core import ManagerCore
from manager_fw.loop import ManagerLoop
from shared import protocol as p
from shared.compat import TICKS_MAX, ticks_diff
from stringcare_host import status
from stringcare_host.transport import BusDriver, Transport

EPOCH_2020 = 1577836800  # StringCare seconds count from 2020-01-01T00:00:00Z
HISTORY_BYTES = 16 * 1024 * 1024
EVENTS_BYTES = 1024 * 1024
PERSIST_OPS = 64  # device operations per store and turn (core.persist): files are quick
RELEASE_TRIES = 3  # RELAY_SET attempts to release the alarm contact when leaving
RELEASE_TIMEOUT_S = 0.5  # per attempt (a reply comes within milliseconds)


def now_s() -> int:
    """StringCare seconds on the wall clock (timestamps only)."""
    return int(time.time()) - EPOCH_2020


class LinuxManager:
    def __init__(
        self,
        cfg,
        transport: Transport,
        data_dir: Path | None,
        wall_clock: Callable[[], float] = time.time,
        mono_ns: Callable[[], int] = time.monotonic_ns,
        config_store=None,
        device_wrapper: Callable | None = None,
        site_key: bytes | None = None,
    ) -> None:
        """config_store: the ConfigStore the configuration came from (its fallback is
        recorded); device_wrapper(store, device) -> device: the fault campaign's storage
        faults (stringcare/faults/inject.py) wrap the history and event devices.
        site_key: the key of authenticated bus commands; by default data_dir's
        site_key.hex, made on the first start (manager_fw/sitekey.py)."""
        if site_key is None:
            site_key = transport.site_key  # a simulated bus brings its own
        if site_key is None and data_dir is not None:
            try:
                data_dir.mkdir(parents=True, exist_ok=True)
                site_key = sitekey.load_or_create(str(data_dir / "site_key.hex"))
            except (OSError, ValueError):
                site_key = None  # the core reports "no site key"
        faults: list = [None, None]  # per store: what opening it found (ring_file.open_file_store)
        self.wall_clock = wall_clock
        self.mono_ns = mono_ns
        # the steady clock: wall time at the start, then monotonic time since
        self._mono0_ns = mono_ns()
        self._steady0_ns = int(wall_clock() * 1e9) - EPOCH_2020 * 1000000000
        if data_dir is not None:
            try:
                data_dir.mkdir(parents=True, exist_ok=True)
            except OSError:
                pass  # the store files then cannot be made: reported, monitoring goes on
            history, faults[0] = ring_file.open_file_store(
                str(data_dir / "history.bin"), HISTORY_BYTES, ring.RING_HISTORY, 65536
            )
            events, faults[1] = ring_file.open_file_store(
                str(data_dir / "events.bin"), EVENTS_BYTES, ring.RING_EVENTS, 4096
            )
        else:
            history = blockdev.SimFlash(2 * 1024 * 1024)
            events = blockdev.SimFlash(256 * 1024)
        if device_wrapper is not None:
            history = device_wrapper("history", history)
            events = device_wrapper("events", events)
        self.events = status.RecordingEventLog(events)
        self.started_s = self.steady_s()
        self.core = ManagerCore(cfg, history, None, self.started_s, event_log=self.events,
                                site_key=site_key)  # fmt: skip
        self.core.report_store(self.started_s, 0, faults[0])
        self.core.report_store(self.started_s, 1, faults[1] or self.events.open_error)
        if data_dir is not None:  # the Ri baselines survive restarts (docs/judgement.md)
            from manager_fw.ri_store import RiStore

            ri_store = RiStore(str(data_dir / "ri_baselines.bin"))
            self.core.judge.attach_ri_store(ri_store, self.started_s)
        if config_store is not None:  # which site.json is in use; a fallback is a warning
            self.core.config_loaded(self.started_s, config_store)
        self.driver = BusDriver(transport, self.core.master)  # releasing the contact
        self.log: list[dict[str, str]] = []
        self._rx = bytearray()  # bus bytes received, not read by the loop yet
        self.window_slack_us = transport.window_slack_us
        self.persist_ops = PERSIST_OPS
        self.loop = ManagerLoop(self.core, self)
        self._devices = (history, events)
        self.contact_released: bool | None = None  # set by close(): None, no contact

    # -- clocks ---------------------------------------------------------------------------

    def steady_s(self) -> int:
        """StringCare seconds on the steady clock: never steps (the core's timers)."""
        return (self._steady0_ns + self.mono_ns() - self._mono0_ns) // 1000000000

    def wall_offset_s(self) -> int:
        """The wall clock minus the steady clock, in whole seconds."""
        wall_ns = int(self.wall_clock() * 1e9) - EPOCH_2020 * 1000000000
        steady_ns = self._steady0_ns + self.mono_ns() - self._mono0_ns
        return (wall_ns - steady_ns + 500000000) // 1000000000

    def wall_s(self) -> int:
        """StringCare seconds on the wall clock (what timestamps show)."""
        return self.steady_s() + self.wall_offset_s()

    def uptime_s(self) -> int:
        return (self.mono_ns() - self._mono0_ns) // 1000000000

    # -- the loop: manager_fw/loop.py, with this object as its HAL ----------------------

    def ticks_us(self) -> int:
        return self.driver.transport.now_us() & TICKS_MAX

    def ticks_diff_us(self, a: int, b: int) -> int:
        return ticks_diff(a, b)

    def ticks_ms(self) -> int:
        return (self.mono_ns() // 1000000) & TICKS_MAX

    def now_s(self) -> int:
        return self.wall_s()

    def bus_tx(self, buf, n: int) -> None:
        self.driver.transport.send(bytes(buf[:n]))

    def bus_rx(self, buf) -> int:
        rx = self._rx
        n = min(len(rx), len(buf))
        if n:
            buf[:n] = rx[:n]
            del rx[:n]
        return n

    def wait_us(self, us: int) -> None:
        """Wait for bus bytes at most us (the transport returns a burst once the line
        has been quiet)."""
        t = self.driver.transport
        data = t.wait(t.now_us() + us)
        if data:
            self._rx += data

    def set_outputs(self, buzzer: bool, led: int, relay_energised: bool) -> None:
        pass  # a PC has no buzzer: the alarm contact is the relay box's (the core drives it)

    def status(self, core, wall_s: int) -> None:
        for e in self.events.take_new():
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.time_s + EPOCH_2020))
            self.log.append({"time": when, "text": status.event_text(self.core, e)})
        del self.log[:-200]

    def feed_watchdog(self) -> None:
        pass

    def step(self) -> None:
        """One turn of the manager loop, then the wait it allows (bus bytes end it)."""
        wait = self.loop.poll()
        if wait:
            self.wait_us(wait)

    def snapshot(self) -> dict:
        clock = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.wall_clock()))
        return status.snapshot(self.core, clock, self.log[-40:], self.uptime_s())

    def run(self, should_stop: Callable[[], bool], on_turn: Callable[[], None]) -> None:
        while not should_stop():
            self.step()
            on_turn()

    # -- leaving ----------------------------------------------------------------------

    def release_alarm_contact(self) -> bool | None:
        """De-energise the alarm relay on its box (the contact then signals an alarm, as
        a dead manager must).  True when the box confirmed it, False when it could not
        be told (no answer, the port gone), None when the site has no alarm relay."""
        cfg = self.core.cfg
        if not cfg.alarm_box:
            return None
        self.core.outputs.relay_energised = False
        bit = 1 << cfg.alarm_relay
        addr = p.ADDR_RELAY_BOX_BASE + cfg.alarm_box
        result: dict[str, int] = {}

        def done(master, frame) -> None:
            if frame is None:
                result["relays"] = -1
            elif frame.cmd == p.CMD_RELAY_SET | p.REPLY and frame.length == 2:
                result["relays"] = frame.u8(0)
            else:
                result["relays"] = -1

        master = self.core.master
        if not master.signer.has_key():  # RELAY_SET is authenticated (docs/protocol.md §5.1)
            return False  # the box's watchdog releases it
        for _ in range(RELEASE_TRIES):
            result.clear()
            job = ServiceRequest(addr, p.CMD_RELAY_SET, bytes([bit, 0]), done, signed=True)
            master.foreground = job
            try:
                self.driver.run(lambda: "relays" in result, RELEASE_TIMEOUT_S)
            except OSError:  # pyserial's SerialException is one
                return False  # the port is gone: the box's watchdog releases it
            finally:
                master.foreground = None
            relays = result.get("relays", -1)
            if relays >= 0 and not relays & bit:
                return True
        return False

    def close(self) -> None:
        """Release the alarm contact, then close the port and the files."""
        try:
            self.contact_released = self.release_alarm_contact()
            for _ in range(1000):  # what the last steps queued (bounded: a dead device)
                if not self.core.persist(PERSIST_OPS):
                    break
        finally:
            self.driver.transport.close()
            for dev in self._devices:
                if dev is not None:
                    dev.close()
