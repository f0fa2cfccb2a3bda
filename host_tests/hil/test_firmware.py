"""The deployed firmware at work: console (pytest-embedded's dut), bus timing,
measurement and Ri over the bus, the converter bridge and its way back to the REPL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pexpect
import pytest
from host_support import REPO

from shared import protocol as p
from stringcare.busport import BusPort
from stringcare.deploy import Deployer
from stringcare.vboard import BusHub, VirtualBoard


@pytest.mark.vboard(deploy=True, address=9)
def test_console_ctrl_c_gives_the_repl_and_ctrl_d_restarts_the_firmware(dut: Any) -> None:
    # A Ctrl-C that lands while the board is still rebooting after the deploy is lost
    # (on a loaded machine the reboot can still be under way): press it again, as an
    # operator would, up to three times.
    for attempt in range(3):
        dut.serial.proc.write(b"\r\x03")
        try:
            dut.expect(">>> ", timeout=5)
            break
        except pexpect.TIMEOUT:
            if attempt == 2:
                raise
    dut.serial.proc.write(b"\x04")  # soft reset at the friendly REPL
    dut.expect(r"stringcare: module \S+ started, address 9, variant 3", timeout=15)


@pytest.mark.vboard(deploy=True, address=11)
def test_poll_group_reply_comes_in_its_slot_and_reports_the_block(hil_board: Any) -> None:
    hil_board.set_env(block_uv=12800000)
    time.sleep(2.5)  # the filter settles (100 ms frames)
    # (a loaded machine may deliver the board's frames late: poll until the reading
    # has followed, for up to 15 s, and check every reply's slot)
    deadline = time.monotonic() + 15
    seq = 42
    with BusPort(hil_board.bus_url) as bus:
        while True:
            req = p.encode_bytes(
                p.ADDR_BROADCAST, p.ADDR_MANAGER, p.CMD_POLL_GROUP, seq, bytes([11, 0, 1])
            )
            bus.ser.write(req)
            sent = time.monotonic()
            got = bus.replies(seq, 0.5)
            elapsed_ms = (time.monotonic() - sent) * 1000
            assert len(got) == 1 and got[0].src == 11
            # slot 0 starts 2 ms (the group lead) after the request's end
            assert elapsed_ms >= p.group_lead_us(115200) / 1000
            settled = abs(got[0].u16(0) - 12800) <= 10
            if not hil_board.virtual or settled or time.monotonic() > deadline:
                break
            seq += 1
            time.sleep(0.5)
    if hil_board.virtual:
        assert settled, got[0].u16(0)


@pytest.mark.vboard(deploy=True, address=12, env={"ri_nohm": 4000000})
def test_ri_measurement_over_the_bus(hil_board: Any) -> None:
    with BusPort(hil_board.bus_url) as bus:
        method, duration_ms = bus.ri_start(12)
        assert method in (1, 2) and duration_ms > 0
        deadline = time.monotonic() + duration_ms / 1000 + 20
        result = bus.ri_read(12)
        while result["state"] == p.RI_BUSY and time.monotonic() < deadline:
            time.sleep(0.5)
            result = bus.ri_read(12)
    assert result["state"] == p.RI_OK, result
    if hil_board.virtual:
        assert abs(result["ri_nohm"] - 4000000) <= 4000000 * 3 // 100, result


def test_converter_bridges_the_bus_and_gives_the_repl_back(tmp_path: Path, hil_board: Any) -> None:
    if not hil_board.virtual:
        pytest.skip("the converter test builds its own virtual converter and module")
    hub: BusHub = hil_board.hub
    module = hil_board
    Deployer(REPO, "unix_module", module.device, 21, None, hub.url, progress=lambda t: None).run()
    conv = VirtualBoard(tmp_path / "conv", "unix_converter", bus=hub).start()
    try:
        first = Deployer(REPO, "unix_converter", conv.device, progress=lambda t: None).run()
        assert first.banner.startswith("stringcare: converter")
        with BusPort(conv.device) as bus:  # the converter's USB side, like /dev/ttyACM0
            info = bus.discover(21)
            assert info["address"] == 21 and info["uid"] == "5354524e47000101"
            # binary safety: a frame full of control characters crosses unchanged
            start = len(hub.traffic)
            payload = bytes([0x0D, 0x03, 0x04, 0x01, 0x02, 0x1B, 0x0A, 0xFF])
            frame = p.encode_bytes(999, p.ADDR_MANAGER, 0x7E, 1, payload)
            bus.ser.write(frame)
            deadline = time.monotonic() + 2
            while frame not in bytes(hub.traffic[start:]) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert frame in bytes(hub.traffic[start:])
        time.sleep(0.1)
        # mpremote's CR Ctrl-C stops the bridge: a second deploy works (and copies nothing)
        again = Deployer(REPO, "unix_converter", conv.device, progress=lambda t: None).run()
        assert again.copied == []
    finally:
        conv.stop()
