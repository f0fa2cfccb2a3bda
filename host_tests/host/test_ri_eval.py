"""`stringcare ri-eval` and the capture format: good files give a value, bad files a
message that names what is wrong, and the exit status says which happened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from boards.sim.frontend import Block, Ripple, SimBoard
from shared import ri
from stringcare import cli, ricapture


def _capture_text(variant_id: int = 3, r0_ohm: float = 0.005, method: int | None = None) -> str:
    plan = ri.plan_for(variant_id, method)
    board = SimBoard(variant_id, seed=4)
    ripple = Ripple.typical(2.0, 50.0, 0.001, seed=2)
    v, i = board.ri_capture(plan, Block(r0_ohm, 0.003, 10.0), ripple)
    return ricapture.format_capture(plan, v, i, variant="12v", true_ri_nohm=int(r0_ohm * 1e9))


@pytest.fixture(scope="module")
def good_text() -> str:
    return _capture_text()


def _eval(capsys: pytest.CaptureFixture[str], *paths: Path) -> tuple[int, list[dict]]:
    code = cli.main(["ri-eval", *map(str, paths)])
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines()]


def test_good_capture_gives_ri_and_quality(tmp_path, capsys, good_text) -> None:
    path = tmp_path / "good.txt"
    path.write_text(good_text)
    code, records = _eval(capsys, path)
    assert code == 0
    (rec,) = records
    assert rec["file"] == str(path)
    assert rec["status"] == "ok"
    # uncalibrated simulated board: within its tolerances (about 1 %) of the truth
    assert rec["ri_uohm"] == pytest.approx(5000.0, rel=0.02)
    assert 0 < rec["quality"] <= 100
    assert rec["method"] == "step"
    assert set(rec) >= {"file", "ri_uohm", "quality"}


def test_the_host_and_the_firmware_code_agree(good_text) -> None:
    cap = ricapture.parse(good_text)
    # feeding the evaluator sample by sample (as a board's DMA chunks would) gives
    # exactly the same integers as the host's whole-file evaluation
    ev = ri.evaluator(cap.plan())
    for k in range(0, len(cap.v), 333):
        ev.feed(cap.v[k : k + 333], cap.i[k : k + 333], len(cap.v[k : k + 333]))
    a = ev.result()
    b = ricapture.evaluate(cap)
    assert (a.status, a.ri_nohm, a.uncert_ppm) == (b.status, b.ri_nohm, b.uncert_ppm)


def test_a_capture_locked_to_the_mains_keeps_its_clock(tmp_path, capsys) -> None:
    # a step capture whose clock followed the mains (0.3 % fast, docs/ri.md): the file
    # says so, and the host evaluates it with the plan the board used
    plan = ri.plan_for(3, ri.RI_METHOD_STEP)
    plan.lock_to_mains(3000)
    board = SimBoard(3, seed=4)
    v, i = board.ri_capture(plan, Block(0.005, 0.003, 10.0), Ripple.typical(2.0, 50.0, 0.003, 2))
    text = ricapture.format_capture(plan, v, i)
    assert "\nrate_ppm: 3000\n" in text
    cap = ricapture.parse(text)
    assert cap.plan().rate_ppm == 3000 and cap.plan().sample_rate_mhz == 2507500
    a = ri.evaluate(plan, v, i)
    b = ricapture.evaluate(cap)
    assert (a.status, a.ri_nohm, a.uncert_ppm) == (b.status, b.ri_nohm, b.uncert_ppm)
    path = tmp_path / "locked.txt"
    path.write_text(text)
    code, (rec,) = _eval(capsys, path)
    assert code == 0 and rec["ri_uohm"] == pytest.approx(5000.0, rel=0.02)
    # an unlocked plan writes no such line (older readers see the same file as before)
    assert "rate_ppm" not in ricapture.format_capture(ri.plan_for(3, ri.RI_METHOD_STEP), v, i)


def test_ac_capture_round_trips(tmp_path, capsys) -> None:
    path = tmp_path / "ac.txt"
    path.write_text(_capture_text(0, 0.0002, ri.RI_METHOD_AC))
    code, (rec,) = _eval(capsys, path)
    assert code == 0 and rec["method"] == "ac"
    assert rec["ri_uohm"] == pytest.approx(200.0, rel=0.02)


def _mutate(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


BAD_FILES = {
    "truncated": (
        lambda t: "\n".join(t.splitlines()[:-3000]) + "\n",
        "truncated: the header says 8000 samples, the file has 5000",
    ),
    "wrong_magic": (
        lambda t: _mutate(t, "STRINGCARE-RI-CAPTURE 1", "SOMETHING-ELSE 1"),
        "not a StringCare Ri capture",
    ),
    "wrong_version": (
        lambda t: _mutate(t, "STRINGCARE-RI-CAPTURE 1", "STRINGCARE-RI-CAPTURE 7"),
        "unsupported capture version '7'",
    ),
    "missing_fields": (
        lambda t: _mutate(_mutate(t, "shunt_uohm: 10000\n", ""), "skew_ns: 200000\n", ""),
        "missing header fields: shunt_uohm, skew_ns",
    ),
    "not_an_integer": (
        lambda t: _mutate(t, "sample_rate_hz: 2500", "sample_rate_hz: fast"),
        "line 3: sample_rate_hz must be an integer, got 'fast'",
    ),
    "bad_method": (
        lambda t: _mutate(t, "method: step", "method: pulse"),
        "method 'pulse' is not one of step, ac",
    ),
    "no_data_line": (
        lambda t: t.split("data:")[0],
        "no 'data:' line",
    ),
    "inconsistent": (
        lambda t: _mutate(t, "slots: 32", "slots: 30"),
        "samples is 8000 but slots * slot_samples is 7500",
    ),
    "bad_sample": (
        lambda t: t.replace("\ndata:\n", "\ndata:\n12 x\n", 1),
        "expected two integers 'v i', got '12 x'",
    ),
    "out_of_range": (
        lambda t: t.replace("\ndata:\n", "\ndata:\n5000 12\n", 1),
        "ADC codes must be 0..4095, got 5000 12",
    ),
    "extra_data": (
        lambda t: t + "100 200\n",
        "more data than the header's samples: 8000",
    ),
    "bad_plan": (
        lambda t: _mutate(_mutate(t, "slots: 32", "slots: 16"), "samples: 8000", "samples: 4000"),
        "header describes no valid plan: the step method needs 32 slots",
    ),
    "empty": (lambda t: "", "empty file"),
    # every field's range: a number from an impossible plan would be a wrong number
    "huge_gain_ppm": (
        lambda t: _mutate(t, "ri_gain_ppm: 0", "ri_gain_ppm: 999999999"),
        "ri_gain_ppm 999999999 is outside -50000..50000",
    ),
    "negative_gain_ppm": (
        lambda t: _mutate(t, "ri_gain_ppm: 0", "ri_gain_ppm: -1000000"),
        "ri_gain_ppm -1000000 is outside -50000..50000",
    ),
    "zero_excitation": (
        lambda t: _mutate(t, "excitation_ma: 1000", "excitation_ma: 0"),
        "excitation_ma 0 is outside 1..20000",
    ),
    "negative_excitation": (
        lambda t: _mutate(t, "excitation_ma: 1000", "excitation_ma: -1000"),
        "excitation_ma -1000 is outside 1..20000",
    ),
    "impossible_gain_range": (
        lambda t: _mutate(t, "gain_range: 0", "gain_range: 7"),
        "gain_range 7 is outside 0..1",
    ),
    "negative_skew": (
        lambda t: _mutate(t, "skew_ns: 200000", "skew_ns: -5"),
        "skew_ns -5 is outside 0..400000",
    ),
    "absurd_rate_ppm": (
        lambda t: _mutate(t, "\nsamples: 8000", "\nrate_ppm: 9000\nsamples: 8000"),
        "rate_ppm 9000 is outside -6000..6000",
    ),
    "absurd_amplifier_gain": (
        lambda t: _mutate(t, "v_gain: 40", "v_gain: 4000000"),
        "v_gain 4000000 is outside 1..10000",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_gets_a_clear_error(tmp_path, capsys, good_text, name) -> None:
    make, message = BAD_FILES[name]
    path = tmp_path / (name + ".txt")
    path.write_text(make(good_text))
    code, (rec,) = _eval(capsys, path)
    assert code == 2
    assert set(rec) == {"file", "error"}
    assert message in rec["error"], rec["error"]


def test_missing_and_binary_files(tmp_path, capsys) -> None:
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\xff\xfe\x00\x01" * 10)
    code, records = _eval(capsys, tmp_path / "nope.txt", binary)
    assert code == 2
    assert records[0]["error"] == "no such file"
    assert "not a text file" in records[1]["error"]


def test_mixed_files_one_line_each_and_worst_exit(tmp_path, capsys, good_text) -> None:
    good = tmp_path / "good.txt"
    good.write_text(good_text)
    # a capture whose amplifier clipped: evaluated, but no number
    plan = ri.plan_for(3, gain_range=0)
    board = SimBoard(3, seed=1)
    v, i = board.ri_capture(plan, Block(0.05), Ripple.typical(1.0, seed=1))
    clipped = tmp_path / "clipped.txt"
    clipped.write_text(ricapture.format_capture(plan, v, i))
    code, records = _eval(capsys, good, clipped)
    assert code == 1
    assert [r["status"] for r in records] == ["ok", "clipped"]
    assert records[1]["ri_uohm"] is None and records[1]["quality"] == 0
    truncated = tmp_path / "t.txt"
    truncated.write_text(good_text[: len(good_text) // 2])
    code, records = _eval(capsys, good, truncated, clipped)
    assert code == 2 and len(records) == 3


def test_ri_capture_command_writes_an_evaluable_file(tmp_path, capsys) -> None:
    out = tmp_path / "sim.txt"
    assert cli.main(["ri-capture", "--variant", "6v", "--ri-mohm", "4", "--out", str(out)]) == 0
    capsys.readouterr()
    code, (rec,) = _eval(capsys, out)
    assert code == 0
    assert rec["ri_uohm"] == pytest.approx(4000.0, rel=0.02)
    assert cli.main(["ri-capture", "--variant", "9v", "--ri-mohm", "4", "--out", str(out)]) == 2
    assert "unknown variant '9v'" in capsys.readouterr().err
