"""The `stringcare` command: one entry point, one subcommand per module.

Each module in stringcare.commands defines ``register(subparsers)`` that adds its
subparser and sets ``func`` (called with the parsed arguments, returns an exit code).
New subcommands are new modules there; this file does not change.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import stringcare
import stringcare.commands
from stringcare.errors import CliError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stringcare",
        description="StringCare: battery string monitoring and balancing, host tools.",
    )
    parser.add_argument(
        "--version", action="version", version="stringcare %s" % stringcare.__version__
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(stringcare.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module("stringcare.commands." + info.name)
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print("stringcare: error: %s" % exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stringcare: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
