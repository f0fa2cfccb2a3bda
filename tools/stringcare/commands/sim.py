"""`stringcare sim`: the simulated battery string with the real firmware in the loop."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from stringcare.errors import CliError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sim",
        help="run the simulated battery string (physics + real module and manager firmware)",
        description=(
            "Runs a scenario: a battery string under its charger (docs/simulation.md), one "
            "real module core per block and the real manager core on a virtual RS-485 bus. "
            "Built-in scenarios: see --list."
        ),
    )
    p.add_argument("--scenario", default="demo", help="built-in name or a .toml/.json file")
    p.add_argument("--list", action="store_true", help="list the built-in scenarios and exit")
    p.add_argument("--blocks", type=int, help="blocks per string (overrides the scenario)")
    p.add_argument("--strings", type=int, help="strings (overrides the scenario)")
    p.add_argument("--duration", help="simulated time, e.g. 90m, 24h, 2d")
    p.add_argument(
        "--speed", default="max", help="max (as fast as possible), realtime, or NNx (e.g. 600x)"
    )
    p.add_argument("--seed", type=int, help="random seed (same seed: same report)")
    p.add_argument("--tick", default="5s", help="simulation tick in float charge (default 5s)")
    p.add_argument("--no-balancing", action="store_true", help="equalising off")
    p.add_argument("--report", help="write the JSON report here")
    p.add_argument(
        "--serve",
        metavar="[HOST:]PORT",
        help="serve the web interface, e.g. 8080 (on 127.0.0.1; docs/operator.md)",
    )
    p.add_argument(
        "--web-users",
        metavar="FILE",
        help="keep the web interface's accounts in FILE (default: in memory for this run; "
        "a new one-time setup code is printed on stderr)",
    )
    p.add_argument(
        "--control",
        metavar="SOCKET",
        help="accept `stringcare ctl --to SOCKET` commands (a unix socket, this user only)",
    )
    p.add_argument(
        "--micropython",
        action="store_true",
        help="run every module core in its own MicroPython process (up to 16 blocks)",
    )
    p.set_defaults(func=run)


def web_turn(server: Any, sim: Any) -> None:
    """The web interface's turn in the simulation loop (stringcare_host/webui.py)."""
    from stringcare.sim import engine
    from stringcare_host import status

    server.turn(
        sim.manager,
        sim.now_s(),
        sim.event_log,
        status.event_text,
        lambda t: engine._clock(t - engine.START_S),
    )


def parse_speed(text: str) -> float | None:
    if text == "max":
        return None
    if text == "realtime":
        return 1.0
    m = re.fullmatch(r"(\d+(?:\.\d+)?)x", text)
    if not m or float(m.group(1)) <= 0:
        raise CliError("--speed %r: use max, realtime or a factor like 600x" % text)
    return float(m.group(1))


