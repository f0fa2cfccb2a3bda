# host_tests/dualtest.heap_locked: the proof "allocates nothing" must itself not allocate
# (a star-call does in MicroPython) and must catch a real allocation.
from dualtest import IS_MICROPYTHON, heap_locked, raises


def _add(a, b, c, d, e, f):
    return a + b + c + d + e + f


def _build_list(n):
    return [n] * n


def test_non_allocating_calls_pass_with_up_to_six_arguments():
    assert heap_locked(int) == 0
    assert heap_locked(abs, -3) == 3
    assert heap_locked(_add, 1, 2, 3, 4, 5, 6) == 21


def test_an_allocation_is_caught_under_micropython():
    if IS_MICROPYTHON:
        raises(MemoryError, heap_locked, _build_list, 40)
    else:
        assert heap_locked(_build_list, 3) == [3, 3, 3]
