"""The Ri benchmark capture set and its generator (docs/ri.md, "Benchmark set").

Every case is a simulated board of one variant measuring a block whose R0 spans the
variant's whole Ri range, under charger ripple and with the converter's noise, the
way a module does it: high gain range first, the low range when that clipped.
Boards are calibrated once with a reference resistor, as a board would be at the
factory (ri_gain_ppm per gain range).

Everything is seeded: the same code gives the same captures and the same figures.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

from boards.sim.frontend import Block, Ripple, SimBoard, SwitchingRipple
from shared import frontend as fe
from shared import ri, variants
from shared.ri_probe import RiSequence

# R0 x capacity of lead-acid blocks, mOhm * Ah per 2 V cell (a 100 Ah 12 V block of
# ~4 mOhm: 6 cells x 67; a 3000 Ah 2 V cell of ~20 uOhm: 60).  The ripple current is
# a fraction of the capacity, so the ripple *voltage* of a block is about the same
# whatever its size: ~3 mV rms per cell at 5 % of C.
RI_CAPACITY_MOHM_AH_PER_CELL = 60.0
RI_VALUES_PER_VARIANT = 8
BOARDS_PER_VARIANT = 4
# (mains Hz, frequency error, ripple rms as a fraction of C per hour)
CONDITIONS = ((50.0, 0.002, 0.005), (60.0, -0.003, 0.02), (50.0, -0.004, 0.05))
REPEATS = 10
# Mutual inductance between the current and the sense loops of the module's wiring
# (twisted pairs, routed together): up to 5 nH.
MAX_COUPLING_H = 5e-9
REFERENCE_CAPTURES = 4


class Case:
    def __init__(
        self,
        name: str,
        variant_id: int,
        r0_ohm: float,
        r1_ohm: float,
        tau1_s: float,
        ripple: Ripple,
        drift_v_per_s: float,
        board_seed: int,
        coupling_h: float = 0.0,
        board_c: float = 25.0,
        r_ct_ohm: float = 0.0,
        tau_ct_s: float = 0.01,
        switching: SwitchingRipple | None = None,
    ) -> None:
        self.name = name
        self.variant_id = variant_id
        self.r0_ohm = r0_ohm
        self.r1_ohm = r1_ohm
        self.tau1_s = tau1_s
        self.ripple = ripple
        self.drift_v_per_s = drift_v_per_s
        self.board_seed = board_seed
        self.coupling_h = coupling_h
        self.board_c = board_c
        self.r_ct_ohm = r_ct_ohm
        self.tau_ct_s = tau_ct_s
        self.switching = switching


def ri_values(variant: variants.Variant, count: int = RI_VALUES_PER_VARIANT) -> list[float]:
    """count R0 values (ohm), log-spaced from the variant's Ri minimum to its maximum."""
    lo = variant.ri_min_nohm * 1e-9
    hi = variant.ri_max_nohm * 1e-9
    return [lo * (hi / lo) ** (k / (count - 1)) for k in range(count)]


def _case(
    variant: variants.Variant, r0: float, cond: int, board_seed: int, rng: random.Random, tag: str
) -> Case:
    mains, ferr, frac = CONDITIONS[cond]
    capacity_ah = RI_CAPACITY_MOHM_AH_PER_CELL * variant.cells / (r0 * 1000.0)
    ripple = Ripple.typical(frac * capacity_ah, mains, ferr, seed=rng.randrange(1 << 30))
    r1 = r0 * rng.uniform(0.3, 1.0)
    tau1 = rng.uniform(2.0, 30.0)
    drift = rng.uniform(-30e-6, 30e-6) * variant.cells
    coupling = rng.uniform(0.0, MAX_COUPLING_H)
    board_c = rng.uniform(15.0, 40.0)
    return Case(
        "%s/%.4gmOhm/c%d/%s" % (variant.code, r0 * 1000, cond, tag),
        variant.id,
        r0,
        r1,
        tau1,
        ripple,
        drift,
        board_seed,
        coupling,
        board_c,
    )


def accuracy_cases(seed: int = 1) -> Iterator[Case]:
    """Every variant x RI_VALUES_PER_VARIANT R0 values x every ripple condition."""
    rng = random.Random(seed)
    for variant in variants.VARIANTS:
        for k, r0 in enumerate(ri_values(variant)):
            for cond in range(len(CONDITIONS)):
                board = (k + cond) % BOARDS_PER_VARIANT
                yield _case(variant, r0, cond, board, rng, "b%d" % board)


