# Chemistry profiles: per-cell charging voltages, the equalising window and default
# thresholds, scaled to a block of N cells.  Sources and reasoning for every number:
# docs/profiles.md.  Integers: voltages µV per cell, temperatures milli-°C.
#
#   p = profile("vrla")
#   cells = block_cells(p, 12000)            # 6 cells in a 12 V monobloc
#   block = block_settings(p, cells)          # float/boost/window of the block, µV
#   t = thresholds_for(p, cells, ri_baseline_nohm=15000000)   # a ThresholdSet

from shared.thresholds import SPREAD_MAX_UV, SPREAD_MIN_UV, ThresholdSet


class ChemistryProfile:
    """Numbers per cell for one chemistry (all keyword arguments, µV / m°C)."""

    def __init__(
        self,
        key,
        name,
        cell_nominal_uv,
        float_uv,
        boost_uv,
        window_low_uv,
        window_high_uv,
        low_alarm_uv,
        low_warning_uv,
        high_warning_uv,
        high_alarm_uv,
        discharge_low_alarm_uv,
        discharge_low_warning_uv,
        temp_low_alarm_mc,
        temp_low_warning_mc,
        temp_high_warning_mc,
        temp_high_alarm_mc,
        spread_warning_per_cell_uv,
        spread_alarm_per_cell_uv,
        voltage_hysteresis_per_cell_uv=5000,
        temp_hysteresis_mc=1000,
    ):
        self.key = key
        self.name = name
        self.cell_nominal_uv = cell_nominal_uv
        self.float_uv = float_uv
        self.boost_uv = boost_uv
        self.window_low_uv = window_low_uv
        self.window_high_uv = window_high_uv
        self.low_alarm_uv = low_alarm_uv
        self.low_warning_uv = low_warning_uv
        self.high_warning_uv = high_warning_uv
        self.high_alarm_uv = high_alarm_uv
        self.discharge_low_alarm_uv = discharge_low_alarm_uv
        self.discharge_low_warning_uv = discharge_low_warning_uv
        self.temp_low_alarm_mc = temp_low_alarm_mc
        self.temp_low_warning_mc = temp_low_warning_mc
        self.temp_high_warning_mc = temp_high_warning_mc
        self.temp_high_alarm_mc = temp_high_alarm_mc
        self.spread_warning_per_cell_uv = spread_warning_per_cell_uv
        self.spread_alarm_per_cell_uv = spread_alarm_per_cell_uv
        self.voltage_hysteresis_per_cell_uv = voltage_hysteresis_per_cell_uv
        self.temp_hysteresis_mc = temp_hysteresis_mc


# Lead-acid temperatures: SPEC §3 operator guidance (ideal 20-25 °C, low alarm 10 °C,
# high alarm about 30 °C); warnings 5 °C inside and 2 °C below them.
_LEAD_TEMPS = (10000, 15000, 28000, 30000)

VRLA = ChemistryProfile(
    key="vrla",
    name="VRLA / AGM lead-acid",
    cell_nominal_uv=2000000,
    float_uv=2270000,
    boost_uv=2400000,
    window_low_uv=2180000,
    window_high_uv=2350000,
    low_alarm_uv=2100000,
    low_warning_uv=2180000,
    high_warning_uv=2350000,
    high_alarm_uv=2450000,
    discharge_low_alarm_uv=1750000,
    discharge_low_warning_uv=1850000,
    temp_low_alarm_mc=_LEAD_TEMPS[0],
    temp_low_warning_mc=_LEAD_TEMPS[1],
    temp_high_warning_mc=_LEAD_TEMPS[2],
    temp_high_alarm_mc=_LEAD_TEMPS[3],
    spread_warning_per_cell_uv=40000,
    spread_alarm_per_cell_uv=80000,
)