def _fmt_hms(seconds: float) -> str:
    s = int(seconds)
    return "%d:%02d:%02d" % (s // 3600, s % 3600 // 60, s % 60)


def run(args: argparse.Namespace) -> int:
    from stringcare.sim import scenario as scn

    if args.list:
        for name in scn.builtin_names():
            sc = scn.load(name)
            first = sc.description.strip().split("\n")[0] if sc.description else ""
            print("%-26s %s" % (name, first))
        return 0
    try:
        sc = scn.load(args.scenario)
        if args.blocks is not None:
            if args.blocks < 1:
                raise CliError("--blocks %d: give at least 1" % args.blocks)
            sc.blocks = args.blocks
            sc.impaired_blocks = min(sc.impaired_blocks, sc.blocks)
        if args.strings is not None:
            if not 1 <= args.strings <= 16:
                raise CliError("--strings %d: a manager runs 1..16 strings" % args.strings)
            sc.strings = args.strings
        if sc.strings * sc.blocks > 600:
            raise CliError(
                "%d strings x %d blocks = %d modules; a manager runs at most 600"
                % (sc.strings, sc.blocks, sc.strings * sc.blocks)
            )
        if args.duration:
            sc.duration_s = scn.parse_duration(args.duration, "--duration")
        tick_s = scn.parse_duration(args.tick, "--tick")
        if not 0.1 <= tick_s <= 60:
            raise CliError("--tick %s: use 0.1 s .. 60 s" % args.tick)
        for ev in sc.events:
            for key in ("string",):
                if key in ev.args and ev.args[key] > sc.strings:
                    raise CliError(
                        "scenario event %s refers to string %d; there are %d"
                        % (ev.type, ev.args[key], sc.strings)
                    )
            if "block" in ev.args and ev.args["block"] > sc.blocks:
                raise CliError(
                    "scenario event %s refers to block %d; strings have %d blocks"
                    % (ev.type, ev.args["block"], sc.blocks)
                )
    except scn.ScenarioError as exc:
        raise CliError(str(exc)) from None
    speed = parse_speed(args.speed)
    if args.micropython and sc.modules > 16:
        raise CliError(
            "--micropython runs one MicroPython process per module: at most 16 blocks "
            "(this scenario has %d); use --blocks/--strings" % sc.modules
        )
    from stringcare.sim import engine
    from stringcare_host import web, webui

    server: webui.WebUI | None = None
    if args.serve:
        host_port = web.parse_hostport(args.serve)
        from stringcare.commands import history

        sim_ref: list = []  # the simulation, once built (the download reads its store)
        server = webui.WebUI(
            host_port[0],
            host_port[1],
            users_path=args.web_users,
            name="stringcare sim",
            history_csv=lambda: history.csv_text(sim_ref[0].history),
            history_chart=lambda: history.chart_png(sim_ref[0].history),
            history_discharges=lambda: history.discharges_list(sim_ref[0].history),
            history_module=lambda i: history.module_ri(sim_ref[0].history, i),
        )
    print(
        "stringcare sim: %s, %d string(s) x %d blocks, %s simulated, speed %s%s"
        % (
            sc.name,
            sc.strings,
            sc.blocks,
            _fmt_hms(sc.duration_s),
            args.speed,
            ", MicroPython modules" if args.micropython else "",
        ),
        flush=True,
    )
    print("  building the string and commissioning %d modules ..." % sc.modules, flush=True)
    sim = engine.Simulation(
        sc,
        seed=args.seed,
        tick_s=tick_s,
        balancing=False if args.no_balancing else None,
        micropython=args.micropython,
        operator_addressing=server is not None,  # the operator starts it in the browser
    )
    if server is not None:
        sim_ref.append(sim)
        server.link.config_obj = sim.config_obj
        web_turn(server, sim)
        print("  web interface: %s  (Ctrl-C ends the run)" % server.url(), flush=True)
        server.announce()
    ctl = None
    if args.control:
        from stringcare.commands.manager import open_control

        ctl = open_control(args.control, None, server, sim.manager.layout, "stringcare sim")
    tty = sys.stdout.isatty()
    last_line = [0.0]

    def progress(s: engine.Simulation) -> None:
        if ctl is not None:
            ctl.turn(s.manager, s.now_s())
        if server is not None:
            web_turn(server, s)
        now = time.monotonic()
        if not tty and now - last_line[0] < 10:
            return
        last_line[0] = now
        dev = s.series.max_dev_v[-1] * 1000 if s.series.max_dev_v else 0.0
        line = "  %s / %s  %3.0f%%  max deviation %6.1f mV  alarms %d  manager %s" % (
            _fmt_hms(s.t_s),
            _fmt_hms(sc.duration_s),
            100 * s.t_s / sc.duration_s,
            dev,
            s.manager.alarm_total(),
            s.manager.mode_name(),
        )
        print(("\r" + line) if tty else line, end="" if tty else "\n", flush=True)

    interrupted = False
    try:
        sim.run(sc.duration_s, speed=speed, progress=progress)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        sim.close()
        if ctl is not None:
            ctl.close()
    if tty:
        print()
    report = sim.report()
    report["wall_s"] = round(sim.wall_s, 2)
    report["interrupted"] = interrupted
    conv = report["converge_h"]
    print(
        "  %s after %s simulated in %.1f s: spread %.3f V -> %.4f V, "
        "max deviation from target %.1f mV, %s; bleed energy %.1f Wh; %d timeline events"
        % (
            "stopped" if interrupted else "done",
            _fmt_hms(sim.t_s),
            sim.wall_s,
            report["initial_spread_v"],
            report["final_spread_v"],
            report["final_max_dev_mv"],
            "within +-10 mV after %.2f h" % conv
            if conv is not None
            else "not settled within +-10 mV",
            report["bleed_energy_wh"],
            len(report["timeline"]),
        ),
    )
    if args.report:
        path = Path(args.report)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1) + "\n")
        print("  report: %s" % path)
    if server is not None:
        web_turn(server, sim)
        server.shutdown()
    return 130 if interrupted else 0