def repeat_groups(seed: int = 2) -> Iterator[list[Case]]:
    """Per variant, the lowest, middle and highest R0: REPEATS captures each, same
    board and block, 2 % ripple (new ripple phases and noise every time)."""
    rng = random.Random(seed)
    for variant in variants.VARIANTS:
        values = ri_values(variant)
        for r0 in (values[0], values[len(values) // 2], values[-1]):
            first = _case(variant, r0, 1, 0, rng, "r0")
            group = [first]
            for n in range(1, REPEATS):
                c = _case(variant, r0, 1, 0, rng, "r%d" % n)
                c.r1_ohm, c.tau1_s, c.drift_v_per_s = first.r1_ohm, first.tau1_s, 0.0
                c.coupling_h, c.board_c = first.coupling_h, first.board_c
                group.append(c)
            yield group


def arc_cases(seed: int = 3) -> Iterator[Case]:
    """Blocks with a charge-transfer arc (issue 11): every variant x 4 R0 values x the
    three ripple conditions, each with R_ct = 0.1-1.0 x R0 and a time constant of
    1-50 ms (log-uniform), on top of the slow RC pair.  Measured with both methods."""
    rng = random.Random(seed)
    for variant in variants.VARIANTS:
        values = ri_values(variant)
        for k, r0 in enumerate(values[1:-1:2]):
            for cond in range(len(CONDITIONS)):
                case = _case(variant, r0, cond, (k + cond) % BOARDS_PER_VARIANT, rng, "arc")
                case.r_ct_ohm = r0 * rng.uniform(0.1, 1.0)
                case.tau_ct_s = 10 ** rng.uniform(math.log10(0.001), math.log10(0.05))
                yield case


def switching_cases(seed: int = 4) -> Iterator[Case]:
    """Charger switching ripple (issue 11: 16-20 kHz, 20-200 mV at the block): every
    variant x 6 draws, the middle of its Ri range, 0.5 % mains ripple."""
    rng = random.Random(seed)
    for variant in variants.VARIANTS:
        r0 = ri_values(variant)[RI_VALUES_PER_VARIANT // 2]
        for n in range(6):
            case = _case(variant, r0, 0, n % BOARDS_PER_VARIANT, rng, "sw%d" % n)
            case.switching = SwitchingRipple(
                rng.uniform(16000.0, 20000.0),
                rng.uniform(0.02, 0.2),
                rng.uniform(0.0, 2 * math.pi),
            )
            yield case


class Bench:
    """Boards, their calibration, and the module's measurement procedure."""

    def __init__(self, adc_kind: int = fe.ADC_RP2040) -> None:
        self.adc_kind = adc_kind
        self._boards: dict[tuple[int, int], SimBoard] = {}
        self._cal: dict[tuple[int, int, int], int] = {}

    def board(self, variant_id: int, seed: int) -> SimBoard:
        key = (variant_id, seed)
        if key not in self._boards:
            self._boards[key] = SimBoard(variant_id, seed, self.adc_kind)
        return self._boards[key]

    def calibration_ppm(self, variant_id: int, seed: int, method: int, gain_range: int) -> int:
        """ri_gain_ppm of a board's range: the factory procedure, done once.

        A 4-wire reference resistor (0.1 %, here exact) in the middle of the range's
        span (log scale), no ripple (bench supply); REFERENCE_CAPTURES captures
        averaged; ppm = reference / measured - 1.
        """
        key = (variant_id, seed, method * 2 + gain_range)
        if key in self._cal:
            return self._cal[key]
        variant = variants.by_id(variant_id)
        values = ri_values(variant)
        r_ref = values[1] if gain_range == 0 else values[-2]
        board = self.board(variant_id, seed)
        plan = ri.plan_for(variant_id, method, gain_range, self.adc_kind)
        total = 0
        for n in range(REFERENCE_CAPTURES):
            v, i = board.ri_capture(plan, Block(r_ref), None, t0=n * 10.0)
            result = ri.evaluate(plan, v, i)
            if result.ri_nohm is None:
                raise RuntimeError(
                    "calibration capture failed on %s board %d range %d: %s"
                    % (variant.code, seed, gain_range, result)
                )
            total += result.ri_nohm
        measured = total / REFERENCE_CAPTURES
        ppm = int(round((r_ref * 1e9 / measured - 1) * 1e6))
        self._cal[key] = ppm
        return ppm

    def measure(self, case: Case, method: int | None = None) -> tuple[ri.RiResult, float, int]:
        """(result, seconds the battery was under test, gain range used) for one case."""
        board = self.board(case.variant_id, case.board_seed)
        block = Block(case.r0_ohm, case.r1_ohm, case.tau1_s, case.r_ct_ohm, case.tau_ct_s)
        return self.run_sequence(
            board,
            case.variant_id,
            case.board_seed,
            method,
            block=block,
            ripple=case.ripple,
            drift_v_per_s=case.drift_v_per_s,
            coupling_h=case.coupling_h,
            board_c=case.board_c,
            switching=case.switching,
        )

    def run_sequence(
        self,
        board: SimBoard,
        variant_id: int,
        board_seed: int,
        method: int | None,
        t0: float = 0.0,
        bufs: Any = None,
        **capture: Any,
    ) -> tuple[ri.RiResult, float, int]:
        """The module's procedure (shared/ri_probe.py RiSequence: per gain range the
        probe, then the capture): (result, seconds under test, gain range used).
        bufs: the arrays a module keeps from boot (shared/ri_feed.py Buffers) or None.
        capture: the keyword arguments of SimBoard.ri_capture besides plan and t0."""
        if method is None:
            method = variants.by_id(variant_id).ri_method
        seq = RiSequence(
            variant_id,
            method,
            self.adc_kind,
            self.calibration_ppm(variant_id, board_seed, method, 0),
            self.calibration_ppm(variant_id, board_seed, method, 1),
            bufs,
        )
        seconds = 0.0
        plan = seq.start()
        while plan is not None:
            v, i = board.ri_capture(plan, t0=t0 + seconds, **capture)
            seconds += plan.duration_ms() / 1000.0
            for start in range(0, plan.samples, 256):
                end = min(start + 256, plan.samples)
                seq.feed(v[start:end], i[start:end], end - start)
            plan = seq.done()
        assert seq.result is not None
        return seq.result, seconds, seq.gain_range


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]
