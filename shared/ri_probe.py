# The probe before every Ri capture, and the module's Ri procedure (docs/ri.md,
# "Saturation by out-of-band ripple").
#
# A switch-mode charger's ripple (10-100 kHz) can drive the Ri amplifier out of its
# swing; the converter sees it behind the anti-alias filter, aliased.  The capture's
# own check compares each sample with the ones 100 ms and 50 ms earlier: mains ripple
# repeats there, switching ripple generally does not.  But a tone whose frequency is
# within ~1 Hz of a multiple of 20 Hz repeats over both lags too, whatever the sample
# rate (a lag of whole samples sees only f * lag): no comparison within a capture made
# at 2500 Hz can tell it from mains ripple.  A lag that still cancels the mains but
# is not a whole number of 100 ms can: f * 100 ms and f * 99.989 ms differ by
# f * 11 us, a quarter of a cycle at 22 kHz.  Such lags need another sample rate.
#
# The probe: the excitation off, v sampled at PROBE_SAMPLE_RATE_HZ (8801 Hz) for
# 0.8 s, each sample compared with the ones 880, 881, 440 and 441 samples earlier
# (99.989, 100.102, 49.994 and 50.108 ms: the mains ripple cancels as well as over
# 100 ms with the mains frequency 0.5 % off).  Half the spread of each lag's
# differences is a switching tone's amplitude times |sin(pi f lag)|; the largest of
# the four, with the capture's own two lags, sees every tone from 10 to 100 kHz with
# at least ~0.2 of its amplitude (the capture's two lags alone: zero near every
# multiple of 20 Hz).  The capture then takes the larger of its own estimate and the
# probe's (EvaluatorBase.probe_ripple) in its saturation check; a probe that already
# shows the range saturating skips the capture and goes to the low range.
#
# The probe also measures the mains frequency, to lock the step capture's sample clock
# to it (docs/ri.md, "Sampling locked to the mains"): the ripple of a charger repeats
# every mains period, so v against v one lag earlier varies least at the lag of 100 ms
# of the *true* mains (5 periods at 50 Hz, 6 at 60 Hz).  On every 32nd sample the sum of
# |v - v(lag)| is kept for the 13 lags of LOCK_LAG_FIRST.. (874-886 samples: the mains
# 0.64 % fast ... 0.72 % slow); the smallest sum, interpolated between its neighbours
# (|.| sums are V-shaped there), gives the period to a few ppm.  A probe without
# periodic ripple (no minimum under half the largest sum, or one at the edge) locks
# nothing: the capture runs at its nominal rate, as it did before.
#
# Per sample: small integers, no allocation; 887 16-bit samples of history (1.8 KB).
from array import array

from shared import frontend as fe
from shared import ri
from shared.compat import const
from shared.ri_feed import (
    BUF_ARC_YS,
    BUF_PROBE_EXT,
    BUF_PROBE_LOCK,
    BUF_PROBE_RING,
    EvaluatorBase,
    extremes,
    take,
)

# 8801 Hz, 16 slots of 440 samples (0.8 s), excitation off.  At 8801 Hz a lag of 880
# samples is 99.989 ms and one of 881 is 100.102 ms: each cancels the mains ripple as
# well as the 100 ms lag does with the mains frequency 0.5 % off, and each sees a tone
# that repeats every 100 ms at 2500 Hz.
PROBE_SAMPLE_RATE_HZ = const(8801)
PROBE_SLOT_SAMPLES = const(440)
PROBE_SLOTS = const(16)
PROBE_SKEW_NS = const(56810)  # i half a channel sample period after v (round robin)
LOCK_LAG_FIRST = const(874)  # the mains lock's lags: LOCK_LAG_FIRST + 0..LOCK_LAGS-1
LOCK_LAGS = const(13)
LOCK_EVERY = const(32)  # the lock's sums take every 32nd sample (21 ppm: docs/ri.md)
# Offsets under 200 ppm (10 mHz at 50 Hz) count as none: the estimate's own spread is
# 20-60 ppm with switching ripple about, and a capture that far off the mains leaks no
# more than a locked one (docs/ri.md); the clock stays where it was
LOCK_MIN_PPM = const(200)
# 100 ms at PROBE_SAMPLE_RATE_HZ, in 1/1024 sample: 880.1 * 1024
LOCK_NOMINAL_Q10 = const(901222)


