# The AC method's streaming evaluator (docs/ri.md, "Method 2"): square-wave
# excitation, windowed lock-in at the square's 3rd harmonic, noise from neighbouring
# bins.

from shared import frontend as fe
from shared import ri
from shared import ri_feed as rf
from shared.intmath import cos_q15, isqrt, sin_q15
from shared.ri_feed import EvaluatorBase, acc_add, acc_value, extremes, take

# Noise bins of the AC method: offsets from the excitation bin, in 1/T units.
_AC_NOISE_BINS = (-9, -6, 6, 9)


class LockInEvaluator(EvaluatorBase):
    """Streaming evaluator of an AC capture: feed(v, i, count) chunks, then result()."""

    def __init__(self, plan: ri.RiPlan, bufs=None):
        if plan.method != ri.RI_METHOD_AC:
            raise ValueError("LockInEvaluator needs an ac plan")
        super().__init__(plan, bufs)
        period = 2 * plan.slot_samples
        self.period = period
        self.periods = plan.slots // 2
        # references in Q12: cos and -sin of 2 pi k / period
        # they depend on the period alone: kept ones (cos 0 is 4096, not 0) are used as
        # they are (most of this constructor's work on the M0, in one of its steps)
        self._cos = take(bufs, rf.BUF_AC_COS, "h", period, False)
        self._msin = take(bufs, rf.BUF_AC_MSIN, "h", period, False)
        if bufs is None or self._cos[0] == 0:
            for k in range(period):
                phase = ((ri.AC_HARMONIC * k) % period << 16) // period
                self._cos[k] = (cos_q15(phase) + 4) >> 3
                self._msin[k] = -((sin_q15(phase) + 4) >> 3)
        # accumulators: 4 signal (vr, vi, ir, ii) + 2 per noise bin, two limbs each
        self._acc = take(bufs, rf.BUF_AC_ACC, "i", 2 * (4 + 2 * len(_AC_NOISE_BINS)))
        # lowest and highest v minus v 50 ms earlier, per position in the period
        self._half_ext = extremes(period, bufs, rf.BUF_AC_HALF_EXT)
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
        acc_add(acc, 0, pvr)
        acc_add(acc, 2, pvi)
        acc_add(acc, 4, self._pir)
        acc_add(acc, 6, self._pii)
        # noise bins: rotate the V partial by exp(-j 2 pi q p / P), Q11
        yr = pvr >> 12
        yi = pvi >> 12
        index = 8
        periods = self.periods
        for q in _AC_NOISE_BINS:
            phase = ((q * p) << 16) // periods
            c = cos_q15(phase) >> 4
            s = sin_q15(phase) >> 4
            acc_add(acc, index, yr * c + yi * s)
            acc_add(acc, index + 2, yi * c - yr * s)
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
        count = self._take(vbuf, ibuf, count)
        if count <= 0:
            return
        plan = self.plan
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
        edge_skip = ri.EDGE_SKIP_SAMPLES  # a local: no global lookup per sample
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
            if (pos if on else pos - half_period) >= edge_skip:
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
        vr = acc_value(acc, 0)
        vi = acc_value(acc, 2)
        ir = acc_value(acc, 4)
        ii = acc_value(acc, 6)
        # i was sampled skew_ns after v: rotate I back by 2 pi f skew
        hz_x1000 = self.plan.excitation_hz_x1000() * ri.AC_HARMONIC
        phase = (hz_x1000 * self.plan.skew_ns * 65536) // (1000 * 1000000000)
        if phase:
            c = cos_q15(phase)
            s = sin_q15(phase)
            ir, ii = (ir * c + ii * s) // 32767, (ii * c - ir * s) // 32767
        return vr, vi, ir, ii

    def result(self) -> ri.RiResult:
        plan = self.plan
        if self.fed < plan.samples:
            return ri.RiResult(
                ri.RI_INCOMPLETE, detail="%d of %d samples" % (self.fed, plan.samples)
            )
        if self.clipped:
            return ri.RiResult(ri.RI_CLIPPED, detail="amplifier saturated")
        saturated = self._saturation()
        if saturated is not None:
            return saturated
        vr, vi, ir, ii = self.phasors()
        mag2_i = ir * ir + ii * ii
        if mag2_i == 0:
            return ri.RiResult(ri.RI_NO_EXCITATION, detail="no excitation current")
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
            nr = acc_value(acc, index)
            ni = acc_value(acc, index + 2)
            total += nr * nr + ni * ni
            index += 4
        # X_q = sum((Y_p >> 12) * Q11 rotation): 2 * X_q is in signal-bin units, so
        # E|noise|^2 = 4 * mean|X_q|^2, and the in-phase part carries half of it.
        var_v = (total * 4) // (2 * len(_AC_NOISE_BINS))
        # expected current fundamental: a 0/D square has amplitude 2D/pi; the lock-in
        # returns amplitude/2 * sum(w / 2**13) * 4096 (Q12 reference) = D * wsum / 2pi
        expected_d = plan.expected_current_x2()
        # (the harmonic ri.AC_HARMONIC of the square: 1/ri.AC_HARMONIC of the fundamental)
        expected_di = (expected_d * self._window_sum * 113) // (710 * ri.AC_HARMONIC)
        # var_i: the shunt channel is far above its noise; not estimated (0)
        return ri.finish(plan, dv, di, var_v, 0, expected_di)
