"""`stringcare history`: read a manager's history store and event log on the host.

    stringcare history export STORE [--csv] [--out FILE] [--from T] [--to T]
                                    [--modules 1-4,9] [--plot PNG] [--profile vrla --cells 6]
    stringcare history discharges STORE [--csv]
    stringcare history events LOG [--out FILE]
    stringcare history info STORE
    stringcare history demo STORE [--events LOG] [--modules N] [--strings S] [--days D]

STORE and LOG are images of the manager's ring stores (a file on a Linux manager, a
download or a flash dump from a board; docs/history.md).  A damaged or truncated
image still gives every record that is intact; what was skipped is reported on stderr
with its offset, and the command then exits with status 2.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from manager_fw.blockdev import FileBlockDevice
from manager_fw.events import (
    EVENT_NAMES,
    NO_MODULE,
    NO_STRING,
    EventReader,
)
from manager_fw.history_store import HistoryReader
from manager_fw.ring import StoreFormatError
from shared import history as h
from shared.thresholds import OFF_HIGH, OFF_LOW
from stringcare.errors import CliError
from stringcare_host.status import describe

EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
CSV_COLUMNS = (
    "time_utc",
    "time_s",
    "mode",
    "module",
    "label",
    "string",
    "voltage_v",
    "temperature_c",
    "ri_mohm",
    "balance_pct",
    "state",
    "status",
    "string_current_a",
)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "history",
        help="export, chart and inspect a manager's history store and event log",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    hs = p.add_subparsers(dest="history_command", metavar="ACTION", required=True)

    e = hs.add_parser("export", help="every module record as CSV (one row per module)")
    e.add_argument("store", help="history store image")
    e.add_argument("--csv", action="store_true", help="CSV output (the default and only format)")
    e.add_argument("--out", help="write the CSV here instead of stdout")
    e.add_argument(
        "--from", dest="time_from", help="first time, UTC: 2026-05-03 or 2026-05-03T12:00"
    )
    e.add_argument("--to", dest="time_to", help="last time, UTC")
    e.add_argument("--modules", help="module numbers (1-based, consecutive): 1-4,9")
    e.add_argument("--plot", help="also draw voltage/temperature/Ri/current charts into this PNG")
    e.add_argument(
        "--string", type=int, default=1, help="whose thresholds the chart draws (1-based)"
    )
    e.add_argument("--profile", help="draw this chemistry's default thresholds (vrla, gel, ...)")
    e.add_argument("--cells", type=int, default=6, help="cells per block for --profile (default 6)")
    e.set_defaults(func=quiet_pipe(run_export))

    d = hs.add_parser("discharges", help="list discharges and every block at the deepest point")
    d.add_argument("store")
    d.add_argument("--csv", action="store_true", help="CSV: one row per block per string")
    d.set_defaults(func=quiet_pipe(run_discharges))

    v = hs.add_parser("events", help="an event log as CSV")
    v.add_argument("log", help="event log image")
    v.add_argument("--out", help="write the CSV here instead of stdout")
    v.set_defaults(func=quiet_pipe(run_events))

    i = hs.add_parser("info", help="geometry, time range and health of a store or event log")
    i.add_argument("store")
    i.set_defaults(func=quiet_pipe(run_info))

    m = hs.add_parser("demo", help="write a synthetic store (and event log) to try the tools")
    m.add_argument("store")
    m.add_argument("--events", help="also write an event log here")
    m.add_argument("--modules", type=int, default=24)
    m.add_argument("--strings", type=int, default=2)
    m.add_argument("--days", type=float, default=7)
    m.add_argument("--seed", type=int, default=1)
    m.add_argument("--no-discharge", action="store_true", help="float charge only")
    m.set_defaults(func=run_demo)


# --------------------------------------------------------------------------- helpers


def iso(time_s: int) -> str:
    return (EPOCH + dt.timedelta(seconds=time_s)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(
            "%s %r is not a date/time; write it as 2026-05-03 or 2026-05-03T12:00 (UTC)"
            % (what, text)
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int((t - EPOCH).total_seconds())


def parse_modules(text: str | None) -> set[int] | None:
    if not text:
        return None
    out: set[int] = set()
    try:
        for part in text.split(","):
            a, _, b = part.strip().partition("-")
            first = int(a)
            last = int(b) if b else first
            if first < 1 or last < first:
                raise ValueError
            out.update(range(first, last + 1))
    except ValueError:
        raise CliError(
            "--modules %r: give 1-based module numbers and ranges like 1-4,9" % text
        ) from None
    return out


def mv(value_mv: int) -> str:
    return "%d.%03d" % divmod(value_mv, 1000) if value_mv >= 0 else "-" + mv(-value_mv)


def cc(value_cc: int) -> str:
    sign = "-" if value_cc < 0 else ""
    return "%s%d.%02d" % ((sign,) + divmod(abs(value_cc), 100))


def mohm(value_nohm: int) -> str:
    return "" if value_nohm == 0 else "%d.%06d" % divmod(value_nohm, 1000000)


def amps(value_ma: int) -> str:
    return "" if value_ma == h.CURRENT_NONE else mv(value_ma)


def status(state: int) -> str:
    text = ("normal", "warning", "alarm", "level3")[state & 3]
    return text + ("+silent" if state & h.STATE_SILENT else "")


def open_image(path: str) -> FileBlockDevice:
    if not Path(path).is_file():
        raise CliError("%s: no such file" % path)
    try:
        return FileBlockDevice(path, readonly=True)
    except OSError as exc:
        raise CliError("%s: cannot open: %s" % (path, exc)) from None


def history_reader(path: str) -> HistoryReader:
    dev = open_image(path)
    try:
        return HistoryReader(dev)
    except StoreFormatError as exc:
        hint = ""
        if "event log" in str(exc):
            hint = "; read it with `stringcare history events`"
        raise CliError("%s: %s%s" % (path, exc, hint)) from None


def report(reader: Any, path: str, what: str) -> int:
    """Print notes and problems to stderr; raise CliError when something was damaged."""
    for note in reader.notes:
        print("stringcare: note: %s: %s" % (path, note), file=sys.stderr)
    for problem in reader.problems:
        print("stringcare: damaged: %s: %s" % (path, problem), file=sys.stderr)
    if reader.problems:
        raise CliError(
            "%s is damaged in %d place(s) (listed above); every intact %s was exported"
            % (path, len(reader.problems), what)
        )
    return 0


def snapshot_rows(
    reader: HistoryReader, t_from: int | None, t_to: int | None, modules: set[int] | None
) -> Iterator[tuple]:
    for snap in reader.snapshots():
        if t_from is not None and snap.time_s < t_from:
            continue
        if t_to is not None and snap.time_s > t_to:
            continue
        when = iso(snap.time_s)
        mode = h.MODE_NAMES[snap.mode] if snap.mode < len(h.MODE_NAMES) else str(snap.mode)
        first = 0
        for s in range(snap.string_count):
            size = snap.string_sizes[s]
            current = amps(snap.string_current_ma[s])
            for j in range(size):
                i = first + j
                if modules is not None and i + 1 not in modules:
                    continue
                yield (
                    when,
                    snap.time_s,
                    mode,
                    i + 1,
                    "%dS%d" % (j + 1, s + 1),
                    s + 1,
                    mv(snap.voltage_mv[i]),
                    cc(snap.temp_cc[i]),
                    mohm(snap.ri_nohm[i]),
                    snap.balance_pct[i],
                    snap.state[i],
                    status(snap.state[i]),
                    current,
                )
            first += size


def quiet_pipe(func: Any) -> Any:
    """A closed pipe (`... | head`) ends the output quietly, as other CLI tools do."""

    def run(args: argparse.Namespace) -> int:
        try:
            return int(func(args))
        except BrokenPipeError:
            import os

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0

    return run


def output(path: str | None) -> TextIO:
    if path is None:
        return sys.stdout
    return open(path, "w", newline="")


# --------------------------------------------------------------------------- export


def run_export(args: argparse.Namespace) -> int:
    t_from = parse_time(args.time_from, "--from")
    t_to = parse_time(args.time_to, "--to")
    modules = parse_modules(args.modules)
    reader = history_reader(args.store)
    chart = Chart(modules) if args.plot else None
    out = output(args.out)
    rows = 0
    try:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        for snap_rows in _grouped(snapshot_rows(reader, t_from, t_to, modules)):
            for row in snap_rows:
                w.writerow(row)
                rows += 1
            if chart is not None:
                chart.add(snap_rows)
    finally:
        if out is not sys.stdout:
            out.close()
    if chart is not None:
        thresholds = chart_thresholds(reader, args)
        chart.save(args.plot, thresholds, args.store)
        print("stringcare: chart written to %s" % args.plot, file=sys.stderr)
    if rows == 0 and not reader.problems:
        print("stringcare: note: no records matched", file=sys.stderr)
    return report(reader, args.store, "record")


def csv_text(device: Any, rows_per_piece: int = 256) -> Iterator[str]:
    """The history store on `device` as `history export`'s CSV, in pieces (the web
    interface's download; a store being written meanwhile: a torn record is left out)."""
    import io

    reader = HistoryReader(device)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    n = 0
    for row in snapshot_rows(reader, None, None, None):
        w.writerow(row)
        n += 1
        if n % rows_per_piece == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


