# Internal resistance (4-wire) from a capture of two ADC channels (docs/ri.md).
#
# The board switches an excitation current through the fused current wires and
# samples, at plan.sample_rate_hz each:
#   v  the Ri channel: the Kelvin sense pair AC-coupled into a difference amplifier
#      (gain plan.v_gain), biased at mid-scale, positive for a voltage drop;
#   i  the shunt channel: excitation current on a shunt (plan.shunt_uohm) through an
#      amplifier (plan.shunt_gain).
# Both channels go through the same ADC, so its reference cancels:
#   Ri = dV / dI = (dv_counts / di_counts) * shunt * shunt_gain / v_gain.
#
# Two methods, picked by the variant (shared/variants.py) or the caller:
#
# STEP  DC load steps.  The capture is 32 slots of 100 ms (a whole number of periods
#       of 50/60 Hz mains and 100/120 Hz ripple and all their harmonics); the load is
#       on or off per slot following the Thue-Morse sequence 0110 1001 1001 0110 ...
#       The slot means are combined with +-1 weights (on - off): the Thue-Morse
#       weights are orthogonal to every polynomial of degree < 5 over the 32 slots,
#       so drift (charger regulation, the block's slow polarisation, the AC coupling's
#       recovery) up to quartic cancels.  Walsh functions with four 1-bits in their
#       index are orthogonal to the signal and to cubic drift: they carry noise only
#       and give the uncertainty.
# AC    Square-wave excitation at f_s/32 (275 Hz at 8.8 kHz, in the 250-300 Hz gap of
#       the 50/60 Hz harmonic grid), synchronous (lock-in) detection of both channels
#       against cos/sin references with a sin^4 (Hann^2) window over 1.2 s (330 whole
#       excitation periods; 1.2 s is a whole number of ripple periods too).  The window
#       nulls every exact ripple harmonic and leaves < 1e-6 of one 25 Hz away, even
#       when the mains frequency is off nominal.  Ri = Re(V / I) (quadrature pick-up,
#       i.e. inductive coupling between the current and sense loops, drops out), with
#       the known sampling skew between the channels corrected.  Four neighbouring
#       frequency bins (+-5 Hz, +-7.5 Hz) carry noise only and give the uncertainty.
#
# Per sample, both evaluators do small-integer work only (no allocation: tested with
# the heap locked); sums that could outgrow 2**30 are folded once per slot or period
# into two-limb accumulators.  The final division uses big integers (once).
#
# Every result carries a status; only RI_OK results carry a number.
from array import array

from shared import frontend as fe
from shared.compat import const
from shared.intmath import cos_q15, isqrt, sin_q15
from shared.variants import by_id

# --- methods and statuses ------------------------------------------------------------
RI_METHOD_STEP = const(0)
RI_METHOD_AC = const(1)
METHOD_NAMES = ("step", "ac")

RI_OK = const(0)
RI_LOW_SIGNAL = const(1)  # response below 4x its noise: not a number
RI_CLIPPED = const(2)  # an amplifier saturated: retry in the low gain range
RI_NOISY = const(3)  # a response, but its uncertainty exceeds NOISY_LIMIT_PPM
RI_NO_EXCITATION = const(4)  # excitation current < 25 % of plan: fuse, wire, sink?
RI_INCOMPLETE = const(5)  # fewer samples than the plan (acquisition aborted)
RI_SATURATED = const(6)  # out-of-band ripple may saturate the amplifier: retry, low range
STATUS_NAMES = (
    "ok",
    "low-signal",
    "clipped",
    "noisy",
    "no-excitation",
    "incomplete",
    "saturated",
)

NOISY_LIMIT_PPM = const(20000)  # 2 % relative standard uncertainty
LOW_SIGNAL_SNR = const(4)
NO_EXCITATION_PERCENT = const(25)
# Out-of-band ripple (a switch-mode charger's 16-20 kHz) reaches the Ri amplifier
# unfiltered and is seen by the converter only behind the anti-alias filter, about
# 4.8x smaller at 16 kHz (first order at 3.4 kHz), aliased to some frequency that is
# not a harmonic of the mains.  Each sample is compared with the one 100 ms earlier
# (whole periods of 50/60 Hz and all their harmonics, and of the excitation pattern's
# slots): mains ripple cancels, aliased ripple does not.  Its amplitude times
# SATURATION_AA_X10 / 10, plus the level it rides on, must stay inside the
# amplifier's linear band (the clip codes) or the capture is refused (docs/ri.md,
# "Saturation").
SATURATION_AA_X10 = const(48)
SATURATION_LAG_DIVIDER = const(10)  # the lag: sample_rate_hz / 10 (100 ms)
# A tone within ~1 Hz of a whole number of cycles per 100 ms repeats like the mains and
# hides from that lag; each sample is also compared with the one 50 ms earlier: whole
# periods of every 60 Hz harmonic and of the even 50 Hz ones (the ripple of a rectifier),
# but half a period of such a tone when its count per 100 ms is odd.
SATURATION_HALF_LAG_DIVIDER = const(20)  # sample_rate_hz / 20 (50 ms)
# samples after each excitation edge that are not used for it (the edge itself)
_EDGE_SKIP = const(2)

# --- plan constants --------------------------------------------------------------------
STEP_SAMPLE_RATE_HZ = const(2500)
STEP_SLOT_SAMPLES = const(250)  # 100 ms (at most 500: see StepEvaluator.feed)
STEP_SLOTS = const(32)  # 3.2 s
AC_SAMPLE_RATE_HZ = const(8800)
AC_PERIOD_SAMPLES = const(32)  # excitation at 275 Hz
AC_PERIODS = const(330)  # 1.2 s
# The lock-in detects the square wave's 3rd harmonic (825 Hz; 25 Hz from the 50 Hz grid,
# 15 Hz from the 60 Hz grid): there a charge-transfer arc of tau >= 1 ms adds at most
# 1/28 of its resistance, as near to R0 as a 1 kHz tester (docs/ri.md, "Definition");
# at the fundamental (275 Hz) it would add up to a quarter.
AC_HARMONIC = const(3)
# The shell samples v then i, round robin at twice the channel rate: i lags v by
# half a channel sample period.
DEFAULT_SKEW_NS_STEP = const(200000)
DEFAULT_SKEW_NS_AC = const(56818)

