# Helpers for tests that run under both CPython and MicroPython.
#
# Tests under host_tests/dual/ are plain functions named test_* that use `assert`.
# pytest runs them on CPython; the dual-interpreter plugin
# (tools/stringcare/dev/dualtest_plugin.py) runs the very same function again in the
# MicroPython unix port.  pytest itself is not importable there, so these few helpers
# stand in for the parts of pytest the tests need.

import sys

IS_MICROPYTHON = sys.implementation.name == "micropython"


def raises(exc_type, func, *args, **kwargs):
    """Call func(*args, **kwargs) and return the exc_type instance it raised.

    Fails (AssertionError) when func returns normally or raises something else.
    """
    try:
        func(*args, **kwargs)
    except exc_type as exc:
        return exc
    raise AssertionError("expected %s from %r" % (exc_type.__name__, func))


class LCG:
    """Small deterministic pseudo-random generator, identical on both interpreters.

    Numerical Recipes constants, state kept in 32 bits.  Used to generate fuzz
    corpora and seeded inputs without depending on either interpreter's random.
    """

    def __init__(self, seed):
        self.state = seed & 0xFFFFFFFF

    def next_u32(self):
        self.state = (self.state * 1664525 + 1013904223) & 0xFFFFFFFF
        return self.state

    def below(self, n):
        """An integer in [0, n)."""
        return (self.next_u32() >> 8) % n

    def between(self, low, high):
        """An integer in [low, high]."""
        return low + self.below(high - low + 1)

    def bytes(self, n):
        out = bytearray(n)
        for i in range(n):
            out[i] = self.next_u32() >> 24
        return bytes(out)


def heap_locked(func, *args):
    """Run func(*args) with the MicroPython heap locked and return its result.

    On MicroPython any allocation inside func raises MemoryError, so a test that
    calls this proves the code path allocates nothing.  On CPython there is no heap
    lock and the call is plain.
    """
    if not IS_MICROPYTHON:
        return func(*args)
    import micropython

    # A call with *args builds its argument array on the heap in MicroPython, so
    # the call under the lock spells the arguments out (up to six).
    n = len(args)
    if n > 6:
        raise ValueError("heap_locked takes at most 6 arguments")
    micropython.heap_lock()
    try:
        if n == 0:
            result = func()
        elif n == 1:
            result = func(args[0])
        elif n == 2:
            result = func(args[0], args[1])
        elif n == 3:
            result = func(args[0], args[1], args[2])
        elif n == 4:
            result = func(args[0], args[1], args[2], args[3])
        elif n == 5:
            result = func(args[0], args[1], args[2], args[3], args[4])
        else:
            result = func(args[0], args[1], args[2], args[3], args[4], args[5])
    finally:
        micropython.heap_unlock()
    return result
