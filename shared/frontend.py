# The module board's analog front end as the firmware sees it (docs/frontend.md).
#
# One board design with per-variant resistor options.  The module core, the board
# shells and the simulated board (boards/sim) all read this one table, so a
# constant changes in exactly one place.
#
# Units: ohm/mOhm/nOhm, uV, mA, gains in V/V; integers only.
from shared.compat import const

# --- converter ---------------------------------------------------------------------
ADC_BITS = const(12)
ADC_CODES = const(4096)
ADC_MAX_CODE = const(4095)
# External 3.000 V reference on ADC_VREF (ADR3430-class: 0.1 %, <= 8 ppm/K).
ADC_VREF_UV = const(3000000)
# Mid-scale: the AC-coupled Ri channel is biased here.
ADC_MID_CODE = const(2048)

ADC_RP2040 = const(0)  # 12-bit SAR, ~8.7 ENOB, wide codes at 512/1536/2560/3584
ADC_STM32G4 = const(1)  # 12-bit SAR, no DNL spikes, better noise
ADC_KIND_NAMES = ("rp2040", "stm32g4")

# RP2040-E11: the codes 512, 1536, 2560 and 3584 are much wider than 1 LSB, so every
# code above one of them reads low by the extra width.  Typical extra widths in
# half-LSB units (published multi-device measurements show jumps of 9..10 LSB at
# these codes; see docs/frontend.md).  Corrected value, in half LSB:
#     2*code + sum(width of spikes below code) + width/2 for the spike code itself.
RP2040_SPIKE_CODES = (512, 1536, 2560, 3584)
RP2040_SPIKE_EXTRA_X2 = (20, 18, 18, 20)
# Cumulative correction (half LSB) for code >> 9 = 0..7 (the spike codes open the
# odd regions 1, 3, 5, 7).
_RP2040_REGION_X2 = (0, 20, 20, 38, 38, 56, 56, 76)
# The spike code itself lies mid-way through its wide bin: half its width less.
_RP2040_SPIKE_HALF_X2 = (10, 9, 9, 10)

# --- block-voltage converter (a board option: board.json "vadc") --------------------
# VADC_MCU: the MCU's own ADC above (frames of VOLTAGE_FRAME_SAMPLES codes summed by
# frame_sum_x2).  VADC_ADS1219: a TI ADS1219 24-bit delta-sigma converter on I2C
# (docs/frontend.md, "External block-voltage converter"): the divider and buffer as
# before into AIN0-AIN1, the board's ADR3430 as its external reference (REFP/REFN),
# gain 1, 20 SPS (the data rate with simultaneous 50 and 60 Hz rejection), continuous.
# A frame is the sum of 2**ADS1219_FRAME_LOG2 conversions (100 ms at 20 SPS), each in
# units of the 24-bit code >> ADS1219_SHIFT: 2**20 units per ADC_VREF (2.86 uV at the
# pin; the converter's noise at 20 SPS is about two of them).  The RP2040's ADC keeps
# the Ri, shunt, probe and die-sensor channels.
VADC_MCU = const(0)
VADC_ADS1219 = const(1)
VADC_NAMES = ("mcu", "ads1219")
ADS1219_ADDR = const(0x40)  # A0 and A1 to DGND
ADS1219_CMD_RESET = const(0x06)
ADS1219_CMD_START = const(0x08)
ADS1219_CMD_RDATA = const(0x10)
ADS1219_CMD_RREG_STATUS = const(0x24)
ADS1219_CMD_WREG = const(0x40)
ADS1219_STATUS_DRDY = const(0x80)
# configuration register: MUX 000 (AIN0-AIN1) | GAIN 0 (1) | DR 00 (20 SPS) |
# CM 1 (continuous) | VREF 1 (external)
ADS1219_CONFIG = const(0x03)
ADS1219_SHIFT = const(3)
ADS1219_UNITS_PER_VREF = const(1 << 20)
ADS1219_FRAME_LOG2 = const(1)


def ads1219_units(buf) -> int:
    """One ADS1219 conversion (buf[0:3]: 24-bit two's complement, MSB first) in frame
    units (code >> ADS1219_SHIFT, rounded towards minus infinity); no allocation."""
    code = (buf[0] << 16) | (buf[1] << 8) | buf[2]
    if code & 0x800000:
        code -= 0x1000000
    return code >> ADS1219_SHIFT


