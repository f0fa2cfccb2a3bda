"""stringcare calibrate voltage: the two points it suggests span most of the range the
module measures (docs/measurement.md: a narrow pair extrapolates the meter's error)."""

from __future__ import annotations

from shared import variants
from stringcare.commands import calibrate


def test_points_lie_a_tenth_inside_the_measured_range() -> None:
    for v in variants.VARIANTS:
        lo, hi = calibrate.cal_points_uv(v)
        top = min(v.nominal_max_uv, v.measure_max_uv * 95 // 100)
        span = top - v.nominal_min_uv
        assert v.nominal_min_uv < lo < hi < top, v.code
        assert hi - lo >= span * 79 // 100, v.code
        # the equalising window (where balancing reads) lies between them or close
        assert lo <= v.eq_min_uv, v.code
    assert calibrate.cal_points_uv(variants.by_code("12v")) == (8815000, 15335000)
