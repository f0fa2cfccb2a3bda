"""`stringcare calibrate`: per-channel offset and gain of one module, stored on the
module with CAL_WRITE over the bus (through the converter or a USB-RS485 adapter).

Procedures (boards/rp2040_module/README.md, "Calibration"):
  show         CAL_READ of the six channels
  voltage      two points against a reference meter: set the block voltage (a bench
               supply on the Kelvin and current wires) near the bottom, then near the
               top of the variant's range; type the meter's reading each time; the
               module's readings are averaged (READ_MEAS); offset uV and gain ppm follow.
               The board temperature at the start becomes the tempco's reference
               (channel 5 offset), so a stored tempco stays right.
  tempco       the voltage channel's temperature coefficient: one steady block voltage
               against the reference meter, with the board cold, then at least 15 K
               warmer (hot air, a chamber, or its own bleed); ppb/K from the two ratios
  ri           a 4-wire reference resistor (shunt) in place of the block on a bench
               supply: RI_START, RI_READ, gain ppm = reference / measured - 1 (on top
               of the stored gain), high range (channel 1) or low (--low-range, 2)
  temperature  the board (channel 3) or the probe (--probe, channel 4) beside a
               reference thermometer: offset m°C = reference - reading
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from manager_fw import sitekey
from shared import protocol as p
from shared import variants
from stringcare.busport import BusError, BusPort
from stringcare.errors import CliError

CHANNEL_NAMES = (
    "block voltage (uV)",
    "Ri high range",
    "Ri low range",
    "board temp (m°C)",
    "probe temp (m°C)",
    "voltage tempco",
)
TEMPCO_CHANNEL = 5  # offset: reference board temperature (m°C), gain: ppb/K


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "calibrate", help="calibrate a module's channels (offset/gain stored on the module)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument(
        "--bus", required=True, help="bus port: converter, adapter or socket:// URL"
    )
    parser.add_argument("--address", type=int, required=True, help="the module's address")
    parser.add_argument(
        "--site-key",
        default=os.environ.get("STRINGCARE_SITE_KEY"),
        help="the site key (32 hex digits, or the manager's site_key.hex file) that writing "
        "a calibration needs; default: $STRINGCARE_SITE_KEY",
    )
    what = parser.add_subparsers(dest="procedure", metavar="PROCEDURE", required=True)
    what.add_parser("show", help="print the stored calibration")
    v = what.add_parser("voltage", help="two-point block voltage against a reference meter")
    v.add_argument("--samples", type=int, default=10, help="module readings averaged per point")
    tc = what.add_parser(
        "tempco", help="voltage temperature coefficient: the board cold, then warm"
    )
    tc.add_argument("--samples", type=int, default=10, help="module readings averaged per point")
    tc.add_argument(
        "--min-rise", type=float, default=15.0, help="least board warming in K (default 15)"
    )
    r = what.add_parser("ri", help="Ri gain against a 4-wire reference resistor")
    r.add_argument("--ref-uohm", type=int, required=True, help="the reference resistor in uOhm")
    r.add_argument("--low-range", action="store_true", help="calibrate the low gain range")
    t = what.add_parser("temperature", help="temperature offset against a reference thermometer")
    t.add_argument("--ref-c", type=float, required=True, help="the reference thermometer, degC")
    t.add_argument("--probe", action="store_true", help="the external probe (default: board)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, ask: Callable[[str], str] = input) -> int:
    try:
        with BusPort(args.bus, site_key=site_key_of(getattr(args, "site_key", None))) as bus:
            return PROCEDURES[args.procedure](bus, args, ask)
    except BusError as exc:
        raise CliError(str(exc)) from None


def site_key_of(text: str | None) -> bytes | None:
    """--site-key: 32 hex digits, or a file holding them; None when not given."""
    if not text:
        return None
    path = Path(text)
    if len(text) != 32 and path.exists():
        text = path.read_text()
    try:
        return sitekey.parse(text)
    except ValueError as exc:
        raise CliError("--site-key: %s" % exc) from None


def show(bus: BusPort, args: argparse.Namespace, ask: Callable[[str], str]) -> int:
    for ch, name in enumerate(CHANNEL_NAMES):
        offset, gain = bus.cal_read(args.address, ch)
        if ch == TEMPCO_CHANNEL:
            print(
                "channel %d %-20s reference %.2f degC  %+.3f ppm/K"
                % (ch, name, offset / 1000, gain / 1000)
            )
        else:
            print("channel %d %-20s offset %8d  gain %+7d ppm" % (ch, name, offset, gain))
    return 0


def _mean_mv(bus: BusPort, address: int, samples: int) -> float:
    """The module's mean reading in mV, at the 10 uV the bus carries: whole mV would
    limit the tempco to ~15 ppm/K on a 2 V cell (docs/measurement.md)."""
    total = 0
    for _ in range(samples):
        total += bus.read_meas(address)["voltage_uv"]
        time.sleep(0.2)
    return total / samples / 1000


def voltage_fit(
    points: list[tuple[float, float]], offset_uv: int, gain_ppm: int
) -> tuple[int, int]:
    """New (offset uV, gain ppm) from two (module mV as reported, reference mV) points
    taken with the calibration (offset_uv, gain_ppm) in force."""
    (rep1, ref1), (rep2, ref2) = points
    scale_old = 1 + gain_ppm / 1e6
    raw1 = (rep1 * 1000 - offset_uv) / scale_old
    raw2 = (rep2 * 1000 - offset_uv) / scale_old
    if abs(raw2 - raw1) < 100000:
        raise CliError("the two points are closer than 100 mV: set the second voltage further away")
    scale = (ref2 - ref1) * 1000 / (raw2 - raw1)
    return round(ref1 * 1000 - raw1 * scale), round((scale - 1) * 1e6)


def _meter_mv(ask: Callable[[str], str]) -> float:
    try:
        return float(ask("Reference meter reading in mV: ").strip())
    except ValueError:
        raise CliError("the meter reading must be a number of millivolts, e.g. 12003.5") from None


def _board_mc(bus: BusPort, address: int) -> int:
    return int(bus.status(address)["board_temp_cc"]) * 10


# The two voltage points: CAL_INSET_PCT of the measured span inside its ends (12 V:
# 8.8 and 15.3 V).  A narrower pair extrapolates the meter's error beyond its span to
# the ends of the range (docs/measurement.md, "Error budget over a service life").
CAL_INSET_PCT = 10


def cal_points_uv(v: variants.Variant) -> tuple[int, int]:
    """(low, high) calibration voltages of a variant, uV: near the bottom and the top
    of the range the module measures (its nominal range, below 95 % of full scale)."""
    top = min(v.nominal_max_uv, v.measure_max_uv * 95 // 100)
    inset = (top - v.nominal_min_uv) * CAL_INSET_PCT // 100
    return v.nominal_min_uv + inset, top - inset


def _suggested_points(bus: BusPort, address: int) -> tuple[str, str]:
    """' (about 8.90 V)'-style hints from the module's variant; empty when unknown."""
    try:
        v = variants.by_id(bus.discover(address)["variant"])
    except (BusError, ValueError):
        return "", ""
    lo, hi = cal_points_uv(v)
    return ", about %.2f V" % (lo / 1e6), ", about %.2f V" % (hi / 1e6)