_LIMB_BITS = const(28)
_LIMB_MASK = const((1 << 28) - 1)
# Noise bins of the AC method: offsets from the excitation bin, in 1/T units.
_AC_NOISE_BINS = (-9, -6, 6, 9)
# The charge-transfer arc (docs/ri.md, "Definition"): candidate time constants of 2**(j/4)
# samples, j = 0..35 (0.4 ms .. 170 ms at 2.5 kHz), as exp(-1/tau) in Q30.
_ARC_RHO_Q30 = (
    395007542, 463130302, 529428476, 592470630, 651257337, 705182512, 753969162,
    797596699, 836230973, 870163178, 899760092, 925425813, 947573834, 966607779,
    982908970, 996829173, 1008687096, 1018767490, 1027321989, 1034571010, 1040706261,
    1045893524, 1050275481, 1053974460, 1057095000, 1059726201, 1061943836, 1063812229,
    1065385899, 1066710993, 1067826536, 1068765495, 1069555701, 1070220635, 1070780095,
    1071250770,
)  # fmt: skip
_ARC_FIRST_SAMPLE = const(3)  # the profile fit starts here (the sink's edge is over)
_ARC_FIRST_TAU = const(4)  # candidates from 2 samples (0.8 ms at 2.5 kHz)
_ARC_SIGNIFICANCE = const(9)  # an arc's fit must gain 9x the residual variance (3 sigma)
# Walsh indices (5 bits) with four 1-bits: noise channels of the 32-slot STEP method.
_STEP_NOISE_WALSH = (15, 23, 27, 29, 30)


# Plausible limits of a capture's plan (RiPlan checks them; docs/ri.md, "Capture files").
MAX_SAMPLE_RATE_HZ = const(1000000)
MAX_AMP_GAIN = const(10000)
MAX_SHUNT_UOHM = const(1000000)  # 1 ohm
MAX_EXCITATION_MA = const(20000)
# A board's Ri calibration corrects tolerances of about 1 %; beyond +-5 % the reference
# resistor or the board is wrong (the same limit the module accepts for a calibration,
# shared/protocol.py CAL_GAIN_PPM_LIMIT).
MAX_RI_GAIN_PPM = const(50000)


def _check_range(name: str, value, low: int, high: int) -> None:
    if not isinstance(value, int) or value < low or value > high:
        raise ValueError("%s %r is outside %d..%d" % (name, value, low, high))


def thue_morse(k: int) -> int:
    """Parity of the number of 1-bits of k: the Thue-Morse sequence 0110 1001 ..."""
    p = 0
    while k:
        p ^= k & 1
        k >>= 1
    return p


