"""Simulated analog front end of a module board (host only).

Turns physical quantities (block voltage in V, ripple, temperatures, the block's
resistance R0 and its RC pair, excitation and bleed currents) into the ADC codes
the firmware reads, through a model of the board in docs/frontend.md:

* a divider (0.1 % resistors, tempco) and buffer into a 12-bit converter with an
  external 3.000 V reference (0.1 %, <= 8 ppm/K);
* the converter: offset and gain error, random noise, and for the RP2040 the four
  wide codes of erratum RP2040-E11 with per-chip widths (together about 8.7-9
  effective bits, see `effective_bits`);
* the Ri channel: AC coupling (tau 4.7 s +-20 %), difference amplifier gain
  (+-0.3 %), first-order anti-alias filters (3.4 kHz +-5 %), the shunt channel
  (shunt +-0.5 %, amplifier +-0.5 %, 0.15 V reference offset), the regulated
  excitation sink (+-2 % of set point), v and i sampled alternately;
* the temperature channels: the MCU's internal sensor (per-chip offset and slope)
  and the external NTC probe (R25 1 %, beta 1 %) or its absence (input reads the
  pull-up).

Every board draws its tolerances from a seed, so a board is reproducible; noise is
drawn from a separate generator per call sequence.  Pure Python (no numpy), so it
runs wherever the host tools run.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Sequence

import numpy as np

from shared import frontend as fe
from shared import ri as ri_mod
from shared import variants

ADC_LSB_V = fe.ADC_VREF_UV / 1e6 / fe.ADC_CODES
# Typical extra widths (LSB) of the RP2040 wide codes, and the per-chip spread
# (standard deviation) assumed for the simulated chips.
RP2040_SPIKE_EXTRA_LSB = tuple(x / 2 for x in fe.RP2040_SPIKE_EXTRA_X2)
RP2040_SPIKE_SPREAD_LSB = 0.5
NOISE_LSB = {fe.ADC_RP2040: 1.0, fe.ADC_STM32G4: 0.6}

SHUNT_REF_OFFSET_V = fe.SHUNT_REF_OFFSET_UV / 1e6  # shunt amplifier REF pin
RI_BIAS_V = 1.5  # Ri amplifier output bias (mid-scale)
AMP_SWING_LOW_V = 0.05
AMP_SWING_HIGH_V = 2.95
AA_CUTOFF_HZ = 3400.0
HPF_TAU_S = 4.7
# the sink's set point goes through two RC lags (docs/frontend.md)
EXCITATION_TAUS_S = (fe.EXCITATION_TAU_US / 1e6, fe.EXCITATION_TAU_US * 1.1 / 1e6)

# --- Roughness of a real board over its service life (docs/measurement.md, "Error
# budget over a service life"; each value's source is there).  Drawn per board from
# their own generator, so the earlier tolerances of a seed stay what they were.
# Converter integral non-linearity: a bow over the range (sigma) and a zigzag
# repeating every 512 codes (the RP2040's segment boundaries, where its wide codes sit).
INL_BOW_LSB = {fe.ADC_RP2040: 1.5, fe.ADC_STM32G4: 1.0}
INL_SAW_LSB = {fe.ADC_RP2040: 1.0, fe.ADC_STM32G4: 0.3}
ADC_OFFSET_TC_LSB_PER_K = 0.02  # +- (uniform), converter offset drift with temperature
ADC_OFFSET_AGE_LSB = 0.5  # sigma of the offset's drift over DESIGN_LIFE_YEARS
DIVIDER_RES_TC = 10e-6  # sigma per resistor, /K, clipped to the datasheet's 25 ppm/K
DIVIDER_RES_TC_MAX = 25e-6
# sigma per resistor over DESIGN_LIFE_YEARS (thin film, ~0 W).  No source for the sigma:
# chosen as a fifth of the thin-film bound the BOM's Susumu RG series publishes (< 0.1 %
# after 10 000 h at 155 degC, or at 85 degC / 85 % RH: a far harsher stress than 10
# years at <= 60 degC and microwatts); Vishay TNPW's load life is 0.05 % / 1000 h,
# 0.30 % / 225 000 h at rated power, 70 degC.  The life figure's band over it:
# bench_sim_life `module.voltage.err_pct.life.divider_age_x0` / `_x2`.
DIVIDER_AGE_REL = 0.0002
VREF_AGE_PPM_PER_1000H = 30.0  # sigma; ADR3430 datasheet long-term stability, typical
VREF_HYSTERESIS_PPM = 70.0  # +- (uniform): ADR3430 thermal hysteresis, typical
LEAK_S_MAX = 1.0 / 2e9  # conductance across the divider's bottom at end of life (0..)
DESIGN_LIFE_YEARS = 10.0
# Two-node board thermal model (docs/frontend.md, "Bleed (balancing) load and the
# board's heat").  The bleed resistor is off the board: an aluminium-housed wirewound
# resistor (TE Connectivity HSA10) on the outside of the module's enclosure, wired to
# the board's MOSFET.  Its body (hot node) sheds its heat to the air: the HSA10 is
# rated 5.5 W without a heatsink at 25 degC and derates linearly to zero at 200 degC
# (TE/Arcol HS series data sheets), so (200 - 25) / 5.5 = 31.8 K/W body to air with all
# of its heat through that path (an upper bound: some leaves by its wires).
BLEED_BODY_RTH_K_PER_W = 31.8
# ~10 g of aluminium housing and ceramic former: ~9 J/K x 31.8 K/W (assumed mass)
BLEED_BODY_TAU_S = 300.0
# What the body may reach: the rating's zero-power point.
BLEED_BODY_LIMIT_C = 200.0
# The share of the resistor's heat that reaches the board node anyway (its two wires,
# the enclosure wall it is screwed to), per board (uniform).  No source: assumed.
# Counted on top of the body's full free-air rise, so both nodes err hot.
BLEED_BOARD_SHARE = (0.1, 0.3)
# The divider sits this share of the board's heat-in point's rise (the bleed wires'
# connector: the board share of the body's rise) above the board node (placement).
DIVIDER_COUPLING = (0.0, 0.15)
# The module's own supply power from its block, per board (uniform): 16-22 mA at a
# 12 V block's 13.6 V (SPEC: 15-40 mA); a 2 V module's boost draws ~0.12 A.  All of
# it ends up as heat on the board.
SUPPLY_W = (0.22, 0.30)


# --- The external block-voltage converter (board option "vadc": "ads1219";
# docs/frontend.md, "External block-voltage converter"): a TI ADS1219 with the board's
# ADR3430 as its external reference, gain 1, 20 SPS.  Drawn per board from its own
# generator (the earlier draws of a seed stay what they were).
# Published (ADS1219 data sheet SBAS924A, electrical characteristics and features):
ADS1219_INL_FSR = 15e-6  # max |INL|, of FSR (= 2 VREF: +-VREF); drawn within it
ADS1219_GAIN_ERROR = 1e-4  # sigma: 0.01 % typical (calibrated out)
ADS1219_NOISE_V = 2 * 3.0 / 2**20  # rms per conversion: "up to 20 bits effective
# resolution" (at 20 SPS, the lowest rate): 2 VREF / 2**20 = 5.7 uV
# Assumed (no figure in the sources at hand; each well above what a delta-sigma
# converter of this class with an external reference shows, and the two-point and
# tempco calibrations remove the static and linear parts):
ADS1219_OFFSET_V = 20e-6  # sigma (calibrated out)
ADS1219_OFFSET_TC_V_PER_K = 0.1e-6  # +- (uniform)
ADS1219_GAIN_TC = 2e-6  # +- /K (uniform); the ADS1115's 5 ppm/K typical includes its
# internal reference, which the ADS1219 does not use here
ADS1219_OFFSET_AGE_V = 10e-6  # sigma over DESIGN_LIFE_YEARS
ADS1219_GAIN_AGE = 10e-6  # sigma over DESIGN_LIFE_YEARS
# The ADS1219 board's divider: a TI RES21A matched thin-film divider pair (SOT-23-THN,
# SiCr, interdigitated; R_IN 10 kOhm, R_G on top; shared.frontend ext_divider).
# Published (TI RES21A product page and data sheet SLPS814, features): ratio
# tolerance +-0.05 % (max; +-120 ppm typ), TCR of the ratio R_G/R_IN +-2 ppm/K (max).
# Drawn uniformly within the maxima.  Its ratio's long-term drift: not found (SLPS814
# has sections "Long-Term Stability" and "Humidity Resilience", but their figures were
# in none of the sources searched on 2026-12-03), so the network ages in the model as
# the loose resistors do (DIVIDER_AGE_REL per element, independent: no credit for the
# shared substrate).
RES21A_RATIO_TOL = 5e-4
RES21A_TCR_RATIO = 2e-6
# The S-shaped INL term x(1-x)(2x-1) peaks at 1/(6 sqrt 3) over 0..1.
_S_PEAK = 1.0 / (6.0 * math.sqrt(3.0))


class Ads1219Model:
    """The ADS1219's transfer from the pin (V, relative to a 3.000 V reference: the
    reference's own errors are applied before) to frame units of frontend.ads1219_units.

    INL: a bow 4x(1-x) and an S term over the input range, amplitudes drawn so that
    their sum never exceeds ADS1219_INL_FSR of the full-scale range (2 VREF)."""

    def __init__(self, rng: random.Random) -> None:
        limit = ADS1219_INL_FSR * 2 * fe.ADC_VREF_UV / 1e6
        self.inl_bow_v = rng.uniform(-0.7, 0.7) * limit
        self.inl_s_v = rng.uniform(-0.3, 0.3) * limit
        self.gain_error = rng.gauss(0.0, ADS1219_GAIN_ERROR)
        self.offset_v = rng.gauss(0.0, ADS1219_OFFSET_V)
        self.offset_tc_v_per_k = rng.uniform(-1.0, 1.0) * ADS1219_OFFSET_TC_V_PER_K
        self.gain_tc = rng.uniform(-1.0, 1.0) * ADS1219_GAIN_TC
        self.offset_life_v = rng.gauss(0.0, ADS1219_OFFSET_AGE_V)
        self.gain_life = rng.gauss(0.0, ADS1219_GAIN_AGE)
        self.noise_v = ADS1219_NOISE_V

    def inl_v(self, pin_v: float) -> float:
        x = min(max(pin_v / (fe.ADC_VREF_UV / 1e6), 0.0), 1.0)
        return self.inl_bow_v * 4.0 * x * (1.0 - x) + self.inl_s_v * (
            x * (1.0 - x) * (2.0 * x - 1.0) / _S_PEAK
        )

    def mean_v(self, pin_v: float, board_c: float, life: float) -> float:
        """What the converter converts, before noise and quantisation (V)."""
        dt = board_c - 25.0
        gain = 1.0 + self.gain_error + self.gain_tc * dt + self.gain_life * life
        offset = self.offset_v + self.offset_tc_v_per_k * dt + self.offset_life_v * life
        return pin_v * gain + offset + self.inl_v(pin_v)

    def code(self, v: float) -> int:
        """The 24-bit two's-complement code (clipped at full scale) of v volts."""
        c = int(math.floor(v / (fe.ADC_VREF_UV / 1e6) * (1 << 23) + 0.5))
        return max(-(1 << 23), min((1 << 23) - 1, c))

    def frame(self, pin_v: float, board_c: float, life: float, rng: random.Random) -> int:
        """One frame: the sum of 2**ADS1219_FRAME_LOG2 conversions in frame units."""
        mean = self.mean_v(pin_v, board_c, life)
        total = 0
        for _ in range(1 << fe.ADS1219_FRAME_LOG2):
            total += self.code(mean + rng.gauss(0.0, self.noise_v)) >> fe.ADS1219_SHIFT
        return total


