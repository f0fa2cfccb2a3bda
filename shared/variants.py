# The module variants (SPEC section 1): one firmware, a variant is configuration.
#
# Everything here is battery-facing: voltage ranges, Ri range, balancing current,
# limits, the default Ri method and the balancing controller's tuning.  The analog
# front end that measures these (divider, gains, shunt, excitation) is in
# shared/frontend.py, indexed by the same variant id.
#
# Units: voltages in uV, resistances in nOhm, currents in mA, temperatures in
# milli-degC (m°C), times in ms.  Every value is an int below 2**30.
from shared.compat import const

# Bus ids of the variants (a small integer on the wire; the code is for people).
VARIANT_2V = const(0)
VARIANT_4V = const(1)
VARIANT_6V = const(2)
VARIANT_12V = const(3)
VARIANT_16V = const(4)
VARIANT_COUNT = const(5)

# Ri methods (shared/ri.py implements both).
RI_METHOD_STEP = const(0)  # DC load steps, Thue-Morse pattern of 100 ms slots (= shared.ri)
RI_METHOD_AC = const(1)  # 275 Hz square-wave excitation, windowed lock-in (= shared.ri)


class Variant:
    """One row of the variant table.  Read-only by convention."""

    def __init__(
        self,
        variant_id,
        code,
        name,
        cells,
        nominal_uv,
        measure_uv,
        float_uv,
        ri_nohm,
        bleed_ma,
        ri_method,
    ):
        self.id = variant_id
        self.code = code
        self.name = name
        # Lead-acid cells in series: the default equalising window and the
        # controller tuning scale with it (other chemistries: configure the window).
        self.cells = cells
        self.nominal_min_uv, self.nominal_max_uv = nominal_uv
        self.measure_min_uv, self.measure_max_uv = measure_uv
        # Typical float voltage (lead-acid 2.25 V/cell): sizing of the bleed
        # resistor and the simulator's default operating point.
        self.float_uv = float_uv
        self.ri_min_nohm, self.ri_max_nohm = ri_nohm
        # Bleed current at float_uv with the variant's bleed resistor (SPEC column).
        self.bleed_ma = bleed_ma
        self.ri_method = ri_method
        # Never bleed below this (SPEC: "below the measuring range" is the outer
        # bound; we stop at the lower end of the nominal range, which is higher).
        self.min_voltage_uv = self.nominal_min_uv
        # Default equalising window of the module itself: 2.10-2.75 V per lead-acid
        # cell.  Below it the block is resting or discharging.  The upper edge lies
        # above every block a float-charged string holds - the reference string's
        # worst floats 1.7 V over its 12 V neighbours, 2.56 V/cell - because those
        # high blocks are what balancing is for; bleeding them is safe (thermal
        # derating covers the extra V^2/R).  Boost charging is the manager's to
        # recognise (string average above its window, manager_fw/strings.py).
        self.eq_min_uv = cells * 2100000
        self.eq_max_uv = cells * 2750000
        if self.eq_max_uv > self.measure_max_uv:
            self.eq_max_uv = self.measure_max_uv  # never past what it can measure
        # Plausible targets (SET_TARGET): the float range of the chemistries a block
        # of this size may hold (docs/profiles.md: lead-acid floats 2.23-2.27 V/cell and
        # boosts to 2.40; LiFePO4, NiCd and LTO blocks of the same nominal voltage float
        # inside the same span), 2.10-2.45 V per lead-acid cell.  A module never bleeds
        # towards a target outside it, whatever the frame says.
        self.target_min_uv = cells * 2100000
        self.target_max_uv = cells * 2450000
        # Limits.  Board: the module's own over-temperature limit, read by the
        # MCU's internal sensor.  Battery: bleeding stops when the probe reads this.
        self.board_temp_limit_mc = 70000
        self.battery_temp_limit_mc = 45000
        # Target voltage broadcast older than this is stale: bleeding stops.
        self.target_timeout_ms = 60000
        # Balancing controller tuning (shared/balance.py), per lead-acid cell:
        # bleeding starts 0.2 mV/cell above target (12 V: 1.2 mV; the reading's noise
        # is tens of uV), full bleed 8 mV/cell above target, integral time 1 min
        # (a 5 min integral left a low block of a 64-block string 25 min to rise:
        # docs/balancing.md, "Tuning"), duty slew 5 %/s.  A block that is not
        # bleeding rises unchecked by the deadband before it bleeds, on top of its
        # board's reading error (up to ~7 mV): with 0.8 mV/cell (4.8 mV) the daily Ri
        # round's charge took such blocks out of the +-10 mV band (docs/balancing.md,
        # "The deadband").
        self.deadband_uv = cells * 200
        self.prop_band_uv = cells * 8000
        self.integral_ms = 60000
        self.slew_permille_per_s = 50


VARIANTS = (
    Variant(
        VARIANT_2V,
        "2v",
        "2 V cell",
        1,
        (1200000, 4000000),
        (700000, 6000000),
        2250000,
        (20000, 6000000),
        900,
        RI_METHOD_AC,
    ),
    Variant(
        VARIANT_4V,
        "4v",
        "4 V block",
        2,
        (2400000, 5000000),
        (2400000, 5000000),
        4500000,
        (500000, 30000000),
        300,
        RI_METHOD_STEP,
    ),
    Variant(
        VARIANT_6V,
        "6v",
        "6 V block",
        3,
        (4800000, 8000000),
        (4800000, 8000000),
        6750000,
        (500000, 60000000),
        300,
        RI_METHOD_STEP,
    ),
    Variant(
        VARIANT_12V,
        "12v",
        "12 V block",
        6,
        (8000000, 17000000),
        (8000000, 17000000),
        13500000,
        (500000, 60000000),
        150,
        RI_METHOD_STEP,
    ),
    Variant(
        VARIANT_16V,
        "16v",
        "16 V block",
        8,
        (9700000, 21000000),
        (9700000, 21000000),
        18000000,
        (500000, 60000000),
        120,
        RI_METHOD_STEP,
    ),
)


def by_id(variant_id: int) -> Variant:
    """The variant with this bus id; ValueError names the valid ids."""
    if 0 <= variant_id < VARIANT_COUNT:
        return VARIANTS[variant_id]
    raise ValueError("unknown variant id %r: valid ids are 0..%d" % (variant_id, VARIANT_COUNT - 1))


def by_code(code: str) -> Variant:
    """The variant with this code ('2v', '4v', '6v', '12v', '16v')."""
    for v in VARIANTS:
        if v.code == code:
            return v
    raise ValueError(
        "unknown variant %r: valid variants are %s" % (code, ", ".join(v.code for v in VARIANTS))
    )
