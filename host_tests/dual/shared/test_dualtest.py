# host_tests/dualtest.heap_locked must really catch allocations under MicroPython,
# or every "allocates nothing" test would prove nothing.
from dualtest import IS_MICROPYTHON, heap_locked, raises


def _allocates(n):
    return [n, n + 1, n + 2]


def _adds(a, b, c):
    return a + b + c


def test_heap_locked_catches_an_allocation():
    if IS_MICROPYTHON:
        raises(MemoryError, heap_locked, _allocates, 1)
    else:
        assert heap_locked(_allocates, 1) == [1, 2, 3]


def test_heap_locked_passes_arguments_through():
    assert heap_locked(_adds, 1, 2, 3) == 6