# The engineer's reference meter: a 5 1/2-digit bench meter's 1-year DC volts,
# +-(0.015 % of reading + 2 counts of the range's last digit) (typical of the class;
# boards/rp2040_module/README.md asks for >= 5 1/2 digits), drawn uniformly within.
METER_READING = 0.00015
METER_COUNTS = 2


def meter_reading_v(true_v: float, rng: random.Random) -> float:
    """What the calibration meter shows for a true voltage."""
    count = 1e-5 if true_v < 2.0 else (1e-4 if true_v < 20.0 else 1e-3)
    err = true_v * METER_READING + METER_COUNTS * count
    return true_v + rng.uniform(-err, err)


FLICKER_BAND_HZ = (0.05, 500.0)
FLICKER_POLES = 8


def _flicker(samples: int, dt: float, rms: float, rng: random.Random) -> list[float]:
    """1/f noise: FLICKER_POLES first-order (AR(1)) processes of equal variance with
    corners log-spaced over FLICKER_BAND_HZ (a 1/f spectrum between them, within
    ~1 dB), started in their stationary state; total rms ``rms``."""
    lo, hi = FLICKER_BAND_HZ
    gen = np.random.default_rng(rng.getrandbits(64))
    out = [0.0] * samples
    sigma = rms / math.sqrt(FLICKER_POLES)
    for k in range(FLICKER_POLES):
        fc = lo * (hi / lo) ** (k / (FLICKER_POLES - 1))
        a = math.exp(-2 * math.pi * fc * dt)
        w = gen.normal(0.0, sigma * math.sqrt(1 - a * a), samples).tolist()
        x = float(gen.normal(0.0, sigma))
        pole = []
        for wn in w:  # Python floats: the same IEEE arithmetic as numpy's, faster
            x = a * x + wn
            pole.append(x)
        out = [o + p for o, p in zip(out, pole, strict=True)]
    return out


Matrix = list[list[float]]


