# shared/ri: plans, both evaluators, statuses, and allocation-free per-sample paths.
from dualtest import heap_locked, raises
from ri_synth import Synth

from shared import frontend as fe
from shared import ri, ri_step
from shared.variants import VARIANTS, by_code

try:
    from array import array
except ImportError:
    from uarray import array

CHUNK = 250


def _run(plan, synth, limit=None):
    ev = ri.evaluator(plan)
    vbuf = array("H", [0] * CHUNK)
    ibuf = array("H", [0] * CHUNK)
    done = 0
    total = plan.samples if limit is None else limit
    while done < total:
        n = CHUNK if total - done >= CHUNK else total - done
        synth.fill(vbuf, ibuf, n)
        ev.feed(vbuf, ibuf, n)
        done += n
    return ev.result()


def _err_ppm(result, ri_nohm):
    return (result.ri_nohm - ri_nohm) * 1000000 // ri_nohm


def test_thue_morse_weights_cancel_polynomial_drift():
    for degree in range(5):
        total = 0
        for k in range(ri.STEP_SLOTS):
            total += (k**degree) * (1 if ri.thue_morse(k) else -1)
        assert total == 0, degree
    # the noise channels: orthogonal to the signal and to cubic drift
    for w in ri_step._STEP_NOISE_WALSH:
        dot = 0
        for k in range(ri.STEP_SLOTS):
            a = -1 if ri.thue_morse(w & k) else 1
            dot += a * (1 if ri.thue_morse(k) else -1)
            assert 0 <= w < 32
        assert dot == 0
        for degree in range(4):
            total = 0
            for k in range(ri.STEP_SLOTS):
                total += (k**degree) * (-1 if ri.thue_morse(w & k) else 1)
            assert total == 0, (w, degree)


def test_plans_of_every_variant():
    for v in VARIANTS:
        for method in (ri.RI_METHOD_STEP, ri.RI_METHOD_AC):
            plan = ri.plan_for(v.id, method)
            front = fe.frontend(v.id)
            assert plan.v_gain == front.ri_gain_high
            assert ri.plan_for(v.id, method, gain_range=1).v_gain == front.ri_gain_low
            if method == ri.RI_METHOD_STEP:
                assert plan.duration_ms() == 3200
                assert plan.slot_samples * 10 == plan.sample_rate_hz  # 100 ms slots
                assert [plan.excitation_on(k) for k in range(8)] == [
                    False, True, True, False, True, False, False, True,
                ]  # fmt: skip
            else:
                assert plan.duration_ms() == 1200
                assert plan.excitation_hz_x1000() == 275000
                assert plan.excitation_on(0) and not plan.excitation_on(1)
        assert ri.plan_for(v.id).method == v.ri_method
    raises(ValueError, ri.plan_for, 3, None, 2)
    raises(ValueError, ri.RiPlan, 7, 2500, 250, 32, 40, 10000, 200, 1000)
    raises(ValueError, ri.RiPlan, ri.RI_METHOD_STEP, 2500, 250, 16, 40, 10000, 200, 1000)


def test_step_method_rejects_ripple_and_drift():
    plan = ri.plan_for(by_code("12v").id, ri.RI_METHOD_STEP, adc_kind=fe.ADC_STM32G4)
    for ri_nohm in (2000000, 20000000):
        synth = Synth(plan, ri_nohm, ripple_codes=900, ripple_mhz=100400, drift_codes=60)
        result = _run(plan, synth)
        assert result.status == ri.RI_OK, result
        assert abs(_err_ppm(result, ri_nohm)) < 5000, result  # 0.5 %
        assert 0 < result.uncert_ppm < 5000
        assert 50 <= result.quality <= 100


