"""`stringcare calibrate` against a module on the bus (virtual: the world is set)."""

from __future__ import annotations

import argparse
import time
from typing import Any

import pytest

from stringcare.busport import BusPort
from stringcare.commands import calibrate
from stringcare.errors import CliError


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
    time.sleep(2.5)
    args = argparse.Namespace(
        bus=hil_board.bus_url, address=15, procedure="temperature", ref_c=27.0, probe=False
    )
    assert calibrate.run(args) == 0
    with BusPort(hil_board.bus_url) as bus:
        offset, gain = bus.cal_read(15, 3)
    assert 1500 <= offset <= 2500 and gain == 0  # the die reads ~25 degC, the reference 27

    # two points; the "meter" reads 1 % above what the ideal virtual converter sees
    steps = iter([12000000, 14000000])

    def ask(prompt: str) -> str:
        if "Enter" in prompt:
            hil_board.set_env(block_uv=next(steps))
            time.sleep(3.0)
            return ""
        return "%.1f" % (hil_board.vb.config["block_uv"] / 1000 * 1.01)

    args = argparse.Namespace(bus=hil_board.bus_url, address=15, procedure="voltage", samples=3)
    assert calibrate.run(args, ask) == 0
    with BusPort(hil_board.bus_url) as bus:
        offset, gain = bus.cal_read(15, 0)
        time.sleep(2.5)
        mv = bus.read_meas(15)["voltage_mv"]
    assert 9000 <= gain <= 11000, gain
    assert abs(mv - 14140) <= 15, mv