def _ri_chain_loop(
    u_n: list[float],
    t_n: list[float],
    ripple_n: np.ndarray,
    flicker: list[float] | None,
    sink_v: tuple[Matrix, list[float]],
    sink_i: tuple[Matrix, list[float]],
    skew: tuple[Matrix, list[float]],
    arc: tuple[Matrix, list[float]],
    block: Block,
    a_rc: float,
    a_hp: float,
    coupling: tuple[float, float],
    drift_v_per_s: float,
    v_out: tuple[float, float],
    i_out: tuple[float, float, float],
) -> tuple[list[float], list[float]]:
    """The sample-by-sample part of SimBoard.ri_capture: the states of the sink, the
    anti-alias filters, the block's RC pair and arc and the AC coupling, one sample
    interval at a time; returns (v amplifier output, i pin) per sample.

    The hot loop of a simulation's Ri captures: the matrices' entries are unpacked
    into locals and the states kept as scalars (no list per sample), the arithmetic
    kept in the very order of the straightforward form, so the samples are the same
    to the last bit."""
    (av, bv), (ai, bi), (ak, bk), (arc_a, arc_b) = sink_v, sink_i, skew, arc
    va00, va10, va11 = av[0][0], av[1][0], av[1][1]
    va20, va21, va22 = av[2][0], av[2][1], av[2][2]
    vb0, vb1, vb2 = bv
    ia00, ia10, ia11 = ai[0][0], ai[1][0], ai[1][1]
    ia20, ia21, ia22 = ai[2][0], ai[2][1], ai[2][2]
    ib0, ib1, ib2 = bi
    k0, k1, k2 = ak[2]
    kb = bk[2]
    r0, r1, r_ct = block.r0_ohm, block.r1_ohm, block.r_ct_ohm
    coupling_h, tau_v = coupling
    bias_v, gain_v = v_out
    shunt_offset_v, shunt_v_per_a, vscale = i_out
    lo, hi = AMP_SWING_LOW_V, AMP_SWING_HIGH_V
    s0 = s1 = s2 = 0.0  # sink stage 1, sink output (the current), v-channel AA
    q0 = q1 = q2 = 0.0  # same sink, i-channel AA
    c0 = c1 = c2 = c3 = 0.0  # the arc's chain (sink -> v-channel AA -> arc)
    if r_ct:
        ca00 = arc_a[0][0]
        ca10, ca11 = arc_a[1][0], arc_a[1][1]
        ca20, ca21, ca22 = arc_a[2][0], arc_a[2][1], arc_a[2][2]
        ca30, ca31, ca32, ca33 = arc_a[3][0], arc_a[3][1], arc_a[3][2], arc_a[3][3]
        cb0, cb1, cb2, cb3 = arc_b
    v_rc = v_ct = 0.0
    hp_prev_in = hp_out = 0.0
    hp_n: list[float] = []  # the AC coupling's output
    i_n: list[float] = []  # the current the i channel samples
    hp_append = hp_n.append
    i_append = i_n.append
    for n, u in enumerate(u_n):
        # --- sample v at t_n (state reached so far)
        v_in = r0 * s2 + v_rc + v_ct + drift_v_per_s * t_n[n]
        if flicker is not None:
            v_in += flicker[n]
        if coupling_h:
            v_in += coupling_h * (s1 - s2) / tau_v  # AA of M di/dt
        hp_out = a_hp * (hp_out + v_in - hp_prev_in)
        hp_prev_in = v_in
        hp_append(hp_out)
        # --- sample i at t_n + skew (u: the set point for this interval)
        i_append(k0 * q0 + k1 * q1 + k2 * q2 + kb * u)
        # --- advance to t_n+1
        mean_i = s1  # the RC pair is slow: the current at the interval start will do
        s0, s1, s2 = (
            va00 * s0 + vb0 * u,
            va10 * s0 + va11 * s1 + vb1 * u,
            va20 * s0 + va21 * s1 + va22 * s2 + vb2 * u,
        )
        q0, q1, q2 = (
            ia00 * q0 + ib0 * u,
            ia10 * q0 + ia11 * q1 + ib1 * u,
            ia20 * q0 + ia21 * q1 + ia22 * q2 + ib2 * u,
        )
        if r1:
            v_rc = r1 * mean_i + (v_rc - r1 * mean_i) * a_rc
        if r_ct:
            c0, c1, c2, c3 = (
                ca00 * c0 + cb0 * u,
                ca10 * c0 + ca11 * c1 + cb1 * u,
                ca20 * c0 + ca21 * c1 + ca22 * c2 + cb2 * u,
                ca30 * c0 + ca31 * c1 + ca32 * c2 + ca33 * c3 + cb3 * u,
            )
            v_ct = r_ct * c3
    # the outputs, sample by sample the same arithmetic (numpy adds no fused steps)
    v_pins = bias_v + gain_v * (np.array(hp_n) + ripple_n)
    i_pins = np.clip(shunt_offset_v + np.array(i_n) * shunt_v_per_a, lo, hi) * vscale
    return v_pins.tolist(), i_pins.tolist()


class LagChain:
    """First-order lags in series, updated exactly for a constant input.

    x_1' = (u - x_1)/tau_1, x_k' = (x_{k-1} - x_k)/tau_k.  Over a time t with u held,
    each stage is u plus a sum of exponentials of the stages up to it; the
    coefficients follow stage by stage.  Time constants must differ.
    """

    def __init__(self, taus: Sequence[float]) -> None:
        self.taus = list(taus)
        for a in range(len(self.taus)):
            for b in range(a):
                if abs(self.taus[a] - self.taus[b]) < 1e-9:
                    self.taus[a] *= 1.0 + 1e-3  # keep them distinct

    def decays(self, t: float) -> list[float]:
        return [math.exp(-t / tau) for tau in self.taus]

    def step_matrix(self, t: float) -> tuple[list[list[float]], list[float]]:
        """(A, b) with state(t) = A @ state + b * u: the update is linear, so it is
        computed once per time step from unit states and reused for every sample."""
        dec = self.decays(t)
        n = len(self.taus)
        cols = []
        for k in range(n):
            unit = [0.0] * n
            unit[k] = 1.0
            cols.append(self.advance(unit, 0.0, dec))
        b = self.advance([0.0] * n, 1.0, dec)
        a = [[cols[c][r] for c in range(n)] for r in range(n)]
        return a, b

    def advance(self, state: list[float], u: float, decays: list[float]) -> list[float]:
        out = []
        coeffs: list[float] = []  # amplitudes of exp(-t/tau_j) in the previous stage
        for k, tau_k in enumerate(self.taus):
            new = []
            rest = state[k] - u
            for j, a in enumerate(coeffs):
                c = a * self.taus[j] / (self.taus[j] - tau_k)
                new.append(c)
                rest -= c
            new.append(rest)
            out.append(u + sum(c * decays[j] for j, c in enumerate(new)))
            coeffs = new
        return out