_CHART_LOCK = __import__("threading").Lock()  # pyplot keeps global state: one at a time


def chart_png(device: Any, string: int = 1) -> bytes:
    """`history export --plot`'s chart of the store on `device` as PNG bytes, with the
    thresholds stored in its newest key frame drawn (the web interface's charts)."""
    import io

    reader = HistoryReader(device)
    chart = Chart(None)
    for snap_rows in _grouped(snapshot_rows(reader, None, None, None)):
        chart.add(snap_rows)
    args = argparse.Namespace(profile=None, string=string, cells=None)
    thresholds = chart_thresholds(reader, args)
    out = io.BytesIO()
    with _CHART_LOCK:
        chart.save(out, thresholds, "manager")  # type: ignore[arg-type]
    return out.getvalue()


def _grouped(rows: Iterator[tuple]) -> Iterator[list[tuple]]:
    group: list[tuple] = []
    for row in rows:
        if group and row[1] != group[0][1]:
            yield group
            group = []
        group.append(row)
    if group:
        yield group


class Chart:
    """Collects rows of selected modules for a 4-panel chart."""

    def __init__(self, modules: set[int] | None) -> None:
        self.modules = modules
        self.times: list[dt.datetime] = []
        self.volts: dict[int, list[float]] = {}
        self.temps: dict[int, list[float]] = {}
        self.ris: dict[int, list[float]] = {}
        self.currents: dict[int, list[float]] = {}
        self.labels: dict[int, str] = {}

    def add(self, rows: list[tuple]) -> None:
        self.times.append(EPOCH + dt.timedelta(seconds=rows[0][1]))
        n = len(self.times) - 1
        for row in rows:
            module = row[3]
            self.labels[module] = row[4]
            for store, value in (
                (self.volts, row[6]),
                (self.temps, row[7]),
                (self.ris, row[8]),
            ):
                series = store.setdefault(module, [float("nan")] * n)
                series.append(float(value) if value != "" else float("nan"))
            cur = self.currents.setdefault(row[5], [float("nan")] * n)
            if len(cur) == n:
                cur.append(float(row[12]) if row[12] != "" else float("nan"))
        for store in (self.volts, self.temps, self.ris, self.currents):
            for series in store.values():
                while len(series) < n + 1:
                    series.append(float("nan"))

    def save(self, path: str, thresholds: Any, source: str) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np

        if not self.times:
            raise CliError("nothing to chart: no records matched")
        fig, axes = plt.subplots(4, 1, figsize=(11, 11), sharex=True)
        marker = "." if len(self.times) < 50 else None  # a few records: points, not lines
        panels = (
            (axes[0], self.volts, "block voltage (V)", "voltage"),
            (axes[1], self.temps, "temperature (°C)", "temperature"),
            (axes[2], self.ris, "internal resistance (mΩ)", "ri"),
            (axes[3], self.currents, "string current (A)", "current"),
        )
        for ax, data, ylabel, what in panels:
            keys = sorted(data)
            if what != "current" and len(keys) > 24:
                arr = np.array([data[k] for k in keys])
                with np.errstate(all="ignore"):
                    lo = np.nanmin(arr, axis=0)
                    hi = np.nanmax(arr, axis=0)
                    mean = np.nanmean(arr, axis=0)
                ax.fill_between(self.times, lo, hi, alpha=0.3, label="min-max of %d" % len(keys))
                ax.plot(self.times, mean, lw=1, label="mean", marker=marker)
            else:
                for k in keys:
                    name = "string %d" % k if what == "current" else self.labels.get(k, str(k))
                    ax.plot(self.times, data[k], lw=0.8, label=name, marker=marker)
            if thresholds is not None:
                for value, kind, text in thresholds.get(what, ()):
                    color = "red" if kind == "alarm" else "orange"
                    ax.axhline(value, color=color, ls="--", lw=1)
                    ax.annotate(
                        text,
                        (1.0, value),
                        xycoords=("axes fraction", "data"),
                        fontsize=7,
                        color=color,
                        ha="right",
                        va="bottom",
                    )
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            if keys and (len(keys) <= 12 or what == "current"):
                ax.legend(fontsize=6, ncol=6, loc="upper left")
        axes[0].set_title("StringCare history: %s" % Path(source).name)
        axes[3].set_xlabel("time (UTC)")
        fig.autofmt_xdate()
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


