"""`stringcare manager`: run the manager on this computer (boards/linux_manager)."""

from __future__ import annotations

import argparse
import json
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
    p.add_argument("--serve", metavar="HOST:PORT", help="serve the status page")
    p.add_argument("--duration", help="stop after this long (e.g. 10m); default: until Ctrl-C")
    p.add_argument("--status-out", help="write the last status snapshot (JSON) here at the end")
    p.set_defaults(func=run)


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
    transport = SerialTransport(args.port, cfg.baud)
    mgr = LinuxManager(cfg, transport, Path(args.data))
    board = None
    server = None
    if args.serve:
        host_port = web.parse_hostport(args.serve)
        board = web.Board()
        server = web.serve(board, host_port[0], host_port[1])
        print("stringcare manager: status page http://%s:%d/" % host_port, flush=True)
    print(
        "stringcare manager: %d modules in %d strings on %s at %d baud"
        % (cfg.layout.module_count, cfg.layout.string_count, args.port, cfg.baud),
        flush=True,
    )
    shown = {"at": 0.0, "events": 0}

    def on_turn() -> None:
        now = time.monotonic()
        if now - shown["at"] < 1.0:
            return
        shown["at"] = now
        if board is not None:
            board.publish(mgr.snapshot())
        for e in mgr.log[int(shown["events"]) :]:  # the event log, as it happens
            print("  %s  %s" % (e["time"], e["text"]), flush=True)
        shown["events"] = len(mgr.log)

    interrupted = False
    try:
        mgr.run(lambda: stop_at is not None and time.monotonic() >= stop_at, on_turn)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        snap = mgr.snapshot()
        mgr.close()
        if server is not None:
            server.shutdown()
    if args.status_out:
        Path(args.status_out).write_text(json.dumps(snap, indent=1) + "\n")
    if mgr.core.refusal:
        print("stringcare manager: refused to run: %s" % mgr.core.refusal, file=sys.stderr)
        return 1
    return 130 if interrupted else 0
