# shared/intmath: the integer helpers behind every scale factor and window.
from dualtest import LCG, heap_locked, raises

from shared.intmath import (
    SMALL_INT_LIMIT,
    cos_q15,
    isqrt,
    median_of,
    mul_q30,
    sin_q15,
)

try:
    from array import array
except ImportError:
    from uarray import array


def _exact_round(a, k):
    # reference: round half away from zero of a*k / 2**30 (big ints are fine here)
    num = a * k
    if num >= 0:
        return (num + (1 << 29)) >> 30
    return -((-num + (1 << 29)) >> 30)


def test_mul_q30_matches_exact_product_within_one():
    rng = LCG(7)
    for _ in range(2000):
        a = rng.between(-(SMALL_INT_LIMIT - 1), SMALL_INT_LIMIT - 1)
        k = rng.between(0, SMALL_INT_LIMIT - 1)
        assert abs(mul_q30(a, k) - _exact_round(a, k)) <= 1


def test_mul_q30_edges():
    top = SMALL_INT_LIMIT - 1
    assert abs(mul_q30(top, top) - _exact_round(top, top)) <= 1
    assert abs(mul_q30(-top, top) - _exact_round(-top, top)) <= 1
    assert mul_q30(0, top) == 0
    assert mul_q30(top, 0) == 0
    assert mul_q30(12345, 1 << 29) == 6173  # 12345 / 2 rounded (6172.5 -> 6173)


def test_mul_q30_allocates_nothing():
    assert heap_locked(mul_q30, 987654321, 876543210) == _exact_round(987654321, 876543210)


def test_sine_table_accuracy():
    # reference values of sin(2 pi p / 16) * 32767 (p = 0..15), from the exact values
    exact = (0, 12540, 23170, 30273, 32767, 30273, 23170, 12540,
             0, -12540, -23170, -30273, -32767, -30273, -23170, -12540)  # fmt: skip
    for p in range(16):
        assert abs(sin_q15(p << 12) - exact[p]) <= 1
        assert abs(cos_q15(p << 12) - exact[(p + 4) & 15]) <= 1
    # between table points the linear interpolation stays within 3 counts (7.5e-5)
    for phase in range(0, 65536, 97):
        s = sin_q15(phase)
        c = cos_q15(phase)
        # s^2 + c^2 = 1 within the interpolation error
        assert abs(s * s + c * c - 32767 * 32767) <= 6 * 32767
    assert sin_q15(65536 + 16384) == 32767  # wraps


def test_isqrt():
    for n in (0, 1, 2, 3, 4, 15, 16, 17, 10**12, 2**61 + 12345, 10**40):
        r = isqrt(n)
        assert r * r <= n < (r + 1) * (r + 1)
    raises(ValueError, isqrt, -1)


def test_median_of_small_windows_without_allocation():
    values = array("i", [5, -3, 9, 9, 1])
    scratch = array("i", [0] * 5)
    assert heap_locked(median_of, values, 5, scratch) == 5
    assert median_of(values, 3, scratch) == 5
    assert median_of(values, 4, scratch) == 5  # lower middle of -3, 5, 9, 9
    assert median_of(values, 1, scratch) == 5
    # the input is not reordered
    assert list(values) == [5, -3, 9, 9, 1]


def test_median_matches_the_portable_loop():
    # CPython uses the built-in sort; MicroPython the allocation-free loop: same results
    from array import array

    from shared import intmath

    loop = getattr(intmath, "_median_of_loop", intmath.median_of)
    rng = LCG(21)
    for n in (1, 2, 3, 5, 7, 9):
        for _ in range(50):
            vals = array("i", [rng.between(-100000, 100000) for _ in range(n)])
            s1 = array("i", [0] * n)
            s2 = array("i", [0] * n)
            assert intmath.median_of(vals, n, s1) == loop(vals, n, s2)
            assert list(s1) == list(s2)
