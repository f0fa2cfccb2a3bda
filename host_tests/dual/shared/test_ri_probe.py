# shared/ri_probe: the probe before each Ri capture sees switching ripple that the
# capture's own lags cannot tell from mains ripple, and the module's procedure
# (RiSequence) refuses the range on it (docs/ri.md, "Saturation").
from dualtest import heap_locked
from ri_synth import Synth

from shared import frontend as fe
from shared import ri
from shared.intmath import sin_q15
from shared.ri_probe import PROBE_SAMPLE_RATE_HZ, RiSequence
from shared.variants import by_code

try:
    from array import array
except ImportError:
    from uarray import array

CHUNK = 250


class Tone:
    """Mains-free v: a switching tone of `codes` amplitude at f_mhz (millihertz) as the
    converter samples it behind the filter (aliased by the sampling itself), on a
    constant excitation-free level; i at the shunt's offset."""

    def __init__(self, plan, f_mhz, codes):
        self.plan = plan
        # phase per sample in turns * 2**24, reduced modulo one turn: the alias
        rate = plan.sample_rate_hz
        self.inc = ((f_mhz % (1000 * rate)) << 24) // (1000 * rate)
        self.phase = 3000000
        self.codes = codes
        self.i_off = fe.SHUNT_REF_OFFSET_UV * fe.ADC_CODES // fe.ADC_VREF_UV

    def fill(self, vbuf, ibuf, count):
        for j in range(count):
            vbuf[j] = 2048 + (self.codes * sin_q15(self.phase >> 8)) // 32768
            self.phase = (self.phase + self.inc) & 0xFFFFFF
            ibuf[j] = self.i_off


def _stream(plan, source, feed):
    """The capture of `plan` from `source`, handed to feed(v, i, n) in CHUNKs."""
    vbuf = array("H", [0] * CHUNK)
    ibuf = array("H", [0] * CHUNK)
    done = 0
    while done < plan.samples:
        n = CHUNK if plan.samples - done >= CHUNK else plan.samples - done
        source.fill(vbuf, ibuf, n)
        feed(vbuf, ibuf, n)
        done += n


def _feed(plan, source):
    ev = ri.evaluator(plan)
    _stream(plan, source, ev.feed)
    return ev


def test_probe_plan_keeps_the_excitation_off_at_its_own_rate():
    plan = ri.plan_for(by_code("6v").id, ri.RI_METHOD_PROBE, 1)
    assert plan.sample_rate_hz == PROBE_SAMPLE_RATE_HZ
    assert plan.gain_range == 1 and plan.duration_ms() == 800
    for k in range(plan.slots):
        assert not plan.excitation_on(k)


def test_the_probe_sees_tones_that_repeat_over_the_captures_lags():
    # 19 900 Hz aliases at 2500 Hz onto exactly 100 Hz (a mains harmonic); 18 540.08 Hz
    # is 1854.008 cycles per 100 ms (the switching set's silent case); 50 kHz, a round
    # switching frequency, aliases onto 0 Hz.  The step capture's own lags see at most
    # a few percent of them; the probe a large part.
    variant = by_code("6v").id
    for f_mhz in (19900000, 18540080, 17539470, 50000000):
        step = ri.plan_for(variant, ri.RI_METHOD_STEP)
        capture = _feed(step, Tone(step, f_mhz, 300))
        ext = capture._ext
        own = 0
        for k in (4, 6, 8, 10, 12, 14, 16, 18):
            if ext[k + 1] >= ext[k] and (ext[k + 1] - ext[k]) >> 2 > own:
                own = (ext[k + 1] - ext[k]) >> 2
        plan = ri.plan_for(variant, ri.RI_METHOD_PROBE)
        probe = _feed(plan, Tone(plan, f_mhz, 300))
        # amplitudes in half LSB: the tone is 600
        assert own < 120, (f_mhz, own)
        assert probe.ripple() >= 300, (f_mhz, probe.ripple())


def test_mains_ripple_alone_does_not_refuse_a_range():
    # 300 codes of ripple at 100.3 Hz (with its 3rd harmonic): mains, not switching
    plan = ri.plan_for(by_code("12v").id, ri.RI_METHOD_PROBE)
    ev = _feed(plan, Synth(plan, 0, ripple_codes=300, noise=1))
    assert ev.result().status == ri.RI_OK, ev.result().detail
    assert ev.ripple() < 2 * 300 // 3


