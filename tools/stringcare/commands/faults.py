"""`stringcare faults`: the fault campaign against the real Linux manager
(docs/reliability.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from stringcare.errors import CliError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "faults",
        help="run the fault campaign against the real Linux manager on virtual boards",
        description=(
            "Does each fault to a real `stringcare manager` polling virtual module boards "
            "(the MicroPython unix port running the module firmware) with a relay box's "
            "relay as the alarm contact, checks the guarantee, and reports held or broken "
            "(docs/reliability.md lists them). Exit 0 when every fault run held."
        ),
    )
    p.add_argument("names", nargs="*", metavar="FAULT", help="faults to run (see --list)")
    p.add_argument("--list", action="store_true", help="name every fault and its guarantee")
    p.add_argument("--all", action="store_true", help="run every fault")
    p.add_argument("--fast", action="store_true", help="run the fast subset (make test)")
    p.add_argument("--report", help="write the results as JSON here")
    p.add_argument("--workdir", default="build/faults", help="where the rig keeps its files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stringcare.dev import layout
    from stringcare.faults import campaign

    if args.list:
        for f in campaign.FAULTS:
            print("%-32s %s%s" % (f.name, f.guarantee, "  [fast]" if f.fast else ""))
        return 0
    unknown = [n for n in args.names if n not in campaign.names()]
    if unknown:
        raise CliError(
            "no fault named %s; `stringcare faults --list` names them" % ", ".join(unknown)
        )
    if not (args.all or args.fast or args.names):
        raise CliError("say which faults: FAULT names, --fast or --all (--list names them)")
    if args.all and args.names:
        raise CliError("give either --all or FAULT names, not both")
    faults = campaign.select(args.names, fast=args.fast and not args.all)
    print("stringcare faults: %d fault(s) against the Linux manager" % len(faults), flush=True)
    result = campaign.run_faults(
        faults, Path(args.workdir).resolve(), layout.repo_root(), lambda t: print(t, flush=True)
    )
    figs = result["figures"]
    print(
        "stringcare faults: %d of %d held (%.0f s)"
        % (figs["faults.held"], figs["faults.total"], result["seconds"]),
        flush=True,
    )
    if args.report:
        out = Path(args.report)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")
        print("stringcare faults: report in %s" % out, file=sys.stderr)
    return 0 if figs["faults.held"] == figs["faults.total"] else 1
