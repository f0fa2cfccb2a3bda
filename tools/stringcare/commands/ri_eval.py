"""`stringcare ri-eval FILE...`: evaluate Ri capture files, one JSON line each."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from stringcare import ricapture

DESCRIPTION = """\
Evaluate internal-resistance captures (docs/ri.md) with the module firmware's own
code and print one JSON line per file:

  {"file": ..., "ri_uohm": 1234.567, "quality": 97, "status": "ok", ...}
  {"file": ..., "ri_uohm": null, "quality": 0, "status": "clipped", ...}
  {"file": ..., "error": "truncated: the header says 8000 samples, the file has 5000"}

ri_uohm is null unless status is "ok"; quality is 0..100 (100 = no measurable noise,
0 = at the 2 % uncertainty limit).  Exit status: 0 when every capture gave a value,
1 when some capture was evaluated but gave no value (clipped, noisy, ...), 2 when
some file could not be read as a capture.
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "ri-eval",
        help="evaluate Ri capture files (one JSON line per file)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="capture files (docs/ri.md)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    worst = 0
    for name in args.files:
        try:
            capture = ricapture.read(Path(name))
        except ricapture.CaptureError as exc:
            print(ricapture.dumps(ricapture.error_record(name, str(exc))))
            worst = 2
            continue
        result = ricapture.evaluate(capture)
        print(ricapture.dumps(ricapture.result_record(name, result, capture)))
        if result.ri_nohm is None:
            worst = max(worst, 1)
        sys.stdout.flush()
    return worst
