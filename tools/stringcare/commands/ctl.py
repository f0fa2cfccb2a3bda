"""`stringcare ctl`: an operator's command to a running manager or simulator through
its local control socket (stringcare_host/control.py, docs/manager.md)."""

from __future__ import annotations

import argparse
from typing import Any

from stringcare.errors import CliError

DEFAULT_SOCKET = "stringcare-data/control.sock"  # `stringcare manager`'s default --data


def register(sub: Any) -> None:
    p = sub.add_parser(
        "ctl",
        help="operator command to a running manager: mute, runaway reset, Ri, equalising",
        description=(
            "Sends one operator command to a running `stringcare manager` (or `stringcare "
            "sim --control`) through its control socket, a unix socket only the manager's "
            "user may use. The manager carries it out between two steps and logs it in its "
            "event log with the uid that sent it (docs/manager.md)."
        ),
    )
    p.add_argument(
        "--to",
        default=DEFAULT_SOCKET,
        metavar="SOCKET|DATA",
        help="the manager's control socket, or its --data folder (default: %s)" % DEFAULT_SOCKET,
    )
    acts = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    acts.add_parser("mute", help="silence the buzzer until the next new alarm")
    a = acts.add_parser("reset-runaway", help="reset a string's latched thermal-runaway trip")
    a.add_argument("--string", type=int, required=True, help="the string, from 1")
    a = acts.add_parser("equalise", help="switch a string's equalising on or off")
    a.add_argument("state", choices=("on", "off"))
    a.add_argument("--string", type=int, required=True, help="the string, from 1")
    acts.add_parser("ri-now", help="start an Ri round now instead of at its scheduled time")
    a = acts.add_parser(
        "rebaseline",
        help="learn a module's Ri baseline again from its next results (block replaced)",
    )
    a.add_argument(
        "--module", required=True, metavar="LABEL|all", help="its label (17 or 4S2), or all"
    )
    p.set_defaults(func=run)


def build_request(args: argparse.Namespace) -> dict:
    if args.action == "mute":
        return {"action": "mute"}
    if args.action == "reset-runaway":
        return {"action": "runaway_reset", "string": args.string}
    if args.action == "equalise":
        return {"action": "equalise_" + args.state, "string": args.string}
    if args.action == "ri-now":
        return {"action": "ri_now"}
    return {"action": "rebaseline", "module": args.module}


def run(args: argparse.Namespace) -> int:
    from stringcare_host import control

    answer = control.request(args.to, build_request(args))
    if not answer.get("ok"):
        raise CliError(str(answer.get("text", "the manager refused the command")))
    print(answer.get("text", "done"))
    return 0
