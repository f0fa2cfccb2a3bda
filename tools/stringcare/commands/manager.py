"""`stringcare manager`: run the manager on this computer (boards/linux_manager)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from stringcare.errors import CliError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "manager",
        help="run the manager here: poll the modules through a serial converter",
        description=(
            "Runs the StringCare manager on a PC or Raspberry Pi (boards/linux_manager): the "
            "site configuration (docs/manager.md), a serial port to the bus converter or a "
            "USB-RS485 adapter, history and events in --data, the status page with --serve."
        ),
    )
    p.add_argument("--config", required=True, help="the site configuration (JSON)")
    p.add_argument(
        "--port",
        required=True,
        help="serial port of the converter, e.g. /dev/ttyACM0 (or socket://host:port)",
    )
    p.add_argument("--data", default="stringcare-data", help="folder for history and events")
    p.add_argument(
        "--serve",
        metavar="[HOST:]PORT",
        help="serve the status page, e.g. 8080 (on 127.0.0.1; 0: any free port). It has no "
        "authentication yet: another HOST only on a network you trust",
    )
    p.add_argument(
        "--web",
        metavar="[HOST:]PORT",
        help="serve the operator's web interface (docs/operator.md: accounts in "
        "DATA/web_users.json; the first start prints a setup code on stderr)",
    )
    p.add_argument(
        "--control",
        metavar="SOCKET|none",
        help="the local control socket for `stringcare ctl` (default: DATA/control.sock, "
        "mode 0600: this user only; none: no control socket)",
    )
    p.add_argument("--tls-cert", help="serve --web over HTTPS with this PEM certificate")
    p.add_argument("--tls-key", help="the certificate's PEM key (if not in --tls-cert)")
    p.add_argument("--duration", help="stop after this long (e.g. 10m); default: until Ctrl-C")
    p.add_argument("--status-out", help="write the last status snapshot (JSON) here at the end")
    p.add_argument(
        "--rebaseline-ri",
        metavar="LABEL|all",
        help="learn the Ri baseline of this module (e.g. 4S2) or of all modules again from "
        "their next results (after a block was replaced or its connections reworked)",
    )
    # fault injection for `stringcare faults` (docs/reliability.md); not for operators
    p.add_argument("--fault-wall-offset-file", help=argparse.SUPPRESS)
    p.add_argument("--fault-crash-file", help=argparse.SUPPRESS)
    p.add_argument("--fault-storage", action="append", default=[], help=argparse.SUPPRESS)
    p.set_defaults(func=run)


class Stopped(BaseException):
    """SIGTERM, SIGHUP or SIGINT (Ctrl-C): leave the loop (the alarm contact is released
    on the way out).  A BaseException, so no `except Exception` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_signalled: list[int] = []  # the leaving signals received, first first


def _stop_on_signal(signum: int, frame: Any) -> None:
    # noted as well as raised: an exception raised by a signal handler is lost when the
    # signal lands while the interpreter runs a __del__ or a garbage-collector callback
    # ("Exception ignored in ..."); the loop then still stops at its next turn
    _signalled.append(signum)
    raise Stopped(signum)