def probe_plan(variant_id: int, gain_range: int, adc_kind: int, ri_gain_ppm: int = 0):
    """The probe's plan in a gain range (ri.plan_for(..., ri.RI_METHOD_PROBE) too)."""
    front = fe.frontend(variant_id)
    return ri.RiPlan(
        ri.RI_METHOD_PROBE,
        PROBE_SAMPLE_RATE_HZ,
        PROBE_SLOT_SAMPLES,
        PROBE_SLOTS,
        front.ri_gain(gain_range),
        front.shunt_uohm,
        front.shunt_gain,
        front.excitation_ma,
        adc_kind,
        0 if adc_kind == fe.ADC_STM32G4 else PROBE_SKEW_NS,  # two ADCs on one tick
        ri_gain_ppm,
        gain_range,
    )


class ProbeEvaluator(EvaluatorBase):
    """The probe's streaming evaluator: the ripple amplitude of v (half LSB) that the
    capture cannot see by itself, and whether it already saturates this range."""

    def __init__(self, plan: ri.RiPlan, bufs=None):
        # lag 0 there: the probe keeps its own history (the base's 80 bytes of extremes
        # are not kept in bufs: the capture's take that slot)
        EvaluatorBase.__init__(self, plan)
        rate = plan.sample_rate_hz
        a = rate // ri.SATURATION_LAG_DIVIDER
        b = rate // ri.SATURATION_HALF_LAG_DIVIDER
        self._lags = array("H", [a, a + 1, b, b + 1])
        self._size = LOCK_LAG_FIRST + LOCK_LAGS  # the longest lag's sample is kept
        # not cleared: feed() reads a lagged sample only once it is written
        self._ring = take(bufs, BUF_PROBE_RING, "h", self._size, False)
        self._ring_pos = 0
        # lowest and highest v, then v minus v one lag earlier per lag
        self._pext = extremes(5, bufs, BUF_PROBE_EXT)
        # the mains lock: sum of |v - v(lag)| per lag (RiSequence turns it off for AC)
        self.find_mains = True
        self._lock = take(bufs, BUF_PROBE_LOCK, "i", LOCK_LAGS)

    def feed(self, vbuf, ibuf, count: int) -> None:
        """Consume count sample pairs (raw codes; i is checked for clipping only).
        Allocation-free.  At 8801 Hz on an RP2040 this loop is most of the core while
        the probe runs (`mcu.m0.ri_probe_core_pct`): the extremes are locals for the
        chunk, and the chunk goes in stretches over which no lagged sample's place in
        the ring wraps (ring[pos + o] with o fixed: no test per sample and lag)."""
        count = self._take(vbuf, ibuf, count)
        if count <= 0:
            return
        dnl = self._dnl
        region = fe._RP2040_REGION_X2
        half = fe._RP2040_SPIKE_HALF_X2
        ring = self._ring
        size = self._size
        pos = self._ring_pos
        ext = self._pext
        lags = self._lags
        la = lags[0]
        lb = lags[1]
        lc = lags[2]
        ld = lags[3]
        full = lb  # every lag has its sample from here (the longest)
        n = self.fed
        lock = self._lock
        lock_from = size if self.find_mains else self.plan.samples
        lo = ext[0]
        hi = ext[1]
        lo_a = ext[2]
        hi_a = ext[3]
        lo_b = ext[4]
        hi_b = ext[5]
        lo_c = ext[6]
        hi_c = ext[7]
        lo_d = ext[8]
        hi_d = ext[9]
        j = 0
        while j < count:
            # the stretch: to the ring's end or the next place where a lag's sample
            # wraps (pos reaches that lag), the lagged samples at fixed offsets
            stop = size
            oa = -la
            if pos < la:
                oa += size
                stop = la
            ob = -lb
            if pos < lb:
                ob += size
                if lb < stop:
                    stop = lb
            oc = -lc
            if pos < lc:
                oc += size
                if lc < stop:
                    stop = lc
            od = -ld
            if pos < ld:
                od += size
                if ld < stop:
                    stop = ld
            end = j + stop - pos
            if end > count:
                end = count
            for i in range(j, end):
                r = vbuf[i]
                if dnl:
                    x = (r << 1) + region[r >> 9] - 4096
                    if (r & 511) == 0 and (r & 512):
                        x -= half[r >> 10]
                else:
                    x = (r << 1) - 4096
                if x < lo:
                    lo = x
                if x > hi:
                    hi = x
                # each lag unrolled (a loop over the lags would allocate an iterator)
                if n >= full:
                    d = x - ring[pos + oa]
                    if d < lo_a:
                        lo_a = d
                    if d > hi_a:
                        hi_a = d
                    d = x - ring[pos + ob]
                    if d < lo_b:
                        lo_b = d
                    if d > hi_b:
                        hi_b = d
                    d = x - ring[pos + oc]
                    if d < lo_c:
                        lo_c = d
                    if d > hi_c:
                        hi_c = d
                    d = x - ring[pos + od]
                    if d < lo_d:
                        lo_d = d
                    if d > hi_d:
                        hi_d = d
                    if not n & (LOCK_EVERY - 1) and n >= lock_from:
                        m = pos - LOCK_LAG_FIRST  # the lags' samples: m, m - 1, ...
                        if m < 0:
                            m += size
                        if m >= LOCK_LAGS - 1:  # all 13 without a wrap (nearly always)
                            for k in range(LOCK_LAGS):  # a range loop: no iterator
                                d = x - ring[m - k]
                                lock[k] += d if d >= 0 else -d
                        else:
                            for k in range(LOCK_LAGS):
                                d = x - ring[m - k if m >= k else m - k + size]
                                lock[k] += d if d >= 0 else -d
                ring[pos] = x
                pos += 1
                n += 1
            j = end
            if pos == size:
                pos = 0
        ext[0] = lo
        ext[1] = hi
        ext[2] = lo_a
        ext[3] = hi_a
        ext[4] = lo_b
        ext[5] = hi_b
        ext[6] = lo_c
        ext[7] = hi_c
        ext[8] = lo_d
        ext[9] = hi_d
        self._ring_pos = pos
        self.fed = n

    def mains_ppm(self):
        """The mains frequency's offset from its nominal 50/60 Hz in ppm (what the step
        capture's sample clock follows: RiPlan.lock_to_mains), 0 within LOCK_MIN_PPM,
        or None when the probe saw no ripple that repeats with the mains (then nothing
        is locked either)."""
        acc = self._lock
        k = 0
        top = 0
        for j in range(LOCK_LAGS):
            if acc[j] < acc[k]:
                k = j
            if acc[j] > top:
                top = acc[j]
        if k == 0 or k == LOCK_LAGS - 1 or 2 * acc[k] >= top:
            return None  # no clear minimum inside the lags: no periodic ripple to follow
        a = acc[k - 1]
        b = acc[k]
        c = acc[k + 1]
        while top >= 0x100000:  # keep (a - c) << 9 under 2**30
            a >>= 1
            b >>= 1
            c >>= 1
            top >>= 1
        side = a if a > c else c
        if side <= b:
            return None
        off_q10 = ((a - c) << 9) // (side - b)  # V-shaped: within +-512 (half a lag)
        period_q10 = (LOCK_LAG_FIRST + k) * 1024 + off_q10
        # ppm = (nominal / period - 1) * 10**6, as small integers (10**6 = 15625 * 64)
        num = (LOCK_NOMINAL_Q10 - period_q10) * 15625
        den = period_q10 >> 6
        ppm = (num + den // 2) // den if num >= 0 else -((-num + den // 2) // den)
        if ppm > ri.MAINS_LOCK_MAX_PPM or ppm < -ri.MAINS_LOCK_MAX_PPM:
            return None
        if -LOCK_MIN_PPM < ppm < LOCK_MIN_PPM:
            return 0  # the mains on time, within what the probe can tell
        return ppm

    def release(self) -> None:
        """The probe is evaluated: its sample history (1.8 KB) is free at once (on a
        module it stays reserved in its Buffers)."""
        self._ring = None  # type: ignore[assignment]

    def ripple(self) -> int:
        """The out-of-band ripple's amplitude at the converter (half LSB): half the
        largest spread of the lagged differences (a tone of amplitude A gives
        differences of 2A |sin(pi f lag)|); when that is a third or more of all that
        varies (excitation off: mains and switching ripple, noise), all of it, as the
        capture's own check does: each lag may see the tone at a fraction only (the
        largest |sin| of the four is ~0.6 at 19.9 kHz)."""
        ext = self._pext
        amp = 0
        for k in (2, 4, 6, 8):
            if ext[k + 1] >= ext[k] and (ext[k + 1] - ext[k]) >> 2 > amp:
                amp = (ext[k + 1] - ext[k]) >> 2
        within = (ext[1] - ext[0]) >> 1 if ext[1] >= ext[0] else 0
        if 3 * amp >= within and within > amp:
            return within
        return amp

    def result(self) -> ri.RiResult:
        """RI_OK (a probe never carries a number: the capture follows), or why this
        gain range cannot be measured: RI_CLIPPED, RI_SATURATED, RI_INCOMPLETE."""
        plan = self.plan
        if self.fed < plan.samples:
            return ri.RiResult(
                ri.RI_INCOMPLETE, detail="probe: %d of %d samples" % (self.fed, plan.samples)
            )
        if self.clipped:
            return ri.RiResult(ri.RI_CLIPPED, detail="probe: amplifier clipped, excitation off")
        ext = self._pext
        level = (ext[1] + ext[0]) >> 1
        if level < 0:
            level = -level
        ripple = self.ripple()
        if level + ripple * ri.SATURATION_AA_X10 // 10 > 2 * (
            fe.RI_CLIP_HIGH_CODE - fe.ADC_CODES // 2
        ):
            return ri.RiResult(
                ri.RI_SATURATED,
                detail="switching ripple may saturate the amplifier (probe at %d Hz: %d codes "
                "at the converter, ~%d before the filter): not measured in this range"
                % (plan.sample_rate_hz, ripple >> 1, (ripple * ri.SATURATION_AA_X10 // 10) >> 1),
            )
        return ri.RiResult(ri.RI_OK, detail="probe")


def reserve(bufs, variant_id: int, method: int, adc_kind: int) -> None:
    """Allocate in bufs every array a measurement of method needs (the probe's, the
    capture's, the step method's arc fit) and import the code it runs: at boot, while
    the heap still has large free blocks; the measurements then reuse them
    (shared/ri_feed.py, Buffers) and import nothing (a module's globals are a block
    of ~1.5 KB too)."""
    for m in (ri.RI_METHOD_PROBE, method):
        plan = ri.plan_for(variant_id, m, 0, adc_kind)
        ri.evaluator(plan, bufs)
        if m == ri.RI_METHOD_STEP:
            import shared.ri_arc  # noqa: F401 - the first capture's finish imports it

            bufs.array(BUF_ARC_YS, "h", plan.slot_samples)


class RiSequence:
    """The module's Ri procedure, for the core and for the benches alike:

        seq = RiSequence(variant_id, method, adc_kind, cal_ppm_high, cal_ppm_low)
        plan = seq.start()
        while plan is not None:
            ... acquire plan (excitation per plan.excitation_on), seq.feed(v, i, n) per
            chunk ...
            plan = seq.done()
        seq.result            # the RiResult of the measurement

    Per gain range (high first): the probe, then the capture unless the probe refused
    the range; the low range when the high range clipped or may saturate.  One
    evaluator at a time is held; with bufs (the module's ri_feed.Buffers, see
    reserve()) their arrays are the ones kept from boot."""

    def __init__(
        self,
        variant_id: int,
        method: int,
        adc_kind: int,
        cal_ppm_high: int,
        cal_ppm_low: int,
        bufs=None,
    ):
        self.variant_id = variant_id
        self._bufs = bufs  # the module's kept arrays (ri_feed.Buffers) or None
        self.method = method
        self.adc_kind = adc_kind
        self._cal = (cal_ppm_high, cal_ppm_low)
        self.gain_range = 0
        self.plan: ri.RiPlan | None = None
        self.evaluator: object = None  # ProbeEvaluator, StepEvaluator, LockInEvaluator
        self.result: ri.RiResult | None = None
        self.probe_result: ri.RiResult | None = None
        self.next_plan: ri.RiPlan | None = None
        self._work: object = None  # the evaluator's steps() while it finishes
        self._cleared = False  # the kept arrays cleared ahead (Buffers.clear_steps)
        self._planning = False  # the capture's plan next (after the probe, on kept arrays)
        self._pending: ri.RiPlan | None = None  # the capture's plan, its evaluator next
        self._pending_ripple = 0
        self.mains_ppm = None  # the last probe's mains offset (ppm) the capture follows

    def start(self):
        self.gain_range = 0
        self.result = None
        self.mains_ppm = None
        self._planning = False
        self._pending = None
        self._cleared = False
        return self._begin(ri.RI_METHOD_PROBE)

    def _build(self, plan) -> None:
        """The capture's evaluator for plan, after its probe."""
        self.plan = plan
        self.evaluator = ri.evaluator(plan, self._bufs)
        self.evaluator.probe_ripple = self._pending_ripple  # type: ignore[attr-defined]

    def _plan(self, method: int):
        return ri.plan_for(
            self.variant_id, method, self.gain_range, self.adc_kind, self._cal[self.gain_range]
        )

    def _capture_plan(self):
        """The capture's plan after its probe: locked to the mains the probe measured."""
        nxt = self._plan(self.method)
        if self.mains_ppm:
            nxt.lock_to_mains(self.mains_ppm)
        return nxt

    def _begin(self, method: int):
        self.evaluator = None  # the previous one is garbage before the next is built
        plan = self._plan(method)
        self.plan = plan
        self.evaluator = ri.evaluator(plan, self._bufs)
        if method == ri.RI_METHOD_PROBE and self.method != ri.RI_METHOD_STEP:
            self.evaluator.find_mains = False  # type: ignore[attr-defined]
        return plan

    def feed(self, vbuf, ibuf, count: int) -> None:
        ev = self.evaluator
        if ev is not None:
            ev.feed(vbuf, ibuf, count)  # type: ignore[attr-defined]

    def done(self):
        """The acquisition of self.plan ended: the next plan, or None (self.result).
        The whole evaluation at once; the module core runs it in steps instead
        (finishing(), then step() until False, then next_plan)."""
        self.finishing()
        while self.step():
            pass
        return self.next_plan

    def finishing(self) -> None:
        """The acquisition of self.plan ended: its evaluation's finishing work begins
        (EvaluatorBase.steps); step() runs it."""
        ev = self.evaluator
        self.next_plan = None
        self._work = ev.steps() if ev is not None else None  # type: ignore[attr-defined]
        ev = None  # no reference here: a finished probe's evaluator is garbage before the
        # capture's is built (in the step below)
        # the first step at once, in the acquisition's own time (the module's loop has
        # not polled the bus during the capture): the checks and the step method's
        # import of its arc fit, which no smaller step can hold
        self.step()

    def step(self) -> bool:
        """One bounded step of the finishing work: True while some is left.  After the
        last, next_plan is the next plan to acquire or None (then self.result)."""
        if self._planning:
            # the capture's plan, in a step of its own (~0.06-0.08 M instructions on
            # the M0: RiPlan checks every field), after the probe's results
            self._planning = False
            self._pending = self._capture_plan()
            return True
        pending = self._pending
        if pending is not None:
            # the capture's evaluator, in a step of its own (~0.08 M instructions on
            # the M0 on kept arrays, the evaluator kept too)
            self._pending = None
            self._build(pending)
            self.next_plan = pending
            return False
        work = self._work
        if work is None:
            return False
        try:
            next(work)  # type: ignore[call-overload]
            return True
        except StopIteration:
            pass
        # no reference to the generator (its frame holds the evaluator) left: the
        # evaluator is garbage before the next one is built
        work = None
        self._work = None
        plan = self.plan
        if (
            self._bufs is not None
            and not self._cleared
            and plan is not None
            and plan.method == ri.RI_METHOD_PROBE
        ):
            # the capture's kept arrays cleared ahead, in steps of their own: in the
            # step that builds its evaluator (below) they took ~0.7 M instructions
            self._cleared = True
            self._work = self._bufs.clear_steps()
            return True
        self._cleared = False
        self.next_plan = self._next()
        return self._planning

    def _next(self):
        plan = self.plan
        ev = self.evaluator
        if plan is None or ev is None:
            return None
        res = ev.outcome  # type: ignore[attr-defined]
        if plan.method == ri.RI_METHOD_PROBE:
            self.probe_result = res
            if res.status == ri.RI_OK:
                ripple = ev.ripple()  # type: ignore[attr-defined]
                ppm = ev.mains_ppm() if self.method == ri.RI_METHOD_STEP else None  # type: ignore[attr-defined]
                ev.release()  # type: ignore[attr-defined]
                ev = None  # no reference left: its buffers are free for the next one
                self.evaluator = None
                self.mains_ppm = ppm
                self._pending_ripple = ripple
                if self._bufs is not None:
                    # on kept arrays: its plan, then its evaluator, each in a step of
                    # its own (step(): _planning, _pending)
                    self._planning = True
                    return None
                # without: at once, while the probe's arrays just freed are the largest
                # free blocks (a step later the module's polls may have split them)
                nxt = self._capture_plan()
                self._build(nxt)
                return nxt
        if ri.needs_low_range(plan, res):
            self.gain_range = 1
            ev = None
            return self._begin(ri.RI_METHOD_PROBE)
        self.result = res
        self.plan = None
        self.evaluator = None
        return None
