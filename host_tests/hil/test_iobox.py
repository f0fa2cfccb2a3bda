"""The relay/IO box and the string current sensor firmware (firmware/iobox,
firmware/current) on virtual boards (boards/unix_iobox, boards/unix_current) or real
ones (--port, --hil-board rp2040_iobox / rp2040_current): deploy, the bus answers, and
the box's communication watchdog releases the alarm relay when the manager goes silent
(docs/protocol.md §5.1)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hil_support import wait_for
from host_support import REPO

from shared import auth
from shared import protocol as p
from shared import protocol_layouts as lay
from shared import relaybox as rb
from stringcare.busport import BusPort
from stringcare.deploy import Deployer
from stringcare.vboard import BusHub, VirtualBoard

BOX = p.ADDR_RELAY_BOX_BASE + 1
SENSOR = p.ADDR_CURRENT_SENSOR_BASE + 1


def box_status(vb: VirtualBoard) -> dict[str, Any]:
    try:
        return json.loads(Path(str(vb.config_path) + ".status.json").read_text())
    except (OSError, ValueError):
        return {}


KEY = b"StringCare-test!"  # the published test key


def deploy(vb: VirtualBoard, hub: BusHub) -> str:
    d = Deployer(REPO, vb.board, vb.device, None, None, hub.url, progress=lambda t: None,
                 site_key=KEY)  # fmt: skip
    d.run()
    return str(d.banner)


def relays_of(bp: BusPort) -> tuple[int, int]:
    f = bp.request(BOX, p.CMD_IO_READ)
    return f.u8(0), f.u8(1)


def raw_request(bp: BusPort, data: bytes, seq: int) -> p.Frame:
    """Bytes written on the bus as they are (a rogue device, a recording played back);
    the box's answer."""
    bp.ser.reset_input_buffer()
    bp.ser.write(data)
    got = bp.replies_until_first(seq, 1.0)
    assert got is not None, "the box did not answer"
    return got


def relays_unfed(bp: BusPort) -> int:
    """IO_READ from a diagnostic address, not the manager's: the box answers it but its
    watchdog is not fed (docs/protocol.md §5.1), so it can be watched while it runs."""
    bp.seq = (bp.seq + 1) & 0xFF
    bp.ser.write(p.encode_bytes(BOX, 0x0005, p.CMD_IO_READ, bp.seq))
    got = bp.replies_until_first(bp.seq, 0.3)
    return -1 if got is None else got.u8(0)


@pytest.mark.vboard(board="unix_iobox", deploy=True, env={"box": 1, "inputs": 0b0101})
def test_iobox_switches_relays_and_releases_them_when_the_manager_falls_silent(
    hil_board: Any,
) -> None:
    if not hil_board.virtual and hil_board.board != "rp2040_iobox":
        pytest.skip("needs --hil-board rp2040_iobox")
    with BusPort(hil_board.bus_url, site_key=KEY) as bp:  # the fixture deployed KEY
        found = bp.discover(BOX)
        assert found["device_type"] == p.DEVICE_RELAY_BOX
        assert relays_of(bp)[0] == 0  # power-up: every fail-safe relay released
        if hil_board.virtual:  # inputs count once held 50 ms (debounced)
            wait_for("inputs 1 and 3 closed", lambda: relays_of(bp)[1] == 0b0101, 5)
        f = bp.request(BOX, p.CMD_RELAY_SET, bytes([0b0011, 0b0011]))
        assert f.u8(0) == 0b0011
        fed_at = time.monotonic()
        assert relays_unfed(bp) == 0b0011
        wait_for("relays released", lambda: relays_unfed(bp) == 0, 20)
        released_s = time.monotonic() - fed_at
        watchdog_s = rb.WATCHDOG_MS_DEFAULT / 1000
        assert watchdog_s - 0.5 <= released_s <= watchdog_s + 3, released_s  # loaded machine
        if hil_board.virtual:
            assert box_status(hil_board.vb)["expiries"] == 1
        assert relays_of(bp)[0] == 0  # the manager sees them dropped
        f = bp.request(BOX, p.CMD_RELAY_SET, bytes([0b0001, 0b0001]))
        assert f.u8(0) == 0b0001  # and sets them again


