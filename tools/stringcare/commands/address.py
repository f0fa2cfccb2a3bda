"""`stringcare address`: give battery modules their bus addresses (SPEC §3, docs/manager.md).

    stringcare address auto START END    every module at address 0 joins addressing mode;
                                         each button press takes the next address
    stringcare address set CURRENT NEW   change one address (0: the lone new module)
    stringcare address query             ask the only module on the bus its address
    stringcare address identify ADDRESS  blink a module until its button is pressed
    stringcare address reset ADDRESS|--all   back to address 0
    stringcare address check ADDRESS     is more than one module using this address?

Every action talks either to real hardware (--port /dev/ttyUSB0 [--baud 115200]) or to a
simulated bus (--sim N: N modules at address 0, or at --sim-addresses 0,0,5,...), where
a simulated installer presses buttons (--press-every 2s) so that the flow can be watched
(--speed 1 paces it to the clock).  Addressing stops normal polling: run it with the
manager's own polling stopped.  Ctrl-C leaves addressing mode cleanly and says where to
resume; an error says the address at which to resume.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from typing import Any

from manager_fw import addressing as ad
from manager_fw import events as ev
from shared import protocol as p
from stringcare.commands.calibrate import site_key_of
from stringcare.errors import CliError
from stringcare_host.transport import BusDriver, SerialTransport, SimTransport, Transport

EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def register(sub: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    bus = common.add_argument_group("bus (one of --port or --sim)")
    bus.add_argument("--port", help="serial port of the RS-485 converter, e.g. /dev/ttyUSB0")
    bus.add_argument("--baud", type=int, default=115200, help="bus rate (default 115200)")
    bus.add_argument(
        "--latency-ms",
        type=int,
        default=20,
        help="extra reply wait for USB serial adapters (default 20 ms)",
    )
    bus.add_argument(
        "--sim", type=int, metavar="N", help="a simulated bus of N modules (address 0 unless "
        "--sim-addresses)"
    )  # fmt: skip
    bus.add_argument("--sim-addresses", help="addresses of the simulated modules: 0,0,5,0")
    bus.add_argument(
        "--press-every",
        default="2s",
        help="simulated installer: one button press every ... (default 2s; 0 = never)",
    )
    bus.add_argument(
        "--press-order",
        choices=("cable", "reverse", "random"),
        default="cable",
        help="which waiting module the installer presses next (default cable order)",
    )
    bus.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="simulated bus: 1 = real time (default), 10 = ten times faster, 0 = at once",
    )
    bus.add_argument("--seed", type=int, default=1, help="simulated bus: random seed")
    common.add_argument("--event-log", help="also append addressing events to this event log")
    common.add_argument(
        "--site-key",
        default=os.environ.get("STRINGCARE_SITE_KEY"),
        help="the site key (32 hex digits or the manager's site_key.hex) that addressing "
        "hands to each module and set/reset need; default: $STRINGCARE_SITE_KEY",
    )

    ap = sub.add_parser(
        "address",
        help="give battery modules their bus addresses (auto, set, query, identify, reset)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = ap.add_subparsers(dest="action", metavar="ACTION", required=True)

    a = actions.add_parser("auto", parents=[common], help="addresses START..END by button")
    a.add_argument("start", type=int)
    a.add_argument("end", type=int)
    a.add_argument("--offer-ms", type=int, default=300, help="offer interval (default 300)")
    a.add_argument("--timeout", type=float, default=0, help="give up after S seconds (0: never)")
    a.set_defaults(func=run_auto)

    s = actions.add_parser("set", parents=[common], help="change one module's address")
    s.add_argument("current", type=int, help="its address now (0: the lone new module)")
    s.add_argument("new", type=int)
    s.set_defaults(func=run_set)

    q = actions.add_parser("query", parents=[common], help="address of the only module")
    q.set_defaults(func=run_query)

    i = actions.add_parser("identify", parents=[common], help="blink a module to find it")
    i.add_argument("address", type=int)
    i.add_argument("--off", action="store_true", help="switch identify off")
    i.add_argument("--timeout", type=float, default=600, help="stop after S seconds (600)")
    i.set_defaults(func=run_identify)

    r = actions.add_parser("reset", parents=[common], help="modules back to address 0")
    r.add_argument("address", type=int, nargs="?")
    r.add_argument("--all", action="store_true", help="every module on the bus")
    r.set_defaults(func=run_reset)

    c = actions.add_parser("check", parents=[common], help="find modules sharing an address")
    c.add_argument("address", type=int)
    c.set_defaults(func=run_check)


# --------------------------------------------------------------------------- helpers


def parse_duration(text: str) -> float:
    """'2s', '500ms', '1.5', '0' -> seconds."""
    t = text.strip().lower()
    try:
        if t.endswith("ms"):
            return float(t[:-2]) / 1000
        if t.endswith("s"):
            return float(t[:-1])
        return float(t)
    except ValueError:
        raise CliError(
            "--press-every %r is not a duration; write e.g. 2s, 500ms or 0" % text
        ) from None


def open_transport(args: argparse.Namespace) -> Transport:
    if (args.port is None) == (args.sim is None):
        raise CliError(
            "say which bus: --port /dev/ttyUSB0 for the RS-485 converter, or --sim N for a "
            "simulated bus of N modules"
        )
    if args.port is not None:
        t = SerialTransport(args.port, args.baud, args.latency_ms)
        t.site_key = site_key_of(getattr(args, "site_key", None))
        return t
    if args.sim < 1 or args.sim > 999:
        raise CliError("--sim %d: a simulated bus holds 1..999 modules" % args.sim)
    addresses = None
    if args.sim_addresses:
        try:
            addresses = [int(x) for x in args.sim_addresses.split(",")]
        except ValueError:
            raise CliError(
                "--sim-addresses %r: give addresses separated by commas, e.g. 0,0,5,0"
                % args.sim_addresses
            ) from None
        if len(addresses) != args.sim:
            raise CliError(
                "--sim-addresses gives %d addresses for --sim %d modules"
                % (len(addresses), args.sim)
            )
        bad = [a for a in addresses if not 0 <= a <= p.ADDR_MODULE_MAX]
        if bad:
            raise CliError("--sim-addresses: %d is outside 0..999" % bad[0])
    modules = SimTransport.unaddressed(args.sim, addresses)
    return SimTransport(
        modules,
        args.baud,
        args.seed,
        parse_duration(args.press_every),
        args.press_order,
        max(0.0, args.speed),
    )


def resume_command(args: argparse.Namespace, start: int) -> str:
    bus = "--port %s" % args.port if args.port else "--sim %d" % args.sim
    if args.port and args.baud != 115200:
        bus += " --baud %d" % args.baud
    return "stringcare address auto %d %d %s" % (start, args.end, bus)


class EventSink:
    """Appends addressing events to a manager event log file (--event-log)."""

    def __init__(self, path: str | None) -> None:
        self.log = None
        if path:
            from manager_fw.blockdev import FileBlockDevice

            try:
                self.log = ev.EventLog(FileBlockDevice(path, 64 * 1024))
            except (OSError, ValueError) as exc:
                raise CliError("cannot open the event log %s: %s" % (path, exc)) from None

    def __call__(self, step: int, module: int = ev.NO_MODULE, value: int = 0) -> None:
        if self.log is not None:
            now_s = int((dt.datetime.now(dt.UTC) - EPOCH).total_seconds())
            self.log.append(now_s, ev.EV_ADDRESSING, module, ev.NO_STRING, value, step)


def say(text: str) -> None:
    print(text, flush=True)


def finish_sim(transport: Transport) -> None:
    if isinstance(transport, SimTransport):
        mods = ", ".join(
            "%s=%d" % ("".join("%02x" % b for b in m.uid[-3:]), m.address)
            for m in transport.modules
        )
        modes = [m for m in transport.modules if m.addressing]
        say("simulated modules (uid tail=address): %s" % mods)
        if modes:
            say("%d simulated module(s) still in addressing mode" % len(modes))


def run_simple(args: argparse.Namespace, job: Any, timeout_s: float = 10) -> tuple[Any, int]:
    transport = open_transport(args)
    driver = BusDriver(transport)
    try:
        if not driver.run_job(job, timeout_s):
            raise CliError("the bus did not finish the request within %g s" % timeout_s)
    finally:
        finish_sim(transport)
        transport.close()
    if job.error is not None:
        print("stringcare: %s" % job.error, file=sys.stderr)
        return job, 1
    return job, 0


# --------------------------------------------------------------------------- actions


class Shown:
    """What the progress display has said already."""

    def __init__(self) -> None:
        self.next = -1
        self.assigned = 0
        self.warning: str | None = None


def run_auto(args: argparse.Namespace) -> int:
    try:
        job = ad.AutoAddressing(args.start, args.end, args.offer_ms)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    transport = open_transport(args)
    log = EventSink(args.event_log)
    driver = BusDriver(transport)
    total = args.end - args.start + 1
    say(
        "addressing %d..%d on %s: modules at address 0 blink fast red; press the button "
        "of the module that is to get each address, in order" % (args.start, args.end,
                                                               transport.name)
    )  # fmt: skip
    log(ev.ADDR_START, args.start)
    t0 = transport.now_us()
    shown = Shown()

    def progress() -> None:
        while shown.assigned < len(job.assigned):
            addr, uid = job.assigned[shown.assigned]
            shown.assigned += 1
            log(ev.ADDR_ASSIGNED, addr)
            say(
                "  address %d -> module %s   (%d of %d, %.1f s)"
                % (addr, uid, shown.assigned, total, (transport.now_us() - t0) / 1e6)
            )
        if job._state == ad.AutoAddressing.OFFER and job.next != shown.next:
            shown.next = job.next
            say("  address %d: waiting for a button press ..." % job.next)
        if job.warning and job.warning != shown.warning:
            shown.warning = job.warning
            say("  warning: %s" % job.warning)

    interrupted = False
    timeout = args.timeout or None
    try:
        try:
            finished = driver.run_job(job, timeout, progress)
        except KeyboardInterrupt:
            interrupted = True
            say("  interrupted: leaving addressing mode ...")
            job.stop()
            finished = driver.run_job(job, 5.0, progress)
        if not finished and not job.done:
            job.stop()
            driver.run_job(job, 5.0, progress)
            progress()
            log(ev.ADDR_ERROR, job.next)
            say("stopped after %g s without finishing; every module left addressing mode"
                % args.timeout)  # fmt: skip
            say("resume with: %s" % resume_command(args, job.next))
            return 1
        progress()
    finally:
        finish_sim(transport)
        transport.close()
    if job.error is not None:
        log(ev.ADDR_ERROR, job.resume_at)
        print("stringcare: %s" % job.error, file=sys.stderr)
        taken = job.resume_at
        if job._taken_uid is not None:  # the address belongs to a module already
            bus = resume_command(args, 0).split(" ", 5)[5]
            if taken < args.end:
                say("keep it and resume with: %s" % resume_command(args, taken + 1))
            say("or free it with: stringcare address reset %d %s" % (taken, bus))
            say("   and resume with: %s" % resume_command(args, taken))
        else:
            say("resume with: %s" % resume_command(args, taken))
        return 1
    if interrupted or job.stopped:
        log(ev.ADDR_ERROR, job.next)
        say("stopped by the operator after %d of %d; every module left addressing mode"
            % (len(job.assigned), total))  # fmt: skip
        say("resume with: %s" % resume_command(args, job.next))
        return 130
    log(ev.ADDR_DONE)
    say("done: %s" % job.result)
    return 0


def run_set(args: argparse.Namespace) -> int:
    try:
        job = ad.SetAddress(args.current, args.new)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    job, code = run_simple(args, job)
    if code == 0:
        EventSink(args.event_log)(ev.ADDR_CHANGED, args.new, args.current)
        if args.current == 0:
            say("the new module now has address %d" % args.new)
        else:
            say("module %d now has address %d" % (args.current, args.new))
    return code


def run_query(args: argparse.Namespace) -> int:
    job, code = run_simple(args, ad.QueryLone())
    if code == 0:
        address, uid = job.result
        state = "not addressed (0)" if address == 0 else "address %d" % address
        say("the module on the bus: %s, uid %s" % (state, uid))
    return code


def run_identify(args: argparse.Namespace) -> int:
    job = ad.Identify(args.address, on=not args.off)
    transport = open_transport(args)
    driver = BusDriver(transport)
    if not args.off:
        say("module %d blinks red/green; press its button to confirm (Ctrl-C stops)" % args.address)
    try:
        try:
            finished = driver.run_job(job, args.timeout)
        except KeyboardInterrupt:
            job.stop()
            finished = driver.run_job(job, 5.0)
        if not finished:
            job.stop()
            driver.run_job(job, 5.0)
    finally:
        finish_sim(transport)
        transport.close()
    if job.error is not None:
        print("stringcare: %s" % job.error, file=sys.stderr)
        return 1
    say(str(job.result))
    return 0


def run_reset(args: argparse.Namespace) -> int:
    if args.all == (args.address is not None):
        raise CliError("give one ADDRESS to reset, or --all for every module on the bus")
    if args.address is not None and not p.ADDR_MODULE_MIN <= args.address <= p.ADDR_MODULE_MAX:
        raise CliError("address %d is outside 1..999" % args.address)
    job, code = run_simple(args, ad.ResetAddresses(None if args.all else args.address))
    if code == 0:
        EventSink(args.event_log)(ev.ADDR_RESET, ev.NO_MODULE if args.all else args.address)
        say(str(job.result))
    return code


def run_check(args: argparse.Namespace) -> int:
    job, code = run_simple(args, ad.DuplicateCheck(args.address))
    if code == 0:
        uids = job.result
        if not uids:
            say("no module answers at address %d" % args.address)
        else:
            say("address %d: one module, uid %s" % (args.address, uids[0]))
    return code
