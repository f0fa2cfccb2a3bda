"""Only the holder of the site key commands a module (docs/protocol.md §5a), on the
deployed firmware: a rogue device's RESET_ADDRESS, CAL_WRITE and SET_TARGET change
nothing, a replayed authenticated frame is refused, and the module counts both."""

from __future__ import annotations

import time
from typing import Any

import pytest

from shared import auth
from shared import protocol as p
from shared import protocol_layouts as lay
from stringcare.busport import BusError, BusPort
from stringcare.dev.protocol_vectors import TEST_KEY_HEX

KEY = bytes.fromhex(TEST_KEY_HEX)  # what the hil_board fixture deploys


def rogue_send(bus: BusPort, data: bytes) -> None:
    """Put a frame on the bus as a device without the key would (no signer)."""
    bus.ser.write(data)
    bus.ser.flush()


def wait_for(what: str, cond: Any, timeout_s: float = 20) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        got = cond()
        if got:
            return got
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.2)


@pytest.mark.vboard(deploy=True, address=21)
def test_rogue_and_replayed_commands_change_nothing(hil_board: Any) -> None:
    with BusPort(hil_board.bus_url, site_key=KEY) as bus:
        assert bus.discover(21)["address"] == 21
        before = [bus.cal_read(21, ch) for ch in range(6)]
        refused0 = bus.status(21)["auth_refused"]
        rogue = auth.Signer(bytes(16))  # a device with some other key
        for signer in (None, rogue):
            for data in (
                lay.encode_request(p.ADDR_BROADCAST, p.CMD_RESET_ADDRESS, 11, {}, signer),
                lay.encode_request(21, p.CMD_CAL_WRITE, 12, {
                    "channel": 3, "offset": -10000, "gain_ppm": 0}, signer),
                lay.encode_request(p.ADDR_BROADCAST, p.CMD_SET_TARGET, 13, {
                    "first": 1, "last": 64, "target_10uv": 1260000,
                    "flags": p.TARGET_EQUALISE, "timeout_s": 120}, signer),
            ):  # fmt: skip
                rogue_send(bus, data)
                time.sleep(0.05)  # one frame at a time on the line
        wait_for("the module to count 6 refusals",
                 lambda: bus.status(21)["auth_refused"] >= refused0 + 6)  # fmt: skip
        assert bus.discover(21)["address"] == 21  # not reset
        assert [bus.cal_read(21, ch) for ch in range(6)] == before
        # the key holder's command goes through; the same bytes again are a replay
        assert bus.cal_write(21, 3, 500, 0) == (500, 0)
        assert bus.signer is not None
        replay = bytearray(p.FRAME_MAX)
        fields = bytes([3]) + (700).to_bytes(4, "little", signed=True) + bytes(4)
        replay[8:17] = fields
        p.encode_header(replay, 21, p.ADDR_MANAGER, p.CMD_CAL_WRITE, 99, 9 + p.AUTH_LEN)
        bus.signer.sign_request(replay, 9)
        frame = bytes(replay[: p.finish_frame(replay, 9 + p.AUTH_LEN)])
        rogue_send(bus, frame)  # once: accepted (a fresh counter)
        wait_for("the first copy applied", lambda: bus.cal_read(21, 3) == (700, 0))
        counted = bus.status(21)["auth_refused"]
        rogue_send(bus, frame)  # again: a replay
        wait_for("the replay counted", lambda: bus.status(21)["auth_refused"] == counted + 1)
        assert bus.cal_read(21, 3) == (700, 0)
        bus.cal_write(21, 3, before[3][0], before[3][1])  # as it was
    # without the key a tool cannot even try
    with BusPort(hil_board.bus_url) as bus, pytest.raises(BusError, match="site key"):
        bus.cal_write(21, 3, 0, 0)
