"""One manager loop (manager_fw/loop.py) serves every shell: the simulator
(boards/sim/manager_shell.py), the Linux manager (boards/linux_manager/shell.py) and the
boards (manager_fw/main.py: Pico W, unix_manager).  Each shell here runs a real core to
its census; a profiler records who calls BusMaster.step (the send of every frame) and
ManagerCore.step: in every shell, only ManagerLoop.poll does (through its _step)."""

from __future__ import annotations

import sys
from pathlib import Path

from corefixture import Site

from manager_fw.bus import BusMaster
from manager_fw.core import ManagerCore
from manager_fw.loop import ManagerLoop

WATCHED = {BusMaster.step.__code__: "BusMaster.step", ManagerCore.step.__code__: "core.step"}
LOOP_CODE = {ManagerLoop.poll.__code__, ManagerLoop._step.__code__}


class Callers:
    """The functions that called BusMaster.step / ManagerCore.step (sys.setprofile)."""

    def __init__(self) -> None:
        self.calls: dict[str, set[str]] = {"BusMaster.step": set(), "core.step": set()}
        self.from_loop = 0

    def __enter__(self) -> Callers:
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(None)

    def _profile(self, frame, event, arg) -> None:  # type: ignore[no-untyped-def]
        if event != "call" or frame.f_code not in WATCHED:
            return
        caller = frame.f_back.f_code
        self.calls[WATCHED[frame.f_code]].add(caller.co_qualname)
        if caller in LOOP_CODE:
            self.from_loop += 1

    def only_the_loop(self) -> bool:
        return self.calls == {
            "BusMaster.step": {"ManagerLoop.poll"},
            "core.step": {"ManagerLoop._step"},
        }


def test_the_simulator_runs_the_manager_loop() -> None:
    site = Site(sizes=(2,))
    assert isinstance(site.shell.loop, ManagerLoop)
    with Callers() as c:
        site.run_s(5)
    assert site.core.mode_name() == "running"
    assert c.only_the_loop() and c.from_loop > 100, c.calls


def test_the_linux_manager_runs_the_manager_loop(tmp_path: Path) -> None:
    from boards.linux_manager.shell import LinuxManager
    from manager_fw.config import parse_config
    from module_fw.state import ModuleState
    from stringcare_host.transport import SIM_SITE_KEY, SimTransport

    cfg = parse_config({"strings": [{"modules": 2}]})
    mods = []
    for i in range(2):
        s = ModuleState(bytes([1, 2, 3, 4, 5, 6, 7, i]), variant_id=3)
        s.address = i + 1
        s.voltage_uv = 13500000
        s.key = SIM_SITE_KEY
        mods.append(s)
    transport = SimTransport(mods)
    mgr = LinuxManager(cfg, transport, tmp_path / "data")
    try:
        assert isinstance(mgr.loop, ManagerLoop)
        with Callers() as c:
            end_us = transport.now_us() + 10_000_000  # virtual time: no sleeping
            while mgr.core.mode_name() != "running" and transport.now_us() < end_us:
                mgr.step()
        assert mgr.core.mode_name() == "running"
        assert c.only_the_loop() and c.from_loop > 50, c.calls
    finally:
        mgr.close()


class BoardHal:
    """A board's HAL (manager_fw/main.py) on the virtual bus of the simulator."""

    def __init__(self, site: Site, run_us: int) -> None:
        self.sim = site.shell.board  # its bus end and virtual clock, not its loop
        self.bus = site.bus
        self.end_us = self.bus.now_us + run_us
        self.history_device = None
        self.event_device = None
        self.outputs: list = []

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        if name in ("ticks_us", "ticks_diff_us", "now_s", "bus_tx", "bus_rx", "feed_watchdog"):
            return getattr(self.sim, name)
        raise AttributeError(name)

    def wait_us(self, us: int) -> None:
        nxt = self.bus.next_event_us()
        t = self.bus.now_us + max(us, 1)
        self.bus.advance(nxt if 0 <= nxt < t else t)

    def mute_pressed(self) -> bool:
        return False

    def ups_on_battery(self) -> bool:
        return False

    def set_outputs(self, buzzer: bool, led: int, relay_energised: bool) -> None:
        self.outputs.append(relay_energised)

    def status(self, core, wall_s: int) -> None:  # type: ignore[no-untyped-def]
        pass

    def started(self, text: str) -> None:
        pass

    def running(self) -> bool:
        return self.bus.now_us < self.end_us


def test_the_board_manager_runs_the_manager_loop() -> None:
    from manager_fw import main

    site = Site(sizes=(2,))
    hal = BoardHal(site, 6_000_000)
    with Callers() as c:
        main.run(hal, site.core)
    assert site.core.mode_name() == "running"
    assert c.only_the_loop() and c.from_loop > 100, c.calls
    assert hal.outputs[-1] is False  # leaving, the contact signals (fail-safe)
