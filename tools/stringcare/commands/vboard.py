"""`stringcare vboard`: run virtual boards (MicroPython unix port behind a pty) on one
virtual bus, to try deploy, the converter or the REPL without hardware."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from stringcare.errors import CliError
from stringcare.vboard import BusHub, VirtualBoard


def register(sub: Any) -> None:
    p = sub.add_parser(
        "vboard",
        help="run virtual boards (unix-port MicroPython behind ptys) on a virtual bus",
        description=__doc__,
    )
    p.add_argument("--dir", default="build/vboards", help="where the boards' flash folders live")
    p.add_argument("--modules", type=int, default=1, help="virtual module boards (default 1)")
    p.add_argument("--converter", action="store_true", help="also a virtual converter board")
    p.add_argument(
        "--iobox",
        action="store_true",
        help="also a virtual relay/IO box (box 1; relays in its .status.json)",
    )
    p.add_argument(
        "--current-sensor",
        action="store_true",
        help="also a virtual string current sensor (string 1)",
    )
    p.add_argument("--current-ma", type=int, default=0, help="the current sensor's reading")
    p.add_argument("--block-mv", type=int, default=13500, help="block voltage each module sees")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.modules < 0 or args.modules > 64:
        raise CliError("--modules must be 0..64")
    base = Path(args.dir)
    hub = BusHub()
    boards: list[VirtualBoard] = []
    for k in range(args.modules):
        uid = "5354524e4700%04x" % (k + 1)
        boards.append(
            VirtualBoard(base / ("module%d" % (k + 1)), "unix_module", hub,
                         env={"uid": uid, "block_uv": args.block_mv * 1000}).start()
        )  # fmt: skip
    if args.converter:
        boards.append(VirtualBoard(base / "converter", "unix_converter", hub).start())
    if args.iobox:
        boards.append(VirtualBoard(base / "iobox", "unix_iobox", hub, env={"box": 1}).start())
    if args.current_sensor:
        env = {"string": 1, "current_ma": args.current_ma}
        boards.append(VirtualBoard(base / "current", "unix_current", hub, env=env).start())
    print("virtual bus: %s" % hub.url)
    for b in boards:
        print("%-14s console %s  flash %s" % (b.board, b.device, b.flash_dir))
        if b.board == "unix_iobox":
            print("%-14s relays in %s.status.json" % ("", b.config_path))
    print("deploy with: stringcare deploy --board <board> --port <console> --bus %s" % hub.url)
    print("  (a module or a relay/IO box: add --site-key KEY, the manager's site key)")
    print("Ctrl-C stops them.")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for b in boards:
            b.stop()
        hub.close()
    return 0