def voltage(bus: BusPort, args: argparse.Namespace, ask: Callable[[str], str]) -> int:
    offset, gain = bus.cal_read(args.address, 0)
    hint_lo, hint_hi = _suggested_points(bus, args.address)
    # the gain found here holds at this board temperature: the tempco's reference
    try:
        _, tc = bus.cal_read(args.address, TEMPCO_CHANNEL)
    except BusError:
        print("  (the module's firmware has no tempco channel: update it for `tempco`)")
    else:
        _write(bus, args.address, TEMPCO_CHANNEL, _board_mc(bus, args.address), tc)
    points = []
    for which in (
        "LOW (near the bottom of the range%s)" % hint_lo,
        "HIGH (near the top of the range%s)" % hint_hi,
    ):
        ask("Set the block voltage %s and let it settle; press Enter " % which)
        rep = _mean_mv(bus, args.address, args.samples)
        ref = _meter_mv(ask)
        print("  module %.1f mV, reference %.1f mV" % (rep, ref))
        points.append((rep, ref))
    new_offset, new_gain = voltage_fit(points, offset, gain)
    _write(bus, args.address, 0, new_offset, new_gain)
    return 0


def tempco_fit(
    cold: tuple[float, float, int], hot: tuple[float, float, int], ref_mc: int, tc_ppb: int
) -> int:
    """New tempco (ppb/K) from (module mV as reported, reference mV, board m°C) at two
    board temperatures, taken with (ref_mc, tc_ppb) in force."""
    ratios = []
    for rep, ref, board_mc in (cold, hot):
        raw = rep / (1 - tc_ppb * 1e-9 * (board_mc - ref_mc) / 1000)  # the correction undone
        ratios.append(raw / ref)
    rise_k = (hot[2] - cold[2]) / 1000
    return round((ratios[1] / ratios[0] - 1) / rise_k * 1e9)