class RiPlan:
    """What to acquire for one Ri measurement, and the constants to evaluate it.

    The module core (or a capture file's header) provides everything; plan_for()
    builds one from the variant tables.  Acquisition, for a board shell:
      * sample v and i alternately (v first), each at sample_rate_hz, for
        samples = slots * slot_samples sample pairs, streaming them to an evaluator
        in chunks (no need to hold the capture);
      * the excitation is on during slot k (samples k*slot_samples ...
        (k+1)*slot_samples - 1) exactly when excitation_on(k); switch it at the
        slot boundary, synchronous with the sample clock;
      * the excitation is off before and after the capture.
    """

    def __init__(
        self,
        method: int,
        sample_rate_hz: int,
        slot_samples: int,
        slots: int,
        v_gain: int,
        shunt_uohm: int,
        shunt_gain: int,
        excitation_ma: int,
        adc_kind: int = fe.ADC_RP2040,
        skew_ns: int = 0,
        ri_gain_ppm: int = 0,
        gain_range: int = 0,
    ):
        if method not in (RI_METHOD_STEP, RI_METHOD_AC):
            raise ValueError("unknown Ri method %r: 0 (step) or 1 (ac)" % method)
        if sample_rate_hz <= 0 or slot_samples <= 0 or slots <= 0:
            raise ValueError("sample rate, slot_samples and slots must be positive")
        if method == RI_METHOD_STEP and slots != STEP_SLOTS:
            raise ValueError("the step method needs %d slots, got %d" % (STEP_SLOTS, slots))
        if method == RI_METHOD_STEP and slot_samples > 500:
            raise ValueError("the step method takes at most 500 samples per slot")
        if method == RI_METHOD_AC and (slots < 16 or slots & 1):
            raise ValueError("the ac method needs an even number of slots >= 16")
        if v_gain <= 0 or shunt_uohm <= 0 or shunt_gain <= 0:
            raise ValueError("v_gain, shunt_uohm and shunt_gain must be positive")
        # Every other field within what a board can have (a capture file or a damaged
        # store must not yield a number from an impossible plan).
        _check_range("sample_rate_hz", sample_rate_hz, 1, MAX_SAMPLE_RATE_HZ)
        _check_range("v_gain", v_gain, 1, MAX_AMP_GAIN)
        _check_range("shunt_gain", shunt_gain, 1, MAX_AMP_GAIN)
        _check_range("shunt_uohm", shunt_uohm, 1, MAX_SHUNT_UOHM)
        _check_range("excitation_ma", excitation_ma, 1, MAX_EXCITATION_MA)
        _check_range("ri_gain_ppm", ri_gain_ppm, -MAX_RI_GAIN_PPM, MAX_RI_GAIN_PPM)
        _check_range("gain_range", gain_range, 0, 1)
        _check_range("skew_ns", skew_ns, 0, 1000000000 // sample_rate_hz)
        self.method = method
        self.sample_rate_hz = sample_rate_hz
        self.slot_samples = slot_samples
        self.slots = slots
        self.samples = slot_samples * slots
        self.v_gain = v_gain
        self.shunt_uohm = shunt_uohm
        self.shunt_gain = shunt_gain
        self.excitation_ma = excitation_ma
        self.adc_kind = adc_kind
        self.skew_ns = skew_ns
        self.ri_gain_ppm = ri_gain_ppm
        self.gain_range = gain_range

    def excitation_on(self, slot: int) -> bool:
        if self.method == RI_METHOD_STEP:
            return thue_morse(slot) == 1
        return not slot & 1  # square wave, on in the first half period

    def duration_ms(self) -> int:
        return (self.samples * 1000 + self.sample_rate_hz - 1) // self.sample_rate_hz

    def excitation_hz_x1000(self) -> int:
        """AC excitation frequency in mHz (0 for the step method)."""
        if self.method != RI_METHOD_AC:
            return 0
        return self.sample_rate_hz * 1000 // (2 * self.slot_samples)

    def expected_current_x2(self) -> int:
        """Excitation step on the shunt channel, in half LSB."""
        uv = self.excitation_ma * self.shunt_uohm * self.shunt_gain // 1000  # mA*uOhm = nV
        return (uv * 2 * fe.ADC_CODES) // fe.ADC_VREF_UV


def plan_for(
    variant_id: int,
    method=None,
    gain_range: int = 0,
    adc_kind: int = fe.ADC_RP2040,
    ri_gain_ppm: int = 0,
) -> RiPlan:
    """The plan a module of this variant uses (method None: the variant's default)."""
    variant = by_id(variant_id)
    front = fe.frontend(variant_id)
    if method is None:
        method = variant.ri_method
    if gain_range not in (0, 1):
        raise ValueError("gain range must be 0 (high) or 1 (low), got %r" % gain_range)
    if method == RI_METHOD_STEP:
        rate, slot, slots, skew = (
            STEP_SAMPLE_RATE_HZ,
            STEP_SLOT_SAMPLES,
            STEP_SLOTS,
            DEFAULT_SKEW_NS_STEP,
        )
    else:
        rate, slot, slots, skew = (
            AC_SAMPLE_RATE_HZ,
            AC_PERIOD_SAMPLES // 2,
            2 * AC_PERIODS,
            DEFAULT_SKEW_NS_AC,
        )
    return RiPlan(
        method,
        rate,
        slot,
        slots,
        front.ri_gain(gain_range),
        front.shunt_uohm,
        front.shunt_gain,
        front.excitation_ma,
        adc_kind,
        skew,
        ri_gain_ppm,
        gain_range,
    )


class RiResult:
    """status (RI_*), ri_nohm (None unless RI_OK), quality 0..100, uncert_ppm."""

    def __init__(self, status, ri_nohm=None, quality=0, uncert_ppm=None, detail=""):
        self.status = status
        self.ri_nohm = ri_nohm if status == RI_OK else None
        self.quality = quality
        self.uncert_ppm = uncert_ppm
        self.detail = detail

    def status_name(self) -> str:
        return STATUS_NAMES[self.status]

    def __repr__(self):
        return "RiResult(%s, ri_nohm=%r, quality=%d, uncert_ppm=%r)" % (
            self.status_name(),
            self.ri_nohm,
            self.quality,
            self.uncert_ppm,
        )


def quality_from_uncert(uncert_ppm: int) -> int:
    """0..100: 100 for a noise-free result, 0 at the NOISY limit (2 %)."""
    q = 100 - (uncert_ppm * 100) // NOISY_LIMIT_PPM
    return 0 if q < 0 else q


def _extremes(pairs: int):
    """An array of pairs (lowest, highest), empty: (2**20, -2**20); from bytes, no
    temporary list."""
    ext = array("i", bytes(8 * pairs))
    for k in range(pairs):
        ext[2 * k] = 1 << 20
        ext[2 * k + 1] = -(1 << 20)
    return ext


def _acc_add(acc, index: int, value: int) -> None:
    """Add |value| < 2**30 to the two-limb accumulator acc[index], acc[index + 1]."""
    lo = acc[index] + value  # acc[index] in [0, 2**28): no overflow
    acc[index + 1] += lo >> _LIMB_BITS
    acc[index] = lo & _LIMB_MASK


def _acc_value(acc, index: int) -> int:
    return (acc[index + 1] << _LIMB_BITS) + acc[index]


def _scale_nohm(plan: RiPlan, dv, di) -> int:
    """Ri in nOhm from a voltage-channel and a current-channel response (same units)."""
    num = dv * plan.shunt_uohm * 1000 * plan.shunt_gain * (1000000 + plan.ri_gain_ppm)
    den = di * plan.v_gain * 1000000
    return (num + den // 2) // den


def _finish(plan, dv, di, var_v, var_i, expected_di) -> RiResult:
    """Common decision: status, value, quality.  dv/di responses, var_* noise
    variances of those responses (same units squared), expected_di the planned
    current response."""
    if di * 100 < expected_di * NO_EXCITATION_PERCENT:
        return RiResult(
            RI_NO_EXCITATION,
            detail="excitation current %d%% of plan"
            % (di * 100 // expected_di if expected_di else 0),
        )
    noise_v = isqrt(var_v)
    if dv <= 0 or dv < LOW_SIGNAL_SNR * noise_v:
        return RiResult(RI_LOW_SIGNAL, detail="response below %dx noise" % LOW_SIGNAL_SNR)
    # relative variance of the ratio, in ppm^2
    rel_var = (var_v * 1000000000000) // (dv * dv) + (var_i * 1000000000000) // (di * di)
    uncert_ppm = isqrt(rel_var)
    ri_nohm = _scale_nohm(plan, dv, di)
    if uncert_ppm > NOISY_LIMIT_PPM:
        r = RiResult(RI_NOISY, None, 0, uncert_ppm, "uncertainty above the limit")
        return r
    return RiResult(RI_OK, ri_nohm, quality_from_uncert(uncert_ppm), uncert_ppm)


class _EvaluatorBase:
    def __init__(self, plan: RiPlan):
        self.plan = plan
        self.fed = 0  # sample pairs consumed
        self.clipped = False
        self._pos = 0  # sample index inside the current slot/period
        self._dnl = plan.adc_kind == fe.ADC_RP2040
        # lowest and highest v (half LSB, centred) per excitation state (off, on), then
        # of v minus v 100 ms earlier per (state now, state then); edges left out
        # then (12..19) of v minus v 50 ms earlier per (state now, state then): the step
        # method compares within a slot (12 off, 18 on); the AC method per position in
        # the excitation period (_half_ext)
        self._ext = _extremes(10)
        lag = plan.sample_rate_hz // SATURATION_LAG_DIVIDER
        if lag * SATURATION_LAG_DIVIDER != plan.sample_rate_hz or lag % plan.slot_samples:
            lag = 0  # no whole 100 ms of slots: not checked
        elif plan.method == RI_METHOD_AC and (lag // plan.slot_samples) & 1:
            # whole excitation periods too (200 ms), so that an in-band response to
            # the excitation (the inductive pick-up's quadrature) cancels as well
            lag *= 2
        self._lag = lag
        half_lag = plan.sample_rate_hz // SATURATION_HALF_LAG_DIVIDER
        if not lag or half_lag * SATURATION_HALF_LAG_DIVIDER != plan.sample_rate_hz:
            half_lag = 0
        self._half_lag = half_lag
        self._half_ext = array("i")  # the AC method's, per position (empty: none)
        # the step method: the largest spread of v within one slot, per state (slow
        # drift over a capture is no ripple; empty: the spread over the whole capture)
        self._slot_spread = array("i")
        self._hist = array("h", bytes(2 * lag))  # from bytes: no temporary list
        self._hist_pos = 0
        self._lagged = False

    def done(self) -> bool:
        return self.fed >= self.plan.samples

    def _saturation(self):
        """None, or a RiResult(RI_SATURATED) when out-of-band ripple may have driven
        the amplifier out of its linear band (see SATURATION_AA_X10)."""
        if not self._lag:
            return None
        ext = self._ext
        level = 0
        for k in (0, 2):
            if ext[k + 1] >= ext[k]:
                x = (ext[k + 1] + ext[k]) >> 1
                if x < 0:
                    x = -x
                if x > level:
                    level = x
        ripple = 0
        for k in (4, 6, 8, 10, 12, 14, 16, 18):
            if ext[k + 1] >= ext[k]:
                # a tone of amplitude A gives a difference 2A |sin(pi f lag)|, taken
                # as 2A: a tone near a whole number of cycles per 100 ms is missed
                # there (it repeats like the mains) and seen over 50 ms unless that
                # number is even (docs/ri.md, "Saturation")
                amp = (ext[k + 1] - ext[k]) >> 2
                if amp > ripple:
                    ripple = amp
        half_ext = self._half_ext
        if len(half_ext):
            for k in range(0, len(half_ext), 2):
                if half_ext[k + 1] >= half_ext[k]:
                    amp = (half_ext[k + 1] - half_ext[k]) >> 2
                    if amp > ripple:
                        ripple = amp
        # when that is a third or more of all that varies within a state (mains
        # ripple leaves less: 0.5 % off, an eighth at 100 Hz, with its harmonics a
        # quarter over 200 ms), all of it is taken as out-of-band ripple: the lag's
        # |sin| no longer hides it
        within = 0
        for k in (0, 2):
            if ext[k + 1] >= ext[k] and (ext[k + 1] - ext[k]) >> 1 > within:
                within = (ext[k + 1] - ext[k]) >> 1
        if 3 * ripple >= within and within > ripple:
            # (the step method: what varies within one slot, at most; a capture's slow
            # drift, the AC coupling's droop after the steps, is no ripple)
            spread = self._slot_spread
            if len(spread):
                within = (spread[0] if spread[0] > spread[1] else spread[1]) >> 1
            if within > ripple:
                ripple = within
        worst = level + ripple * SATURATION_AA_X10 // 10
        band = fe.RI_CLIP_HIGH_CODE - fe.ADC_CODES // 2  # codes from mid-scale
        if worst <= 2 * band:
            return None
        return RiResult(
            RI_SATURATED,
            detail="out-of-band ripple may saturate the amplifier (%d codes at the "
            "converter, ~%d before the filter): measure in the low range"
            % (ripple >> 1, (ripple * SATURATION_AA_X10 // 10) >> 1),
        )

    def _check_clip(self, vbuf, ibuf, count):
        low = fe.RI_CLIP_LOW_CODE
        high = fe.RI_CLIP_HIGH_CODE
        for j in range(count):
            v = vbuf[j]
            i = ibuf[j]
            if v < low or v > high or i < low or i > high:
                self.clipped = True
                return


class StepEvaluator(_EvaluatorBase):
    """Streaming evaluator of a STEP capture: feed(v, i, count) chunks, then result().

    Each slot's samples are weighted by a Hann window (Q10) before summing: the
    window nulls every ripple harmonic like a plain mean over whole periods, but
    leaves ~100x less of a tone that is off its nominal frequency (mains frequency
    error) and gives the switching transients at the slot edges ~zero weight.
    """

    def __init__(self, plan: RiPlan):
        if plan.method != RI_METHOD_STEP:
            raise ValueError("StepEvaluator needs a step plan")
        super().__init__(plan)
        n = plan.slot_samples
        self._window = array("h", bytes(2 * n))
        total = 0
        for k in range(n):
            s = sin_q15(((2 * k + 1) << 15) // (2 * n))  # sin(pi (k + 1/2) / n)
            w = (s * s + (1 << 19)) >> 20  # sin^2 in Q10
            self._window[k] = w
            total += w
        self.window_sum = total  # <= 1024 * n
        # per sample position in the slot: the Thue-Morse-weighted sum of v over the
        # slots (the ripple has the same phase at a position in every slot)
        self._profile = array("i", bytes(4 * n))
        self._profile_i = array("i", bytes(4 * n))
        self._slot_v = array("i", bytes(4 * plan.slots))
        self._slot_i = array("i", bytes(4 * plan.slots))
        self._slot = 0
        self._sum_v = 0
        self._sum_i = 0
        self._slot_spread = array("i", bytes(8))
        self._slot_low = 1 << 20
        self._slot_high = -(1 << 20)

    def feed(self, vbuf, ibuf, count: int) -> None:
        """Consume count sample pairs (raw codes).  Allocation-free."""
        plan = self.plan
        remaining = plan.samples - self.fed
        if count > remaining:
            count = remaining
        if count <= 0:
            return
        if not self.clipped:
            self._check_clip(vbuf, ibuf, count)
        slot_samples = plan.slot_samples
        window = self._window
        pos = self._pos
        sv = self._sum_v
        si = self._sum_i
        slot = self._slot
        dnl = self._dnl
        region = fe._RP2040_REGION_X2
        half = fe._RP2040_SPIKE_HALF_X2
        ext = self._ext
        state = 2 if plan.excitation_on(slot) else 0
        combo = 4 + state + (2 if slot and thue_morse(slot - 1) else 0) * 2
        lag = self._lag
        hist = self._hist
        hpos = self._hist_pos
        lagged = self._lagged
        prof = self._profile
        prof_i = self._profile_i
        # the sample 50 ms earlier, in the same slot and past its edge (step slots are
        # 100 ms: then it is in the same excitation state)
        half_lag = self._half_lag
        half_from = half_lag + _EDGE_SKIP if half_lag and lag == slot_samples else slot_samples
        spread = self._slot_spread
        slot_low = self._slot_low
        slot_high = self._slot_high
        for j in range(count):
            r = vbuf[j]
            q = ibuf[j]
            if dnl:
                v = (r << 1) + region[r >> 9]
                c = (q << 1) + region[q >> 9]
                # the exact spike codes (rare): half their width less
                if (r & 511) == 0 and (r & 512):
                    v -= half[r >> 10]
                if (q & 511) == 0 and (q & 512):
                    c -= half[q >> 10]
            else:
                v = r << 1
                c = q << 1
            x = v - 4096
            if state:
                prof[pos] += x
                prof_i[pos] += c - 4096
            else:
                prof[pos] -= x
                prof_i[pos] -= c - 4096
            if pos >= _EDGE_SKIP:
                if x < ext[state]:
                    ext[state] = x
                if x > ext[state + 1]:
                    ext[state + 1] = x
                if x < slot_low:
                    slot_low = x
                if x > slot_high:
                    slot_high = x
                if lagged:
                    d = x - hist[hpos]
                    if d < ext[combo]:
                        ext[combo] = d
                    if d > ext[combo + 1]:
                        ext[combo + 1] = d
                if pos >= half_from:
                    k = hpos - half_lag
                    d = x - hist[k + lag if k < 0 else k]
                    k = 12 + 3 * state
                    if d < ext[k]:
                        ext[k] = d
                    if d > ext[k + 1]:
                        ext[k + 1] = d
            if lag:
                hist[hpos] = x
                hpos += 1
                if hpos == lag:
                    hpos = 0
                    lagged = True
            w = window[pos]
            # centred half-LSB values (|.| <= 4172) times Q10 weights: a slot's sum
            # stays below 4172 * sum(w) = 4172 * 512 * slot_samples (< 2**30 for 500)
            sv += (v - 4096) * w
            si += (c - 4096) * w
            pos += 1
            if pos == slot_samples:
                self._slot_v[slot] = sv
                self._slot_i[slot] = si
                slot += 1
                pos = 0
                sv = 0
                si = 0
                if slot_high - slot_low > spread[state >> 1]:
                    spread[state >> 1] = slot_high - slot_low
                slot_low = 1 << 20
                slot_high = -(1 << 20)
                then = state
                state = 2 if thue_morse(slot) else 0
                combo = 4 + state + then * 2
        self._pos = pos
        self._sum_v = sv
        self._sum_i = si
        self._slot = slot
        self._slot_low = slot_low
        self._slot_high = slot_high
        self._hist_pos = hpos
        self._lagged = lagged
        self.fed += count

    def result(self) -> RiResult:
        plan = self.plan
        if self.fed < plan.samples:
            return RiResult(RI_INCOMPLETE, detail="%d of %d samples" % (self.fed, plan.samples))
        if self.clipped:
            return RiResult(RI_CLIPPED, detail="amplifier saturated")
        saturated = self._saturation()
        if saturated is not None:
            return saturated
        sv = self._slot_v
        si = self._slot_i
        dv = _pattern_sum(sv, plan.slots)
        di = _pattern_sum(si, plan.slots)
        di, var_i = _step_noise(plan.slots, si, di)
        # the charge-transfer arc's part of every slot sum, taken out of the signal and
        # of the noise channels (i lags v by skew_q10 / 1024 of a sample period)
        skew_q10 = plan.skew_ns * plan.sample_rate_hz // 976563
        arc = _arc_slot_sums(self._profile, self._profile_i, self._window, skew_q10, dv, di)
        sums = sv  # an array, or (below) the list without the arc
        if arc is not None:
            sums = [sv[k] - arc[k] for k in range(plan.slots)]  # type: ignore[assignment]
            dv = _pattern_sum(sums, plan.slots)
        dv, var_v = _step_noise(plan.slots, sums, dv)
        # planned response: (slots/2) * sum of the weights * step (half LSB)
        expected = (plan.slots // 2) * self.window_sum * plan.expected_current_x2()
        return _finish(plan, dv, di, var_v, var_i, expected)


def _pattern_sum(sums, slots: int) -> int:
    """The step response of slot sums: sum over the slots of (+1 on, -1 off) x sums[k]
    (the Thue-Morse pattern's weights).  The one place that combines slot sums."""
    total = 0
    for k in range(slots):
        if thue_morse(k):
            total += sums[k]
        else:
            total -= sums[k]
    return total


def _current_at_v(profile_i, p: int, skew_q10: int) -> int:
    """The current profile at v's sampling instants (i lags v by skew_q10 / 1024 of a
    sample period): interpolated back, x1024."""
    q = profile_i[p]
    prev = profile_i[p - 1] if p else q
    return q * 1024 - (q - prev) * skew_q10


def _arc_fit(rho: int, inc, ys, p0: int, sums):
    """(explained, E numerator, determinant) of y ~ a + b p + E h(p) for one tau."""
    m, s_p, s_pp, y, y_p = sums
    n = len(ys)
    steps = len(inc)
    h = 0
    s_r = 0
    s_pr = 0
    s_rr = 0
    y_r = 0
    for p in range(n):
        h = (h * rho) >> 30
        if p < steps:
            h += inc[p]
        if p >= p0:
            s_r += h
            s_pr += p * h
            s_rr += h * h
            y_r += h * ys[p]
    # Cramer on [[m, s_p, s_r], [s_p, s_pp, s_pr], [s_r, s_pr, s_rr]] (a, b, E)
    c00 = s_pp * s_rr - s_pr * s_pr
    c01 = s_pr * s_r - s_p * s_rr
    c02 = s_p * s_pr - s_pp * s_r
    det = m * c00 + s_p * c01 + s_r * c02
    if det <= 0:
        return None
    c11 = m * s_rr - s_r * s_r
    c12 = s_p * s_r - m * s_pr
    c22 = m * s_pp - s_p * s_p
    na = c00 * y + c01 * y_p + c02 * y_r
    nb = c01 * y + c11 * y_p + c12 * y_r
    ne = c02 * y + c12 * y_p + c22 * y_r
    return (na * y + nb * y_p + ne * y_r) // det, ne, det  # the fit's share of sum(y^2)


def _arc_slot_sums(profile, profile_i, window, skew_q10: int, dv: int, di: int):
    """The charge-transfer arc's part of every slot sum (a list, slot-sum units; None
    when there is none), so that the step method reports R0 like the AC method
    (docs/ri.md, "Definition").

    Within a slot the arc relaxes as exp(-t / tau) after each edge, following the
    current (which rises with the sink's lag); the Thue-Morse-weighted profile over
    the slots keeps that (the ripple, in phase at a position in every slot, cancels
    like drift).  What is fitted is y_p = P_v(p) di - P_i(p) dv (the current's own
    profile scaled by the slot result taken out), from _ARC_FIRST_SAMPLE on, with
    a + b p + E h(p) for each candidate tau, h the current's measured rise convolved
    with exp(-p / tau) (least squares; the best fit wins).  E = R_ct C, C the pattern's arc
    state at the slot starts; each slot's Hann-weighted sum contains R_ct times the
    arc's response in that slot.  Once per capture, big integers."""
    if di <= 0:
        return None
    slots = 32
    n = len(profile)
    p0 = _ARC_FIRST_SAMPLE
    if n < 4 * p0:
        return None
    window_sum = 0
    for p in range(n):
        window_sum += window[p]
    one = 1 << 30
    # The current's unit rise at the i samples' instants: increments (Q30) summing to
    # one.  Before the edge the profile holds sum(s_k u_(k-1)) of the current, after
    # it sum(s_k u_k) = slots / 2 of it (u_-1 = 0: at rest before the capture).
    before = 0
    for k in range(1, slots):
        if thue_morse(k - 1):
            before += 1 if thue_morse(k) else -1
    q_ss = 0
    for p in range(n // 2, n):
        q_ss += profile_i[p]
    q_ss //= n - n // 2
    q_pre = q_ss * before // (slots // 2)
    rise = q_ss - q_pre
    if rise <= 0:
        return None
    steps = p0 + 8  # the sink's edge is over by then
    inc = [0] * steps
    prev = q_pre
    for p in range(steps):
        q = profile_i[p]
        inc[p] = ((q - prev) * one) // rise
        prev = q
    # the data's sums (independent of tau)
    m = n - p0
    s_p = 0
    s_pp = 0
    y = 0
    y_p = 0
    # y is held shifted right by y_shift so that every |y_p| < 2**29: 250 small ints, not
    # 250 big ones (the M0's module heap); the fit is linear in y, E is shifted back
    peak = 0
    for p in range(p0, n):
        v = profile[p] * di * 1024 - _current_at_v(profile_i, p, skew_q10) * dv
        if v < 0:
            v = -v
        if v > peak:
            peak = v
    y_shift = 0
    while peak >> y_shift >= 1 << 29:
        y_shift += 1
    ys = [0] * n
    for p in range(p0, n):
        v = (profile[p] * di * 1024 - _current_at_v(profile_i, p, skew_q10) * dv) >> y_shift
        ys[p] = v
        s_p += p
        s_pp += p * p
        y += v
        y_p += p * v
    sums = (m, s_p, s_pp, y, y_p)
    # the straight line alone (a + b p) and the data's sum of squares: an arc must
    # explain clearly more than noise and ripple leakage would (ARC_SIGNIFICANCE
    # times the residual variance per point)
    det2 = m * s_pp - s_p * s_p
    if det2 <= 0:
        return None
    line = (s_pp * y * y - 2 * s_p * y * y_p + m * y_p * y_p) // det2
    yy = 0
    for p in range(p0, n):
        yy += ys[p] * ys[p]
    best = None
    fits = []
    for j in range(_ARC_FIRST_TAU, len(_ARC_RHO_Q30)):
        fit = _arc_fit(_ARC_RHO_Q30[j], inc, ys, p0, sums)
        fits.append(fit)
        if fit is not None and (best is None or fit[0] > fits[best][0]):
            best = len(fits) - 1
    if best is None:
        return None
    # refine tau between the grid's neighbours (a parabola through the fit qualities)
    rho = _ARC_RHO_Q30[_ARC_FIRST_TAU + best]
    if 0 < best < len(fits) - 1 and fits[best - 1] is not None and fits[best + 1] is not None:
        e0 = fits[best - 1][0]
        e1 = fits[best][0]
        e2 = fits[best + 1][0]
        curv = e0 - 2 * e1 + e2
        if curv < 0:
            delta_q10 = ((e0 - e2) * 512) // curv  # -512 .. 512: half a grid step
            lo = _ARC_RHO_Q30[_ARC_FIRST_TAU + best - 1]
            hi = _ARC_RHO_Q30[_ARC_FIRST_TAU + best + 1]
            rho = rho + ((hi - lo) * delta_q10 >> 11)
            fit = _arc_fit(rho, inc, ys, p0, sums)
            if fit is not None:
                fits[best] = fit
    explained, ne, det = fits[best]
    residual = (yy - explained) // (m - 3)
    if explained - line <= _ARC_SIGNIFICANCE * residual:
        return None  # no arc to speak of: nothing is taken out
    # h was built from the current's rise between i samples, which lag v's by skew:
    # a rise spread over a sample period acts from its middle, f = skew - 1/2 sample
    # after v's instants; at v's instants h is larger by rho^-f, so E (fitted with h)
    # is E_v rho^-f
    shift = one - (((one - rho) * (skew_q10 - 512)) >> 10)  # rho^f, to first order
    ne = (ne * shift) >> 30
    # the arc's decay over a whole slot, and its Hann-weighted decaying part
    rn = one
    for _ in range(n):
        rn = (rn * rho) >> 30
    s_wr = 0
    h = 0
    for p in range(n):
        h = (h * rho) >> 30
        if p < steps:
            h += inc[p]
        s_wr += window[p] * ((h << 30) // shift)
    # per slot: the arc's Hann-weighted sum for a unit arc voltage (Q30 x window units),
    # alpha the arc state at the slot start (at rest before the capture); C (Q30) the
    # Thue-Morse sum of (alpha_k - u_k), what the profile's decaying part is made of
    c = 0
    alpha = 0
    arc_sums = [0] * slots
    for k in range(slots):
        u = one if thue_morse(k) else 0
        if u:
            c += alpha - u
        else:
            c -= alpha - u
        arc_sums[k] = u * window_sum + (((alpha - u) * s_wr) >> 30)
        alpha = u + (((alpha - u) * rn) >> 30)
    ne <<= y_shift
    den = det * di * 1024 * c
    if c == 0 or ne * den <= 0:
        return None  # no arc, or one that would lower the resistance: not an arc
    # E (y units) = ne / det * 2**30; the arc voltage per unit current
    # R = E / (di * 1024 * c / 2**30); per slot R * arc_sums[k] / 2**30
    for k in range(slots):
        arc_sums[k] = (ne * one * arc_sums[k]) // den
    return arc_sums


def _integrated_pattern(slots: int, k: int) -> int:
    """Slot mean of the running integral of the +-1 excitation pattern (x2 units).

    The AC coupling and the block's RC pair respond to the excitation with a slow
    integral of it; this is the shape that response adds to the slot means.
    """
    total = 0
    for j in range(k):
        total += 2 if thue_morse(j) else -2
    return total + (1 if thue_morse(k) else -1)


def _step_noise(slots: int, sums, signal: int) -> tuple:
    """(signal, noise variance) of one channel's slot sums.

    The noise channels are Walsh functions orthogonal to the signal and to cubic
    drift.  The integrated-pattern response (AC coupling, RC pair) is fitted over the
    noise channels and removed from them (and from the signal, by its projection),
    so it is neither counted as noise nor left in the result.
    """
    walsh_count = len(_STEP_NOISE_WALSH)
    noise = [0] * walsh_count
    shape = [0] * walsh_count
    shape_signal = 0
    for k in range(slots):
        g = _integrated_pattern(slots, k)
        shape_signal += g if thue_morse(k) else -g
        for n in range(walsh_count):
            if thue_morse(_STEP_NOISE_WALSH[n] & k):
                noise[n] -= sums[k]
                shape[n] -= g
            else:
                noise[n] += sums[k]
                shape[n] += g
    gg = 0
    gn = 0
    for n in range(walsh_count):
        gg += shape[n] * shape[n]
        gn += shape[n] * noise[n]
    var = 0
    if gg:
        # least-squares amplitude of the shape: gn / gg (kept as a fraction)
        for n in range(walsh_count):
            r = noise[n] * gg - shape[n] * gn
            var += r * r
        var = var // (gg * gg * (walsh_count - 1))
        signal = signal - (shape_signal * gn) // gg
    else:
        for n in range(walsh_count):
            var += noise[n] * noise[n]
        var //= walsh_count
    return signal, var


class LockInEvaluator(_EvaluatorBase):
    """Streaming evaluator of an AC capture: feed(v, i, count) chunks, then result()."""

    def __init__(self, plan: RiPlan):
        if plan.method != RI_METHOD_AC:
            raise ValueError("LockInEvaluator needs an ac plan")
        super().__init__(plan)
        period = 2 * plan.slot_samples
        self.period = period
        self.periods = plan.slots // 2
        # references in Q12: cos and -sin of 2 pi k / period
        self._cos = array("h", [0] * period)
        self._msin = array("h", [0] * period)
        for k in range(period):
            phase = ((AC_HARMONIC * k) % period << 16) // period
            self._cos[k] = (cos_q15(phase) + 4) >> 3
            self._msin[k] = -((sin_q15(phase) + 4) >> 3)
        # accumulators: 4 signal (vr, vi, ir, ii) + 2 per noise bin, two limbs each
        self._acc = array("i", [0] * (2 * (4 + 2 * len(_AC_NOISE_BINS))))
        # lowest and highest v minus v 50 ms earlier, per position in the period
        self._half_ext = _extremes(period)
        self._period_index = 0
        self._pvr = 0
        self._pvi = 0
        self._pir = 0
        self._pii = 0
        self._wacc = 0
        self._wstep = 0
        self._window_sum = 0  # sum of the per-sample window weights (Q14 >> 13 units)
        self._start_period(0)

    def _window_q24(self, p: int) -> int:
        """sin^4(pi p / P) in Q24 at the start of period p."""
        s = sin_q15((p << 15) // self.periods)
        s2 = (s * s) >> 15
        return (s2 * s2) >> 6

    def _start_period(self, p: int) -> None:
        w0 = self._window_q24(p)
        w1 = self._window_q24(p + 1) if p + 1 <= self.periods else 0
        step = (w1 - w0) // self.period
        self._wstep = step
        self._wacc = w0 + (step >> 1)

    def _end_period(self) -> None:
        acc = self._acc
        p = self._period_index
        pvr = self._pvr
        pvi = self._pvi
        _acc_add(acc, 0, pvr)
        _acc_add(acc, 2, pvi)
        _acc_add(acc, 4, self._pir)
        _acc_add(acc, 6, self._pii)
        # noise bins: rotate the V partial by exp(-j 2 pi q p / P), Q11
        yr = pvr >> 12
        yi = pvi >> 12
        index = 8
        periods = self.periods
        for q in _AC_NOISE_BINS:
            phase = ((q * p) << 16) // periods
            c = cos_q15(phase) >> 4
            s = sin_q15(phase) >> 4
            _acc_add(acc, index, yr * c + yi * s)
            _acc_add(acc, index + 2, yi * c - yr * s)
            index += 4
        self._pvr = 0
        self._pvi = 0
        self._pir = 0
        self._pii = 0
        self._period_index = p + 1
        if p + 1 < periods:
            self._start_period(p + 1)

    def feed(self, vbuf, ibuf, count: int) -> None:
        """Consume count sample pairs (raw codes).  Allocation-free."""
        plan = self.plan
        remaining = plan.samples - self.fed
        if count > remaining:
            count = remaining
        if count <= 0:
            return
        if not self.clipped:
            self._check_clip(vbuf, ibuf, count)
        period = self.period
        cos_t = self._cos
        msin_t = self._msin
        dnl = self._dnl
        region = fe._RP2040_REGION_X2
        half = fe._RP2040_SPIKE_HALF_X2
        pos = self._pos
        pvr = self._pvr
        pvi = self._pvi
        pir = self._pir
        pii = self._pii
        wacc = self._wacc
        wstep = self._wstep
        wsum = self._window_sum
        ext = self._ext
        half_period = plan.slot_samples
        lag = self._lag
        hist = self._hist
        hpos = self._hist_pos
        lagged = self._lagged
        # the lag is whole excitation periods: the sample then was in the same state
        # (combos 4 + 2 * (2 now + then))
        flip = (lag // half_period) & 1
        # the sample 50 ms earlier (not whole excitation periods: compared per position)
        half_lag = self._half_lag
        half_ext = self._half_ext
        for j in range(count):
            r = vbuf[j]
            q = ibuf[j]
            if dnl:
                v = (r << 1) + region[r >> 9]
                c = (q << 1) + region[q >> 9]
                if (r & 511) == 0 and (r & 512):
                    v -= half[r >> 10]
                if (q & 511) == 0 and (q & 512):
                    c -= half[q >> 10]
            else:
                v = r << 1
                c = q << 1
            x = v - 4096
            on = 1 if pos < half_period else 0
            if (pos if on else pos - half_period) >= _EDGE_SKIP:
                k = 2 * on
                if x < ext[k]:
                    ext[k] = x
                if x > ext[k + 1]:
                    ext[k + 1] = x
                if lagged:
                    d = x - hist[hpos]
                    k = 4 + 2 * (2 * on + (on ^ flip))
                    if d < ext[k]:
                        ext[k] = d
                    if d > ext[k + 1]:
                        ext[k + 1] = d
                    if half_lag:
                        # per position in the excitation period: whatever follows the
                        # excitation (its response, the inductive pick-up) is the same
                        # there in every period and drops out of the spread
                        k = hpos - half_lag
                        d = x - hist[k + lag if k < 0 else k]
                        k = 2 * pos
                        if d < half_ext[k]:
                            half_ext[k] = d
                        if d > half_ext[k + 1]:
                            half_ext[k + 1] = d
            if lag:
                hist[hpos] = x
                hpos += 1
                if hpos == lag:
                    hpos = 0
                    lagged = True
            w = wacc >> 10  # Q14
            wsum += w
            xv = ((v - 4096) * w) >> 13  # |.| <= 2**13
            xi = ((c - 4096) * w) >> 13
            rc = cos_t[pos]
            rs = msin_t[pos]
            pvr += xv * rc  # per period: <= 2**13 * sum|cos| (83k) < 2**30
            pvi += xv * rs
            pir += xi * rc
            pii += xi * rs
            wacc += wstep
            pos += 1
            if pos == period:
                self._pvr = pvr
                self._pvi = pvi
                self._pir = pir
                self._pii = pii
                self._end_period()
                pvr = 0
                pvi = 0
                pir = 0
                pii = 0
                wacc = self._wacc
                wstep = self._wstep
                pos = 0
        self._pos = pos
        self._pvr = pvr
        self._pvi = pvi
        self._pir = pir
        self._pii = pii
        self._wacc = wacc
        self._window_sum = wsum
        self._hist_pos = hpos
        self._lagged = lagged
        self.fed += count

    def phasors(self) -> tuple:
        """(vr, vi, ir, ii) after the skew correction (big integers)."""
        acc = self._acc
        vr = _acc_value(acc, 0)
        vi = _acc_value(acc, 2)
        ir = _acc_value(acc, 4)
        ii = _acc_value(acc, 6)
        # i was sampled skew_ns after v: rotate I back by 2 pi f skew
        hz_x1000 = self.plan.excitation_hz_x1000() * AC_HARMONIC
        phase = (hz_x1000 * self.plan.skew_ns * 65536) // (1000 * 1000000000)
        if phase:
            c = cos_q15(phase)
            s = sin_q15(phase)
            ir, ii = (ir * c + ii * s) // 32767, (ii * c - ir * s) // 32767
        return vr, vi, ir, ii

    def result(self) -> RiResult:
        plan = self.plan
        if self.fed < plan.samples:
            return RiResult(RI_INCOMPLETE, detail="%d of %d samples" % (self.fed, plan.samples))
        if self.clipped:
            return RiResult(RI_CLIPPED, detail="amplifier saturated")
        saturated = self._saturation()
        if saturated is not None:
            return saturated
        vr, vi, ir, ii = self.phasors()
        mag2_i = ir * ir + ii * ii
        if mag2_i == 0:
            return RiResult(RI_NO_EXCITATION, detail="no excitation current")
        mag_i = isqrt(mag2_i)
        # in-phase part of V (along I), same units as |I|
        dv = (vr * ir + vi * ii) // mag_i
        di = mag_i
        # noise: mean |X_q|^2 over the noise bins (they were scaled down by 2**12 and
        # rotated in Q11: back to the signal bins' units), in-phase half of it.
        acc = self._acc
        total = 0
        index = 8
        for _ in _AC_NOISE_BINS:
            nr = _acc_value(acc, index)
            ni = _acc_value(acc, index + 2)
            total += nr * nr + ni * ni
            index += 4
        # X_q = sum((Y_p >> 12) * Q11 rotation): 2 * X_q is in signal-bin units, so
        # E|noise|^2 = 4 * mean|X_q|^2, and the in-phase part carries half of it.
        var_v = (total * 4) // (2 * len(_AC_NOISE_BINS))
        # expected current fundamental: a 0/D square has amplitude 2D/pi; the lock-in
        # returns amplitude/2 * sum(w / 2**13) * 4096 (Q12 reference) = D * wsum / 2pi
        expected_d = plan.expected_current_x2()
        # (the harmonic AC_HARMONIC of the square: 1/AC_HARMONIC of the fundamental)
        expected_di = (expected_d * self._window_sum * 113) // (710 * AC_HARMONIC)
        # var_i: the shunt channel is far above its noise; not estimated (0)
        return _finish(plan, dv, di, var_v, 0, expected_di)


def needs_low_range(plan: RiPlan, result: RiResult) -> bool:
    """True when the capture clipped (or out-of-band ripple may have saturated the
    amplifier) in the high gain range: measure again at once
    with plan_for(..., gain_range=1) (and that range's calibration).  Every other
    outcome is final."""
    return (result.status == RI_CLIPPED or result.status == RI_SATURATED) and plan.gain_range == 0


def evaluator(plan: RiPlan):
    """The streaming evaluator for a plan's method."""
    if plan.method == RI_METHOD_STEP:
        return StepEvaluator(plan)
    return LockInEvaluator(plan)


def evaluate(plan: RiPlan, v_samples, i_samples, chunk: int = 256) -> RiResult:
    """Evaluate a whole capture held in two sequences of raw codes.

    Feeds the evaluator in chunks through memoryviews when possible; the firmware
    streams from its DMA buffers instead of holding a capture.
    """
    ev = evaluator(plan)
    n = len(v_samples)
    if len(i_samples) != n:
        raise ValueError("capture channels differ in length: v %d, i %d" % (n, len(i_samples)))
    start = 0
    vmv = memoryview(v_samples) if not isinstance(v_samples, (list, tuple)) else None
    imv = memoryview(i_samples) if not isinstance(i_samples, (list, tuple)) else None
    while start < n:
        end = start + chunk
        if end > n:
            end = n
        if vmv is not None and imv is not None:
            ev.feed(vmv[start:end], imv[start:end], end - start)
        else:
            ev.feed(v_samples[start:end], i_samples[start:end], end - start)
        start = end
    return ev.result()
