"""`stringcare bundle`: build (and sign) the firmware bundle of one board (or all) under
build/firmware/, or make a signing key."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stringcare import bundle
from stringcare.dev import layout
from stringcare.errors import CliError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "bundle",
        help="build firmware bundles (mpy-cross per board architecture, stamp, signed "
        "SHA-256 manifest); --keygen makes a signing key",
        description=bundle.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--board",
        action="append",
        help="board name (repeatable; default: every board with a shell)",
    )
    p.add_argument(
        "--sign",
        metavar="KEY",
        type=Path,
        help="sign with this private key file (default: the checkout's development key "
        "%s, made on first use)" % bundle.DEV_KEY,
    )
    p.add_argument("--label", default="", help="a build name kept in the stamp (e.g. v1.2-rc1)")
    p.add_argument(
        "--out", type=Path, help="output folder (one board only; default build/firmware/BOARD)"
    )
    p.add_argument(
        "--keygen",
        metavar="PATH",
        type=Path,
        help="write a new Ed25519 signing key to PATH (private, mode 600) and PATH.pub, "
        "and build nothing",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    root = layout.repo_root()
    if args.keygen:
        try:
            pub = bundle.keygen(args.keygen)
        except bundle.BundleError as exc:
            raise CliError(str(exc)) from None
        print("private key: %s (keep it secret: whoever has it can sign firmware)" % args.keygen)
        print("public key:  %s.pub  %s" % (args.keygen, pub.hex()))
        return 0
    names = args.board or [
        b
        for b in bundle.known_boards(root)
        if bundle.load_board(root, b).get("shell") is not False
        and bundle.load_board(root, b).get("arch")  # host shells (linux_manager): no bundle
    ]
    if args.out and len(names) != 1:
        raise CliError("--out needs exactly one --board")
    for name in names:
        try:
            b = bundle.build(root, name, args.out, key=args.sign, label=args.label)
        except bundle.BundleError as exc:
            raise CliError(str(exc)) from None
        print(
            "%-18s %-9s %-9s %3d files %7.1f KB  id %s  signed by %s  %s"
            % (
                name,
                b.board["role"],
                b.board["arch"],
                len(b.files),
                b.total_bytes / 1024,
                b.id,
                b.signed_by[:16],
                b.out_dir,
            )
        )
    return 0