def tempco(bus: BusPort, args: argparse.Namespace, ask: Callable[[str], str]) -> int:
    ref_mc, tc = bus.cal_read(args.address, TEMPCO_CHANNEL)
    points = []
    for which in (
        "with the board at room temperature (no bleeding, no airflow change)",
        "with the board at least %g K warmer and steady (hot air on low from 20 cm, "
        "a thermal chamber, or the module bleeding)" % args.min_rise,
    ):
        ask("Hold the block voltage steady %s; press Enter " % which)
        rep = _mean_mv(bus, args.address, args.samples)
        board = _board_mc(bus, args.address)
        ref = _meter_mv(ask)
        print("  module %.1f mV, reference %.1f mV, board %.2f degC" % (rep, ref, board / 1000))
        points.append((rep, ref, board))
    rise = (points[1][2] - points[0][2]) / 1000
    if rise < args.min_rise:
        raise CliError(
            "the board is only %.1f K warmer than at the first point (need %g K): warm it "
            "more and run the procedure again; nothing was stored" % (rise, args.min_rise)
        )
    if ref_mc == 0 and tc == 0:  # no reference yet: the cold point is it
        ref_mc = points[0][2]
    new_tc = tempco_fit(points[0], points[1], ref_mc, tc)
    if abs(new_tc) > p.CAL_GAIN_PPM_LIMIT:
        raise CliError(
            "a tempco of %+.1f ppm/K is far beyond the board's parts (a few ppm/K): the block "
            "voltage or the meter moved between the points; nothing was stored" % (new_tc / 1000)
        )
    print("  tempco %+.3f ppm/K (reference %.2f degC)" % (new_tc / 1000, ref_mc / 1000))
    _write(bus, args.address, TEMPCO_CHANNEL, ref_mc, new_tc)
    return 0


def ri(bus: BusPort, args: argparse.Namespace, ask: Callable[[str], str]) -> int:
    channel = 2 if args.low_range else 1
    _, gain = bus.cal_read(args.address, channel)
    _, duration_ms = bus.ri_start(args.address, 0)
    print("measuring Ri (%.1f s) ..." % (duration_ms / 1000))
    time.sleep(duration_ms / 1000 + 0.5)
    result = bus.ri_read(args.address)
    for _ in range(40):
        if result["state"] != p.RI_BUSY:
            break
        time.sleep(0.5)
        result = bus.ri_read(args.address)
    if result["state"] != p.RI_OK:
        raise CliError(
            "the Ri measurement gave no number (state %d): check the reference resistor's "
            "wiring (current and sense pairs) and the supply" % result["state"]
        )
    measured = result["ri_nohm"] / 1000
    new_gain = round(((1 + gain / 1e6) * args.ref_uohm / measured - 1) * 1e6)
    print("  module %.1f uOhm, reference %d uOhm" % (measured, args.ref_uohm))
    _write(bus, args.address, channel, 0, new_gain)
    return 0


def temperature(bus: BusPort, args: argparse.Namespace, ask: Callable[[str], str]) -> int:
    channel = 4 if args.probe else 3
    offset, _ = bus.cal_read(args.address, channel)
    if args.probe:
        meas = bus.read_meas(args.address)
        if not meas["flags"] & p.FLAG_PROBE:
            raise CliError("the module reports no probe: plug the NTC probe in (or drop --probe)")
        reading_mc = meas["temp_cc"] * 10
    else:
        reading_mc = bus.status(args.address)["board_temp_cc"] * 10
    new_offset = offset + round(args.ref_c * 1000) - reading_mc
    print("  module %.2f degC, reference %.2f degC" % (reading_mc / 1000, args.ref_c))
    _write(bus, args.address, channel, new_offset, 0)
    return 0


def _write(bus: BusPort, address: int, channel: int, offset: int, gain: int) -> None:
    if (
        not -p.CAL_OFFSET_LIMIT <= offset <= p.CAL_OFFSET_LIMIT
        or not -p.CAL_GAIN_PPM_LIMIT <= gain <= p.CAL_GAIN_PPM_LIMIT
    ):
        raise CliError(
            "calibration out of range (offset %d, gain %d ppm; limits +-%d, +-%d ppm): a "
            "correction this large means a wiring or component fault, not a calibration"
            % (offset, gain, p.CAL_OFFSET_LIMIT, p.CAL_GAIN_PPM_LIMIT)
        )
    stored = bus.cal_write(address, channel, offset, gain)
    print(
        "stored on module %d, channel %d (%s): offset %d, gain %+d ppm"
        % (address, channel, CHANNEL_NAMES[channel], stored[0], stored[1])
    )


PROCEDURES = {
    "show": show,
    "voltage": voltage,
    "tempco": tempco,
    "ri": ri,
    "temperature": temperature,
}