class Converter:
    """A 12-bit SAR converter: offset, gain error, noise, RP2040 wide codes."""

    def __init__(self, kind: int, rng: random.Random) -> None:
        self.kind = kind
        self.offset_lsb = rng.gauss(0.0, 2.0)
        self.gain_error = rng.gauss(0.0, 0.002)
        self.noise_lsb = NOISE_LSB[kind]
        # integral non-linearity and drifting offset: SimBoard sets them (roughness)
        self.inl_bow_lsb = 0.0
        self.inl_saw_lsb = 0.0
        self.offset_tc_lsb_per_k = 0.0
        self.offset_now_lsb = 0.0
        if kind == fe.ADC_RP2040:
            self.spike_extra = [
                max(0.0, w + rng.gauss(0.0, RP2040_SPIKE_SPREAD_LSB))
                for w in RP2040_SPIKE_EXTRA_LSB
            ]
        else:
            self.spike_extra = [0.0, 0.0, 0.0, 0.0]
        # lower input edge (in ideal LSB) of each wide code
        self._edges = []
        cum = 0.0
        for code, extra in zip(fe.RP2040_SPIKE_CODES, self.spike_extra, strict=True):
            self._edges.append((code, code - 0.5 + cum, extra))
            cum += extra

    def code_of(self, u: float) -> int:
        """Code for an input of u ideal LSB (noise already added)."""
        cum = 0.0
        if self.kind == fe.ADC_RP2040:
            for code, edge, extra in self._edges:
                if u >= edge + 1.0 + extra:
                    cum += extra
                elif u >= edge:
                    return code
                else:
                    break
        c = int(math.floor(u - cum + 0.5))
        if c < 0:
            return 0
        if c > fe.ADC_MAX_CODE:
            return fe.ADC_MAX_CODE
        return c

    def codes_of(self, u: np.ndarray) -> np.ndarray:
        """code_of for an array of inputs (ideal LSB, noise already added)."""
        cum = np.zeros_like(u)
        wide = np.full(u.shape, -1, dtype=np.int64)
        if self.kind == fe.ADC_RP2040:
            for code, edge, extra in self._edges:
                inside = (u >= edge) & (u < edge + 1.0 + extra) & (wide < 0)
                wide[inside] = code
                cum += np.where(u >= edge + 1.0 + extra, extra, 0.0)
        plain = np.clip(np.floor(u - cum + 0.5), 0, fe.ADC_MAX_CODE).astype(np.int64)
        return np.where(wide >= 0, wide, plain)

    def inl_lsb(self, u: float) -> float:
        """Integral non-linearity at u ideal LSB: a bow (zero at both ends) and a
        continuous zigzag over each 512-code segment (its steps are the wide codes,
        modelled apart)."""
        x = u / fe.ADC_CODES
        zig = 1.0 - 4.0 * abs((u % 512.0) / 512.0 - 0.5)
        return self.inl_bow_lsb * 4.0 * x * (1.0 - x) + self.inl_saw_lsb * zig

    def ideal_lsb(self, v_pin: float) -> float:
        u = v_pin / ADC_LSB_V * (1.0 + self.gain_error)
        return u + self.inl_lsb(u) + self.offset_lsb + self.offset_now_lsb

    def sample(self, v_pin: float, rng: random.Random) -> int:
        return self.code_of(self.ideal_lsb(v_pin) + rng.gauss(0.0, self.noise_lsb))

    def sample_frame(self, v_pin: float, samples: int, rng: random.Random) -> list[int]:
        """[sample(v_pin, rng) for each of `samples`]: the same codes and draws, the
        pin's ideal code computed once."""
        u = self.ideal_lsb(v_pin)
        gauss = rng.gauss
        code_of = self.code_of
        noise_lsb = self.noise_lsb
        return [code_of(u + gauss(0.0, noise_lsb)) for _ in range(samples)]

    def sample_array(self, v_pins: Sequence[float], rng: random.Random) -> list[int]:
        """sample() for many inputs in one pass; the noise comes from a generator
        seeded by rng, so the result is as deterministic as the scalar path."""
        gen = np.random.default_rng(rng.getrandbits(64))
        u = np.asarray(v_pins, dtype=float) / ADC_LSB_V * (1.0 + self.gain_error)
        x = u / fe.ADC_CODES
        u = u + self.inl_bow_lsb * 4.0 * x * (1.0 - x)
        u += self.inl_saw_lsb * (1.0 - 4.0 * np.abs((u % 512.0) / 512.0 - 0.5))
        u += self.offset_lsb + self.offset_now_lsb + gen.normal(0.0, self.noise_lsb, u.shape)
        return self.codes_of(u).tolist()


class Ripple:
    """Charger ripple current through the string: harmonics of the mains frequency.

    components: (harmonic of mains, peak amperes, phase rad).  A single-phase
    rectifier gives harmonics 2, 4, 6 (100/200/300 Hz at 50 Hz); a 6-pulse one 6, 12.
    """

    def __init__(
        self,
        mains_hz: float = 50.0,
        components: Sequence[tuple[int, float, float]] = (),
        freq_error: float = 0.0,
    ) -> None:
        self.mains_hz = mains_hz * (1.0 + freq_error)
        self.components = list(components)

    @classmethod
    def typical(
        cls, rms_a: float, mains_hz: float = 50.0, freq_error: float = 0.0, seed: int = 0
    ) -> Ripple:
        """Single-phase-rectifier-like spectrum with the given total rms current."""
        rng = random.Random(seed)
        shape = [(2, 1.0), (4, 0.35), (6, 0.25), (1, 0.05), (12, 0.08)]
        norm = math.sqrt(sum(a * a for _, a in shape) / 2.0)  # rms of unit-peak mix
        comps = [(h, rms_a * a / norm, rng.uniform(0, 2 * math.pi)) for h, a in shape]
        return cls(mains_hz, comps, freq_error)

    def current(self, t: float) -> float:
        w = 2 * math.pi * self.mains_hz
        return sum(a * math.sin(w * h * t + ph) for h, a, ph in self.components)

    def rms(self) -> float:
        return math.sqrt(sum(a * a for _, a, _ in self.components) / 2.0)


class Block:
    """The battery block as the Ri channel sees it: R0, the charge-transfer arc (an
    R_ct || C_dl pair with a time constant of milliseconds) and the slow RC pair
    (diffusion/concentration polarisation, seconds).

    Ri (docs/ri.md) is R0, the ohmic resistance as a 1 kHz tester reports it.
    """

    def __init__(
        self,
        r0_ohm: float,
        r1_ohm: float = 0.0,
        tau1_s: float = 10.0,
        r_ct_ohm: float = 0.0,
        tau_ct_s: float = 0.01,
    ) -> None:
        self.r0_ohm = r0_ohm
        self.r1_ohm = r1_ohm
        self.tau1_s = tau1_s
        self.r_ct_ohm = r_ct_ohm
        self.tau_ct_s = tau_ct_s

    def impedance(self, f_hz: float) -> complex:
        z = complex(self.r0_ohm, 0.0)
        if self.r1_ohm:
            z += self.r1_ohm / complex(1.0, 2 * math.pi * f_hz * self.tau1_s)
        if self.r_ct_ohm:
            z += self.r_ct_ohm / complex(1.0, 2 * math.pi * f_hz * self.tau_ct_s)
        return z


class SwitchingRipple:
    """A switch-mode charger's ripple at the block terminals: a sine of `amplitude_v`
    (peak) at `f_hz` (16-20 kHz for the chargers the issue measured, 20-200 mV), far
    above the anti-alias filter.  It reaches the Ri amplifier unfiltered: the amplifier
    can saturate on it while the converter, behind the filter, sees only a fifth."""

    def __init__(self, f_hz: float, amplitude_v: float, phase: float = 0.0) -> None:
        self.f_hz = f_hz
        self.amplitude_v = amplitude_v
        self.phase = phase


