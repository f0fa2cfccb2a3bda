"""Ri capture files: read, validate, write, evaluate (docs/ri.md has the format).

A capture is the raw samples of one internal-resistance measurement, from a real
board (dumped over the REPL) or from the simulated board, plus the front-end
constants needed to evaluate it.  Evaluation uses the firmware's own code
(shared/ri.py), so a file gives the same number on the host as on the board.

    STRINGCARE-RI-CAPTURE 1
    method: step
    sample_rate_hz: 2500
    ...
    samples: 8000
    data:
    2051 341
    ...
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared import frontend as fe
from shared import ri

MAGIC = "STRINGCARE-RI-CAPTURE"
VERSION = 1

# key -> (required, description); all values are integers unless noted
FIELDS: dict[str, tuple[bool, str]] = {
    "method": (True, "step or ac"),
    "sample_rate_hz": (True, "samples per second of each channel"),
    "slot_samples": (True, "samples per excitation slot (step: 100 ms; ac: half a period)"),
    "slots": (True, "number of slots (step: 32; ac: even, >= 16)"),
    "v_gain": (True, "Ri amplifier gain of the range used, V/V"),
    "shunt_uohm": (True, "excitation shunt, micro-ohm"),
    "shunt_gain": (True, "shunt amplifier gain, V/V"),
    "excitation_ma": (True, "planned excitation current, mA"),
    "adc": (True, "converter: rp2040 or stm32g4"),
    "skew_ns": (True, "delay of each i sample after its v sample, ns"),
    "samples": (True, "number of data lines (sample pairs) that follow"),
    "ri_gain_ppm": (False, "Ri calibration of this board and range, ppm (default 0)"),
    "gain_range": (False, "0 = high gain, 1 = low gain (default 0)"),
    "rate_ppm": (
        False,
        "the sample clock's offset from sample_rate_hz when the capture "
        "was locked to the mains, ppm (default 0)",
    ),
    "variant": (False, "module variant code, informational"),
    "source": (False, "where the capture comes from, informational"),
    "true_ri_nohm": (False, "the block's true R0 (simulated captures only)"),
}
TEXT_FIELDS = ("method", "adc", "variant", "source")


class CaptureError(ValueError):
    """A capture file that cannot be evaluated; the message says what is wrong."""


class Capture:
    def __init__(self, header: dict[str, Any], v: list[int], i: list[int]) -> None:
        self.header = header
        self.v = v
        self.i = i

    def plan(self) -> ri.RiPlan:
        h = self.header
        method = ri.METHOD_NAMES.index(h["method"])
        adc = fe.ADC_KIND_NAMES.index(h["adc"])
        try:
            plan = ri.RiPlan(
                method,
                h["sample_rate_hz"],
                h["slot_samples"],
                h["slots"],
                h["v_gain"],
                h["shunt_uohm"],
                h["shunt_gain"],
                h["excitation_ma"],
                adc,
                h["skew_ns"],
                h.get("ri_gain_ppm", 0),
                h.get("gain_range", 0),
            )
            if h.get("rate_ppm", 0):
                plan.lock_to_mains(h["rate_ppm"])
            return plan
        except ValueError as exc:
            raise CaptureError("header describes no valid plan: %s" % exc) from None


def _parse_value(key: str, text: str, line_no: int) -> Any:
    if key in TEXT_FIELDS:
        if key == "method" and text not in ri.METHOD_NAMES:
            raise CaptureError(
                "line %d: method %r is not one of %s" % (line_no, text, ", ".join(ri.METHOD_NAMES))
            )
        if key == "adc" and text not in fe.ADC_KIND_NAMES:
            raise CaptureError(
                "line %d: adc %r is not one of %s" % (line_no, text, ", ".join(fe.ADC_KIND_NAMES))
            )
        return text
    try:
        return int(text)
    except ValueError:
        raise CaptureError(
            "line %d: %s must be an integer, got %r" % (line_no, key, text)
        ) from None


def parse(text: str) -> Capture:
    """Parse and validate a capture file's text; CaptureError says what is wrong."""
    lines = text.splitlines()
    if not lines:
        raise CaptureError("empty file: expected a first line '%s %d'" % (MAGIC, VERSION))
    first = lines[0].strip()
    parts = first.split()
    if not parts or parts[0] != MAGIC:
        raise CaptureError(
            "not a StringCare Ri capture: first line is %r, expected '%s %d'"
            % (first[:60], MAGIC, VERSION)
        )
    if len(parts) != 2 or parts[1] != str(VERSION):
        raise CaptureError(
            "unsupported capture version %r (this tool reads version %d)"
            % (" ".join(parts[1:]), VERSION)
        )
    header: dict[str, Any] = {}
    data_start = None
    for n, raw in enumerate(lines[1:], start=2):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line == "data:":
            data_start = n
            break
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or not key:
            raise CaptureError("line %d: expected 'key: value' in the header, got %r" % (n, line))
        if key in header:
            raise CaptureError("line %d: field %r given twice" % (n, key))
        header[key] = _parse_value(key, value.strip(), n) if key in FIELDS else value.strip()
    missing = [k for k, (required, _) in FIELDS.items() if required and k not in header]
    if missing:
        raise CaptureError(
            "missing header field%s: %s" % ("s" if len(missing) > 1 else "", ", ".join(missing))
        )
    if data_start is None:
        raise CaptureError("no 'data:' line: the header must be followed by 'data:' and samples")
    expected = header["samples"]
    plan_samples = header["slots"] * header["slot_samples"]
    if expected != plan_samples:
        raise CaptureError(
            "samples is %d but slots * slot_samples is %d: the header is inconsistent"
            % (expected, plan_samples)
        )
    Capture(header, [], []).plan()  # the plan fields together, before the data
    v: list[int] = []
    i: list[int] = []
    for n, raw in enumerate(lines[data_start:], start=data_start + 1):
        line = raw.strip()
        if not line:
            continue
        if len(v) == expected:
            raise CaptureError(
                "line %d: more data than the header's samples: %d (extra line %r)"
                % (n, expected, line[:40])
            )
        fields = line.split()
        if len(fields) != 2:
            raise CaptureError("line %d: expected two integers 'v i', got %r" % (n, line[:40]))
        try:
            a, b = int(fields[0]), int(fields[1])
        except ValueError:
            raise CaptureError(
                "line %d: expected two integers 'v i', got %r" % (n, line[:40])
            ) from None
        if not (0 <= a <= fe.ADC_MAX_CODE and 0 <= b <= fe.ADC_MAX_CODE):
            raise CaptureError(
                "line %d: ADC codes must be 0..%d, got %d %d" % (n, fe.ADC_MAX_CODE, a, b)
            )
        v.append(a)
        i.append(b)
    if len(v) < expected:
        raise CaptureError(
            "truncated: the header says %d samples, the file has %d" % (expected, len(v))
        )
    return Capture(header, v, i)


