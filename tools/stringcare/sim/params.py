"""Parameters of the battery-string physics: block types, per-block spreads, overrides.

Every number here is explained, with its source, in docs/simulation.md (section
"Parameters").  Units are SI with the unit in the name: V, A, Ah, ohm, F, s, °C, W, J/K.
Per-cell quantities say so (``_per_cell``); a 12 V monobloc has ``n_cells = 6``.

A :class:`BlockType` holds what a datasheet (plus the literature on lead-acid kinetics)
says about one block design when new.  :func:`draw_blocks` turns it into per-block
arrays of shape (strings, blocks) with a seeded manufacturing spread and ageing, and
:func:`reference_string` builds the reference system's string (64 x 12 V VRLA, 5 years
old) used by the ``float`` scenario.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from manager_fw import profiles
from shared import variants

FloatArray = NDArray[np.float64]

# Chemistry and module variants have one home, the firmware's (manager_fw/profiles.py,
# shared/variants.py); the physics derives its charger voltages and bleed currents from
# them rather than keeping copies.
VRLA_PROFILE = profiles.profile("vrla")
# Reference conditions of the side-reaction (float current) law: the VRLA profile's
# float voltage (2.27 V/cell).
FLOAT_REF_V_PER_CELL = VRLA_PROFILE.float_uv / 1e6
BOOST_V_PER_CELL = VRLA_PROFILE.boost_uv / 1e6


def variant_bleed_a(n_cells: int) -> float:
    """The bleed current of the module variant for a block of n_cells lead-acid cells
    (shared/variants.py, the SPEC's table), in A."""
    for v in variants.VARIANTS:
        if v.cells == n_cells:
            return v.bleed_ma / 1000.0
    raise ValueError("no module variant for a block of %d cells" % n_cells)


FLOAT_REF_TEMP_C = 25.0


@dataclass(frozen=True)
class BlockType:
    """One block design, as new, at 25 °C (docs/simulation.md, table "Block type")."""

    name: str = "VRLA AGM 12 V 100 Ah (UPS / standby)"
    n_cells: int = 6
    capacity_ah: float = 100.0  # C10 (rated, 10 h rate to 1.75-1.80 V/cell, 25 °C)
    # C10 is this fraction of the charge the block stores (the rest is not reachable
    # at the 10 h rate before the end voltage); from fitting the rate-capacity table.
    c10_fraction: float = 0.84
    r0_ohm: float = 0.0040  # ohmic resistance (what a 1 kHz / 4-wire meter shows)
    r1_ohm: float = 0.0020  # RC pair: concentration / charge-transfer polarisation
    tau1_s: float = 100.0
    # Side reactions (oxygen cycle, gassing, corrosion) lumped into one Tafel law:
    # I_side = capacity * float_current_a_per_ah * 10**((u - 2.27 V)/b) * exp(k_T (T - 25))
    float_current_a_per_ah: float = 0.0005  # at 2.27 V/cell, 25 °C, fully charged, new
    tafel_v_per_decade_per_cell: float = 0.125
    side_temp_coeff_per_k: float = 0.06
    # Open-circuit voltage, linear in the state of charge seen at the plates.
    ocv_full_v_per_cell: float = 2.14
    ocv_empty_v_per_cell: float = 1.96
    ocv_temp_coeff_v_per_k_per_cell: float = 0.0002
    # Main (charge/discharge) reaction: Butler-Volmer, exchange current per Ah.
    main_exchange_a_per_ah: float = 0.3
    main_beta_v_per_cell: float = 0.03  # e-fold overvoltage of the main reaction
    # Charge acceptance: exchange current scales with (1 - soc_plate) / width near full.
    acceptance_width: float = 0.02
    # Discharge kinetics collapse when the plates run out of active material.
    depletion_width: float = 0.03
    # Kinetic battery model (two wells): available fraction c, rate constant k.
    kibam_c: float = 0.40
    kibam_k_per_h: float = 0.8
    # Interface (double-layer) capacitance, per Ah of capacity, per cell.
    interface_f_per_ah_per_cell: float = 10.0
    # Slow relaxation stages behind the interface (docs/simulation.md, "Float
    # relaxation"): capacitances as multiples of the interface capacitance, each
    # reached through a resistance that gives it the time constant (minutes, hours, a
    # day).  Fitted so a 5-year block taken off float at 2.27 V/cell still reads
    # >= 2.17 V/cell after 4 h of rest and keeps relaxing for days.
    relax_f_multiple: tuple[float, float, float] = (1.0, 4.0, 20.0)
    relax_tau_s: tuple[float, float, float] = (300.0, 3600.0, 86400.0)
    # Thermal.
    mass_kg: float = 31.0
    specific_heat_j_per_kg_k: float = 800.0
    thermal_resistance_k_per_w: float = 0.8  # block surface to air in a rack; estimate
    # Ageing (x = age_years / design_life_years).  End points sourced (IEEE 1188,
    # Schiffer); the x**2 shape is chosen (no source).
    design_life_years: float = 10.0
    capacity_loss_at_end_of_life: float = 0.20  # capacity = 1 - 0.20 x^2
    resistance_rise_at_end_of_life: float = 0.40  # R = R_new (1 + 0.40 x^2)
    float_current_rise_at_end_of_life: float = 4.0  # I_float = I_new (1 + 4 x^2)
    # Module bleed current for this block voltage (SPEC table).
    module_bleed_a: float = variant_bleed_a(6)

    @property
    def nominal_v(self) -> float:
        return 2.0 * self.n_cells


VRLA_12V_100AH = BlockType()

# The reference string's block: a 12 V 40 Ah AGM UPS monobloc (docs/simulation.md).
VRLA_12V_40AH = BlockType(
    name="VRLA AGM 12 V 40 Ah (UPS / standby)",
    capacity_ah=40.0,
    r0_ohm=0.0080,
    r1_ohm=0.0040,
    mass_kg=14.0,
    thermal_resistance_k_per_w=1.3,
)


# Other lead-acid block sizes, one per module variant (SPEC §1 table): the same
# chemistry per cell, scaled.  R0 follows the ~55-65 mOhm*Ah per cell of VRLA AGM
# datasheets (the 40 Ah block: 8 mOhm / 6 cells * 40 Ah = 53); thermal figures scale
# with the block's size (a 2 V 500 Ah OPzV-style cell: ~36 kg).  Bleed currents are
# the SPEC's per variant.
VRLA_2V_500AH = BlockType(
    name="VRLA 2 V 500 Ah cell (telecom / UPS, OPzV style)",
    n_cells=1,
    capacity_ah=500.0,
    r0_ohm=0.00012,
    r1_ohm=0.00006,
    mass_kg=36.0,
    thermal_resistance_k_per_w=0.9,
    module_bleed_a=variant_bleed_a(1),
)
VRLA_4V_200AH = BlockType(
    name="VRLA 4 V 200 Ah block",
    n_cells=2,
    capacity_ah=200.0,
    r0_ohm=0.0006,
    r1_ohm=0.0003,
    mass_kg=28.0,
    thermal_resistance_k_per_w=1.0,
    module_bleed_a=variant_bleed_a(2),
)
VRLA_6V_200AH = BlockType(
    name="VRLA 6 V 200 Ah block",
    n_cells=3,
    capacity_ah=200.0,
    r0_ohm=0.0009,
    r1_ohm=0.00045,
    mass_kg=32.0,
    thermal_resistance_k_per_w=0.9,
    module_bleed_a=variant_bleed_a(3),
)
VRLA_16V_40AH = BlockType(
    name="VRLA 16 V 40 Ah block (8 cells)",
    n_cells=8,
    capacity_ah=40.0,
    r0_ohm=0.0107,
    r1_ohm=0.0053,
    mass_kg=18.5,
    thermal_resistance_k_per_w=1.2,
    module_bleed_a=variant_bleed_a(8),
)


@dataclass(frozen=True)
class Spread:
    """Manufacturing and ageing spread between blocks of one type (1 sigma).

    Sourced: r0 (SPEC), the Tafel range, the impaired factor (docs/simulation.md).  No
    source, chosen: capacity, float current (to stay in the 0.5-2 mA/Ah band), ageing
    rate, thermal resistance (docs/simulation.md, "Parameters without a source")."""

    capacity_rel_sigma: float = 0.03
    r0_rel_sigma: float = 0.067  # new blocks within +-20 % of the mean (3 sigma, SPEC)
    float_current_log10_sigma: float = 0.10
    tafel_per_cell_range: tuple[float, float] = (0.10, 0.15)
    ageing_rate_rel_sigma: float = 0.20
    thermal_resistance_rel_sigma: float = 0.10
    # Blocks whose internal oxygen cycle is impaired: float current reduced by a factor
    # drawn log-uniformly from this range (0 blocks unless a scenario asks).
    impaired_recombination_factor: tuple[float, float] = (10.0, 100.0)


NO_SPREAD = Spread(
    capacity_rel_sigma=0.0,
    r0_rel_sigma=0.0,
    float_current_log10_sigma=0.0,
    tafel_per_cell_range=(0.125, 0.125),
    ageing_rate_rel_sigma=0.0,
    thermal_resistance_rel_sigma=0.0,
)


@dataclass
class BlockParams:
    """Per-block parameters, arrays of shape (strings, blocks).  Mutable: events such as
    a block replacement rewrite one element."""

    n_cells: FloatArray
    capacity_ah: FloatArray  # C10-equivalent capacity (Ah) left after ageing
    c10_fraction: FloatArray  # C10 / stored charge (the model stores capacity_ah / this)
    r0_ohm: FloatArray
    r1_ohm: FloatArray
    tau1_s: FloatArray
    float_current_a: FloatArray  # at 2.27 V/cell, 25 °C (absolute, not per Ah)
    tafel_v_per_decade_per_cell: FloatArray
    side_temp_coeff_per_k: FloatArray
    ocv_full_v_per_cell: FloatArray
    ocv_empty_v_per_cell: FloatArray
    ocv_temp_coeff_v_per_k_per_cell: FloatArray
    main_exchange_a: FloatArray
    main_beta_v_per_cell: FloatArray
    acceptance_width: FloatArray
    depletion_width: FloatArray
    kibam_c: FloatArray
    kibam_k_per_s: FloatArray
    interface_f: FloatArray  # per block (cells in series)
    relax1_f: FloatArray  # slow relaxation stages (F per block) and their time constants
    relax2_f: FloatArray
    relax3_f: FloatArray
    relax1_tau_s: FloatArray
    relax2_tau_s: FloatArray
    relax3_tau_s: FloatArray
    thermal_capacity_j_per_k: FloatArray
    thermal_resistance_k_per_w: FloatArray
    age_years: FloatArray
    short_s: FloatArray  # internal soft short (S); 0 for a sound block
    short_temp_coeff_per_k: FloatArray
    bleed_heat_fraction: FloatArray  # share of the module's bleed power heating the block
    initial_soc: FloatArray
    recombination_factor: FloatArray  # 1 = sound oxygen cycle; < 1 impaired

    @property
    def shape(self) -> tuple[int, int]:
        s, n = self.capacity_ah.shape
        return int(s), int(n)

    def copy(self) -> BlockParams:
        return BlockParams(
            **{f.name: getattr(self, f.name).copy() for f in dataclasses.fields(self)}
        )

    def set_block(self, string: int, block: int, other: BlockParams, src: tuple[int, int]) -> None:
        """Copy one block's parameters from ``other[src]`` into ``[string, block]``."""
        for f in dataclasses.fields(self):
            getattr(self, f.name)[string, block] = getattr(other, f.name)[src]


def ageing_factors(block_type: BlockType, age_years: FloatArray) -> dict[str, FloatArray]:
    """Capacity, resistance and float-current multipliers for an age (years)."""
    if np.any(age_years < 0):
        raise ValueError("age_years must be >= 0, got %s" % np.min(age_years))
    x2 = (age_years / block_type.design_life_years) ** 2
    return {
        "capacity": np.maximum(1.0 - block_type.capacity_loss_at_end_of_life * x2, 0.05),
        "resistance": 1.0 + block_type.resistance_rise_at_end_of_life * x2,
        "float_current": 1.0 + block_type.float_current_rise_at_end_of_life * x2,
    }


def draw_blocks(
    block_type: BlockType = VRLA_12V_100AH,
    strings: int = 1,
    blocks: int = 64,
    seed: int = 0,
    age_years: float = 0.0,
    spread: Spread | None = None,
    impaired_blocks: int = 0,
    bleed_heat_fraction: float = 0.3,  # an assumption, no source (docs/simulation.md)
) -> BlockParams:
    """Per-block parameters for ``strings`` x ``blocks`` blocks of one type.

    ``age_years`` is the string's age; each block ages at its own rate (lognormal,
    ``spread.ageing_rate_rel_sigma``).  ``impaired_blocks`` blocks per string (placed
    at random) have an impaired oxygen cycle: their float current at a given voltage is
    lower by a factor drawn from ``spread.impaired_recombination_factor``.
    Same arguments -> bit-identical arrays.
    """
    if strings < 1 or blocks < 1:
        raise ValueError("need at least one string of one block, got %d x %d" % (strings, blocks))
    if not 0 <= impaired_blocks <= blocks:
        raise ValueError("impaired_blocks must be 0..%d, got %d" % (blocks, impaired_blocks))
    if age_years < 0:
        raise ValueError("age_years must be >= 0, got %r" % age_years)
    sp = spread if spread is not None else Spread()
    bt = block_type
    rng = np.random.default_rng(seed)
    shape = (strings, blocks)

    def rel(sigma: float) -> FloatArray:
        return np.clip(1.0 + sigma * rng.standard_normal(shape), 0.5, 1.5)

    ageing_rate = np.exp(sp.ageing_rate_rel_sigma * rng.standard_normal(shape))
    ages = age_years * ageing_rate
    af = ageing_factors(bt, ages)
    # Side reactions, plate area and capacitance scale with the capacity as built; the
    # capacity that ageing leaves is what the kinetic battery model stores.
    nominal_capacity = bt.capacity_ah * rel(sp.capacity_rel_sigma)
    capacity = nominal_capacity * af["capacity"]
    r_rel = rel(sp.r0_rel_sigma) * af["resistance"]
    float_rel = 10.0 ** (sp.float_current_log10_sigma * rng.standard_normal(shape))
    lo, hi = sp.tafel_per_cell_range
    tafel = lo + (hi - lo) * rng.random(shape)
    rth = bt.thermal_resistance_k_per_w * rel(sp.thermal_resistance_rel_sigma)
    recomb = np.ones(shape)
    if impaired_blocks:
        flo, fhi = sp.impaired_recombination_factor
        for s in range(strings):
            idx = rng.choice(blocks, size=impaired_blocks, replace=False)
            u = rng.random(impaired_blocks)
            recomb[s, idx] = 1.0 / (flo * (fhi / flo) ** u)
    float_current = (
        nominal_capacity * bt.float_current_a_per_ah * float_rel * af["float_current"] * recomb
    )

    def full(value: float) -> FloatArray:
        return np.full(shape, float(value))

    return BlockParams(
        n_cells=full(bt.n_cells),
        capacity_ah=capacity,
        c10_fraction=full(bt.c10_fraction),
        r0_ohm=bt.r0_ohm * r_rel,
        r1_ohm=bt.r1_ohm * r_rel,
        tau1_s=full(bt.tau1_s),
        float_current_a=float_current,
        tafel_v_per_decade_per_cell=tafel,
        side_temp_coeff_per_k=full(bt.side_temp_coeff_per_k),
        ocv_full_v_per_cell=full(bt.ocv_full_v_per_cell),
        ocv_empty_v_per_cell=full(bt.ocv_empty_v_per_cell),
        ocv_temp_coeff_v_per_k_per_cell=full(bt.ocv_temp_coeff_v_per_k_per_cell),
        main_exchange_a=bt.main_exchange_a_per_ah * nominal_capacity,
        main_beta_v_per_cell=full(bt.main_beta_v_per_cell),
        acceptance_width=full(bt.acceptance_width),
        depletion_width=full(bt.depletion_width),
        kibam_c=full(bt.kibam_c),
        kibam_k_per_s=full(bt.kibam_k_per_h / 3600.0),
        interface_f=bt.interface_f_per_ah_per_cell * nominal_capacity / bt.n_cells,
        relax1_f=bt.relax_f_multiple[0]
        * bt.interface_f_per_ah_per_cell
        * nominal_capacity
        / bt.n_cells,
        relax2_f=bt.relax_f_multiple[1]
        * bt.interface_f_per_ah_per_cell
        * nominal_capacity
        / bt.n_cells,
        relax3_f=bt.relax_f_multiple[2]
        * bt.interface_f_per_ah_per_cell
        * nominal_capacity
        / bt.n_cells,
        relax1_tau_s=full(bt.relax_tau_s[0]),
        relax2_tau_s=full(bt.relax_tau_s[1]),
        relax3_tau_s=full(bt.relax_tau_s[2]),
        thermal_capacity_j_per_k=full(bt.mass_kg * bt.specific_heat_j_per_kg_k),
        thermal_resistance_k_per_w=rth,
        age_years=ages,
        short_s=full(0.0),
        short_temp_coeff_per_k=full(bt.side_temp_coeff_per_k),
        bleed_heat_fraction=full(bleed_heat_fraction),
        initial_soc=full(1.0),
        recombination_factor=recomb,
    )


# Fields an override may scale (multiplicative) or set (absolute).
_SCALABLE = (
    "capacity_ah",
    "r0_ohm",
    "r1_ohm",
    "float_current_a",
    "thermal_resistance_k_per_w",
    "thermal_capacity_j_per_k",
)
_SETTABLE = (
    "short_s",
    "initial_soc",
    "age_years",
    "tafel_v_per_decade_per_cell",
    "bleed_heat_fraction",
    "short_temp_coeff_per_k",
    "recombination_factor",
)


def override_block(params: BlockParams, string: int, block: int, **changes: float) -> None:
    """Change one block in place.  ``<field>_factor=x`` multiplies a scalable field
    (capacity_ah, r0_ohm, r1_ohm, float_current_a, thermal_resistance_k_per_w,
    thermal_capacity_j_per_k); ``<field>=v`` sets short_s, initial_soc, age_years,
    tafel_v_per_decade_per_cell, bleed_heat_fraction, short_temp_coeff_per_k."""
    s_count, n_count = params.shape
    if not (0 <= string < s_count and 0 <= block < n_count):
        raise IndexError(
            "block (%d, %d) is outside the %d x %d string bank" % (string, block, s_count, n_count)
        )
    for key, value in changes.items():
        if key.endswith("_factor") and key[: -len("_factor")] in _SCALABLE:
            if value <= 0:
                raise ValueError("%s must be > 0, got %r" % (key, value))
            getattr(params, key[: -len("_factor")])[string, block] *= value
        elif key == "recombination_factor":
            # the oxygen cycle's share of the float current (draw_blocks): the side
            # current the physics uses follows it (not a label)
            if value <= 0:
                raise ValueError("recombination_factor must be > 0, got %r" % value)
            was = float(params.recombination_factor[string, block])
            params.float_current_a[string, block] *= value / was
            params.recombination_factor[string, block] = value
        elif key in _SETTABLE:
            getattr(params, key)[string, block] = value
        else:
            raise ValueError(
                "unknown block override %r; scalable (name_factor): %s; settable: %s"
                % (key, ", ".join(_SCALABLE), ", ".join(_SETTABLE))
            )


def aged_block_changes(block_type: BlockType, from_age: float, to_age: float) -> dict[str, float]:
    """Override factors that take a block from ``from_age`` to ``to_age`` years."""
    a = ageing_factors(block_type, np.array([from_age, to_age]))
    return {
        "capacity_ah_factor": float(a["capacity"][1] / a["capacity"][0]),
        "r0_ohm_factor": float(a["resistance"][1] / a["resistance"][0]),
        "r1_ohm_factor": float(a["resistance"][1] / a["resistance"][0]),
        "float_current_a_factor": float(a["float_current"][1] / a["float_current"][0]),
        "age_years": to_age,
    }


RELAX_STAGES = 3


def scale_interface(params: BlockParams, factor: float, stages: bool = False) -> None:
    """Multiply the interface capacitance (the least certain parameter) by ``factor``
    in place; with ``stages`` also the slow relaxation stages (their time constants
    stay).  The balancing band (docs/simulation.md, "Balancing as a band")."""
    if not (factor > 0 and math.isfinite(factor)):
        raise ValueError("interface factor must be a positive number, got %r" % factor)
    params.interface_f *= factor
    if stages:
        params.relax1_f *= factor
        params.relax2_f *= factor
        params.relax3_f *= factor


def thermal_runaway_changes(short_s: float = 0.03) -> dict[str, float]:
    """Override for a block that runs away thermally on float (docs/simulation.md,
    "Thermal runaway"): a soft short through a dried-out separator (``short_s``
    siemens at 25 °C, activated like the side reactions, exp(0.06 K^-1 dT)) in a
    position that sheds heat half as well (middle of a stack)."""
    return {"short_s": short_s, "thermal_resistance_k_per_w_factor": 2.0}


# The reference system's string: 64 x 12 V 40 Ah VRLA, 5 years in float service, three
# blocks with an impaired oxygen cycle.  Seed 4 draws the string whose worst block floats
# +1.7 V above the average (docs/simulation.md, "The reference string").
REFERENCE_BLOCK = VRLA_12V_40AH
REFERENCE_BLOCKS = 64
REFERENCE_AGE_YEARS = 5.0
REFERENCE_IMPAIRED_BLOCKS = 3
REFERENCE_SEED = 4


def reference_string(seed: int = REFERENCE_SEED, strings: int = 1) -> BlockParams:
    """The ``float`` scenario's string(s): see docs/simulation.md, "The reference string"."""
    return draw_blocks(
        REFERENCE_BLOCK,
        strings=strings,
        blocks=REFERENCE_BLOCKS,
        seed=seed,
        age_years=REFERENCE_AGE_YEARS,
        impaired_blocks=REFERENCE_IMPAIRED_BLOCKS,
    )


def float_voltage_per_cell_for_current(
    current_a_per_ah: float, block_type: BlockType = VRLA_12V_100AH
) -> float:
    """Inverse of the side-reaction law for a new block at 25 °C (documentation helper)."""
    return FLOAT_REF_V_PER_CELL + block_type.tafel_v_per_decade_per_cell * math.log10(
        current_a_per_ah / block_type.float_current_a_per_ah
    )