def chart_thresholds(reader: HistoryReader, args: argparse.Namespace) -> dict | None:
    """Levels to draw: --profile defaults, else those stored in the newest key frame."""
    if args.profile:
        from manager_fw import profiles

        try:
            t = profiles.thresholds_for(profiles.profile(args.profile), args.cells)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    else:
        t = None
        for snap in HistoryReader(reader.ring.device).snapshots():
            if snap.key and snap.thresholds is not None:
                index = min(max(args.string, 1), snap.string_count) - 1
                t = snap.thresholds[index]
        if t is None:
            return None
    out: dict[str, list] = {"voltage": [], "temperature": [], "ri": []}

    def add(what: str, value: int, scale: float, kind: str, text: str) -> None:
        if OFF_LOW + 1 < value < OFF_HIGH - 1:
            out[what].append((value / scale, kind, text))

    add("voltage", t.voltage_low_alarm_uv, 1e6, "alarm", "low alarm")
    add("voltage", t.voltage_low_warning_uv, 1e6, "warning", "low warning")
    add("voltage", t.voltage_high_warning_uv, 1e6, "warning", "high warning")
    add("voltage", t.voltage_high_alarm_uv, 1e6, "alarm", "high alarm")
    add("temperature", t.temp_low_alarm_mc, 1e3, "alarm", "low alarm")
    add("temperature", t.temp_low_warning_mc, 1e3, "warning", "low warning")
    add("temperature", t.temp_high_warning_mc, 1e3, "warning", "high warning")
    add("temperature", t.temp_high_alarm_mc, 1e3, "alarm", "high alarm")
    add("ri", t.ri_warning_nohm, 1e6, "warning", "warning")
    add("ri", t.ri_alarm_nohm, 1e6, "alarm", "alarm")
    return out