def test_ac_method_rejects_ripple():
    # the synthesiser has an ideal converter (no RP2040 wide codes to linearise) and
    # samples both channels at once, as the STM32G4 board does (its plans: skew 0)
    plan = ri.plan_for(by_code("2v").id, ri.RI_METHOD_AC, adc_kind=fe.ADC_STM32G4)
    for ri_nohm, ripple in ((100000, 1200), (1000000, 300)):
        synth = Synth(plan, ri_nohm, ripple_codes=ripple, ripple_mhz=99800)
        result = _run(plan, synth)
        assert result.status == ri.RI_OK, result
        # the square's fundamental is all the lock-in sees; equal for v and i
        assert abs(_err_ppm(result, ri_nohm)) < 5000, result
        assert result.uncert_ppm < 5000


def test_plans_skew_i_as_each_board_samples_it():
    # the RP2040's round robin: i half a channel sample after v; the STM32G4's two
    # ADCs on one timer tick: together (a plan that corrected for a skew the board does
    # not have would turn the AC method's quadrature pick-up into resistance)
    for method, half in ((ri.RI_METHOD_STEP, 200000), (ri.RI_METHOD_AC, 56818),
                         (ri.RI_METHOD_PROBE, 56810)):  # fmt: skip
        assert ri.plan_for(by_code("12v").id, method, adc_kind=fe.ADC_RP2040).skew_ns == half
        assert ri.plan_for(by_code("12v").id, method, adc_kind=fe.ADC_STM32G4).skew_ns == 0


def test_ac_method_discards_quadrature_pick_up():
    # a 90-degree voltage at the excitation frequency 3x the resistive response
    # (inductive coupling of the current loop into the sense loop) does not move Ri
    plan = ri.plan_for(by_code("2v").id, ri.RI_METHOD_AC, adc_kind=fe.ADC_STM32G4)
    ri_nohm = 200000  # 4 A * 200 uOhm * 250 = 200 mV: fundamental ~ 174 codes
    plain = _run(plan, Synth(plan, ri_nohm, seed=3))
    coupled = _run(plan, Synth(plan, ri_nohm, seed=3, quadrature_codes=500))
    assert plain.status == coupled.status == ri.RI_OK
    assert abs(_err_ppm(plain, ri_nohm)) < 3000
    assert abs(coupled.ri_nohm - plain.ri_nohm) * 1000 < plain.ri_nohm  # < 0.1 %


def test_clipped_capture_is_not_a_number():
    plan = ri.plan_for(by_code("12v").id, ri.RI_METHOD_STEP)
    result = _run(plan, Synth(plan, 2000000, ripple_codes=2100))
    assert result.status == ri.RI_CLIPPED
    assert result.ri_nohm is None
    assert result.status_name() == "clipped"


def test_missing_excitation_is_reported():
    plan = ri.plan_for(by_code("6v").id, ri.RI_METHOD_STEP)
    result = _run(plan, Synth(plan, 5000000, current_scale_pct=10))
    assert result.status == ri.RI_NO_EXCITATION
    assert result.ri_nohm is None
    plan = ri.plan_for(by_code("2v").id, ri.RI_METHOD_AC)
    result = _run(plan, Synth(plan, 5000000, current_scale_pct=0))
    assert result.status == ri.RI_NO_EXCITATION


def test_too_little_signal_and_too_noisy():
    plan = ri.plan_for(by_code("16v").id, ri.RI_METHOD_STEP)
    result = _run(plan, Synth(plan, 0, noise=3))
    assert result.status == ri.RI_LOW_SIGNAL
    assert result.ri_nohm is None
    # a response ~8x its noise: present, but 10+ % uncertain -> noisy, no number
    result = _run(plan, Synth(plan, 100000, noise=40, seed=5))
    assert result.status == ri.RI_NOISY, result
    assert result.ri_nohm is None and result.uncert_ppm > ri.NOISY_LIMIT_PPM


