"""`stringcare history`: CSV export, charts, discharges, events, and what a damaged or
truncated store gives (every intact record, the damage named by offset, exit 2)."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manager_fw.blockdev import FileBlockDevice
from manager_fw.history_store import HistoryReader
from shared import history as h
from stringcare.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("demo")
    store, log = d / "history.bin", d / "events.bin"
    code = main(
        ["history", "demo", str(store), "--events", str(log), "--modules", "6", "--days", "2"]
    )
    assert code == 0
    return store, log


def snapshots(path: Path) -> list[tuple[int, list[int], list[int]]]:
    dev = FileBlockDevice(str(path), readonly=True)
    out = [(s.time_s, list(s.voltage_mv), list(s.temp_cc)) for s in HistoryReader(dev).snapshots()]
    dev.close()
    return out


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_export_gives_one_row_per_module_per_snapshot_in_real_units(demo, capsys) -> None:
    store, _ = demo
    code, out, err = run(capsys, "history", "export", str(store), "--csv")
    assert code == 0, err
    rows = rows_of(out)
    snaps = snapshots(store)
    assert len(rows) == 6 * len(snaps) > 6 * 300
    # the CSV says what the decoder says, in volts and °C
    for n in (0, len(snaps) // 2, len(snaps) - 1):
        t, volts, temps = snaps[n]
        for i in range(6):
            row = rows[6 * n + i]
            assert int(row["time_s"]) == t
            assert row["module"] == str(i + 1)
            assert row["label"] == "%dS%d" % (i % 3 + 1, i // 3 + 1)
            assert round(float(row["voltage_v"]) * 1000) == volts[i]
            assert round(float(row["temperature_c"]) * 100) == temps[i]
    modes = {r["mode"] for r in rows}
    assert modes == {"float", "discharge"}
    assert rows[0]["time_utc"].startswith("2026-05-03T") and rows[0]["time_utc"].endswith("Z")
    assert 3 < float(rows[0]["ri_mohm"]) < 7
    assert {r["string_current_a"] for r in rows if r["mode"] == "discharge"} == {"-40.000"}


def test_export_filters_by_time_and_module(demo, capsys) -> None:
    store, _ = demo
    snaps = snapshots(store)
    t_mid = snaps[len(snaps) // 2][0]
    from stringcare.commands.history import iso

    code, out, _ = run(
        capsys, "history", "export", str(store), "--from", iso(t_mid), "--modules", "2,4-5"
    )
    assert code == 0
    rows = rows_of(out)
    assert {r["module"] for r in rows} == {"2", "4", "5"}
    assert min(int(r["time_s"]) for r in rows) == t_mid
    assert len(rows) == 3 * sum(1 for s in snaps if s[0] >= t_mid)


def test_a_damaged_store_exports_every_intact_record_and_names_the_offset(
    demo, capsys, tmp_path
) -> None:
    store, _ = demo
    damaged = tmp_path / "damaged.bin"
    shutil.copy(store, damaged)
    data = bytearray(damaged.read_bytes())
    data[4000] ^= 0x42
    damaged.write_bytes(bytes(data))
    code, out, err = run(capsys, "history", "export", str(damaged))
    assert code == 2
    import re

    span = re.search(r"damaged bytes 0x([0-9a-f]+)-0x([0-9a-f]+)", err)
    assert span, err
    assert int(span.group(1), 16) <= 4000 <= int(span.group(2), 16)
    assert "every intact record was exported" in err
    good = snapshots(damaged)
    rows = rows_of(out)
    assert len(rows) == 6 * len(good)
    lost = len(snapshots(store)) - len(good)
    # the damaged frame and the deltas up to the next key frame (at most 72 snapshots apart)
    assert 1 <= lost <= 72


def test_a_truncated_store_says_so_and_exports_what_it_holds(demo, capsys, tmp_path) -> None:
    store, _ = demo
    cut = tmp_path / "cut.bin"
    cut.write_bytes(store.read_bytes()[:6000])
    code, out, err = run(capsys, "history", "export", str(cut))
    assert code == 2
    assert "store is truncated: 6000 bytes" in err
    assert "cut off by the end of the file at 0x1770" in err
    rows = rows_of(out)
    assert 0 < len(rows) == 6 * len(snapshots(cut))


def test_plot_draws_a_png(demo, capsys, tmp_path) -> None:
    store, _ = demo
    png = tmp_path / "h.png"
    code, _, err = run(capsys, "history", "export", str(store), "--plot", str(png))
    assert code == 0, err
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20000
    code, _, err = run(
        capsys, "history", "export", str(store), "--plot", str(png), "--profile", "nope"
    )
    assert code == 2 and "unknown chemistry 'nope'" in err


def test_discharges_list_the_deepest_point_of_every_block(demo, capsys) -> None:
    store, _ = demo
    code, out, _ = run(capsys, "history", "discharges", str(store))
    assert code == 0
    assert out.count("discharge 1:") == 1 and "discharge 2" not in out
    assert "(29.8 min, 180 records)" in out
    assert "string 1 deepest at" in out and "string 2 deepest at" in out
    code, out, _ = run(capsys, "history", "discharges", str(store), "--csv")
    rows = rows_of(out)
    assert len(rows) == 6
    assert all(10.0 < float(r["voltage_v"]) < 11.5 for r in rows)


def test_events_export_and_wrong_kind_of_file(demo, capsys) -> None:
    store, log = demo
    code, out, err = run(capsys, "history", "events", str(log))
    assert code == 0, err
    rows = rows_of(out)
    assert rows[0]["event"] == "startup"
    names = {r["event"] for r in rows}
    assert {"discharge start", "discharge end", "threshold"} <= names
    thr = [r for r in rows if r["event"] == "threshold"]
    assert any("voltage low warning (was normal)" in r["text"] for r in thr)
    code, _, err = run(capsys, "history", "export", str(log))
    assert code == 2 and "this is a event log, not a history store" in err
    assert "stringcare history events" in err
    code, _, err = run(capsys, "history", "events", str(store))
    assert code == 2 and "stringcare history export" in err


def test_info_and_bad_arguments(demo, capsys, tmp_path) -> None:
    store, _ = demo
    code, out, _ = run(capsys, "history", "info", str(store))
    assert code == 0
    assert "history store" in out and "6 modules in 2 strings (3+3)" in out
    code, _, err = run(capsys, "history", "export", str(tmp_path / "missing.bin"))
    assert code == 2 and "no such file" in err
    code, _, err = run(capsys, "history", "export", str(store), "--from", "yesterday")
    assert code == 2 and "2026-05-03T12:00" in err
    code, _, err = run(capsys, "history", "export", str(store), "--modules", "3-1")
    assert code == 2 and "1-4,9" in err
    blank = tmp_path / "blank.bin"
    blank.write_bytes(b"\xff" * 8192)
    code, _, err = run(capsys, "history", "info", str(blank))
    assert code == 2 and "no StringCare segment header" in err
    code, _, err = run(capsys, "history", "demo", str(store))
    assert code == 2 and "does not overwrite" in err


values = st.tuples(
    st.integers(-(10**6), 40 * 10**6),  # µV, out-of-range included (clamped)
    st.integers(-400000, 400000),  # m°C
    st.integers(-5, 1 << 27),  # nΩ
    st.integers(-5, 130),  # %
    st.integers(0, 15),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(values, min_size=3, max_size=3), min_size=1, max_size=12), st.data())
def test_codec_round_trips_any_sequence(seq, data) -> None:
    """Whatever the values, a key frame followed by deltas decodes to the clamped inputs."""
    enc = h.SnapshotEncoder([2, 1])
    snap = h.Snapshot()
    for n, mods in enumerate(seq):
        v, t, ri, b, s = (list(x) for x in zip(*mods, strict=True))
        cur = [data.draw(st.integers(-(1 << 25), 1 << 25)), h.CURRENT_NONE]

        class Sink:
            buf = bytearray()

            def write(self, chunk, k):
                self.buf += chunk[:k]

        sink = Sink()
        bw = h.BitWriter(8)
        bw.reset(sink)
        key = n == 0 or data.draw(st.booleans())
        size = enc.encode(bw, key, n % 4, v, t, ri, b, s, cur, None, True)
        assert size == len(sink.buf)
        h.decode_payload(h.KIND_KEY if key else h.KIND_DELTA, sink.buf, size, snap)
        assert list(snap.voltage_mv) == [h.voltage_mv_of(x) for x in v]
        assert list(snap.temp_cc) == [h.temp_cc_of(x) for x in t]
        assert list(snap.ri_nohm) == [h.ri_of(x) for x in ri]
        assert list(snap.balance_pct) == [h.balance_of(x) for x in b]
        assert list(snap.state) == s
        assert snap.string_current_ma[0] == h.current_of(cur[0])
        assert snap.mode == n % 4
