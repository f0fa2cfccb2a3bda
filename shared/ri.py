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
#
# The code is split by what it does (each file < 600 lines):
#   ri.py        constants, statuses, RiPlan, plan_for, RiResult, the final decision,
#                evaluator() and evaluate() (the public face)
#   ri_feed.py   what both streaming evaluators share: clipping, saturation, accumulators
#   ri_step.py   the step method's evaluator (StepEvaluator) and its noise channels
#   ri_arc.py    the charge-transfer arc fit of the step method's profile
#   ri_ac.py     the AC method's evaluator (LockInEvaluator)
from shared import frontend as fe
from shared.compat import const
from shared.intmath import isqrt
from shared.variants import by_id

# --- methods and statuses ------------------------------------------------------------
RI_METHOD_STEP = const(0)
RI_METHOD_AC = const(1)
# Not a measurement: the excitation stays off, v is sampled at PROBE_SAMPLE_RATE_HZ and
# compared over lags the capture's rate cannot make, so that switching ripple aliased
# onto the mains grid at the capture's rate shows (shared/ri_probe.py; docs/ri.md,
# "Saturation").  Capture files hold step and ac captures only (METHOD_NAMES).
RI_METHOD_PROBE = const(2)
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
_LOW_SIGNAL_SNR = const(4)
_NO_EXCITATION_PERCENT = const(25)
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
EDGE_SKIP_SAMPLES = const(2)

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
# The RP2040 shell samples v then i, round robin at twice the channel rate: i lags v
# by half a channel sample period.  The STM32G4 shell reads its two ADCs on the same
# timer tick (pyb.ADC.read_timed_multi: one after the other within microseconds):
# skew 0 (docs/frontend.md).
_DEFAULT_SKEW_NS_STEP = const(200000)
_DEFAULT_SKEW_NS_AC = const(56818)


# Plausible limits of a capture's plan (RiPlan checks them; docs/ri.md, "Capture files").
_MAX_SAMPLE_RATE_HZ = const(1000000)
# The step capture's sample clock follows the mains (RiPlan.lock_to_mains): a slot is
# then 5 (50 Hz) or 6 (60 Hz) true mains periods.  Grids hold +-0.5 %; a probe that
# finds the ripple's period further off (or none) leaves the clock at its nominal rate.
MAINS_LOCK_MAX_PPM = const(6000)
_MAX_AMP_GAIN = const(10000)
_MAX_SHUNT_UOHM = const(1000000)  # 1 ohm
_MAX_EXCITATION_MA = const(20000)
# A board's Ri calibration corrects tolerances of about 1 %; beyond +-5 % the reference
# resistor or the board is wrong (the same limit the module accepts for a calibration,
# shared/protocol.py CAL_GAIN_PPM_LIMIT).
_MAX_RI_GAIN_PPM = const(50000)


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
      * the excitation is off before and after the capture;
      * the sample clock runs at sample_rate_mhz (milli-hertz): sample_rate_hz, or that
        moved by rate_ppm when the plan is locked to the mains (lock_to_mains).
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
        if method not in (RI_METHOD_STEP, RI_METHOD_AC, RI_METHOD_PROBE):
            raise ValueError("unknown Ri method %r" % method)
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
        _check_range("sample_rate_hz", sample_rate_hz, 1, _MAX_SAMPLE_RATE_HZ)
        _check_range("v_gain", v_gain, 1, _MAX_AMP_GAIN)
        _check_range("shunt_gain", shunt_gain, 1, _MAX_AMP_GAIN)
        _check_range("shunt_uohm", shunt_uohm, 1, _MAX_SHUNT_UOHM)
        _check_range("excitation_ma", excitation_ma, 1, _MAX_EXCITATION_MA)
        _check_range("ri_gain_ppm", ri_gain_ppm, -_MAX_RI_GAIN_PPM, _MAX_RI_GAIN_PPM)
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
        self.rate_ppm = 0
        self.sample_rate_mhz = sample_rate_hz * 1000

    def lock_to_mains(self, ppm: int) -> None:
        """Run the sample clock ppm (parts per million) off its nominal rate: the mains
        frequency's error the probe measured, so that each 100 ms slot of the step
        method spans whole periods of the true mains (docs/ri.md, "Sampling locked to
        the mains").  Within +-MAINS_LOCK_MAX_PPM."""
        _check_range("rate_ppm", ppm, -MAINS_LOCK_MAX_PPM, MAINS_LOCK_MAX_PPM)
        self.rate_ppm = ppm
        # sample_rate_hz * (10**6 + ppm) / 1000 without a product above 2**30
        self.sample_rate_mhz = self.sample_rate_hz * 1000 + self.sample_rate_hz * ppm // 1000

    def excitation_on(self, slot: int) -> bool:
        if self.method == RI_METHOD_STEP:
            return thue_morse(slot) == 1
        # square wave, on in the first half period; the probe: never
        return self.method == RI_METHOD_AC and not slot & 1

    def duration_ms(self) -> int:
        ms = (self.samples * 1000 + self.sample_rate_hz - 1) // self.sample_rate_hz
        if self.rate_ppm < 0:  # a slower clock: longer by as much (<= 0.6 %)
            ms += (ms * -self.rate_ppm + 999999) // 1000000
        return ms

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
            _DEFAULT_SKEW_NS_STEP,
        )
    elif method == RI_METHOD_PROBE:  # its plan lives with its evaluator
        from shared.ri_probe import probe_plan

        return probe_plan(variant_id, gain_range, adc_kind, ri_gain_ppm)
    else:
        rate, slot, slots, skew = (
            AC_SAMPLE_RATE_HZ,
            AC_PERIOD_SAMPLES // 2,
            2 * AC_PERIODS,
            _DEFAULT_SKEW_NS_AC,
        )
    if adc_kind == fe.ADC_STM32G4:
        skew = 0
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