class BoardThermal:
    """Thermal model of the module: the board node (die sensor, divider) with one time
    constant to ambient, heated by the module's supply and the share of the bleed
    resistor's heat that reaches the board; and the bleed resistor's body (``hot_c``),
    off the board, with its own time constant to ambient.  Exact exponential updates."""

    def __init__(self, rth_k_per_w: float, tau_s: float, ambient_c: float = 25.0) -> None:
        self.rth_k_per_w = rth_k_per_w
        self.tau_s = tau_s
        self.ambient_c = ambient_c
        self.temp_c = ambient_c
        self.hot_c = ambient_c  # the bleed resistor's body
        self.hot_rth_k_per_w = BLEED_BODY_RTH_K_PER_W
        self.hot_tau_s = BLEED_BODY_TAU_S

    def step(
        self,
        dt_s: float,
        power_w: float,
        ambient_c: float | None = None,
        resistor_w: float = 0.0,
    ) -> float:
        """Advance dt_s with power_w into the board node (the supply, and the resistor's
        share) and resistor_w in the bleed resistor's body; returns the board node."""
        if ambient_c is not None:
            self.ambient_c = ambient_c
        target = self.ambient_c + power_w * self.rth_k_per_w
        self.temp_c = target + (self.temp_c - target) * math.exp(-dt_s / self.tau_s)
        hot = self.ambient_c + resistor_w * self.hot_rth_k_per_w
        self.hot_c = hot + (self.hot_c - hot) * math.exp(-dt_s / self.hot_tau_s)
        return self.temp_c


