# Evaluating one Ri capture fits a module's heap.  This file runs in MicroPython with
# a 24 KB budget (a module board leaves 64 KB for everything), with the code frozen as
# on a board (host_tests/mp_runner.py charges only what the imports keep in RAM: the
# variant/front-end tables, module dicts), streaming a full capture of each method
# through the evaluator in DMA-sized chunks.  What the evaluation itself holds is
# measured below: under 4 KB.
from ri_synth import Synth

from shared import frontend as fe
from shared import ri, ri_step
from shared.variants import by_code

try:
    from array import array
except ImportError:
    from uarray import array

MICROPYTHON_HEAP_KB = 24


def _heap_used():
    try:
        import gc

        gc.collect()
        return gc.mem_alloc()  # MicroPython only
    except AttributeError:
        return None


def _evaluate(variant, method, ri_nohm):
    vbuf = array("H", [0] * 256)
    ibuf = array("H", [0] * 256)
    if method == ri.RI_METHOD_AC:
        # the AC evaluator's file is imported on first use (shared/ri.py evaluator())
        # and stays imported, as on a board after its first AC capture: from the
        # budget above, not part of what one evaluation holds (ri_step is imported
        # at the top, for the linearisation test)
        from shared import ri_ac  # noqa: F401
    else:
        # the step method's arc fit (shared/ri_arc.py) is imported when the first
        # capture is finished and stays imported, the same way
        from shared import ri_arc  # noqa: F401
    before = _heap_used()
    plan = ri.plan_for(by_code(variant).id, method, adc_kind=fe.ADC_STM32G4)
    plan.skew_ns = 0
    synth = Synth(plan, ri_nohm, ripple_codes=400)
    ev = ri.evaluator(plan)
    synth.stream(ev.feed, vbuf, ibuf)
    result = ev.result()
    after = _heap_used()
    if before is not None:
        # plan, synthesiser, evaluator state and the result
        assert after - before < 4096, after - before
    return result


def test_step_capture_fits():
    result = _evaluate("12v", ri.RI_METHOD_STEP, 2000000)
    assert result.status == ri.RI_OK
    assert abs(result.ri_nohm - 2000000) < 10000


def test_ac_capture_fits():
    result = _evaluate("2v", ri.RI_METHOD_AC, 200000)
    assert result.status == ri.RI_OK
    assert abs(result.ri_nohm - 200000) < 1000


def test_rp2040_linearisation_matches_the_frontend_table():
    # constant codes through the step evaluator: each slot sums window-weighted
    # (corrected_x2 - mid-scale)
    plan = ri.plan_for(by_code("12v").id, ri.RI_METHOD_STEP, adc_kind=fe.ADC_RP2040)
    ev = ri_step.StepEvaluator(plan)
    codes = (511, 512, 513, 1536, 2560, 3584, 3000)
    vbuf = array("H", bytes(2 * plan.slot_samples))  # from bytes: no temporary list
    ibuf = array("H", bytes(2 * plan.slot_samples))
    for slot, code in enumerate(codes):
        for j in range(plan.slot_samples):
            vbuf[j] = code
            ibuf[j] = 4000 - code
        ev.feed(vbuf, ibuf, plan.slot_samples)
        w = ev.window_sum
        assert ev._slot_v[slot] == w * (fe.corrected_x2(code, fe.ADC_RP2040) - 4096)
        assert ev._slot_i[slot] == w * (fe.corrected_x2(4000 - code, fe.ADC_RP2040) - 4096)