# --------------------------------------------------------------------------- discharges


class Discharge:
    def __init__(self, snap: h.Snapshot) -> None:
        self.start_s = snap.time_s
        self.end_s = snap.time_s
        self.records = 0
        self.deepest: dict[int, tuple[int, int, list[int], list[str]]] = {}

    def add(self, snap: h.Snapshot) -> None:
        self.end_s = snap.time_s
        self.records += 1
        first = 0
        for s in range(snap.string_count):
            size = snap.string_sizes[s]
            volts = [snap.voltage_mv[first + j] for j in range(size)]
            total = sum(volts)
            best = self.deepest.get(s)
            if best is None or total < best[0]:
                labels = ["%dS%d" % (j + 1, s + 1) for j in range(size)]
                self.deepest[s] = (total, snap.time_s, volts, labels)
            first += size


def find_discharges(reader: HistoryReader, gap_s: int = 300) -> list[Discharge]:
    found: list[Discharge] = []
    current: Discharge | None = None
    for snap in reader.snapshots():
        if snap.mode != h.MODE_DISCHARGE:
            current = None
            continue
        if current is None or snap.time_s - current.end_s > gap_s:
            current = Discharge(snap)
            found.append(current)
        current.add(snap)
    return found


def discharges_list(device: Any) -> list[dict[str, Any]]:
    """`history discharges` for the web interface: each discharge with every block of
    each string at the string's deepest point (its lowest sum), in mV."""
    out = []
    for d in find_discharges(HistoryReader(device)):
        strings = []
        for s in sorted(d.deepest):
            total, t, volts, labels = d.deepest[s]
            blocks = [[lb, v] for lb, v in zip(labels, volts, strict=True)]
            strings.append({"string": s + 1, "deepest_utc": iso(t), "sum_mv": total,
                            "blocks": blocks})  # fmt: skip
        out.append({"start_utc": iso(d.start_s), "end_utc": iso(d.end_s),
                    "minutes": round((d.end_s - d.start_s) / 60, 1), "records": d.records,
                    "strings": strings})  # fmt: skip
    return out