def read(path: Path) -> Capture:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CaptureError("no such file") from None
    except UnicodeDecodeError:
        raise CaptureError("not a text file (a capture is UTF-8 text, see docs/ri.md)") from None
    except OSError as exc:
        raise CaptureError("cannot read: %s" % exc.strerror) from None
    return parse(text)


def format_capture(plan: ri.RiPlan, v: list[int], i: list[int], **extra: Any) -> str:
    """The text of a capture file for `plan` and its samples."""
    if len(v) != plan.samples or len(i) != plan.samples:
        raise ValueError(
            "capture has %d/%d samples, plan needs %d" % (len(v), len(i), plan.samples)
        )
    header = {
        "method": ri.METHOD_NAMES[plan.method],
        "sample_rate_hz": plan.sample_rate_hz,
        "slot_samples": plan.slot_samples,
        "slots": plan.slots,
        "v_gain": plan.v_gain,
        "shunt_uohm": plan.shunt_uohm,
        "shunt_gain": plan.shunt_gain,
        "excitation_ma": plan.excitation_ma,
        "adc": fe.ADC_KIND_NAMES[plan.adc_kind],
        "skew_ns": plan.skew_ns,
        "ri_gain_ppm": plan.ri_gain_ppm,
        "gain_range": plan.gain_range,
    }
    if plan.rate_ppm:
        header["rate_ppm"] = plan.rate_ppm
    header.update(extra)
    header["samples"] = plan.samples
    out = ["%s %d" % (MAGIC, VERSION)]
    out.extend("%s: %s" % (k, val) for k, val in header.items())
    out.append("data:")
    out.extend("%d %d" % pair for pair in zip(v, i, strict=True))
    return "\n".join(out) + "\n"


def evaluate(capture: Capture) -> ri.RiResult:
    return ri.evaluate(capture.plan(), capture.v, capture.i)


def result_record(name: str, result: ri.RiResult, capture: Capture) -> dict[str, Any]:
    """The JSON object `stringcare ri-eval` prints for one capture."""
    rec: dict[str, Any] = {
        "file": name,
        "ri_uohm": None if result.ri_nohm is None else round(result.ri_nohm / 1000.0, 3),
        "quality": result.quality,
        "status": result.status_name(),
        "method": capture.header["method"],
    }
    if result.uncert_ppm is not None:
        rec["uncert_pct"] = round(result.uncert_ppm / 10000.0, 4)
    if result.detail:
        rec["detail"] = result.detail
    return rec


def error_record(name: str, message: str) -> dict[str, Any]:
    return {"file": name, "error": message}


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=False)
