# The few shims that let one source file run unchanged on MicroPython boards and
# on CPython.  Everything in shared/, module_fw/ and manager_fw/ imports these names
# from here instead of scattering try/except around the code.
#
# Tick arithmetic deliberately does NOT delegate to time.ticks_add/ticks_diff:
# the period of MicroPython's ticks depends on the port (2**30 on RP2040/STM32,
# 2**62 on the 64-bit unix port), and the cores must give bit-identical results on
# every interpreter.  We fix the period at 2**30, the board value, and keep every
# intermediate inside the 31-bit small-int range of a Cortex-M0+.

import sys
from array import array

try:
    from micropython import const
except ImportError:  # CPython

    def const(expr):
        return expr


IS_MICROPYTHON = sys.implementation.name == "micropython"

TICKS_PERIOD = const(1 << 30)
TICKS_MAX = const((1 << 30) - 1)
TICKS_HALF = const(1 << 29)

try:
    from time import ticks_ms as _raw_ticks_ms  # type: ignore[attr-defined]
except ImportError:  # CPython
    from time import monotonic_ns as _monotonic_ns

    def _raw_ticks_ms() -> int:
        return _monotonic_ns() // 1000000


def ticks_ms() -> int:
    """Milliseconds from an arbitrary origin, wrapping at TICKS_PERIOD."""
    return _raw_ticks_ms() & TICKS_MAX


def ticks_add(ticks: int, delta: int) -> int:
    """ticks + delta on the tick circle; delta may be negative (|delta| < TICKS_HALF)."""
    return (ticks + delta) & TICKS_MAX


def ticks_diff(end: int, start: int) -> int:
    """Signed distance end - start on the tick circle, in [-TICKS_HALF, TICKS_HALF).

    Both arguments must be values returned by ticks_ms/ticks_add.  No intermediate
    leaves the range +/-(2**30 - 1), so no big integer is ever allocated.
    """
    d = end - start
    if d >= TICKS_HALF:
        d -= TICKS_PERIOD
    elif d < -TICKS_HALF:
        d += TICKS_PERIOD
    return d


def clamp(value: int, low: int, high: int) -> int:
    """value limited to [low, high]."""
    if value < low:
        return low
    if value > high:
        return high
    return value


def div_round(num: int, den: int) -> int:
    """num / den rounded half away from zero, in integers (den > 0).

    Python's // floors towards minus infinity on both interpreters; measurement
    code wants symmetric rounding so that +x and -x scale to +y and -y.
    """
    if num >= 0:
        return (num + den // 2) // den
    return -((-num + den // 2) // den)


def zeros(typecode: str, n: int, clear: bool = True) -> "array[int]":
    """An array of n items ("h", "H", "i", ...), zeroed (clear False: any content), in
    one heap block: MicroPython sizes an array built from a range by the range's length
    at once, where appending grows it block by block and bytes(...) needs a temporary
    block as large beside it (MicroPython has no array * int)."""
    if n > 32768:  # a range's values would not fit 16 bits: grown instead
        a = array(typecode)
        for _ in range(n):
            a.append(0)
        return a
    a = array(typecode, range(n))
    if clear:
        for k in range(n):
            a[k] = 0
    return a
