# What the streaming Ri evaluators of both methods share (docs/ri.md): the clip check,
# the out-of-band ripple (saturation) check with its lagged-sample history, and the
# two-limb accumulators that keep per-sample work in small integers.
from array import array

from shared import frontend as fe
from shared import ri
from shared.compat import const, zeros

_LIMB_BITS = const(28)
_LIMB_MASK = const((1 << 28) - 1)


# The evaluators' arrays are their only large heap blocks (0.1-2 KB each, ~5.7 KB
# for a probe and a step capture).  Built afresh for each measurement they need free
# blocks that large in a heap that hours of small allocations (frames, replies, the
# evaluation's own integers) have fragmented: on a board that is a MemoryError days
# after boot.  A module keeps them in one Buffers, filled at boot (ri_probe.reserve)
# and reused by every capture; without one (host tools, ri.evaluate) each evaluator
# allocates its own.  One slot per array of each evaluator kind: the probe's and the
# capture's live side by side while the sequence goes from one to the other.
BUF_EXT = const(0)  # the capture's extremes (EvaluatorBase)
BUF_HIST = const(1)  # the capture's lagged-sample history (EvaluatorBase)
BUF_PROBE_EXT = const(2)
BUF_PROBE_RING = const(3)
BUF_PROBE_LOCK = const(4)
BUF_STEP_WINDOW = const(5)
BUF_STEP_PROFILE = const(6)
BUF_STEP_PROFILE_I = const(7)
BUF_STEP_SLOT_V = const(8)
BUF_STEP_SLOT_I = const(9)
BUF_ARC_YS = const(10)  # the step method's arc fit (shared/ri_arc.py)
BUF_AC_COS = const(11)
BUF_AC_MSIN = const(12)
BUF_AC_ACC = const(13)
BUF_AC_HALF_EXT = const(14)
_BUF_SLOTS = const(15)
CLEAR_STEP = const(64)  # items cleared in one of Buffers.clear_steps()'s steps


class Buffers:
    """The arrays of a module's Ri evaluators, kept from one measurement to the next."""

    def __init__(self):
        self._arrays: list[array[int] | None] = [None] * _BUF_SLOTS
        self._item = bytearray(_BUF_SLOTS)  # bytes per item of each slot's array
        self._wipe = bytearray(_BUF_SLOTS)  # 1: cleared on reuse (its owner reads first)
        self._clean = bytearray(_BUF_SLOTS)  # 1: cleared ahead (clear_steps), not used since
        self.step_window_sum = 0  # the sum of the kept step window (shared/ri_step.py)
        # the evaluator of each method (ri.RI_METHOD_*: step, AC, probe), kept once built
        # and set up afresh for the next measurement (ri.evaluator): building one anew
        # grows its instance's attributes block by block, right where a collection may
        # have just reset the allocator's search (~0.06-0.15 M instructions on the M0)
        self.evaluators: list = [None, None, None]

    def held_bytes(self) -> int:
        """The bytes of items the kept arrays hold."""
        total = 0
        for k in range(_BUF_SLOTS):
            a = self._arrays[k]
            if a is not None:
                total += len(a) * self._item[k]
        return total

    def array(self, slot: int, typecode: str, n: int, clear: bool = True) -> "array[int]":
        """An array of n items of typecode for slot: the one kept there when it has n
        items, zeroed (clear False: left as it is, the caller writes every item before
        it reads one), else a new zeroed one, kept from now on."""
        a = self._arrays[slot]
        self._wipe[slot] = 1 if clear else 0
        if a is not None and len(a) == n:
            if clear and not self._clean[slot]:
                for k in range(n):
                    a[k] = 0
            self._clean[slot] = 0
            return a
        self._arrays[slot] = None  # a stale one is garbage before the new one is built
        a = zeros(typecode, n)  # (kept at boot: without holes between them)
        self._arrays[slot] = a
        self._item[slot] = _item_bytes(typecode)
        return a

    def clear_steps(self):
        """Clear ahead, CLEAR_STEP items a step (a generator: each next() one step), the
        kept arrays of the captures that are cleared on reuse, so that the next
        evaluator built on them skips that work: ~0.7 M instructions on the M0 in one
        of the module's steps otherwise.  The probe's arrays are left alone (the
        sequence reads the finished probe's results after this)."""
        for slot in range(_BUF_SLOTS):
            a = self._arrays[slot]
            if a is None or not self._wipe[slot] or self._clean[slot]:
                continue
            if BUF_PROBE_EXT <= slot <= BUF_PROBE_LOCK:
                continue
            n = len(a)
            k = 0
            while k < n:
                end = k + CLEAR_STEP if k + CLEAR_STEP < n else n
                for j in range(k, end):
                    a[j] = 0
                k = end
                yield
            self._clean[slot] = 1


def _item_bytes(typecode: str) -> int:
    return 4 if typecode == "i" else 2


def take(bufs, slot: int, typecode: str, n: int, clear: bool = True) -> "array[int]":
    """A zeroed array of n items (clear False: any content, see Buffers.array): from
    bufs' slot, or (bufs None) a new one."""
    if bufs is None:
        return zeros(typecode, n, clear)
    return bufs.array(slot, typecode, n, clear)


