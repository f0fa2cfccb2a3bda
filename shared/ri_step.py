# The step method's streaming evaluator (docs/ri.md, "Method 1"): Hann-weighted slot
# sums of 32 Thue-Morse slots, the per-position profile the arc fit reads
# (shared/ri_arc.py), and the Walsh noise channels.
from array import array

from shared import frontend as fe
from shared import ri
from shared import ri_feed as rf
from shared.intmath import sin_q15
from shared.ri_feed import EvaluatorBase, take

# Walsh indices (5 bits) with four 1-bits: noise channels of the 32-slot STEP method.
_STEP_NOISE_WALSH = (15, 23, 27, 29, 30)


class StepEvaluator(EvaluatorBase):
    """Streaming evaluator of a STEP capture: feed(v, i, count) chunks, then result().

    Each slot's samples are weighted by a Hann window (Q10) before summing: the
    window nulls every ripple harmonic like a plain mean over whole periods, but
    leaves ~100x less of a tone that is off its nominal frequency (mains frequency
    error) and gives the switching transients at the slot edges ~zero weight.
    """

    def __init__(self, plan: ri.RiPlan, bufs=None):
        if plan.method != ri.RI_METHOD_STEP:
            raise ValueError("StepEvaluator needs a step plan")
        super().__init__(plan, bufs)
        n = plan.slot_samples
        # the window depends on n alone: one kept in bufs from an earlier capture (its
        # middle is not 0) is used as it is; its computation is most of this
        # constructor's ~1.7 M instructions on the M0, in one of the module's steps
        window = take(bufs, rf.BUF_STEP_WINDOW, "h", n, False)
        self._window = window
        if window[n >> 1] == 0 or bufs is None:
            total = 0
            for k in range(n):
                s = sin_q15(((2 * k + 1) << 15) // (2 * n))  # sin(pi (k + 1/2) / n)
                w = (s * s + (1 << 19)) >> 20  # sin^2 in Q10
                window[k] = w
                total += w
            if bufs is not None:
                bufs.step_window_sum = total  # kept with it
        else:
            total = bufs.step_window_sum
        self.window_sum = total  # <= 1024 * n
        # per sample position in the slot: the Thue-Morse-weighted sum of v over the
        # slots (the ripple has the same phase at a position in every slot)
        self._profile = take(bufs, rf.BUF_STEP_PROFILE, "i", n)
        self._profile_i = take(bufs, rf.BUF_STEP_PROFILE_I, "i", n)
        self._slot_v = take(bufs, rf.BUF_STEP_SLOT_V, "i", plan.slots)
        self._slot_i = take(bufs, rf.BUF_STEP_SLOT_I, "i", plan.slots)
        self._slot = 0
        self._sum_v = 0
        self._sum_i = 0
        self._slot_spread = array("i", bytes(8))
        self._slot_low = 1 << 20
        self._slot_high = -(1 << 20)

    def feed(self, vbuf, ibuf, count: int) -> None:
        """Consume count sample pairs (raw codes).  Allocation-free."""
        count = self._take(vbuf, ibuf, count)
        if count <= 0:
            return
        plan = self.plan
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
        combo = 4 + state + (2 if slot and ri.thue_morse(slot - 1) else 0) * 2
        lag = self._lag
        hist = self._hist
        hpos = self._hist_pos
        lagged = self._lagged
        prof = self._profile
        prof_i = self._profile_i
        # the sample 50 ms earlier, in the same slot and past its edge (step slots are
        # 100 ms: then it is in the same excitation state)
        half_lag = self._half_lag
        edge_skip = ri.EDGE_SKIP_SAMPLES  # a local: no global lookup per sample
        half_from = half_lag + edge_skip if half_lag and lag == slot_samples else slot_samples
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
            if pos >= edge_skip:
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
                state = 2 if ri.thue_morse(slot) else 0
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

    def result(self) -> ri.RiResult:
        for _ in self.steps():
            pass
        return self.outcome  # type: ignore[return-value]

    def steps(self):
        """The finishing work in bounded steps (EvaluatorBase.steps): the checks, the
        arc fit (shared/ri_arc.py, most of the work, in steps of its own), the noise
        channels and the result, in self.outcome."""
        plan = self.plan
        if self.fed < plan.samples:
            self.outcome = ri.RiResult(
                ri.RI_INCOMPLETE, detail="%d of %d samples" % (self.fed, plan.samples)
            )
            return
        if self.clipped:
            self.outcome = ri.RiResult(ri.RI_CLIPPED, detail="amplifier saturated")
            return
        saturated = self._saturation()
        if saturated is not None:
            self.outcome = saturated
            return
        self._hist = None  # type: ignore[assignment]  # the lag history: free for the fit
        # imported here: only a finished capture needs it (RAM while capturing); this
        # first step runs in ri_done(), in the acquisition's own time (RiSequence)
        from shared.ri_arc import arc_slot_sums

        yield
        sv = self._slot_v
        si = self._slot_i
        dv = pattern_sum(sv, plan.slots)
        yield
        di = pattern_sum(si, plan.slots)
        yield
        di, var_i = yield from _step_noise(plan.slots, si, di)
        yield
        # the charge-transfer arc's part of every slot sum, taken out of the signal and
        # of the noise channels (i lags v by skew_q10 / 1024 of a sample period)
        skew_q10 = plan.skew_ns * plan.sample_rate_hz // 976563
        arc = yield from arc_slot_sums(
            self._profile, self._profile_i, self._window, skew_q10, dv, di, self._bufs
        )
        sums = sv  # an array, or (below) the list without the arc
        if arc is not None:
            sums = [sv[k] - arc[k] for k in range(plan.slots)]  # type: ignore[assignment]
            dv = pattern_sum(sums, plan.slots)
        yield
        dv, var_v = yield from _step_noise(plan.slots, sums, dv)
        yield
        # planned response: (slots/2) * sum of the weights * step (half LSB)
        expected = (plan.slots // 2) * self.window_sum * plan.expected_current_x2()
        self.outcome = ri.finish(plan, dv, di, var_v, var_i, expected)


def pattern_sum(sums, slots: int) -> int:
    """The step response of slot sums: sum over the slots of (+1 on, -1 off) x sums[k]
    (the Thue-Morse pattern's weights).  The one place that combines slot sums."""
    total = 0
    for k in range(slots):
        if ri.thue_morse(k):
            total += sums[k]
        else:
            total -= sums[k]
    return total


def _step_noise(slots: int, sums, signal: int):
    """(signal, noise variance) of one channel's slot sums: the return value of this
    generator of bounded steps (StepEvaluator.steps).

    The noise channels are Walsh functions orthogonal to the signal and to cubic
    drift.  The integrated-pattern response (AC coupling, RC pair) is fitted over the
    noise channels and removed from them (and from the signal, by its projection),
    so it is neither counted as noise nor left in the result.
    """
    walsh_count = len(_STEP_NOISE_WALSH)
    noise = [0] * walsh_count
    shape = [0] * walsh_count
    shape_signal = 0
    # the shape: the slot mean of the running integral of the +-1 excitation pattern
    # (x2 units), what the AC coupling's and the RC pair's slow response adds to the
    # slot means
    integral = 0
    for k in range(slots):
        on = ri.thue_morse(k)
        g = integral + (1 if on else -1)
        integral += 2 if on else -2
        shape_signal += g if on else -g
        if k & 3 == 3:
            yield
        for n in range(walsh_count):
            if ri.thue_morse(_STEP_NOISE_WALSH[n] & k):
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