class SimBoard:
    """One simulated module board of a variant: its tolerances from `seed`."""

    def __init__(
        self,
        variant_id: int,
        seed: int = 0,
        adc_kind: int = fe.ADC_RP2040,
        vadc: int = fe.VADC_MCU,
    ) -> None:
        self.variant = variants.by_id(variant_id)
        self.front = fe.frontend(variant_id)
        self.adc_kind = adc_kind
        # the block-voltage converter: the MCU's ADC, or the ADS1219 (Ads1219Model)
        self.vadc = vadc
        self.ads1219 = Ads1219Model(random.Random(("ads1219", variant_id, seed).__repr__()))
        rng = random.Random(("board", variant_id, seed, adc_kind).__repr__())
        self.noise = random.Random(("noise", variant_id, seed, adc_kind).__repr__())
        self.seed = seed
        # Per-board tolerances: the BOM's part tolerances where docs/frontend.md names
        # them; the converter's offset and gain, the buffer offset and the die sensor's
        # spread have no source (docs/simulation.md, "Parameters without a source").
        self.adc = Converter(adc_kind, rng)
        # voltage channel
        top = self.front.divider_top_ohm * (1 + rng.uniform(-0.001, 0.001))
        bottom = self.front.divider_bottom_ohm * (1 + rng.uniform(-0.001, 0.001))
        self.divider_gain = bottom / (top + bottom)  # ADC pin / block
        self.divider_tc = rng.uniform(-5e-6, 5e-6)  # ratio tempco (tracking array), /K
        self.vref_error = rng.uniform(-0.001, 0.001)
        self.vref_tc = rng.uniform(-8e-6, 8e-6)  # /K
        self.buffer_offset_v = rng.gauss(0.0, 50e-6)
        # Ri channel
        self.ri_gain_error = [rng.gauss(0.0, 0.003), rng.gauss(0.0, 0.003)]
        self.hpf_tau_s = HPF_TAU_S * (1 + rng.uniform(-0.2, 0.2))
        self.aa_v_hz = AA_CUTOFF_HZ * (1 + rng.uniform(-0.05, 0.05))
        self.aa_i_hz = AA_CUTOFF_HZ * (1 + rng.uniform(-0.05, 0.05))
        self.shunt_error = rng.uniform(-0.005, 0.005)
        self.shunt_gain_error = rng.gauss(0.0, 0.0025)
        self.sink_error = rng.uniform(-0.02, 0.02)
        self.ri_bias_v = RI_BIAS_V + rng.gauss(0.0, 0.005)
        # temperature coefficients of the Ri chain, /K (gain resistors 25 ppm/K,
        # shunt 50 ppm/K, shunt amplifier 25 ppm/K)
        self.ri_gain_tc = rng.uniform(-25e-6, 25e-6)
        self.shunt_tc = rng.uniform(-50e-6, 50e-6)
        self.shunt_gain_tc = rng.uniform(-25e-6, 25e-6)
        self.shunt_offset_v = SHUNT_REF_OFFSET_V + rng.gauss(0.0, 0.002)
        # temperature channels
        sensor = fe.INTERNAL_SENSOR[adc_kind]
        self.sensor_v_ref = sensor[0] / 1e6 + rng.gauss(0.0, 0.004)  # ~ +-2.3 K
        self.sensor_slope = sensor[2] / 1e6 * (1 + rng.gauss(0.0, 0.01))
        self.sensor_ref_c = sensor[1] / 1000.0
        self.ntc_r25 = fe.NTC_R25_OHM * (1 + rng.uniform(-0.01, 0.01))
        self.ntc_beta = fe.NTC_BETA_K * (1 + rng.uniform(-0.01, 0.01))
        self.pullup = fe.NTC_PULLUP_OHM * (1 + rng.uniform(-0.001, 0.001))
        self._mean_cache: dict[tuple[int, int], float] = {}
        self.thermal = BoardThermal(
            self.front.board_rth_mk_per_w / 1000.0, self.front.board_tau_ms / 1000.0
        )
        # --- roughness over a service life (constants above; docs/measurement.md)
        rough = random.Random(("rough", variant_id, seed, adc_kind).__repr__())
        self.adc.inl_bow_lsb = rough.gauss(0.0, INL_BOW_LSB[adc_kind])
        self.adc.inl_saw_lsb = rough.uniform(-1.0, 1.0) * INL_SAW_LSB[adc_kind]
        self.adc.offset_tc_lsb_per_k = rough.uniform(-1.0, 1.0) * ADC_OFFSET_TC_LSB_PER_K
        self.adc_offset_life_lsb = rough.gauss(0.0, ADC_OFFSET_AGE_LSB)

        def res_tc() -> float:
            tc = rough.gauss(0.0, DIVIDER_RES_TC)
            return max(-DIVIDER_RES_TC_MAX, min(DIVIDER_RES_TC_MAX, tc))

        # the divider's ratio tempco from its two resistors' own (they do not track)
        self.divider_tc = (1.0 - self.divider_gain) * (res_tc() - res_tc())
        self.divider_life_rel = (1.0 - self.divider_gain) * (
            rough.gauss(0.0, DIVIDER_AGE_REL) - rough.gauss(0.0, DIVIDER_AGE_REL)
        )
        self.vref_age_ppm = rough.gauss(0.0, VREF_AGE_PPM_PER_1000H)
        self.vref_hysteresis_ppm = rough.uniform(-1.0, 1.0) * VREF_HYSTERESIS_PPM
        self.leak_life_s = rough.uniform(0.0, LEAK_S_MAX)
        self.divider_coupling = rough.uniform(*DIVIDER_COUPLING)
        self.supply_w = rough.uniform(*SUPPLY_W)
        self.bleed_board_share = rough.uniform(*BLEED_BOARD_SHARE)
        self.divider_bottom_ohm = float(self.front.divider_bottom_ohm)
        if vadc == fe.VADC_ADS1219:
            self._divider_network(random.Random(("res21a", variant_id, seed).__repr__()))
        self.age_years = 0.0  # set to look at the board later in its life
        self.divider_rise_k = 0.0  # divider above the board node (bleed resistor's heat)

    def _divider_network(self, rng: random.Random) -> None:
        """The ADS1219 board's RES21A divider (RES21A_* above): its ratio, ratio tempco
        and ageing replace the loose resistors' (a seed's other draws stay as they were).
        The two-node thermal coupling stays: both resistors of the network sit where the
        loose pair sat, 0-15 % of the bleed resistor's rise above the die."""
        top, bottom = self.front.ext_divider
        ratio = top / bottom * (1 + rng.uniform(-RES21A_RATIO_TOL, RES21A_RATIO_TOL))
        self.divider_gain = 1.0 / (1.0 + ratio)
        # R_G/R_IN up by x: the divider's gain R_IN/(R_IN+R_G) down by (1 - gain) x
        self.divider_tc = -(1.0 - self.divider_gain) * rng.uniform(-1.0, 1.0) * RES21A_TCR_RATIO
        self.divider_life_rel = (1.0 - self.divider_gain) * (
            rng.gauss(0.0, DIVIDER_AGE_REL) - rng.gauss(0.0, DIVIDER_AGE_REL)
        )
        self.divider_bottom_ohm = float(bottom)

    # --- conversions ------------------------------------------------------------------

    def _life(self) -> float:
        """Share of the end-of-life drift reached at age_years (square-root law)."""
        return math.sqrt(min(max(self.age_years, 0.0) / DESIGN_LIFE_YEARS, 1.0))

    def _vref_scale(self, board_c: float) -> float:
        """ADC input scaling for reference error, tempco, ageing and thermal hysteresis
        (relative to 3.000 V)."""
        age = 0.0
        if self.age_years > 0.0:
            k_hours = self.age_years * 8.766  # thousands of hours
            law = math.sqrt(k_hours) if k_hours < 1.0 else 1.0 + math.log10(k_hours)
            age = (self.vref_age_ppm * law + self.vref_hysteresis_ppm) * 1e-6
        return 1.0 / ((1 + self.vref_error) * (1 + self.vref_tc * (board_c - 25.0)) * (1 + age))

    def _volt_pin(self, block_v: float, board_c: float) -> float:
        div_c = board_c + self.divider_rise_k
        gain = self.divider_gain * (1 + self.divider_tc * (div_c - 25.0))
        life = self._life()
        if life:
            # resistor drift, and leakage across the bottom resistor (G_leak R_bot)
            gain *= 1 + self.divider_life_rel * life
            leak = self.leak_life_s * life * self.divider_bottom_ohm
            gain *= (1 - self.divider_gain) / (1 + leak - self.divider_gain)
        self.adc.offset_now_lsb = (
            self.adc.offset_tc_lsb_per_k * (board_c - 25.0) + self.adc_offset_life_lsb * life
        )
        return (block_v * gain + self.buffer_offset_v) * self._vref_scale(board_c)

    # --- block voltage -------------------------------------------------------------------

    def voltage_frame(
        self,
        block_v: float,
        ripple_v: Ripple | None = None,
        board_c: float = 25.0,
        t0: float = 0.0,
        samples: int = fe.VOLTAGE_FRAME_SAMPLES,
        frame_s: float = fe.VOLTAGE_FRAME_MS / 1000.0,
    ) -> list[int]:
        """Raw codes of one block-voltage frame, sample by sample.

        ripple_v: ripple *voltage* of the block (a Ripple whose components are in V).
        """
        out = []
        for n in range(samples):
            t = t0 + n * frame_s / samples
            v = block_v + (ripple_v.current(t) if ripple_v else 0.0)
            out.append(self.adc.sample(self._volt_pin(v, board_c), self.noise))
        return out

    def _mean_x2(self, mu: float, spread: float) -> float:
        """Expected linearised code (x2) of one sample at mu ideal LSB with a Gaussian
        spread (noise, ripple): 32 fixed normal quantiles through the converter."""
        # code_of per quantile: the codes codes_of gives, without a dozen numpy calls
        # on 32 elements (this runs at every miss of _mean_x2_cached)
        code_of = self.adc.code_of
        codes = [code_of(u) for u in (mu + spread * _QUANTILES_NP).tolist()]
        return float(_corrected_x2_lut(self.adc_kind)[codes].mean())

    def _mean_x2_cached(self, mu: float, spread: float) -> float:
        """_mean_x2 memoised on a 1/8 LSB grid (and spread in 1/8 LSB), linearly
        interpolated in mu.

        The 32-quantile sum is itself a staircase at the 1/32 LSB scale; interpolating
        it on this grid stays within 0.15 LSB of it (host_tests/host/test_sim_frontend.py
        checks it; 0.6 mV at a 12 V block), and long simulations pay a dict lookup per
        frame.
        """
        key_s = int(round(spread * 8))
        x = mu * 8
        i = math.floor(x)
        frac = x - i
        cache = self._mean_cache
        a = cache.get((i, key_s))
        if a is None:
            a = cache[(i, key_s)] = self._mean_x2(i / 8, key_s / 8)
        b = cache.get((i + 1, key_s))
        if b is None:
            b = cache[(i + 1, key_s)] = self._mean_x2((i + 1) / 8, key_s / 8)
        return a + (b - a) * frac

    def voltage_frame_sum_x2(
        self,
        block_v: float,
        ripple_rms_v: float = 0.0,
        board_c: float = 25.0,
        samples: int = fe.VOLTAGE_FRAME_SAMPLES,
    ) -> int:
        """Fast statistical stand-in for frame_sum_x2(voltage_frame(...)).

        The expectation of the linearised code over ripple and noise is computed on
        32 fixed quantiles of a normal distribution (memoised, _mean_x2_cached); the
        frame's random noise is added as one Gaussian draw.  O(1) per frame, for long
        simulations.
        """
        pin = self._volt_pin(block_v, board_c)
        if self.vadc == fe.VADC_ADS1219:
            # frame units of frontend.ads1219_units, not half LSB: the converter's
            # 20 SPS filter rejects the ripple (50/60 Hz and harmonics), samples ignored
            return self.ads1219.frame(pin, board_c, self._life(), self.noise)
        mu = self.adc.ideal_lsb(pin)
        spread = math.hypot(
            ripple_rms_v * self.divider_gain / ADC_LSB_V, max(self.adc.noise_lsb, 0.3)
        )
        mean_x2 = self._mean_x2_cached(mu, spread)
        noise = self.noise.gauss(0.0, 2 * self.adc.noise_lsb * math.sqrt(samples))
        return int(round(mean_x2 * samples + noise))

    def _fast_frame(self, pin_v: float, samples: int) -> int:
        mu = self.adc.ideal_lsb(pin_v)
        mean_x2 = self._mean_x2_cached(mu, max(self.adc.noise_lsb, 0.3))
        noise = self.noise.gauss(0.0, 2 * self.adc.noise_lsb * math.sqrt(samples))
        return int(round(mean_x2 * samples + noise))

    # --- temperatures --------------------------------------------------------------------

    def internal_sensor_frame(
        self, board_c: float, samples: int = fe.TEMP_FRAME_SAMPLES
    ) -> list[int]:
        pin = self._internal_pin(board_c)
        return self.adc.sample_frame(pin, samples, self.noise)

    def _internal_pin(self, board_c: float) -> float:
        v = self.sensor_v_ref + self.sensor_slope * (board_c - self.sensor_ref_c)
        return v * self._vref_scale(board_c)

    def _probe_pin(self, battery_c: float | None) -> float:
        if battery_c is None:
            ratio = 1.0
        else:
            t = battery_c + 273.15
            r = self.ntc_r25 * math.exp(self.ntc_beta * (1.0 / t - 1.0 / 298.15))
            ratio = r / (r + self.pullup)
        # ratiometric: the reference cancels, only the converter's own errors remain
        return ratio * fe.ADC_VREF_UV / 1e6

    def probe_frame(
        self, battery_c: float | None, board_c: float = 25.0, samples: int = fe.TEMP_FRAME_SAMPLES
    ) -> list[int]:
        """NTC divider codes; battery_c None = no probe plugged (input at the pull-up)."""
        pin = self._probe_pin(battery_c)
        return self.adc.sample_frame(pin, samples, self.noise)

    def internal_sensor_frame_sum_x2(
        self, board_c: float, samples: int = fe.TEMP_FRAME_SAMPLES
    ) -> int:
        """Fast stand-in for frame_sum_x2(internal_sensor_frame(...))."""
        return self._fast_frame(self._internal_pin(board_c), samples)

    def probe_frame_sum_x2(
        self, battery_c: float | None, samples: int = fe.TEMP_FRAME_SAMPLES
    ) -> int:
        """Fast stand-in for frame_sum_x2(probe_frame(...))."""
        return self._fast_frame(self._probe_pin(battery_c), samples)

    # --- bleed and heat ----------------------------------------------------------------------

    def bleed_current_a(self, block_v: float, duty_permille: int) -> float:
        return block_v / (self.front.bleed_mohm / 1000.0) * duty_permille / 1000.0

    def excitation_mean_a(self, plan: ri_mod.RiPlan) -> float:
        """The current an Ri capture following `plan` draws from its block on average
        (A): the sink's current in the slots the excitation is on (the step method's
        Thue-Morse half, the AC square wave's half; the probe: none).  The block's
        physics sees it for the capture's length (stringcare.sim.engine)."""
        on = sum(1 for k in range(plan.slots) if plan.excitation_on(k))
        return plan.excitation_ma / 1000.0 * (1 + self.sink_error) * on / plan.slots

    def board_power_w(self, block_v: float, duty_permille: int) -> float:
        """What heats the board node (W): the module's supply and the bleed resistor's
        share (the resistor itself is off the board)."""
        return self.bleed_w(block_v, duty_permille) * self.bleed_board_share + self.supply_w

    def bleed_w(self, block_v: float, duty_permille: int) -> float:
        """The bleed resistor's dissipation (W) at block_v and this duty."""
        r = self.front.bleed_mohm / 1000.0
        return block_v * block_v / r * duty_permille / 1000.0

    def supply_current_a(self, block_v: float) -> float:
        """The module's own supply current from its block (A) at block_v."""
        return self.supply_w / max(block_v, 0.5 * self.variant.cells)

    def divider_rise_for(self, resistor_rise_k: float) -> float:
        """The divider's rise above the board node (K) with the bleed resistor's body
        resistor_rise_k above ambient: the placement's share of the heat-in point's."""
        return self.divider_coupling * self.bleed_board_share * resistor_rise_k

    def heat(self, dt_s: float, block_v: float, duty_permille: int, ambient_c: float) -> float:
        """Advance the board's temperature by dt_s of bleeding at this duty; returns the
        board node (where the die sensor is), degC.  The bleed resistor's body is
        ``thermal.hot_c``; the divider sits ``divider_rise_k`` above the board node."""
        t = self.thermal.step(
            dt_s,
            self.board_power_w(block_v, duty_permille),
            ambient_c,
            self.bleed_w(block_v, duty_permille),
        )
        self.divider_rise_k = self.divider_rise_for(self.thermal.hot_c - self.thermal.ambient_c)
        return t

    @property
    def resistor_c(self) -> float:
        """The bleed resistor's body temperature (the hot node), degC."""
        return self.thermal.hot_c

    # --- Ri captures -----------------------------------------------------------------------

    def ri_capture(
        self,
        plan: ri_mod.RiPlan,
        block: Block,
        ripple: Ripple | None = None,
        drift_v_per_s: float = 0.0,
        coupling_h: float = 0.0,
        t0: float = 0.0,
        board_c: float = 25.0,
        switching: SwitchingRipple | None = None,
        flicker_v_rms: float = 0.0,
    ) -> tuple[list[int], list[int]]:
        """(v codes, i codes) of one capture following `plan`, board at board_c.

        flicker_v_rms: 1/f (flicker) noise at the block's terminals (the battery's
        electrochemical noise and the charger's low-frequency wander), rms over
        FLICKER_BAND_HZ; a sum of first-order processes with log-spaced corners.

        Signal chain, continuous time, sampled exactly: the sink's current follows its
        switched set point through two RC lags (EXCITATION_TAUS_S, limits di/dt);
        the block drops R0*i + v_rc (RC pair, exact update) + a slow drift + the
        ripple current times the block's impedance per harmonic; coupling_h adds the
        mutual inductance of the current and sense loops (M di/dt).  The v channel's
        anti-alias lag is solved exactly with the sink's (LagChain), then AC coupling;
        v is sampled at t_n, i at t_n + skew.  The charge-transfer arc follows the
        current exactly per sample interval (its time constant is >= 1 ms, the sink's
        edge ~0.2 ms).  `switching` ripple is applied at the amplifier, before the
        anti-alias filter (``_through_amplifier``).
        """
        fs = plan.sample_rate_mhz / 1000.0  # RiPlan.lock_to_mains moves it
        dt = 1.0 / fs
        skew = plan.skew_ns * 1e-9
        gain_range = plan.gain_range
        dt_c = board_c - 25.0
        gain_v = plan.v_gain * (1 + self.ri_gain_error[gain_range]) * (1 + self.ri_gain_tc * dt_c)
        i_on = plan.excitation_ma / 1000.0 * (1 + self.sink_error)
        shunt_v_per_a = (
            plan.shunt_uohm
            * 1e-6
            * (1 + self.shunt_error)
            * (1 + self.shunt_tc * dt_c)
            * plan.shunt_gain
            * (1 + self.shunt_gain_error)
            * (1 + self.shunt_gain_tc * dt_c)
        )
        vscale = self._vref_scale(board_c)
        tau_v = 1 / (2 * math.pi * self.aa_v_hz)
        tau_i = 1 / (2 * math.pi * self.aa_i_hz)
        # sink (two lags) -> v-channel anti-alias; sink -> i-channel anti-alias
        chain_v = LagChain(list(EXCITATION_TAUS_S) + [tau_v])
        chain_i = LagChain(list(EXCITATION_TAUS_S) + [tau_i])
        (av, bv) = chain_v.step_matrix(dt)
        (ai, bi) = chain_i.step_matrix(dt)
        (ak, bk) = chain_i.step_matrix(skew)
        # ripple voltage components after AA and HPF (steady state)
        rip = []
        if ripple is not None:
            w0 = 2 * math.pi * ripple.mains_hz
            for h, amp, ph in ripple.components:
                f = ripple.mains_hz * h
                z = block.impedance(f)
                hp = complex(0, 2 * math.pi * f * self.hpf_tau_s)
                hp = hp / (1 + hp)
                g = z * hp / complex(1, f / self.aa_v_hz)
                rip.append((w0 * h, amp * abs(g), ph + math.atan2(g.imag, g.real)))
        a_hp = math.exp(-dt / self.hpf_tau_s)
        a_rc = math.exp(-dt / block.tau1_s) if block.r1_ohm else 0.0
        # the arc is one more first-order lag of the current the v channel sees: solved
        # exactly in the same chain (sink -> v-channel filter -> arc)
        arc_a: list[list[float]] = []
        arc_b: list[float] = []
        if block.r_ct_ohm:
            chain_ct = LagChain(list(EXCITATION_TAUS_S) + [tau_v, block.tau_ct_s])
            arc_a, arc_b = chain_ct.step_matrix(dt)
        flicker = _flicker(plan.samples, dt, flicker_v_rms, self.noise) if flicker_v_rms else None
        # the excitation set point of each sample interval
        slot = plan.slot_samples
        on = [i_on if plan.excitation_on(k) else 0.0 for k in range(-(-plan.samples // slot))]
        u_n = [on[n // slot] for n in range(plan.samples)]
        # the ripple at each sample (state-free), its components summed in order
        t_np = t0 + np.arange(plan.samples) * dt
        ripple_np = np.zeros(plan.samples)
        for w, amp, ph in rip:
            ripple_np += amp * np.sin(w * t_np + ph)
        v_pins, i_pins = _ri_chain_loop(
            u_n,
            t_np.tolist(),
            ripple_np,
            flicker,
            (av, bv),
            (ai, bi),
            (ak, bk),
            (arc_a, arc_b),
            block,
            a_rc,
            a_hp,
            (coupling_h, tau_v),
            drift_v_per_s,
            (self.ri_bias_v, gain_v),
            (self.shunt_offset_v, shunt_v_per_a, vscale),
        )
        v_pins = self._through_amplifier(v_pins, switching, gain_v, dt, t0, vscale)
        # the converter, for all samples at once (v and i interleaved as acquired)
        both = [0.0] * (2 * len(v_pins))
        both[0::2] = v_pins
        both[1::2] = i_pins
        codes = self.adc.sample_array(both, self.noise)
        return codes[0::2], codes[1::2]

    def _through_amplifier(
        self,
        v_lin: list[float],
        switching: SwitchingRipple | None,
        gain_v: float,
        dt: float,
        t0: float,
        vscale: float,
    ) -> list[float]:
        """The Ri amplifier's output swing, then the anti-alias filter, at each sample.

        v_lin is the amplifier's linear output for everything below the filter's
        corner.  Switching ripple adds gain * A sin(w t) at the amplifier's output,
        which clips at its swing *before* the filter: over one switching period (far
        shorter than the signal's changes) the filter passes the clipped waveform's
        mean, plus its first harmonic attenuated by the filter (|H| ~ 1/5 at 17 kHz).
        Without switching ripple this is the clip of v_lin itself."""
        lo, hi = AMP_SWING_LOW_V, AMP_SWING_HIGH_V
        x = np.asarray(v_lin, dtype=float)
        if switching is None or not switching.amplitude_v:
            return (np.clip(x, lo, hi) * vscale).tolist()
        a = gain_v * switching.amplitude_v
        theta = (np.arange(64) + 0.5) * (2 * math.pi / 64)
        sin_t = np.sin(theta)
        clipped = np.clip(x[:, None] + a * sin_t[None, :], lo, hi)
        mean = clipped.mean(axis=1)
        b1 = 2.0 * (clipped * sin_t[None, :]).mean(axis=1)  # first harmonic (in phase)
        h = 1.0 / complex(1.0, switching.f_hz / self.aa_v_hz)
        t = t0 + dt * np.arange(len(x))
        phase = 2 * math.pi * switching.f_hz * t + switching.phase + math.atan2(h.imag, h.real)
        out = mean + abs(h) * b1 * np.sin(phase)
        return (np.clip(out, lo, hi) * vscale).tolist()

    def effective_bits(self, samples: int = 8192, seed: int = 1) -> float:
        """ENOB of this board's converter for a near-full-scale sine (SINAD based)."""
        return _enob_fit(self, samples, seed)


def _enob_fit(board: SimBoard, samples: int, seed: int) -> float:
    """SINAD-based ENOB: least-squares sine fit (known frequency), residual rms."""
    rng = random.Random(seed)
    amp = 2040.0
    cycles = 97
    xs = []
    ys = []
    for n in range(samples):
        ph = 2 * math.pi * cycles * n / samples
        u = 2048.0 + amp * math.sin(ph)
        xs.append(ph)
        ys.append(board.adc.code_of(u + rng.gauss(0.0, board.adc.noise_lsb)))
    # fit y = a sin + b cos + c (orthogonal over whole cycles)
    s = sum(y * math.sin(x) for x, y in zip(xs, ys, strict=True)) * 2 / samples
    c = sum(y * math.cos(x) for x, y in zip(xs, ys, strict=True)) * 2 / samples
    m = sum(ys) / samples
    res = 0.0
    for x, y in zip(xs, ys, strict=True):
        res += (y - (s * math.sin(x) + c * math.cos(x) + m)) ** 2
    rms_noise = math.sqrt(res / samples)
    signal_rms = math.hypot(s, c) / math.sqrt(2)
    sinad_db = 20 * math.log10(signal_rms / rms_noise)
    return (sinad_db - 1.76) / 6.02


def _normal_quantiles(n: int) -> tuple[float, ...]:
    # midpoints of n equal-probability bins of N(0, 1) (inverse CDF by bisection)
    out = []
    for k in range(n):
        p = (k + 0.5) / n
        lo, hi = -8.0, 8.0
        for _ in range(60):
            mid = (lo + hi) / 2
            if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
                lo = mid
            else:
                hi = mid
        out.append((lo + hi) / 2)
    return tuple(out)


_QUANTILES = _normal_quantiles(32)
_QUANTILES_NP = np.array(_QUANTILES)


@functools.cache
def _corrected_x2_lut(adc_kind: int) -> np.ndarray:
    """fe.corrected_x2 for every code of a converter kind, as a lookup table."""
    return np.array([fe.corrected_x2(c, adc_kind) for c in range(fe.ADC_CODES)], dtype=float)
