"""Hardware-in-the-loop suite: the same tests against a virtual board (default) or a
real one (`--port /dev/ttyACM0 [--bus /dev/ttyACM1] [--hil-board rp2040_module]`).

Virtual: the MicroPython unix port behind a pty running the board's firmware with the
simulated HAL (tools/stringcare/vboard.py), its bus UART on a TCP hub.  Each test gets
a fresh board; `@pytest.mark.vboard(...)` picks its kind and the board property it
emulates (old MicroPython, small flash, corrupting flash, not MicroPython at all).
Tests that need such an emulation are skipped on a real board.

pytest-embedded's serial service gives the `dut` (the console): our `port` fixture
hands it the board's device, `embedded_services` selects "serial".
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hil_support import TEST_SITE_KEY, MicroPythonManagerRig
from host_support import REPO

from stringcare.deploy import Deployer
from stringcare.vboard import BusHub, VirtualBoard


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stringcare hil")
    group.addoption("--bus", default=None, help="HIL with --port: the bus port (converter)")
    group.addoption("--hil-board", default="rp2040_module", help="HIL with --port: board name")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "vboard(**kw): the virtual board a HIL test runs on")


class RealBoard:
    """A board on a real port (--port); the same attributes the tests use."""

    def __init__(self, device: str, bus_url: str | None, board: str) -> None:
        self.device = device
        self.bus_url = bus_url
        self.board = board
        self.virtual = False

    def set_env(self, **values: Any) -> None:
        pass


class VirtualRig:
    def __init__(self, board: VirtualBoard, hub: BusHub) -> None:
        self.vb = board
        self.hub = hub
        self.device = board.device
        self.bus_url = hub.url
        self.board = board.board
        self.virtual = True

    def set_env(self, **values: Any) -> None:
        self.vb.set_env(**values)


@pytest.fixture
def hub() -> Iterator[BusHub]:
    h = BusHub()
    yield h
    h.close()


@pytest.fixture
def hil_board(request: pytest.FixtureRequest, tmp_path: Path, hub: BusHub) -> Iterator[Any]:
    marker = request.node.get_closest_marker("vboard")
    kw: dict[str, Any] = dict(marker.kwargs) if marker else {}
    real_port = request.config.getoption("port", None)
    if real_port:
        if kw.get("emulate") or kw.get("shell"):
            pytest.skip(
                "needs a virtual board that emulates %r" % (kw.get("emulate") or kw["shell"])
            )
        rig: Any = RealBoard(
            real_port, request.config.getoption("--bus"), request.config.getoption("--hil-board")
        )
    else:
        vb = VirtualBoard(
            tmp_path / "flash",
            kw.get("board", "unix_module"),
            bus=hub,
            env={"block_uv": 13500000, "uid": "5354524e47000101", **kw.get("env", {})},
            emulate=kw.get("emulate"),
            shell=kw.get("shell"),
        ).start()
        if kw.get("shell"):
            # a shell answers once it runs: wait for its prompt (a loaded machine starts
            # it late, and a probe's Ctrl-C that comes first ends it before it can)
            deadline = time.monotonic() + 30
            while not vb.console.strip() and time.monotonic() < deadline:
                time.sleep(0.05)
        rig = VirtualRig(vb, hub)
    if kw.get("deploy"):
        Deployer(
            REPO,
            rig.board,
            rig.device,
            kw.get("address"),
            None,
            rig.bus_url,
            progress=lambda t: None,
            site_key=TEST_SITE_KEY,
        ).run()
    yield rig
    if isinstance(rig, VirtualRig):
        rig.vb.stop()
        shutil.rmtree(tmp_path / "flash", ignore_errors=True)


@pytest.fixture(scope="session")
def manager_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The Linux manager's rig (tools/stringcare/faults/rig.py): two virtual module
    boards and a virtual relay/IO box, deployed once per worker and shared by the
    files that run `stringcare manager` on it (each manager with its own data folder;
    every test leaves the box's contact released)."""
    from stringcare.faults.rig import Rig

    r = Rig(tmp_path_factory.mktemp("manager-rig"), REPO).start()
    yield r
    r.close()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """The manager rig's users run one after the other (one xdist group, file order
    otherwise): after the last of them the rig is closed rather than left idling until
    the session ends (three MicroPython boards, ~0.05 CPU-s a second: ~10 CPU-s of a
    `make test` run).  A later user would get a fresh one (the fixture is finished, not
    only its boards).  trylast: the tests' own fixtures on the rig are torn down first."""
    if "manager_rig" not in getattr(item, "fixturenames", ()):
        return
    if nextitem is not None and "manager_rig" in getattr(nextitem, "fixturenames", ()):
        return
    defs = item._fixtureinfo.name2fixturedefs.get("manager_rig")  # type: ignore[attr-defined]
    if defs:
        defs[-1].finish(item._request)  # type: ignore[attr-defined]


@pytest.fixture
def mp_manager(tmp_path: Path, hub: BusHub) -> Iterator[MicroPythonManagerRig]:
    rig = MicroPythonManagerRig(tmp_path, hub)
    yield rig
    rig.close()


@pytest.fixture
def port(hil_board: Any) -> str:
    """pytest-embedded's port: the board under test."""
    return str(hil_board.device)


@pytest.fixture
def embedded_services() -> str:
    return "serial"
