"""`stringcare calibrate` against a module on the bus (virtual: the world is set)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import pytest

from stringcare.busport import BusError, BusPort
from stringcare.commands import calibrate
from stringcare.dev.protocol_vectors import TEST_KEY_HEX
from stringcare.errors import CliError

SETTLE_READS = 12  # 0.3 s apart: 3.3 s, longer than the filters' slow tail (~4 s to 1 count)


def settle(hil_board: Any, address: int, setting: str, value: int, timeout_s: float = 60) -> float:
    """Wait until the module's reading has followed the world (`setting` = `value`) and
    holds still: within 5 % (voltage) or 3 K (temperature) of what was set — the module
    is not calibrated yet —, within 2 counts over SETTLE_READS reads 0.3 s apart, and
    no longer drifting (the two halves of those reads agree to half a count).  Returns
    the mean of those reads (mV or 0.01 degC: the module rounds with
    error feedback, so single reads step by a count).  A deadline, not a fixed sleep: a
    loaded machine delivers the board's frames late."""
    key, expected, near = (
        ("voltage_mv", value // 1000, value // 20000)
        if setting == "block_uv"
        else ("temp_cc", value // 10, 300)
    )
    step = 1 if setting == "block_uv" else 20  # a count: 1 mV; 0.2 degC on the wire
    deadline = time.monotonic() + timeout_s
    seen: list[int] = []
    with BusPort(hil_board.bus_url) as bus:
        while True:
            try:
                read = int(bus.read_meas(address)[key])
            except BusError:  # three 0.3 s tries unanswered: a loaded machine, not a fault
                assert time.monotonic() < deadline, "no answer from %d" % address
                continue
            seen = (seen + [read])[-SETTLE_READS:]
            if (
                len(seen) == SETTLE_READS
                and all(abs(r - expected) <= near for r in seen)
                and max(seen) - min(seen) <= 2 * step
                and abs(sum(seen[:6]) - sum(seen[6:])) <= 3 * step  # halves within 0.5
            ):
                return sum(seen) / len(seen)
            assert time.monotonic() < deadline, "%s did not settle near %d: %r" % (
                key,
                expected,
                seen,
            )
            time.sleep(0.3)


def operator(
    hil_board: Any,
    address: int,
    setting: str,
    steps: list[int],
    meter: Callable[[], str],
    settled_mv: list[float] | None = None,
):
    """Answers `stringcare calibrate`'s prompts as a person at the bench would: at each
    "press Enter", set the world to the next step and wait for the module to settle; at
    each meter prompt, read the meter.  With settled_mv, a temperature step appends the
    voltage the module read once settled there (what the procedure is about to see)."""
    pending = iter(steps)

    def ask(prompt: str) -> str:
        if "Enter" in prompt:
            value = next(pending)
            hil_board.set_env(**{setting: value})
            settle(hil_board, address, setting, value)
            if setting == "temp_mc":  # the voltage's temperature correction follows
                mv = settle(hil_board, address, "block_uv", hil_board.vb.config["block_uv"])
                if settled_mv is not None:
                    settled_mv.append(mv)
            return ""
        return meter()

    return ask


def test_two_point_fit_recovers_gain_and_offset() -> None:
    # a module that reads 0.5 % high and 20 mV low, with nothing stored yet
    points = [(12000 * 1.005 - 20, 12000.0), (14000 * 1.005 - 20, 14000.0)]
    offset_uv, gain_ppm = calibrate.voltage_fit(points, 0, 0)
    for rep, ref in points:
        assert abs((rep * 1000) * (1 + gain_ppm / 1e6) + offset_uv - ref * 1000) < 2
    with pytest.raises(CliError, match="closer than 100 mV"):
        calibrate.voltage_fit([(12000.0, 12000.0), (12050.0, 12050.0)], 0, 0)


@pytest.mark.vboard(deploy=True, address=15, env={"temp_mc": 25000})
def test_temperature_and_voltage_calibration_are_stored_on_the_module(hil_board: Any) -> None:
    if not hil_board.virtual:
        pytest.skip("needs a board whose temperature and voltage the test controls")
    settle(hil_board, 15, "temp_mc", 25000)
    args = argparse.Namespace(
        site_key=TEST_KEY_HEX,
        bus=hil_board.bus_url,
        address=15,
        procedure="temperature",
        ref_c=27.0,
        probe=False,
    )
    assert calibrate.run(args) == 0
    with BusPort(hil_board.bus_url) as bus:
        offset, gain = bus.cal_read(15, 3)
    assert 1500 <= offset <= 2500 and gain == 0  # the die reads ~25 degC, the reference 27

    # two points; the "meter" reads 1 % above what the ideal virtual converter sees
    ask = operator(
        hil_board,
        15,
        "block_uv",
        [12000000, 14000000],
        lambda: "%.1f" % (hil_board.vb.config["block_uv"] / 1000 * 1.01),
    )

    args = argparse.Namespace(
        site_key=TEST_KEY_HEX, bus=hil_board.bus_url, address=15, procedure="voltage", samples=3
    )
    assert calibrate.run(args, ask) == 0
    with BusPort(hil_board.bus_url) as bus:
        offset, gain = bus.cal_read(15, 0)
    assert 9000 <= gain <= 11000, gain
    # the new calibration reaches the reading through the filter: wait for it
    deadline = time.monotonic() + 60
    while True:
        with BusPort(hil_board.bus_url) as bus:
            mv = bus.read_meas(15)["voltage_mv"]
        if abs(mv - 14140) <= 15 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert abs(mv - 14140) <= 15, mv


@pytest.mark.vboard(
    deploy=True, address=16, env={"temp_mc": 25000, "block_uv": 13600000, "volt_tc_ppb": 12000}
)
def test_tempco_calibration_takes_the_warm_board_error_out(hil_board: Any) -> None:
    if not hil_board.virtual:
        pytest.skip("needs a board whose temperature and tempco the test controls")

    def reading_at(temp_mc: int) -> float:
        hil_board.set_env(temp_mc=temp_mc)
        settle(hil_board, 16, "temp_mc", temp_mc)  # the board's sensor has followed
        return settle(hil_board, 16, "block_uv", 13600000)

    # the meter: the bench supply holds the block steady; the module's settled readings
    # at the two points are kept (each point's board temperature and voltage are settled
    # once, by the procedure's own steps, not a second time before it)
    before: list[float] = []
    ask = operator(hil_board, 16, "temp_mc", [25000, 60000], lambda: "13600.0", before)

    args = argparse.Namespace(
        site_key=TEST_KEY_HEX,
        bus=hil_board.bus_url,
        address=16,
        procedure="tempco",
        samples=3,
        min_rise=15.0,
    )
    assert calibrate.run(args, ask) == 0
    # uncalibrated, the board read 12 ppm/K high when warm: 5.7 mV at +35 K
    assert len(before) == 2, before
    assert abs(before[0] - 13600) <= 1 and 5 <= before[1] - 13600 <= 6.5, before
    with BusPort(hil_board.bus_url) as bus:
        ref_mc, tc = bus.cal_read(16, 5)
    assert abs(ref_mc - 25000) <= 300 and abs(tc - 12000) <= 1500, (ref_mc, tc)
    # calibrated: right warm (where the procedure left the board) and cold again
    assert abs(reading_at(60000) - 13600) <= 1 and abs(reading_at(25000) - 13600) <= 1

    # a board that did not warm enough (it starts where the board is: 25 degC): a clear
    # error, nothing stored
    ask = operator(hil_board, 16, "temp_mc", [25000, 31000], lambda: "13600.0")
    # (6 K by the virtual board; its sensor reads it to about +-0.1 K)
    with pytest.raises(CliError, match=r"only (5\.[89]|6\.[01]) K warmer .*nothing was stored"):
        calibrate.run(args, ask)
    with BusPort(hil_board.bus_url) as bus:
        assert bus.cal_read(16, 5) == (ref_mc, tc)
