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
from stringcare.dev.protocol_vectors import TEST_KEY_HEX
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


SLOTS_CHECKED = (0, 1, 31, 63)  # first, second, middle and last slot of a full group
BATCH = 8  # requests per look at the board's timing report
MAX_TRIES_PER_SLOT = 48


def slot_lateness_ns(delay_us: int, index: int, baud: int) -> int:
    """How late a reply started against the documented grid (docs/protocol.md §4):
    slot `index` opens L + index·18 Tc after the request, exactly (no rounding that
    accumulates), and a reply must start within its first Tc."""
    tc_ns = p.char_ns(baud)
    lead_ns = max(p.LEAD_MIN_US * 1000, 4 * tc_ns)
    return delay_us * 1000 - (lead_ns + index * 18 * tc_ns)


def measure_slot_lateness(rig: Any, address: int, slots=SLOTS_CHECKED) -> dict[int, int]:
    """Poll a full 64-module group with the board at each of `slots`; for each slot the
    earliest start seen against the documented grid (ns late; < 0: early).

    The board reports its own time from the request's last byte to each reply's first
    byte.  A loaded host can only make a reply later (the board's process is scheduled
    out), never earlier, so the earliest of several tries is the firmware's timing:
    tries stop at the first one inside the slot's first Tc (a firmware that is late
    every time is tried MAX_TRIES_PER_SLOT times)."""
    tc_ns = p.char_ns(115200)
    earliest: dict[int, int] = {}
    seq = 1
    with BusPort(rig.bus_url) as bus:
        for index in slots:
            tries = 0
            while tries < MAX_TRIES_PER_SLOT and not 0 <= earliest.get(index, tc_ns) < tc_ns:
                before = int(rig.vb.status().get("replies", 0))
                for _ in range(BATCH):
                    seq = seq % 250 + 1
                    first = address - index
                    req = p.encode_bytes(
                        p.ADDR_BROADCAST,
                        p.ADDR_MANAGER,
                        p.CMD_POLL_GROUP,
                        seq,
                        bytes([first & 0xFF, first >> 8, 64]),
                    )
                    bus.ser.write(req)
                    reply = bus.replies_until_first(seq, 5.0)
                    assert reply is not None and reply.src == address, "slot %d: no reply" % index
                tries += BATCH
                # the board writes its report every ~0.2 s: wait for this batch in it
                deadline = time.monotonic() + 10
                status: dict[str, Any] = {}
                while time.monotonic() < deadline:
                    status = rig.vb.status()
                    if int(status.get("replies", 0)) >= before + BATCH:
                        break
                    time.sleep(0.05)
                batch = status["reply_delays_us"][-BATCH:]
                late = min(slot_lateness_ns(int(d), index, 115200) for d in batch)
                earliest[index] = min(late, earliest.get(index, late))
    return earliest


def assert_replies_in_their_slots(earliest: dict[int, int], baud: int) -> None:
    tc_ns = p.char_ns(baud)
    for index, late_ns in earliest.items():
        assert late_ns >= -1000, "slot %d: reply %d ns early" % (index, -late_ns)
        assert late_ns < tc_ns, "slot %d: reply starts %d ns into its slot (limit 1 Tc = %d)" % (
            index,
            late_ns,
            tc_ns,
        )


@pytest.mark.vboard(deploy=True, address=70)
def test_poll_group_replies_start_within_the_first_tc_of_their_slot(hil_board: Any) -> None:
    if not hil_board.virtual:
        pytest.skip("needs the virtual board's own reply timing (a host port adds USB latency)")
    assert_replies_in_their_slots(measure_slot_lateness(hil_board, 70), 115200)


@pytest.mark.vboard(deploy=True, address=70, env={"reply_late_us": 90})
def test_slot_check_catches_a_module_one_tc_late(hil_board: Any) -> None:
    # the same board with its line driver 90 us (just over 1 Tc at 115200) late:
    # the check above must reject it, or it proves nothing
    if not hil_board.virtual:
        pytest.skip("emulates a late line driver")
    earliest = measure_slot_lateness(hil_board, 70, slots=(0, 63))
    with pytest.raises(AssertionError, match="limit 1 Tc"):
        assert_replies_in_their_slots(earliest, 115200)


@pytest.mark.vboard(deploy=True, address=11)
def test_poll_group_reply_reports_the_block(hil_board: Any) -> None:
    hil_board.set_env(block_uv=12800000)
    # the filter settles (100 ms frames); a loaded machine may deliver the board's frames
    # late: poll until the reading has followed, for up to 15 s
    deadline = time.monotonic() + 15
    seq = 42
    with BusPort(hil_board.bus_url) as bus:
        while True:
            req = p.encode_bytes(
                p.ADDR_BROADCAST, p.ADDR_MANAGER, p.CMD_POLL_GROUP, seq, bytes([11, 0, 1])
            )
            bus.ser.write(req)
            got = bus.replies_until_first(seq, 2.0)
            assert got is not None and got.src == 11
            mv = p.meas_voltage_uv(got.buf, got.off) // 1000
            settled = abs(mv - 12800) <= 10
            if not hil_board.virtual or settled or time.monotonic() > deadline:
                break
            seq += 1
            time.sleep(0.2)
    if hil_board.virtual:
        assert settled, mv


@pytest.mark.vboard(deploy=True, address=12, env={"ri_nohm": 4000000})
def test_ri_measurement_over_the_bus(hil_board: Any) -> None:
    # RI_START is authenticated (the measurement loads the block): the deployed key
    with BusPort(hil_board.bus_url, site_key=bytes.fromhex(TEST_KEY_HEX)) as bus:
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
