"""A simple stand-in for the battery string, until the simulator's physics
(tools/stringcare/sim/) is coupled to the module board.

Each block on float: its voltage rises with the logarithm of the current that
reaches its electrochemistry (Tafel behaviour of the side reactions, ~0.12 V per
decade per cell) plus R0 times that current; the module's bleed current is taken
from the string current before it reaches the block.  The string current is
whatever makes the block voltages add up to the charger's voltage.  Enough to close
a balancing loop in tests; the real model has state of charge, temperature, ageing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

TAFEL_V_PER_DECADE_PER_CELL = 0.12
MIN_CURRENT_A = 1e-6


class StandInBlock:
    def __init__(
        self,
        cells: int,
        float_v_per_cell: float = 2.25,
        float_current_a: float = 0.1,
        r0_ohm: float = 0.004,
    ) -> None:
        # float_v_per_cell is reached when float_current_a flows into the block
        self.cells = cells
        self.float_v_per_cell = float_v_per_cell
        self.float_current_a = float_current_a
        self.r0_ohm = r0_ohm

    def voltage(self, string_current_a: float, bleed_a: float = 0.0) -> float:
        current = max(string_current_a - bleed_a, MIN_CURRENT_A)
        decades = math.log10(current / self.float_current_a)
        per_cell = self.float_v_per_cell + TAFEL_V_PER_DECADE_PER_CELL * decades
        return self.cells * per_cell + self.r0_ohm * current


def solve_string(
    blocks: Sequence[StandInBlock], charger_v: float, bleeds_a: Sequence[float]
) -> tuple[float, list[float]]:
    """(string current, block voltages) with sum(voltages) == charger_v (bisection)."""
    lo = max(bleeds_a) + MIN_CURRENT_A
    hi = 1000.0

    def total(current: float) -> float:
        return sum(b.voltage(current, i) for b, i in zip(blocks, bleeds_a, strict=True))

    if total(lo) > charger_v:
        return lo, [b.voltage(lo, i) for b, i in zip(blocks, bleeds_a, strict=True)]
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        if total(mid) > charger_v:
            hi = mid
        else:
            lo = mid
    return lo, [b.voltage(lo, i) for b, i in zip(blocks, bleeds_a, strict=True)]
