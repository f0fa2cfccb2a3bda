"""`stringcare bench`: run the benchmarks, write build/bench/results.json."""

from __future__ import annotations

import argparse
from typing import Any

from stringcare import benchrun
from stringcare.errors import CliError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="run the benchmarks (tools/bench/) and write build/bench/results.json",
        description=benchrun.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "only", nargs="*", help="run only benchmarks whose name starts with this (e.g. bus)"
    )
    p.add_argument("--out", help="results file (default build/bench/results.json)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        return benchrun.main_bench(args.only or None, args.out)
    except ValueError as exc:
        raise CliError(str(exc)) from None