# --- block voltage channel -------------------------------------------------------
# A frame is 2**VOLTAGE_FRAME_LOG2 samples spread evenly over 100 ms (10.24 kHz):
# a whole number of periods of 50, 60, 100 and 120 Hz and all their harmonics, so
# charger ripple and mains hum average out of every frame.
VOLTAGE_FRAME_LOG2 = const(10)
VOLTAGE_FRAME_SAMPLES = const(1024)
VOLTAGE_FRAME_MS = const(100)
# Temperature channels: 2**TEMP_FRAME_LOG2 samples per frame, one frame per second.
TEMP_FRAME_LOG2 = const(6)
TEMP_FRAME_SAMPLES = const(64)

# --- Ri channel limits -------------------------------------------------------------
# The Ri and shunt amplifiers are linear from 0.15 V to 2.85 V (they saturate
# somewhere within 50 mV of the rails); codes outside this band mean the capture may
# be distorted ("clipped").  The shunt amplifier's REF offset (0.25 V) keeps its
# zero-current level inside the band.
RI_CLIP_LOW_CODE = const(205)
RI_CLIP_HIGH_CODE = const(3891)
SHUNT_REF_OFFSET_UV = const(250000)
# The excitation sink follows its switched set point through two RC lags of about
# this time constant: it limits dI/dt (less EMI, less inductive pick-up in the sense
# loop) and removes the square wave's harmonics above the Ri sampling's Nyquist
# frequency, which would otherwise alias onto the excitation frequency.
EXCITATION_TAU_US = const(200)

# --- temperature -------------------------------------------------------------------
# External probe: 10 kOhm NTC (B25/85 = 3435 K) from the ADC input to ground, 10 kOhm
# pull-up to the reference; ratiometric, so the reference's error cancels.
NTC_R25_OHM = const(10000)
NTC_BETA_K = const(3435)
NTC_PULLUP_OHM = const(10000)
# An absent probe reads near the top rail (open), a shorted one near ground.
PROBE_OPEN_CODE = const(4000)
PROBE_SHORT_CODE = const(100)
# Probe temperature table: code * 16 of the NTC divider at -40, -35, ... 125 degC
# (34 points, beta model, generated and checked by host_tests/host/test_frontend.py).
NTC_TABLE_FIRST_MC = -40000
NTC_TABLE_STEP_MC = const(5000)
NTC_TABLE_CODE_X16 = (
    62999, 62127, 61030, 59679, 58048, 56121, 53893, 51378, 48604, 45614, 42468, 39233,
    35977, 32768, 29664, 26713, 23949, 21395, 19060, 16947, 15049, 13355, 11850, 10518,
    9342, 8306, 7394, 6593, 5888, 5267, 4721, 4239, 3814, 3439,
)  # fmt: skip

# Internal sensor (on the MCU die, on the board): V = V_REF_POINT at T_REF_POINT,
# falling by SLOPE per kelvin.  RP2040 datasheet 4.9.5: 0.706 V at 27 degC,
# -1.721 mV/K.  STM32G4 datasheet: 0.76 V at 30 degC, +2.5 mV/K (rising).
INTERNAL_SENSOR = (
    # (uV at reference, reference m°C, uV per K (signed))
    (706000, 27000, -1721),
    (760000, 30000, 2500),
)


class FrontEnd:
    """Per-variant resistor options of the one board design."""

    def __init__(
        self,
        divider_top_ohm,
        divider_bottom_ohm,
        ri_gains,
        excitation_ma,
        shunt_uohm,
        shunt_gain,
        bleed_mohm,
        ext_divider=None,
    ):
        # Block voltage: Kelvin sense pair -> divider -> buffer -> ADC.
        self.divider_top_ohm = divider_top_ohm
        self.divider_bottom_ohm = divider_bottom_ohm
        # The board with the external converter (VADC_ADS1219) fits a matched thin-film
        # divider network instead (TI RES21A: R_G on top, R_IN = 10 kOhm below; its
        # ratios are fixed, so the ratio differs from the discrete pair's):
        # (top, bottom) ohms.  docs/frontend.md, "External block-voltage converter".
        self.ext_divider = ext_divider or (divider_top_ohm, divider_bottom_ohm)
        # Ri channel: sense pair AC-coupled (tau ~5 s) into a difference amplifier
        # with two gain ranges (high first; low when high clips), biased at mid-scale.
        self.ri_gain_high, self.ri_gain_low = ri_gains
        # Excitation: a regulated current sink on the fused current wires, switched
        # on and off; its current is measured on a shunt (amplifier gain shunt_gain).
        self.excitation_ma = excitation_ma
        self.shunt_uohm = shunt_uohm
        self.shunt_gain = shunt_gain
        # Bleed (balancing) resistor, PWM-switched: off the board, an aluminium-housed
        # resistor on the enclosure's outside (boards/rp2040_module/README.md).
        self.bleed_mohm = bleed_mohm
        # Board thermal model (one node): thermal resistance to ambient and time
        # constant.  It carries the module's supply and the share of the bleed heat
        # that reaches the board (its wires, the enclosure wall): ~10-20 K at full
        # bleed, so derating binds in hot rooms, not at 25 degC.
        self.board_rth_mk_per_w = 22000
        self.board_tau_ms = 600000
        # Quiescent dissipation of the module (15-40 mA from the battery, SPEC).
        self.quiescent_mw = 150
        # The bleed resistor's body (the hot node the die sensor does not see): the
        # HSA10's free-air rating, 5.5 W at 25 degC derating to zero at 200 degC, is
        # 31.8 K/W to the air; the controller keeps its estimate (die + power x this,
        # the die being at or above ambient) under the limit (docs/frontend.md).
        self.bleed_body_rth_mk_per_w = 31800
        self.bleed_body_limit_mc = 200000

    def divider_ratio(self, vadc: int = VADC_MCU) -> tuple:
        """(numerator, denominator) of block voltage / converter input voltage, for the
        board's block-voltage converter (VADC_*: each has its own divider)."""
        if vadc == VADC_ADS1219:
            top, bottom = self.ext_divider
            return (top + bottom, bottom)
        return (self.divider_top_ohm + self.divider_bottom_ohm, self.divider_bottom_ohm)

    def ri_gain(self, gain_range: int) -> int:
        """Ri amplifier gain (V/V) of range 0 (high) or 1 (low)."""
        return self.ri_gain_high if gain_range == 0 else self.ri_gain_low