def test_incomplete_capture():
    plan = ri.plan_for(by_code("12v").id, ri.RI_METHOD_STEP)
    result = _run(plan, Synth(plan, 5000000), limit=plan.samples // 2)
    assert result.status == ri.RI_INCOMPLETE
    assert str(plan.samples // 2) in result.detail


def test_feeding_allocates_nothing():
    vbuf = array("H", [0] * CHUNK)
    ibuf = array("H", [0] * CHUNK)
    for method, variant in ((ri.RI_METHOD_STEP, "12v"), (ri.RI_METHOD_AC, "2v")):
        plan = ri.plan_for(by_code(variant).id, method)
        synth = Synth(plan, 1000000, ripple_codes=500)
        ev = ri.evaluator(plan)
        for _ in range(5):  # crosses slot/period boundaries with the heap locked
            synth.fill(vbuf, ibuf, CHUNK)
            heap_locked(ev.feed, vbuf, ibuf, CHUNK)
        assert ev.fed == 5 * CHUNK


def test_retry_in_the_low_range_after_clipping():
    plan = ri.plan_for(by_code("12v").id)
    clipped = ri.RiResult(ri.RI_CLIPPED)
    assert ri.needs_low_range(plan, clipped)
    low = ri.plan_for(by_code("12v").id, gain_range=1)
    assert not ri.needs_low_range(low, clipped)
    assert not ri.needs_low_range(plan, ri.RiResult(ri.RI_OK, 5))


def test_plan_refuses_fields_outside_what_a_board_can_have():
    # (field position in RiPlan's arguments, bad value): a capture or a damaged store
    # with such a field must not give a number
    good = [ri.RI_METHOD_STEP, 2500, 250, 32, 40, 10000, 200, 1000, 0, 200000, 0, 0]
    bad = (
        (10, 999999999),  # ri_gain_ppm
        (10, -1000000),
        (7, 0),  # excitation_ma
        (7, -1000),
        (11, 2),  # gain_range
        (9, -1),  # skew_ns
        (4, 1000000),  # v_gain
    )
    ri.RiPlan(*good)
    for pos, value in bad:
        args = list(good)
        args[pos] = value
        raises(ValueError, ri.RiPlan, *args)


def test_out_of_band_ripple_that_repeats_every_100_ms_is_refused():
    # aliased to 370 Hz (37 cycles per 100 ms: it repeats like the mains there, and the
    # 100 ms comparison alone let it through); over 50 ms it is half a period off.
    # 180 Hz (a 60 Hz harmonic: 9 cycles per 50 ms) of the same size is mains ripple.
    for method in (ri.RI_METHOD_STEP, ri.RI_METHOD_AC):
        plan = ri.plan_for(3, method)
        res = _run(plan, Synth(plan, 5000000, ripple_codes=600, ripple_mhz=370000))
        assert res.status == ri.RI_SATURATED, res
        assert "out-of-band ripple" in res.detail
        res = _run(plan, Synth(plan, 5000000, ripple_codes=600, ripple_mhz=180000))
        assert res.status == ri.RI_OK, res


def test_ripple_that_may_saturate_the_amplifier_is_refused_with_a_reason():
    # A tone that is no mains harmonic (it does not repeat after 100 ms) is aliased
    # out-of-band ripple, seen 4.8x smaller behind the anti-alias filter: 600 codes of
    # it mean ~2300 codes at the amplifier, beyond its linear band; the high range is
    # retried low.  Mains ripple of that size is measured through (the tests above).
    for method in (ri.RI_METHOD_STEP, ri.RI_METHOD_AC):
        plan = ri.plan_for(3, method)
        res = _run(plan, Synth(plan, 5000000, ripple_codes=600, ripple_mhz=1303000))
        assert res.status == ri.RI_SATURATED, res
        assert res.ri_nohm is None
        assert "out-of-band ripple" in res.detail
        assert ri.needs_low_range(plan, res)
        low = ri.plan_for(3, method, 1)
        assert not ri.needs_low_range(low, res)
        # the same capture with a tenth of that ripple is measured
        res = _run(plan, Synth(plan, 5000000, ripple_codes=60, ripple_mhz=1303000))
        assert res.status == ri.RI_OK, res