def module_ri(device: Any, module: int, points: int = 200) -> list[list[int]]:
    """Module `module`'s (0-based) Ri over the history store: [time_s, nΩ] where a
    record has a result, at most `points` of them (evenly thinned)."""
    found = []
    for snap in HistoryReader(device).snapshots():
        if module < snap.module_count and snap.ri_nohm[module] > 0:
            found.append([snap.time_s, snap.ri_nohm[module]])
    step = max(1, -(-len(found) // points))
    return found[::step]


def run_discharges(args: argparse.Namespace) -> int:
    reader = history_reader(args.store)
    found = find_discharges(reader)
    if args.csv:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(("discharge", "start_utc", "string", "deepest_utc", "label", "voltage_v"))
        for n, d in enumerate(found, 1):
            for s in sorted(d.deepest):
                _total, t, volts, labels = d.deepest[s]
                for label, v in zip(labels, volts, strict=True):
                    w.writerow((n, iso(d.start_s), s + 1, iso(t), label, mv(v)))
    else:
        if not found:
            print("no discharges in this store")
        for n, d in enumerate(found, 1):
            minutes = (d.end_s - d.start_s) / 60
            print(
                "discharge %d: %s to %s (%.1f min, %d records)"
                % (n, iso(d.start_s), iso(d.end_s), minutes, d.records)
            )
            for s in sorted(d.deepest):
                total, t, volts, labels = d.deepest[s]
                order = sorted(range(len(volts)), key=lambda k: volts[k])
                low = ", ".join("%s %s V" % (labels[k], mv(volts[k])) for k in order[:3])
                mean = sum(volts) / len(volts) / 1000
                print(
                    "  string %d deepest at %s: %s V; mean block %.3f V; lowest: %s"
                    % (s + 1, iso(t), mv(total), mean, low)
                )
                print(
                    "    "
                    + "  ".join("%s %s" % (lb, mv(v)) for lb, v in zip(labels, volts, strict=True))
                )
    return report(reader, args.store, "record")


# --------------------------------------------------------------------------- events


def run_events(args: argparse.Namespace) -> int:
    dev = open_image(args.log)
    try:
        reader = EventReader(dev)
    except StoreFormatError as exc:
        hint = "; export it with `stringcare history export`" if "history" in str(exc) else ""
        raise CliError("%s: %s%s" % (args.log, exc, hint)) from None
    out = output(args.out)
    try:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(
            (
                "time_utc",
                "time_s",
                "code",
                "event",
                "module",
                "string",
                "arg",
                "value",
                "extra",
                "text",
            )
        )
        for ev in reader.events():
            name = EVENT_NAMES[ev.code] if ev.code < len(EVENT_NAMES) else str(ev.code)
            w.writerow(
                (
                    iso(ev.time_s),
                    ev.time_s,
                    ev.code,
                    name,
                    "" if ev.module == NO_MODULE else ev.module + 1,
                    "" if ev.string == NO_STRING else ev.string + 1,
                    ev.arg,
                    ev.value,
                    ev.extra,
                    describe(ev),
                )
            )
    finally:
        if out is not sys.stdout:
            out.close()
    return report(reader, args.log, "event")


# --------------------------------------------------------------------------- info


def run_info(args: argparse.Namespace) -> int:
    dev = open_image(args.store)
    try:
        reader: Any = HistoryReader(dev)
        kind = "history store"
    except StoreFormatError as not_history:
        if not str(not_history).startswith("this is a"):  # not another kind: refused
            raise CliError("%s: %s" % (args.store, not_history)) from None
        try:
            reader = EventReader(dev)
            kind = "event log"
        except StoreFormatError as exc:
            raise CliError("%s: %s" % (args.store, exc)) from None
    ring = reader.ring
    print("%s: %s, %d bytes" % (args.store, kind, dev.size))
    print(
        "  %d segments of %d bytes, %d in use (sequence %s)"
        % (
            ring.count,
            ring.segment_size,
            len(ring.segments),
            "%d-%d" % (ring.segments[0][0], ring.segments[-1][0]) if ring.segments else "-",
        )
    )
    first = last = None
    count = 0
    layout = ""
    items = reader.snapshots() if kind == "history store" else reader.events()
    for item in items:
        first = item.time_s if first is None else first
        last = item.time_s
        count += 1
        if kind == "history store" and item.key:
            layout = "%d modules in %d strings (%s)" % (
                item.module_count,
                item.string_count,
                "+".join(str(x) for x in item.string_sizes),
            )
    what = "snapshots" if kind == "history store" else "events"
    if count:
        print("  %d %s from %s to %s" % (count, what, iso(first or 0), iso(last or 0)))
    else:
        print("  no %s" % what)
    if layout:
        print("  layout: %s" % layout)
    return report(reader, args.store, what[:-1])


# --------------------------------------------------------------------------- demo


def run_demo(args: argparse.Namespace) -> int:
    from manager_fw import profiles
    from manager_fw.events import EV_DISCHARGE_END, EV_DISCHARGE_START, EV_STARTUP, EventLog
    from manager_fw.history_store import HistoryWriter
    from shared.thresholds import AlarmEvaluator
    from stringcare import historygen

    if args.modules < 1 or args.strings < 1 or args.modules < args.strings:
        raise CliError("--modules must be >= --strings >= 1")
    for path in (args.store, args.events):
        if path and Path(path).exists():
            raise CliError("%s exists; the demo does not overwrite files" % path)
    plant = historygen.StringPlant(args.modules, args.strings, args.seed)
    size = max(1024 * 1024, 1024 * 1024 * (args.modules * int(args.days + 1) // 2000 + 1))
    writer = HistoryWriter(FileBlockDevice(args.store, size=size), plant.string_sizes)
    t = profiles.thresholds_for(profiles.VRLA, 6, ri_baseline_nohm=5000000)
    writer.set_thresholds(t)
    log = EventLog(FileBlockDevice(args.events, size=65536)) if args.events else None
    alarms = AlarmEvaluator(plant.string_sizes, t, log)
    if log is not None:
        log.append(plant.time_s, EV_STARTUP, value=100)

    def record() -> None:
        writer.append(plant.time_s, plant.mode, *plant.arrays())
        discharging = plant.mode == h.MODE_DISCHARGE
        for i in range(plant.modules):
            alarms.evaluate_module(
                plant.time_s, i, plant.voltage_uv[i], plant.temp_mc[i], discharging
            )
        for s in range(len(plant.string_sizes)):
            alarms.evaluate_string(plant.time_s, s, plant.voltage_uv, None, discharging)

    days_before = args.days if args.no_discharge else args.days * 0.7
    for _ in range(int(days_before * 72)):
        plant.step_float(1200)
        record()
    if not args.no_discharge:
        if log is not None:
            log.append(plant.time_s, EV_DISCHARGE_START, string=0, value=-80000)
        for k in range(1, 181):
            plant.step_discharge(10, k * 10, 1800, 80)
            record()
        if log is not None:
            log.append(plant.time_s, EV_DISCHARGE_END, string=0, value=1800, extra=1)
        for _ in range(int(args.days * 0.3 * 72)):
            plant.step_float(1200)
            record()
    print(
        "wrote %d snapshots of %d modules to %s (%d bytes used)"
        % (writer.snapshots_written, args.modules, args.store, writer.ring.consumed)
    )
    if log is not None:
        print("wrote %d events to %s" % (log.events_written, args.events))
    return 0
