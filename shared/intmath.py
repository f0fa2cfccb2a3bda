# Integer arithmetic the measurement code needs, written so that hot paths never
# create a big integer (a heap allocation on MicroPython, and slower everywhere).
#
# The board's small ints are 31-bit (|x| < 2**30).  Every function states the range
# of its arguments for which no intermediate leaves that range; callers keep to it
# and the tests in host_tests/dual/shared/test_intmath.py check the edges.
from shared.compat import IS_MICROPYTHON, const

SMALL_INT_LIMIT = const(1 << 30)  # |x| < this is a small int on an RP2040
_MASK15 = const(0x7FFF)

# sin(pi/2 * i/128) * 32767 for i = 0..128: a quarter wave, interpolated linearly
# by sin_q15().  The largest interpolation error is 7.5e-5 of full scale.
_QUARTER_SINE_Q15 = (
    0, 402, 804, 1206, 1608, 2009, 2410, 2811, 3212, 3612, 4011, 4410, 4808, 5205, 5602,
    5998, 6393, 6786, 7179, 7571, 7962, 8351, 8739, 9126, 9512, 9896, 10278, 10659, 11039,
    11417, 11793, 12167, 12539, 12910, 13279, 13645, 14010, 14372, 14732, 15090, 15446,
    15800, 16151, 16499, 16846, 17189, 17530, 17869, 18204, 18537, 18868, 19195, 19519,
    19841, 20159, 20475, 20787, 21096, 21403, 21705, 22005, 22301, 22594, 22884, 23170,
    23452, 23731, 24007, 24279, 24547, 24811, 25072, 25329, 25582, 25832, 26077, 26319,
    26556, 26790, 27019, 27245, 27466, 27683, 27896, 28105, 28310, 28510, 28706, 28898,
    29085, 29268, 29447, 29621, 29791, 29956, 30117, 30273, 30424, 30571, 30714, 30852,
    30985, 31113, 31237, 31356, 31470, 31580, 31685, 31785, 31880, 31971, 32057, 32137,
    32213, 32285, 32351, 32412, 32469, 32521, 32567, 32609, 32646, 32678, 32705, 32728,
    32745, 32757, 32765, 32767,
)  # fmt: skip

TURN_Q16 = const(65536)  # one full turn in sin_q15() phase units


def mul_q30(a: int, k: int) -> int:
    """round(a * k / 2**30) without big integers.

    |a| < 2**30 and 0 <= k < 2**30 (a multiplier below 1.0 in Q30).  The result is
    within 1 of the exact quotient.  Used to scale filter states (counts in a
    fixed-point format) to microvolts: the scale factor is prepared once, in Q30.
    """
    negative = a < 0
    if negative:
        a = -a
    ah = a >> 15
    al = a & _MASK15
    kh = k >> 15
    kl = k & _MASK15
    t1 = ah * kl  # < 2**30
    t2 = al * kh  # < 2**30
    t3 = al * kl  # < 2**30
    # a*k/2**30 = ah*kh + (t1 + t2)/2**15 + t3/2**30; the fraction is gathered in
    # units of 2**-15 and rounded to nearest.
    frac = (t1 & _MASK15) + (t2 & _MASK15) + (t3 >> 15) + (1 << 14)
    r = ah * kh + (t1 >> 15) + (t2 >> 15) + (frac >> 15)
    return -r if negative else r


def sin_q15(phase_q16: int) -> int:
    """sin(2*pi*phase) * 32767, phase in turns * 65536 (any integer, wraps)."""
    p = phase_q16 & 0xFFFF
    quadrant = p >> 14
    x = p & 0x3FFF  # position inside the quadrant, 0..16383
    if quadrant & 1:
        x = 0x4000 - x
    i = x >> 7  # table index 0..128
    f = x & 0x7F
    if i >= 128:
        v = 32767
    else:
        a = _QUARTER_SINE_Q15[i]
        v = a + (((_QUARTER_SINE_Q15[i + 1] - a) * f + 64) >> 7)
    return -v if quadrant >= 2 else v


def cos_q15(phase_q16: int) -> int:
    """cos(2*pi*phase) * 32767, phase as in sin_q15()."""
    return sin_q15(phase_q16 + 0x4000)


def isqrt(n: int) -> int:
    """floor(sqrt(n)) for n >= 0 (any size; not for hot paths)."""
    if n < 0:
        raise ValueError("isqrt of a negative number")
    if n < 2:
        return n
    x = n
    y = (x + 1) >> 1
    while y < x:
        x = y
        y = (x + n // x) >> 1
    return x


def median_of(values, count: int, scratch) -> int:
    """Median of values[0:count], sorted in `scratch` (same or larger length).

    Insertion sort on a preallocated buffer: no allocation, fine for the short
    windows (3..9) the outlier filter uses.  For an even count the lower middle.
    """
    for i in range(count):
        v = values[i]
        j = i - 1
        while j >= 0 and scratch[j] > v:
            scratch[j + 1] = scratch[j]
            j -= 1
        scratch[j + 1] = v
    return scratch[(count - 1) >> 1]


if not IS_MICROPYTHON:
    _median_of_loop = median_of

    def median_of(values, count: int, scratch) -> int:
        """CPython (host tools, simulator): the same result with the built-in sort."""
        ordered = sorted(values[:count])
        for i in range(count):
            scratch[i] = ordered[i]
        return ordered[(count - 1) >> 1]