LEAVING_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class OffsetWallClock:
    """The wall clock plus an offset read from a file (the fault campaign steps it)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.offset_s = 0.0
        self.read_at = 0.0

    def __call__(self) -> float:
        now = time.monotonic()
        if now - self.read_at >= 0.2:
            self.read_at = now
            try:
                self.offset_s = float(self.path.read_text().strip() or 0)
            except (OSError, ValueError):
                pass  # keep the last offset while the file is being rewritten
        return time.time() + self.offset_s


def run(args: argparse.Namespace) -> int:
    from boards.linux_manager.shell import LinuxManager
    from manager_fw.config import ConfigStore
    from manager_fw.site import ConfigError
    from stringcare.sim.scenario import ScenarioError, parse_duration
    from stringcare_host import web
    from stringcare_host.transport import SerialTransport

    path = Path(args.config)
    if not path.exists():
        raise CliError("%s: no such configuration file (docs/manager.md describes one)" % path)
    store = ConfigStore(str(path))
    try:
        cfg = store.load()
    except ConfigError as exc:
        raise CliError("%s: %s" % (path, exc)) from None
    for problem in store.problems:
        print("stringcare manager: %s" % problem, file=sys.stderr)
    stop_at = None
    if args.duration:
        try:
            stop_at = time.monotonic() + parse_duration(args.duration, "--duration")
        except ScenarioError as exc:
            raise CliError(str(exc)) from None
    del _signalled[:]
    for sig in LEAVING_SIGNALS:
        signal.signal(sig, _stop_on_signal)
    transport = SerialTransport(args.port, cfg.baud)
    wall = OffsetWallClock(args.fault_wall_offset_file) if args.fault_wall_offset_file else None
    rebaseline = _rebaseline_module(cfg, args.rebaseline_ri)
    wrapper = None
    if args.fault_storage:
        from stringcare.faults import inject

        wrapper = inject.device_wrapper(args.fault_storage)
    mgr = LinuxManager(
        cfg,
        transport,
        Path(args.data),
        wall_clock=wall or time.time,
        config_store=store,
        device_wrapper=wrapper,
    )
    if rebaseline is not None:
        mgr.core.rebaseline_ri(rebaseline, mgr.started_s)
    crash_file = Path(args.fault_crash_file) if args.fault_crash_file else None
    stopped_by = 0
    shown = {"at": 0.0, "events": 0}
    board: Any = None
    server: Any = None
    ui: Any = None
    ctl: Any = None
    try:
        if args.web:  # the operator's web interface (stringcare_host/webui.py)
            from boards.linux_manager.shell import EPOCH_2020
            from manager_fw.blockdev import FileBlockDevice
            from stringcare.commands import history
            from stringcare_host import webui
            from stringcare_host.status import event_text

            store_path = str(Path(args.data) / "history.bin")

            def stamp(t: int) -> str:
                return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t + EPOCH_2020))

            host_port = web.parse_hostport(args.web)

            def history_csv() -> Any:
                return history.csv_text(FileBlockDevice(store_path, readonly=True))

            def history_chart() -> bytes:
                return history.chart_png(FileBlockDevice(store_path, readonly=True))

            def history_discharges() -> Any:
                return history.discharges_list(FileBlockDevice(store_path, readonly=True))

            def history_module(i: int) -> Any:
                return history.module_ri(FileBlockDevice(store_path, readonly=True), i)

            ui = webui.WebUI(
                host_port[0],
                host_port[1],
                users_path=str(Path(args.data) / "web_users.json"),
                config_obj=json.loads(store.text),
                config_store=store,
                certfile=args.tls_cert,
                keyfile=args.tls_key,
                name="stringcare manager",
                history_csv=history_csv,
                history_chart=history_chart,
                history_discharges=history_discharges,
                history_module=history_module,
            )
            print("stringcare manager: web interface %s" % ui.url(), flush=True)
            ui.announce()
        if args.serve:
            host_port = web.parse_hostport(args.serve)
            board = web.Board()
            server = web.serve(board, host_port[0], host_port[1])
            host_port = server.server_address
            warning = web.exposed_warning(host_port[0])
            if warning:
                print("stringcare manager: warning: %s" % warning, file=sys.stderr, flush=True)
            print("stringcare manager: status page http://%s:%d/" % host_port, flush=True)
        ctl = open_control(args.control, Path(args.data), ui, cfg.layout, "stringcare manager")
        print(
            "stringcare manager: %d modules in %d strings on %s at %d baud"
            % (cfg.layout.module_count, cfg.layout.string_count, args.port, cfg.baud),
            flush=True,
        )

        def on_turn() -> None:
            if ctl is not None:  # operator commands from `stringcare ctl`, every turn
                ctl.turn(mgr.core, mgr.steady_s())
            now = time.monotonic()
            if now - shown["at"] < 1.0:
                return
            shown["at"] = now
            if crash_file is not None and crash_file.exists():
                raise RuntimeError("injected crash (--fault-crash-file)")
            if board is not None:
                board.publish(mgr.snapshot())
            if ui is not None:
                ui.turn(mgr.core, mgr.steady_s(), mgr.events, event_text, stamp)
            show_events(mgr, shown)

        mgr.run(
            lambda: bool(_signalled) or (stop_at is not None and time.monotonic() >= stop_at),
            on_turn,
        )
        if _signalled:
            stopped_by = _signalled[0]  # its Stopped was lost (see _stop_on_signal)
    except KeyboardInterrupt:  # a Ctrl-C before the handlers were in place
        stopped_by = signal.SIGINT
    except Stopped as exc:
        stopped_by = exc.signum
    finally:
        # leaving, however: a second signal must not cut the release of the contact short
        for sig in LEAVING_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        snap = mgr.snapshot()
        try:
            mgr.close()
        finally:
            if server is not None:
                server.shutdown()
            if ui is not None:
                ui.shutdown()
            if ctl is not None:
                ctl.close()
            show_events(mgr, shown)  # those of the last second too
            report_contact(mgr)
    if args.status_out:
        Path(args.status_out).write_text(json.dumps(snap, indent=1) + "\n")
    if mgr.core.refusal:
        print("stringcare manager: refused to run: %s" % mgr.core.refusal, file=sys.stderr)
        return 1
    return 128 + stopped_by if stopped_by else 0


def open_control(option: str | None, data: Path | None, ui: Any, layout: Any, name: str) -> Any:
    """The control socket of `stringcare ctl` (stringcare_host/control.py), or None.  It
    shares the web interface's command queue when there is one (one dispatch)."""
    from manager_fw.web import link as lk
    from stringcare_host import control

    if option == "none":
        return None
    if option:
        path = option
    elif data is not None:
        path = str(data / control.SOCKET_NAME)
    else:
        return None
    link = ui.link if ui is not None else lk.WebLink()
    srv = control.ControlServer(path, link, layout, name)
    print("%s: control socket %s (stringcare ctl --to it)" % (name, srv.path), flush=True)
    return srv


def _rebaseline_module(cfg: Any, label: str | None) -> int | None:
    """--rebaseline-ri: the module index (-1: all), None when not asked."""
    if label is None:
        return None
    if label == "all":
        return -1
    lay = cfg.layout
    for i in range(lay.module_count):
        if lay.label(i).lower() == label.lower():
            return i
    raise CliError(
        "--rebaseline-ri: no module %r in this site; give a label like %s, or all"
        % (label, lay.label(0))
    )


def show_events(mgr: Any, shown: dict[str, Any]) -> None:
    """The event log on the console, as it happens."""
    for e in mgr.log[int(shown["events"]) :]:
        print("  %s  %s" % (e["time"], e["text"]), flush=True)
    shown["events"] = len(mgr.log)


def report_contact(mgr: Any) -> None:
    cfg = mgr.core.cfg
    if mgr.contact_released is None:
        return
    where = "box %d relay %d" % (cfg.alarm_box, cfg.alarm_relay + 1)
    if mgr.contact_released:
        print("stringcare manager: alarm contact released (%s)" % where, flush=True)
    else:
        print(
            "stringcare manager: could not release the alarm contact (%s): the box did "
            "not confirm; its communication watchdog releases it" % where,
            file=sys.stderr,
            flush=True,
        )