GEL = ChemistryProfile(
    key="gel",
    name="Gel lead-acid (VRLA)",
    cell_nominal_uv=2000000,
    float_uv=2250000,
    boost_uv=2400000,
    window_low_uv=2180000,
    window_high_uv=2350000,
    low_alarm_uv=2100000,
    low_warning_uv=2180000,
    high_warning_uv=2350000,
    high_alarm_uv=2450000,
    discharge_low_alarm_uv=1750000,
    discharge_low_warning_uv=1850000,
    temp_low_alarm_mc=_LEAD_TEMPS[0],
    temp_low_warning_mc=_LEAD_TEMPS[1],
    temp_high_warning_mc=_LEAD_TEMPS[2],
    temp_high_alarm_mc=_LEAD_TEMPS[3],
    spread_warning_per_cell_uv=40000,
    spread_alarm_per_cell_uv=80000,
)

FLOODED = ChemistryProfile(
    key="flooded",
    name="Flooded (vented) lead-acid",
    cell_nominal_uv=2000000,
    float_uv=2230000,
    boost_uv=2350000,
    window_low_uv=2160000,
    window_high_uv=2300000,
    low_alarm_uv=2100000,
    low_warning_uv=2160000,
    high_warning_uv=2300000,
    high_alarm_uv=2400000,
    discharge_low_alarm_uv=1750000,
    discharge_low_warning_uv=1850000,
    temp_low_alarm_mc=_LEAD_TEMPS[0],
    temp_low_warning_mc=_LEAD_TEMPS[1],
    temp_high_warning_mc=_LEAD_TEMPS[2],
    temp_high_alarm_mc=_LEAD_TEMPS[3],
    spread_warning_per_cell_uv=40000,
    spread_alarm_per_cell_uv=80000,
)

NICD = ChemistryProfile(
    key="nicd",
    name="Nickel-cadmium (vented pocket plate)",
    cell_nominal_uv=1200000,
    float_uv=1400000,
    boost_uv=1500000,
    window_low_uv=1350000,
    window_high_uv=1470000,
    low_alarm_uv=1300000,
    low_warning_uv=1350000,
    high_warning_uv=1470000,
    high_alarm_uv=1550000,
    discharge_low_alarm_uv=1000000,
    discharge_low_warning_uv=1100000,
    temp_low_alarm_mc=-20000,
    temp_low_warning_mc=-10000,
    temp_high_warning_mc=35000,
    temp_high_alarm_mc=45000,
    spread_warning_per_cell_uv=25000,
    spread_alarm_per_cell_uv=50000,
    voltage_hysteresis_per_cell_uv=3000,
)

LIFEPO4 = ChemistryProfile(
    key="lifepo4",
    name="Lithium iron phosphate (LiFePO4)",
    cell_nominal_uv=3200000,
    float_uv=3400000,
    boost_uv=3550000,
    window_low_uv=3300000,
    window_high_uv=3500000,
    low_alarm_uv=3200000,
    low_warning_uv=3300000,
    high_warning_uv=3550000,
    high_alarm_uv=3650000,
    discharge_low_alarm_uv=2500000,
    discharge_low_warning_uv=2800000,
    temp_low_alarm_mc=0,
    temp_low_warning_mc=5000,
    temp_high_warning_mc=40000,
    temp_high_alarm_mc=45000,
    spread_warning_per_cell_uv=30000,
    spread_alarm_per_cell_uv=60000,
)

LTO = ChemistryProfile(
    key="lto",
    name="Lithium titanate (LTO)",
    cell_nominal_uv=2400000,
    float_uv=2600000,
    boost_uv=2700000,
    window_low_uv=2450000,
    window_high_uv=2680000,
    low_alarm_uv=2350000,
    low_warning_uv=2450000,
    high_warning_uv=2700000,
    high_alarm_uv=2800000,
    discharge_low_alarm_uv=1700000,
    discharge_low_warning_uv=1900000,
    temp_low_alarm_mc=-30000,
    temp_low_warning_mc=-20000,
    temp_high_warning_mc=45000,
    temp_high_alarm_mc=55000,
    spread_warning_per_cell_uv=30000,
    spread_alarm_per_cell_uv=60000,
)

