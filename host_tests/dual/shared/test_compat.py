# shared/compat: the tick arithmetic and integer helpers every core relies on.
from shared import compat
from shared.compat import TICKS_HALF, TICKS_MAX, TICKS_PERIOD, ticks_add, ticks_diff


def test_period_is_the_board_value():
    # RP2040/STM32 ports wrap ticks at 2**30; the shim uses that on every interpreter.
    assert TICKS_PERIOD == 1 << 30
    assert TICKS_MAX == TICKS_PERIOD - 1
    assert TICKS_HALF == TICKS_PERIOD // 2


def test_ticks_ms_is_in_range_and_monotonic():
    a = compat.ticks_ms()
    b = compat.ticks_ms()
    assert 0 <= a <= TICKS_MAX
    assert 0 <= b <= TICKS_MAX
    assert 0 <= ticks_diff(b, a) < 1000


def test_ticks_add_wraps():
    assert ticks_add(TICKS_MAX, 1) == 0
    assert ticks_add(0, -1) == TICKS_MAX
    assert ticks_add(TICKS_MAX - 5, 10) == 4
    assert ticks_add(100, 250) == 350


def test_ticks_diff_across_wrap():
    before = TICKS_MAX - 99  # 100 ms before the wrap
    after = ticks_add(before, 300)
    assert after == 200
    assert ticks_diff(after, before) == 300
    assert ticks_diff(before, after) == -300


def test_ticks_diff_range_limits():
    assert ticks_diff(TICKS_HALF - 1, 0) == TICKS_HALF - 1
    assert ticks_diff(TICKS_HALF, 0) == -TICKS_HALF
    assert ticks_diff(0, TICKS_HALF) == -TICKS_HALF
    assert ticks_diff(0, TICKS_HALF + 1) == TICKS_HALF - 1


def test_ticks_diff_stays_in_small_int_range():
    # Every intermediate must fit a Cortex-M0+ small int (|x| < 2**30).
    limit = 1 << 30
    for a in (0, 1, TICKS_HALF - 1, TICKS_HALF, TICKS_MAX):
        for b in (0, 1, TICKS_HALF - 1, TICKS_HALF, TICKS_MAX):
            d = ticks_diff(a, b)
            assert -limit < a - b < limit
            assert -TICKS_HALF <= d < TICKS_HALF
            assert ticks_add(b, d) == a


def test_const_returns_its_value():
    assert compat.const(42) == 42


def test_clamp():
    assert compat.clamp(5, 0, 10) == 5
    assert compat.clamp(-1, 0, 10) == 0
    assert compat.clamp(11, 0, 10) == 10


def test_div_round_is_symmetric():
    assert compat.div_round(5, 2) == 3
    assert compat.div_round(-5, 2) == -3
    assert compat.div_round(4, 3) == 1
    assert compat.div_round(-4, 3) == -1
    assert compat.div_round(0, 7) == 0
    for n in range(-50, 51):
        assert compat.div_round(-n, 7) == -compat.div_round(n, 7)
