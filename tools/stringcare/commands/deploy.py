"""`stringcare deploy`: build a board's bundle and put it onto the board with mpremote."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stringcare import deploy
from stringcare.commands.calibrate import site_key_of
from stringcare.dev import layout
from stringcare.errors import CliError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "deploy",
        help="copy the firmware bundle onto a MicroPython board (only what changed), verify, start",
        description=deploy.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--board", help="board name (a folder of boards/ with board.json); or --bundle")
    p.add_argument("--port", required=True, help="the board's USB serial port, e.g. /dev/ttyACM0")
    p.add_argument(
        "--address", type=int, help="module: bus address to store (1..999; 0 = unaddressed)"
    )
    p.add_argument("--variant", help="module: block variant (2v, 4v, 6v, 12v, 16v)")
    p.add_argument(
        "--site-key",
        help="module, relay/IO box: the site key to store (32 hex digits or the manager's "
        "site_key.hex); docs/protocol.md, 'Authentication'",
    )
    p.add_argument(
        "--bus",
        help="module: the bus port (converter, USB-RS485 adapter or socket:// URL); the "
        "module must then answer DISCOVER there",
    )
    p.add_argument(
        "--key",
        type=Path,
        help="sign the bundle built for --board with this private key (default: the "
        "checkout's development key; see `stringcare bundle --keygen`)",
    )
    p.add_argument(
        "--bundle",
        type=Path,
        help="deploy a bundle built and signed before (`stringcare bundle --sign KEY "
        "--out DIR`) instead of building one",
    )
    p.add_argument(
        "--trust-key",
        action="store_true",
        help="make the board trust the bundle's signing key instead of the one it trusts "
        "(key rotation; needs USB: physical presence)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        if not args.board and not args.bundle:
            raise deploy.DeployError("say what to deploy: --board NAME or --bundle DIR")
        deploy.Deployer(
            layout.repo_root(), args.board, args.port, args.address, args.variant, args.bus,
            progress=lambda text: print(text, flush=True), key=args.key,
            bundle_dir=args.bundle, trust_key=args.trust_key,
            site_key=site_key_of(getattr(args, "site_key", None)),
        ).run()  # fmt: skip
    except deploy.DeployError as exc:
        raise CliError(str(exc)) from None
    print("deploy: done")
    return 0