# Indexed by variant id (shared/variants.py).
FRONTENDS = (
    # 2 V: 0.7-6.0 V -> /2.2 ; Ri 20 uOhm-6 mOhm: 4 A excitation, gains 250/40;
    # ADS1219 board: RES21A 1:1.667 -> /2.667 (8.0 V full scale)
    FrontEnd(120000, 100000, (250, 40), 4000, 2500, 200, 2500, (16670, 10000)),
    # 4 V: 2.4-5.0 V -> /2 ; Ri 0.5-30 mOhm: 2 A, gains 125/15; RES21A 1:1 -> /2
    FrontEnd(100000, 100000, (125, 15), 2000, 5000, 200, 15000, (10000, 10000)),
    # 6 V: 4.8-8.0 V -> /3 ; Ri 0.5-60 mOhm: 2 A, gains 80/8; RES21A 1:2.5 -> /3.5
    FrontEnd(200000, 100000, (80, 8), 2000, 5000, 200, 22000, (25000, 10000)),
    # 12 V: 8-17 V -> /5.99 ; Ri 0.5-60 mOhm: 1 A, gains 40/12; RES21A 1:9 -> /10
    FrontEnd(499000, 100000, (40, 12), 1000, 10000, 200, 91000, (90000, 10000)),
    # 16 V: 9.7-21 V -> /7.49 ; Ri 0.5-60 mOhm: 1 A, gains 30/10; RES21A 1:9 -> /10
    FrontEnd(649000, 100000, (30, 10), 1000, 10000, 200, 150000, (90000, 10000)),
)


def frontend(variant_id: int) -> FrontEnd:
    """The front-end constants of a variant (by bus id)."""
    if 0 <= variant_id < len(FRONTENDS):
        return FRONTENDS[variant_id]
    raise ValueError(
        "unknown variant id %r: valid ids are 0..%d" % (variant_id, len(FRONTENDS) - 1)
    )


def corrected_x2(code: int, adc_kind: int) -> int:
    """One raw ADC code, linearised, in half-LSB units (2 * code on a clean ADC)."""
    if adc_kind != ADC_RP2040:
        return code << 1
    x2 = (code << 1) + _RP2040_REGION_X2[code >> 9]
    if (code & 511) == 0 and (code & 512):
        x2 -= _RP2040_SPIKE_HALF_X2[code >> 10]
    return x2


def frame_sum_x2(samples, count: int, adc_kind: int) -> int:
    """Sum of samples[0:count] (raw codes), linearised, in half-LSB units.

    The per-sample path of every slow channel: no allocation (checked by the tests
    with the heap locked).  count <= 16384 keeps the sum below 2**30.
    """
    total = 0
    if adc_kind != ADC_RP2040:
        for j in range(count):
            total += samples[j]
        return total << 1
    region = _RP2040_REGION_X2
    half = _RP2040_SPIKE_HALF_X2
    for j in range(count):
        code = samples[j]
        total += (code << 1) + region[code >> 9]
        if (code & 511) == 0 and (code & 512):
            total -= half[code >> 10]
    return total
