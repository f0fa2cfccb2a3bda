"""`stringcare ri-capture`: write an Ri capture file from the simulated board."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from boards.sim.frontend import Block, Ripple, SimBoard
from shared import frontend as fe
from shared import ri, variants
from stringcare import ricapture
from stringcare.errors import CliError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "ri-capture",
        help="simulate one Ri measurement and write its capture file (for ri-eval)",
        description=(
            "Simulate a module board (tolerances from --board-seed) measuring a block's "
            "internal resistance, and write the raw capture in the format of docs/ri.md. "
            "The block is R0 (--ri-mohm) plus an RC pair; the charger's ripple current is "
            "--ripple-pct %% of the block's capacity, the capacity following from R0 by the "
            "variant's typical R0 x capacity product."
        ),
    )
    p.add_argument("--variant", default="12v", help="2v, 4v, 6v, 12v or 16v (default 12v)")
    p.add_argument("--ri-mohm", type=float, required=True, help="block R0 in milliohm")
    p.add_argument("--method", choices=ri.METHOD_NAMES, help="default: the variant's method")
    p.add_argument("--gain-range", type=int, choices=(0, 1), default=0)
    p.add_argument("--adc", choices=fe.ADC_KIND_NAMES, default="rp2040")
    p.add_argument("--ripple-pct", type=float, default=1.0, help="ripple current, %% of C")
    p.add_argument("--mains-hz", type=float, default=50.0)
    p.add_argument("--board-seed", type=int, default=0)
    p.add_argument("--seed", type=int, default=0, help="ripple phases")
    p.add_argument("--out", required=True, help="capture file to write")
    p.set_defaults(func=run)


# R0 x capacity of lead-acid blocks (mOhm * Ah): about 60 per 2 V cell
RI_CAPACITY_MOHM_AH_PER_CELL = 60.0


def run(args: argparse.Namespace) -> int:
    try:
        variant = variants.by_code(args.variant)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if args.ri_mohm <= 0:
        raise CliError("--ri-mohm must be positive")
    method = None if args.method is None else ri.METHOD_NAMES.index(args.method)
    adc = fe.ADC_KIND_NAMES.index(args.adc)
    plan = ri.plan_for(variant.id, method, args.gain_range, adc)
    board = SimBoard(variant.id, args.board_seed, adc)
    r0 = args.ri_mohm / 1000.0
    capacity_ah = RI_CAPACITY_MOHM_AH_PER_CELL * variant.cells / args.ri_mohm
    ripple = Ripple.typical(
        args.ripple_pct / 100.0 * capacity_ah, args.mains_hz, 0.002, seed=args.seed
    )
    v, i = board.ri_capture(plan, Block(r0, 0.6 * r0, 10.0), ripple, drift_v_per_s=1e-4)
    text = ricapture.format_capture(
        plan,
        v,
        i,
        variant=variant.code,
        source="stringcare ri-capture board-seed=%d seed=%d ripple-pct=%g"
        % (args.board_seed, args.seed, args.ripple_pct),
        true_ri_nohm=int(round(r0 * 1e9)),
    )
    Path(args.out).write_text(text)
    print(
        "wrote %s (%d sample pairs, %s method)"
        % (args.out, plan.samples, ri.METHOD_NAMES[plan.method])
    )
    return 0
