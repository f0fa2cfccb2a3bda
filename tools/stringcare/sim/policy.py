"""Reference balancing policies on top of the physics (host code, for benchmarks).

The real balancing runs in the module and manager firmware; these are yardsticks.
"""

from __future__ import annotations

import numpy as np

from stringcare.sim.params import FloatArray


def string_target_v(terminal_v: FloatArray) -> FloatArray:
    """Each string's target block voltage (V): string voltage / blocks, shape (S, 1)."""
    return np.asarray(terminal_v.mean(axis=1, keepdims=True), dtype=float)


def greedy_bleed(terminal_v: FloatArray, bleed_max_a: float | FloatArray) -> FloatArray:
    """Greedy policy: full bleed on every block above its string's target (average).

    ``terminal_v`` (S, N) block voltages in V; ``bleed_max_a`` the module's bleed current
    (scalar or (S, N)).  Returns the bleed current per block (S, N) in A.
    """
    above = terminal_v > string_target_v(terminal_v)
    return np.asarray(np.where(above, bleed_max_a, 0.0), dtype=float)


def max_deviation_v(terminal_v: FloatArray) -> float:
    """Largest |block voltage - its string's target| over the bank (V)."""
    return float(np.max(np.abs(terminal_v - string_target_v(terminal_v))))