def extremes(pairs: int, bufs=None, slot: int = BUF_EXT) -> "array[int]":
    """An array of pairs (lowest, highest), empty: (2**20, -2**20); from bytes, no
    temporary list (from bufs' slot when given)."""
    ext = take(bufs, slot, "i", 2 * pairs)
    for k in range(pairs):
        ext[2 * k] = 1 << 20
        ext[2 * k + 1] = -(1 << 20)
    return ext


def acc_add(acc, index: int, value: int) -> None:
    """Add |value| < 2**30 to the two-limb accumulator acc[index], acc[index + 1]."""
    lo = acc[index] + value  # acc[index] in [0, 2**28): no overflow
    acc[index + 1] += lo >> _LIMB_BITS
    acc[index] = lo & _LIMB_MASK


def acc_value(acc, index: int) -> int:
    return (acc[index + 1] << _LIMB_BITS) + acc[index]


class EvaluatorBase:
    def __init__(self, plan: ri.RiPlan, bufs=None):
        # (also run again on a kept evaluator, ri.evaluator: every attribute the
        # evaluation sets is assigned here)
        self.plan = plan
        self._bufs = bufs  # a module's kept arrays (Buffers), or None: new ones
        self.outcome: ri.RiResult | None = None  # once steps() has run (below)
        # the out-of-band ripple the probe before the capture saw (half LSB at the
        # converter; shared/ri_probe.py RiSequence sets it): switching ripple that
        # aliases onto the mains grid at this capture's rate and so repeats over its
        # own lags
        self.probe_ripple = 0
        self.fed = 0  # sample pairs consumed
        self.clipped = False
        self._pos = 0  # sample index inside the current slot/period
        self._dnl = plan.adc_kind == fe.ADC_RP2040
        # lowest and highest v (half LSB, centred) per excitation state (off, on), then
        # of v minus v 100 ms earlier per (state now, state then); edges left out
        # then (12..19) of v minus v 50 ms earlier per (state now, state then): the step
        # method compares within a slot (12 off, 18 on); the AC method per position in
        # the excitation period (_half_ext)
        self._ext = extremes(10, bufs)
        lag = plan.sample_rate_hz // ri.SATURATION_LAG_DIVIDER
        if lag * ri.SATURATION_LAG_DIVIDER != plan.sample_rate_hz or lag % plan.slot_samples:
            lag = 0  # no whole 100 ms of slots: not checked
        elif plan.method == ri.RI_METHOD_AC and (lag // plan.slot_samples) & 1:
            # whole excitation periods too (200 ms), so that an in-band response to
            # the excitation (the inductive pick-up's quadrature) cancels as well
            lag *= 2
        self._lag = lag
        half_lag = plan.sample_rate_hz // ri.SATURATION_HALF_LAG_DIVIDER
        if not lag or half_lag * ri.SATURATION_HALF_LAG_DIVIDER != plan.sample_rate_hz:
            half_lag = 0
        self._half_lag = half_lag
        self._half_ext = array("i")  # the AC method's, per position (empty: none)
        # the step method: the largest spread of v within one slot, per state (slow
        # drift over a capture is no ripple; empty: the spread over the whole capture)
        self._slot_spread = array("i")
        self._hist = take(bufs, BUF_HIST, "h", lag)
        self._hist_pos = 0
        self._lagged = False

    def done(self) -> bool:
        return self.fed >= self.plan.samples

    # The evaluation's finishing work (after the last sample) as a generator of bounded
    # steps: each next() does one (docs/ri.md, "What the module core does"); after the
    # last, self.outcome holds the RiResult.  The module core drives it across its loop
    # turns, so that it answers the bus meanwhile; result() runs it to its end.
    def steps(self):
        self.outcome = self.result()  # type: ignore[attr-defined]
        yield

    def _saturation(self):
        """None, or a RiResult(RI_SATURATED) when out-of-band ripple may have driven
        the amplifier out of its linear band (see ri.SATURATION_AA_X10)."""
        if not self._lag and not self.probe_ripple:
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
        seen = ripple
        if self.probe_ripple > ripple:
            ripple = self.probe_ripple
        worst = level + ripple * ri.SATURATION_AA_X10 // 10
        band = fe.RI_CLIP_HIGH_CODE - fe.ADC_CODES // 2  # codes from mid-scale
        if worst <= 2 * band:
            return None
        return ri.RiResult(
            ri.RI_SATURATED,
            detail="out-of-band ripple may saturate the amplifier (%d codes at the "
            "converter, ~%d before the filter%s): measure in the low range"
            % (
                ripple >> 1,
                (ripple * ri.SATURATION_AA_X10 // 10) >> 1,
                "; aliased onto the mains grid, seen by the probe" if seen < ripple else "",
            ),
        )

    def _take(self, vbuf, ibuf, count):
        """The start of every feed(): how many of the count sample pairs the plan still
        wants (0: none), the clip check done on them."""
        remaining = self.plan.samples - self.fed
        if count > remaining:
            count = remaining
        if count > 0 and not self.clipped:
            self._check_clip(vbuf, ibuf, count)
        return count

    def _check_clip(self, vbuf, ibuf, count):
        low = fe.RI_CLIP_LOW_CODE
        high = fe.RI_CLIP_HIGH_CODE
        for j in range(count):
            v = vbuf[j]
            i = ibuf[j]
            if v < low or v > high or i < low or i > high:
                self.clipped = True
                return
