"""The battery-string physics alone (tools/stringcare/sim): speed and what the physics
allows a balancer to do.

Wall times are of this machine, physics only (no firmware, no bus): the whole simulator's
budget for 64 blocks x 24 h is 120 s, so the physics should be a small part of it.
The convergence figures are simulated hours, deterministic (fixed seeds): the greedy
policy bleeds the module's full current (0.15 A for 12 V) on every block above its
string's average, re-decided every simulated second.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from stringcare.sim import params as P
from stringcare.sim.physics import StringBank, reference_charger
from stringcare.sim.policy import greedy_bleed, max_deviation_v

METRICS = {
    "sim.physics_wall_s.64x24h": (
        "s",
        "<= 12",
        "physics only, 64 blocks, 24 simulated hours at dt = 1 s (a tenth of the 120 s budget)",
    ),
    "sim.physics_wall_s.64x24h_dt10": ("s", "<= 3", "the same at dt = 10 s"),
    "sim.physics_wall_s.600x24h": (
        "s",
        "<= 30",
        "physics only, 10 strings x 60 blocks, 24 simulated hours at dt = 1 s",
    ),
    "sim.physics_steps_per_s.64": ("steps/s", None, "physics steps per second, 64 blocks"),
    "sim.physics_steps_per_s.600": ("steps/s", None, "physics steps per second, 600 blocks"),
    "sim.float_spread_v.float64": (
        "V",
        None,
        "largest |block - average| of the reference string on float without balancing",
    ),
    "sim.float_current_ma_per_ah.float64": (
        "mA/Ah",
        None,
        "the reference string's float current per Ah at 2.27 V/cell, 25 °C",
    ),
    "sim.greedy_converge_h.float64": (
        "h",
        None,
        "simulated hours until all 64 blocks first lie within +-10 mV of the target, greedy "
        "full bleed 0.15 A",
    ),
    "sim.greedy_converge_h.newblock64": (
        "h",
        None,
        "the same after block 20 is replaced by a new block at 90 % SOC (charge-limited)",
    ),
}

DAY_S = 24 * 3600


def _wall(bank: StringBank, dt: float, seconds: float) -> float:
    steps = int(round(seconds / dt))
    start = time.perf_counter()
    for _ in range(steps):
        bank.step(dt)
    return time.perf_counter() - start


def _greedy_hours(bank: StringBank, dt: float = 1.0, limit_h: float = 72.0) -> float:
    bleed_a = P.REFERENCE_BLOCK.module_bleed_a
    steps = int(limit_h * 3600 / dt)
    for i in range(steps):
        bank.step(dt, greedy_bleed(bank.terminal_v, bleed_a))
        if max_deviation_v(bank.terminal_v) <= 0.010:
            return round((i + 1) * dt / 3600.0, 3)
    return float("inf")


def run(progress: Callable[[str], None]) -> dict[str, float]:
    out: dict[str, float] = {}
    ref = StringBank(P.reference_string(), reference_charger())
    ref.settle_float()
    v = ref.terminal_v
    out["sim.float_spread_v.float64"] = round(max_deviation_v(v), 3)
    out["sim.float_current_ma_per_ah.float64"] = round(
        float(ref.string_current_a[0] / np.mean(ref.params.capacity_ah) * 1000.0), 3
    )
    progress(
        "reference string on float: +%.2f / %.2f V around the average"
        % ((v - v.mean()).max(), (v - v.mean()).min())
    )

    wall = _wall(ref, 1.0, DAY_S)
    out["sim.physics_wall_s.64x24h"] = round(wall, 2)
    out["sim.physics_steps_per_s.64"] = round(DAY_S / wall)
    progress("64 blocks, 24 h at dt=1 s: %.1f s" % wall)
    out["sim.physics_wall_s.64x24h_dt10"] = round(_wall(ref, 10.0, DAY_S), 2)

    big = StringBank(
        P.draw_blocks(P.REFERENCE_BLOCK, 10, 60, seed=2, age_years=5.0, impaired_blocks=3),
        reference_charger(),
    )
    big.settle_float()
    wall = _wall(big, 1.0, DAY_S)
    out["sim.physics_wall_s.600x24h"] = round(wall, 2)
    out["sim.physics_steps_per_s.600"] = round(DAY_S / wall)
    progress("600 blocks, 24 h at dt=1 s: %.1f s" % wall)

    bank = StringBank(P.reference_string(), reference_charger())
    bank.settle_float()
    out["sim.greedy_converge_h.float64"] = _greedy_hours(bank)
    progress(
        "greedy convergence of the reference string: %.2f h" % out["sim.greedy_converge_h.float64"]
    )

    bank = StringBank(P.reference_string(), reference_charger())
    bank.settle_float()
    new = P.draw_blocks(P.REFERENCE_BLOCK, 1, 1, seed=99)
    new.initial_soc[0, 0] = 0.90
    bank.replace_block(0, 20, new)
    out["sim.greedy_converge_h.newblock64"] = _greedy_hours(bank)
    progress(
        "greedy convergence with a new block at 90 %% SOC: %.2f h"
        % out["sim.greedy_converge_h.newblock64"]
    )
    return out