PROFILES = (VRLA, GEL, FLOODED, NICD, LIFEPO4, LTO)


def profile(key):
    for p in PROFILES:
        if p.key == key:
            return p
    raise ValueError("unknown chemistry %r; known: %s" % (key, ", ".join(p.key for p in PROFILES)))


def block_cells(p, block_nominal_mv):
    """Cells in a block of this nominal voltage (mV), e.g. 6 for a 12 V lead monobloc.

    The block's nominal must be within 10 % of a whole number of cells.
    """
    cell_mv = p.cell_nominal_uv // 1000
    cells = (block_nominal_mv + cell_mv // 2) // cell_mv
    if cells < 1 or abs(cells * cell_mv - block_nominal_mv) * 10 > block_nominal_mv:
        raise ValueError(
            "a %d mV block is not a whole number of %d mV %s cells; give the cell count "
            "instead" % (block_nominal_mv, cell_mv, p.name)
        )
    return cells


class BlockSettings:
    """The charging voltages of one block (µV): what the manager core balances to."""

    def __init__(self, p, cells):
        if not (1 <= cells <= 16):
            raise ValueError("a block has 1..16 cells, got %d" % cells)
        self.profile = p
        self.cells = cells
        self.nominal_uv = p.cell_nominal_uv * cells
        self.float_uv = p.float_uv * cells
        self.boost_uv = p.boost_uv * cells
        self.window_low_uv = p.window_low_uv * cells
        self.window_high_uv = p.window_high_uv * cells


def block_settings(p, cells):
    return BlockSettings(p, cells)


def thresholds_for(p, cells, ri_baseline_nohm=0, confirm_samples=3):
    """Default thresholds for a block of `cells` cells of this chemistry.

    Ri levels need the baseline mean of the new blocks (SPEC §3); with 0 (unknown yet)
    Ri is not evaluated.  The maximum voltage difference within a string is clamped to
    its settable range 0.05-1 V.
    """
    BlockSettings(p, cells)  # checks the cell count
    t = ThresholdSet()
    hyst = p.voltage_hysteresis_per_cell_uv * cells
    t.set_voltage(
        p.low_alarm_uv * cells,
        p.low_warning_uv * cells,
        p.high_warning_uv * cells,
        p.high_alarm_uv * cells,
        hyst,
    )
    t.set_discharge_voltage(p.discharge_low_alarm_uv * cells, p.discharge_low_warning_uv * cells)
    if p.boost_uv > p.float_uv:  # on boost the high levels follow the charger's setpoint
        t.set_boost_shift((p.boost_uv - p.float_uv) * cells)
    t.set_temperature(
        p.temp_low_alarm_mc,
        p.temp_low_warning_mc,
        p.temp_high_warning_mc,
        p.temp_high_alarm_mc,
        p.temp_hysteresis_mc,
    )
    warning = p.spread_warning_per_cell_uv * cells
    alarm = p.spread_alarm_per_cell_uv * cells
    if warning < SPREAD_MIN_UV:
        warning = SPREAD_MIN_UV
    if alarm < 2 * warning:
        alarm = 2 * warning
    if alarm > SPREAD_MAX_UV:
        alarm = SPREAD_MAX_UV
    if warning >= alarm:
        warning = alarm // 2
    spread_hyst = p.voltage_hysteresis_per_cell_uv * cells
    if spread_hyst >= alarm - warning:
        spread_hyst = (alarm - warning) // 4
    t.set_spread(warning, alarm, spread_hyst)
    if ri_baseline_nohm > 0:
        t.set_ri_from_baseline(ri_baseline_nohm)
    t.set_confirm_samples(confirm_samples)
    return t