@pytest.mark.vboard(board="unix_iobox", deploy=True, env={"box": 1})
def test_a_rogue_or_replayed_relay_set_changes_nothing_and_is_counted(hil_board: Any) -> None:
    if not hil_board.virtual and hil_board.board != "rp2040_iobox":
        pytest.skip("needs --hil-board rp2040_iobox")
    with BusPort(hil_board.bus_url, site_key=KEY) as bp:
        f = bp.request(BOX, p.CMD_RELAY_SET, bytes([0b0011, 0b0011]))
        assert f.u8(0) == 0b0011
        # a rogue device with the manager's address but not the key, then a recording
        # of the manager's own frame played again: NAK 6, relays and watchdog untouched
        rogue = lay.encode_request(BOX, p.CMD_RELAY_SET, 40, {"mask": 0x0F, "state": 0},
                                   auth.Signer(bytes(16)))  # fmt: skip
        recorded = lay.encode_request(BOX, p.CMD_RELAY_SET, 41, {"mask": 0x0F, "state": 0},
                                      bp.signer)  # fmt: skip
        nak = raw_request(bp, rogue, 40)
        assert nak.cmd == p.CMD_NAK and nak.u8(1) == p.ERR_NOT_AUTHENTIC
        assert relays_unfed(bp) == 0b0011
        first = raw_request(bp, recorded, 41)  # the manager's frame: accepted once
        assert first.cmd == p.CMD_RELAY_SET | p.REPLY and first.u8(0) == 0
        bp.request(BOX, p.CMD_RELAY_SET, bytes([0b0011, 0b0011]))  # the manager again
        nak = raw_request(bp, recorded, 41)  # the recording played back
        assert nak.cmd == p.CMD_NAK and nak.u8(1) == p.ERR_NOT_AUTHENTIC
        assert relays_unfed(bp) == 0b0011
        info = bp.request(BOX, p.CMD_INFO)
        fields = lay.unpack(p.CMD_INFO, True, info.buf, info.off, info.length)
        assert fields["key_state"] == 1 and fields["auth_refused"] == 2


@pytest.mark.vboard(board="unix_current", deploy=True, env={"string": 1, "current_ma": -4200})
def test_current_sensor_reads_the_string_current(hil_board: Any) -> None:
    if not hil_board.virtual and hil_board.board != "rp2040_current":
        pytest.skip("needs --hil-board rp2040_current")
    with BusPort(hil_board.bus_url) as bp:
        assert bp.discover(SENSOR)["device_type"] == p.DEVICE_CURRENT_SENSOR

        def read() -> tuple[int, int, int]:
            f = bp.request(SENSOR, p.CMD_CURRENT_READ)
            return f.i32(0), f.u8(4), f.u8(5)

        if not hil_board.virtual:
            current, string_no, flags = read()
            assert string_no == 1 and flags == 0  # a sensor with no current through it
            return
        wait_for("-4.2 A", lambda: read() == (-4200, 1, 0), 5)
        hil_board.set_env(current_ma=150000)
        wait_for("150 A", lambda: read() == (150000, 1, 0), 5)
        hil_board.set_env(current_ma=320000)  # beyond the HASS 100-S's 300 A
        wait_for("over range", lambda: read()[2] == 2, 5)
        hil_board.set_env(adc_fault=True)
        wait_for("sensor fault", lambda: read()[2] & 1, 5)


def test_micropython_manager_reads_the_sensor_drives_the_contact_and_the_box_drops_it(
    mp_manager: Any,
) -> None:
    """The manager firmware in MicroPython (unix_manager) polls a module, reads the
    current sensor and energises the alarm relay on the box (all well); killed, it goes
    silent and the box releases the contact within its watchdog time."""
    rig = mp_manager
    rig.module(1, {"block_uv": 13500000, "uid": "5354524700000501"})
    # the box and the sensor run their firmware straight from the checkout (the deploy
    # of these roles is the two tests above)
    box = rig.firmware("iobox", "unix_iobox", {"box": 1})
    assert "watchdog 10000 ms" in box.banner
    sensor = rig.firmware("current", "unix_current", {"string": 1, "current_ma": 2500})
    rig.site(
        {
            "site": "hil",
            "strings": [{"modules": 1, "current_sensor": 1}],
            "io": {"alarm_relay": {"box": 1, "relay": 1}},
        }
    )
    rig.start()
    wait_for(
        "the manager running with the sensor's 2.5 A",
        lambda: rig.status().get("mode") == "running" and rig.status().get("currents") == [2500],
        60,
    )
    wait_for("the alarm relay energised (all well)", lambda: box.status().get("relays"), 20)
    assert rig.status()["contact"] is True and box.status()["relays"] == 0b0001
    sensor.set_env(current_ma=-7000)
    wait_for("the manager follows the sensor", lambda: rig.status()["currents"] == [-7000], 20)
    assert box.status()["relays"] == 0b0001 and box.status()["expiries"] == 0
    rig.kill()  # SIGKILL: nothing runs on the manager's side any more
    killed = time.monotonic()
    wait_for("the box releases the alarm relay", lambda: box.status().get("relays") == 0, 30)
    dropped_s = time.monotonic() - killed
    # the last poll came <= 2 s before the kill (BOX_FEED_MS; a loaded machine may
    # stretch that), then 10 s of watchdog
    assert 5 <= dropped_s <= 13, dropped_s
    assert box.status()["expiries"] == 1
