"""The manager on Linux (CPython): the hardware shell of boards/linux_manager.

The same ManagerCore as on a Pico W, driven over a serial port (the StringCare converter
or any USB-RS485 adapter, through pyserial; `socket://host:port` reaches a networked
converter or a virtual board's bus) by stringcare_host.transport.BusDriver.  History
and events go to files (a FileBlockDevice each); the status page and its JSON are
served by stringcare_host.web.  A PC has no buzzer: alarm changes are logged, and
the alarm contact is the relay/IO box's alarm relay when the site configures one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from manager_fw import blockdev
from manager_fw.core import ManagerCore
from shared.compat import TICKS_MAX
from stringcare_host import status
from stringcare_host.transport import BusDriver, Transport

EPOCH_2020 = 1577836800  # StringCare seconds count from 2020-01-01T00:00:00Z
HISTORY_BYTES = 16 * 1024 * 1024
EVENTS_BYTES = 1024 * 1024


def now_s() -> int:
    return int(time.time()) - EPOCH_2020


class LinuxManager:
    def __init__(self, cfg, transport: Transport, data_dir: Path | None) -> None:
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            history: blockdev.BlockDevice = blockdev.FileBlockDevice(
                str(data_dir / "history.bin"), HISTORY_BYTES
            )
            events: blockdev.BlockDevice = blockdev.FileBlockDevice(
                str(data_dir / "events.bin"), EVENTS_BYTES
            )
        else:
            history = blockdev.SimFlash(2 * 1024 * 1024)
            events = blockdev.SimFlash(256 * 1024)
        self.events = status.RecordingEventLog(events)
        self.started_s = now_s()
        self.core = ManagerCore(cfg, history, None, self.started_s, event_log=self.events)
        self.driver = BusDriver(transport, self.core.master)
        self.log: list[dict[str, str]] = []
        self._devices = (history, events)

    def step(self) -> None:
        """One turn: bus traffic (sends, waits at most until the master's next need),
        then the core's own step."""
        self.driver.step()
        t = time.monotonic_ns()
        self.core.step((t // 1000000) & TICKS_MAX, now_s())
        for e in self.events.take_new():
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.time_s + EPOCH_2020))
            self.log.append({"time": when, "text": status.event_text(self.core, e)})
        del self.log[:-200]

    def snapshot(self) -> dict:
        clock = time.strftime("%Y-%m-%d %H:%M:%S")
        return status.snapshot(self.core, clock, self.log[-40:], now_s() - self.started_s)

    def run(self, should_stop: Callable[[], bool], on_turn: Callable[[], None]) -> None:
        while not should_stop():
            self.step()
            on_turn()

    def close(self) -> None:
        self.driver.transport.close()
        for dev in self._devices:
            dev.close()