def scale_nohm(plan: RiPlan, dv, di) -> int:
    """Ri in nOhm from a voltage-channel and a current-channel response (same units)."""
    num = dv * plan.shunt_uohm * 1000 * plan.shunt_gain * (1000000 + plan.ri_gain_ppm)
    den = di * plan.v_gain * 1000000
    return (num + den // 2) // den


def finish(plan, dv, di, var_v, var_i, expected_di) -> RiResult:
    """Common decision: status, value, quality.  dv/di responses, var_* noise
    variances of those responses (same units squared), expected_di the planned
    current response."""
    if di * 100 < expected_di * _NO_EXCITATION_PERCENT:
        return RiResult(
            RI_NO_EXCITATION,
            detail="excitation current %d%% of plan"
            % (di * 100 // expected_di if expected_di else 0),
        )
    noise_v = isqrt(var_v)
    if dv <= 0 or dv < _LOW_SIGNAL_SNR * noise_v:
        return RiResult(RI_LOW_SIGNAL, detail="response below %dx noise" % _LOW_SIGNAL_SNR)
    # relative variance of the ratio, in ppm^2
    rel_var = (var_v * 1000000000000) // (dv * dv) + (var_i * 1000000000000) // (di * di)
    uncert_ppm = isqrt(rel_var)
    ri_nohm = scale_nohm(plan, dv, di)
    if uncert_ppm > NOISY_LIMIT_PPM:
        r = RiResult(RI_NOISY, None, 0, uncert_ppm, "uncertainty above the limit")
        return r
    return RiResult(RI_OK, ri_nohm, quality_from_uncert(uncert_ppm), uncert_ppm)


def needs_low_range(plan: RiPlan, result: RiResult) -> bool:
    """True when the capture clipped (or out-of-band ripple may have saturated the
    amplifier) in the high gain range: measure again at once
    with plan_for(..., gain_range=1) (and that range's calibration).  Every other
    outcome is final."""
    return (result.status == RI_CLIPPED or result.status == RI_SATURATED) and plan.gain_range == 0


def evaluator(plan: RiPlan, bufs=None):
    """The streaming evaluator for a plan's method (its file is imported here, once:
    shared/ri_step.py and shared/ri_ac.py import this one).  bufs: a module's kept
    arrays (shared/ri_feed.py Buffers), reused, and the evaluator of the method kept
    there too: set up afresh by its own __init__ (every attribute assigned again, its
    instance not grown again: no allocation but its few small arrays); None: a new
    evaluator with its own arrays."""
    if bufs is not None:
        ev = bufs.evaluators[plan.method]
        if ev is not None:
            ev.__init__(plan, bufs)
            return ev
    if plan.method == RI_METHOD_STEP:
        from shared.ri_step import StepEvaluator

        ev = StepEvaluator(plan, bufs)
    elif plan.method == RI_METHOD_PROBE:
        from shared.ri_probe import ProbeEvaluator

        ev = ProbeEvaluator(plan, bufs)
    else:
        from shared.ri_ac import LockInEvaluator

        ev = LockInEvaluator(plan, bufs)
    if bufs is not None:
        bufs.evaluators[plan.method] = ev
    return ev


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