def test_a_strong_aliased_tone_refuses_the_high_range_with_its_reason():
    plan = ri.plan_for(by_code("6v").id, ri.RI_METHOD_PROBE)
    res = _feed(plan, Tone(plan, 19900000, 500)).result()
    assert res.status == ri.RI_SATURATED and res.ri_nohm is None
    assert "probe at 8801 Hz" in res.detail
    assert ri.needs_low_range(plan, res)


def test_sequence_probes_then_captures_and_moves_to_the_low_range():
    variant = by_code("6v").id
    seq = RiSequence(variant, ri.RI_METHOD_STEP, fe.ADC_RP2040, 1000, -2000)

    def source_of(plan):
        if plan.method == ri.RI_METHOD_PROBE and plan.gain_range == 0:
            return Tone(plan, 19900000, 500)  # refuses the high range
        if plan.method == ri.RI_METHOD_PROBE:
            return Tone(plan, 19900000, 150)
        return Synth(plan, 3000000, ripple_codes=150, noise=1)

    methods = [(p.method, p.gain_range, p.ri_gain_ppm) for p in _run(seq, source_of)]
    assert methods == [
        (ri.RI_METHOD_PROBE, 0, 1000),
        (ri.RI_METHOD_PROBE, 1, -2000),
        (ri.RI_METHOD_STEP, 1, -2000),
    ]
    assert seq.result.status == ri.RI_OK, seq.result
    # within 2 % (the integer synthesiser's own bias in the low range is ~1 %)
    assert abs(seq.result.ri_nohm * 1000 // (1000 - 2) - 3000000) < 60000


def test_capture_refuses_on_what_only_the_probe_saw():
    # a capture whose own lags see nothing (constant v besides the step) is refused
    # when the probe measured ripple that saturates the range
    plan = ri.plan_for(by_code("6v").id, ri.RI_METHOD_STEP)
    ev = ri.evaluator(plan)
    ev.probe_ripple = 1000  # half LSB: x 4.8 beyond the amplifier's band
    synth = Synth(plan, 3000000, noise=1)
    vbuf = array("H", [0] * CHUNK)
    ibuf = array("H", [0] * CHUNK)
    for _ in range(plan.samples // CHUNK):
        synth.fill(vbuf, ibuf, CHUNK)
        ev.feed(vbuf, ibuf, CHUNK)
    res = ev.result()
    assert res.status == ri.RI_SATURATED
    assert "seen by the probe" in res.detail


def test_probe_feeding_allocates_nothing():
    plan = ri.plan_for(by_code("12v").id, ri.RI_METHOD_PROBE)
    source = Tone(plan, 19900000, 300)
    ev = ri.evaluator(plan)
    vbuf = array("H", [0] * CHUNK)
    ibuf = array("H", [0] * CHUNK)
    for _ in range(6):  # past the longest lag (881 samples) with the heap locked
        source.fill(vbuf, ibuf, CHUNK)
        heap_locked(ev.feed, vbuf, ibuf, CHUNK)
    assert ev.fed == 6 * CHUNK


def _mains_probe(ripple_mhz, ripple_codes=300, noise=1, seed=1):
    plan = ri.plan_for(by_code("12v").id, ri.RI_METHOD_PROBE)
    return _feed(plan, Synth(plan, 0, ripple_codes=ripple_codes, ripple_mhz=ripple_mhz,
                             noise=noise, seed=seed)).mains_ppm()  # fmt: skip


def test_the_probe_measures_the_mains_frequency_of_the_ripple():
    # ripple at twice the mains (with its 3rd harmonic), 50 and 60 Hz grids, from
    # 0.45 % slow to 0.55 % fast: the offset to ~1 ppm (the synthesiser's phase
    # steps are 5 ppm); one sample of 100 ms is 1136 ppm
    for ripple_mhz, ppm in (
        (100000, 0), (100300, 3000), (99600, -4000), (100550, 5500),
        (119700, -2500), (120120, 1000), (99550, -4500),
    ):  # fmt: skip
        got = _mains_probe(ripple_mhz)
        assert got is not None and abs(got - ppm) <= 30, (ripple_mhz, ppm, got)
    # small ripple in noise (15 codes, noise of +-3): within 300 ppm (the lock's
    # tolerance, docs/ri.md; a ripple that small leaks little anyway)
    got = _mains_probe(100300, ripple_codes=15, noise=3)
    assert got is not None and abs(got - 3000) <= 300, got


def test_no_mains_ripple_or_one_off_the_grid_locks_nothing():
    assert _mains_probe(100300, ripple_codes=0, noise=3) is None  # noise only
    assert _mains_probe(100300, ripple_codes=0, noise=0) is None  # a flat line
    assert _mains_probe(101000, ripple_codes=300) is None  # 1 % fast: no grid
    assert _mains_probe(98800, ripple_codes=300) is None  # 1.2 % slow
    # (a lone switching tone's alias repeats over some lag of the range too and is
    # taken for mains: the capture then runs up to 0.6 % off, as every capture did
    # before the lock; docs/ri.md)


def _run(seq, source_of):
    plans = []
    plan = seq.start()
    while plan is not None:
        plans.append(plan)
        _stream(plan, source_of(plan), seq.feed)
        plan = seq.done()
    return plans


def test_the_step_capture_runs_locked_to_the_mains_the_probe_measured():
    # mains 0.3 % fast: the step capture's clock runs 0.3 % fast too, so that each
    # 100 ms slot spans 5 true mains periods; the number is still the block's
    seq = RiSequence(by_code("12v").id, ri.RI_METHOD_STEP, fe.ADC_RP2040, 0, 0)
    plans = _run(seq, lambda plan: Synth(plan, 3000000, ripple_codes=200, noise=1))
    assert [p.method for p in plans] == [ri.RI_METHOD_PROBE, ri.RI_METHOD_STEP]
    probe, capture = plans
    assert probe.rate_ppm == 0 and probe.sample_rate_mhz == 8801000
    assert abs(capture.rate_ppm - 3000) <= 30 and seq.mains_ppm == capture.rate_ppm
    assert capture.sample_rate_mhz == 2500000 + 2500 * capture.rate_ppm // 1000
    assert capture.duration_ms() == 3200  # faster: not longer than its nominal 3.2 s
    assert seq.result.status == ri.RI_OK, seq.result
    # the AC method's excitation sits between the mains harmonics at its own rate:
    # nothing to lock (the probe does not even look)
    seq = RiSequence(by_code("2v").id, ri.RI_METHOD_AC, fe.ADC_RP2040, 0, 0)
    plans = _run(seq, lambda plan: Synth(plan, 30000, ripple_codes=200, noise=1))
    assert plans[-1].method == ri.RI_METHOD_AC and plans[-1].rate_ppm == 0
    assert seq.mains_ppm is None


def test_a_plan_locks_only_within_the_grids_tolerance():
    plan = ri.plan_for(by_code("12v").id, ri.RI_METHOD_STEP)
    plan.lock_to_mains(-6000)
    assert plan.sample_rate_mhz == 2485000 and plan.duration_ms() == 3220
    for bad in (6001, -7000, 100000):
        try:
            plan.lock_to_mains(bad)
        except ValueError as exc:
            assert "rate_ppm" in str(exc)
        else:
            raise AssertionError("locked %d ppm off" % bad)


def _probe_code(n, trial):
    """The n-th raw code of a test capture: a tone, noise, and every 97th sample one
    of the RP2040's spike codes, and the lowest code at the first sample every lag
    compares (881); a function of n (no 14 KB capture on the M0)."""
    if n == 881:
        return 40
    if n % 97 == 0:
        return 512 * (1 + 2 * ((n // 97 + trial) % 4))  # 512, 1536, 2560, 3584
    return 2048 + (300 * sin_q15((n * (2999 + trial)) & 0xFFFF)) // 32768 + (n * 7919 >> 3) % 7 - 3


def _reference_probe(plan, trial, find_mains):
    """What ProbeEvaluator.feed keeps, computed the plain way from the whole capture:
    the extremes of v (half LSB, centred) and of v minus v one lag earlier per lag,
    and the mains lock's sums of |v - v(lag)| on every LOCK_EVERY-th sample."""
    from shared import ri_probe as rp

    def x(n):
        return fe.corrected_x2(_probe_code(n, trial), plan.adc_kind) - 4096

    rate = plan.sample_rate_hz
    a = rate // ri.SATURATION_LAG_DIVIDER
    b = rate // ri.SATURATION_HALF_LAG_DIVIDER
    ext = []
    for lag in (0, a, a + 1, b, b + 1):
        lo = None
        hi = None
        for n in range(a + 1 if lag else 0, plan.samples):  # every lag from the longest's
            d = x(n) - x(n - lag) if lag else x(n)
            lo = d if lo is None or d < lo else lo
            hi = d if hi is None or d > hi else hi
        ext += [lo, hi]
    lock = [0] * rp.LOCK_LAGS
    size = rp.LOCK_LAG_FIRST + rp.LOCK_LAGS
    for n in range(size, plan.samples if find_mains else 0):
        if n % rp.LOCK_EVERY == 0:
            for k in range(rp.LOCK_LAGS):
                lock[k] += abs(x(n) - x(n - rp.LOCK_LAG_FIRST - k))
    return ext, lock


def test_the_probes_feed_keeps_what_a_plain_computation_gives_for_any_chunking():
    """The feed is written for speed (extremes in locals, the chunk in stretches over
    which no lagged sample wraps in the ring); against the plain computation from the
    whole capture it must keep exactly the same extremes and lock sums, whatever the
    chunks (1 sample to more than the ring), the converter (the RP2040's corrected
    codes included) and the ripple."""
    from shared import ri_probe as rp

    sizes = (1, 7, 250, 440, 1000, 3)
    for trial, adc in enumerate((fe.ADC_RP2040, fe.ADC_STM32G4, fe.ADC_RP2040)):
        plan = rp.probe_plan(by_code("12v").id, 0, adc)
        find_mains = trial != 2
        ev = rp.ProbeEvaluator(plan)
        ev.find_mains = find_mains
        vbuf = array("H", bytes(2000))
        ibuf = array("H", bytes(2000))
        for j in range(1000):
            ibuf[j] = 2048  # (i is checked for clipping only)
        done = 0
        k = 0
        while done < plan.samples:
            n = sizes[(k + trial) % len(sizes)]
            k += 1
            if n > plan.samples - done:
                n = plan.samples - done
            for j in range(n):
                vbuf[j] = _probe_code(done + j, trial)
            ev.feed(vbuf, ibuf, n)
            done += n
        ext, lock = _reference_probe(plan, trial, find_mains)
        assert list(ev._pext) == ext, (trial, list(ev._pext), ext)
        assert list(ev._lock) == lock, (trial, list(ev._lock), lock)


def test_a_measurement_on_kept_arrays_gives_what_fresh_ones_give():
    """A module's evaluators reuse the arrays kept from boot (shared/ri_feed.py
    Buffers; some are not cleared, the step window and the AC references are not
    recomputed), and are themselves kept, one per method, and set up afresh
    (ri.evaluator): nothing an earlier measurement left in them (another block, a
    saturating ripple and the low range, the other method: a probe without the mains
    lock) may reach the next.  Each measurement on the kept arrays gives exactly the
    result of the same measurement on fresh ones."""
    from shared import ri_feed, ri_probe

    def measure(variant, method, ri_nohm, ripple, bufs):
        seq = RiSequence(by_code(variant).id, method, fe.ADC_RP2040, 0, 0, bufs)
        plans = _run(seq, lambda plan: Synth(plan, ri_nohm, ripple_codes=ripple, noise=1))
        r = seq.result
        return (len(plans), r.status, r.ri_nohm, r.quality, seq.mains_ppm)

    bufs = ri_feed.Buffers()
    ri_probe.reserve(bufs, by_code("12v").id, ri.RI_METHOD_STEP, fe.ADC_RP2040)
    cases = (
        ("12v", ri.RI_METHOD_STEP, 9000000, 1600),  # saturates: the low range too
        ("12v", ri.RI_METHOD_STEP, 9000000, 800),  # another block, more ripple
        ("2v", ri.RI_METHOD_AC, 30000, 200),
        ("12v", ri.RI_METHOD_STEP, 3000000, 200),
        ("2v", ri.RI_METHOD_AC, 50000, 400),  # the kept AC references, not recomputed
    )
    built = {}
    for case in cases:
        fresh = measure(*case, None)
        kept = measure(*case, bufs)
        assert kept == fresh, (case, kept, fresh)
        for method, ev in enumerate(bufs.evaluators):
            if ev is not None:
                assert built.setdefault(method, ev) is ev  # the same object each time
        assert fresh[1] == ri.RI_OK or case[3] > 1000, (case, fresh)
    assert len(built) == 3
