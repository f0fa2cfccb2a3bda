"""Safety properties of the balancing controller under fuzzed manager commands and
battery states (hypothesis), with the simulated board heating from its own bleed:

* it never bleeds below the variant's minimum voltage, outside the equalising
  window, with a stale or missing target, during a discharge, when the battery probe
  is hot, or without a valid measurement;
* the board's true temperature never exceeds its limit (ambient up to 60 degC), even
  though the controller sees it through a sensor that may read up to 2 K low;
* nor does the bleed resistor's body (the hot node, off the board: 31.8 K/W to the
  air), which the die sensor does not see at all.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from boards.sim.frontend import BLEED_BODY_LIMIT_C, SimBoard
from shared import balance as bal
from shared.balance import BalanceController
from shared.compat import TICKS_MAX, ticks_add, ticks_diff
from shared.variants import VARIANTS

events = st.lists(
    st.tuples(
        st.integers(0, 9),  # action
        st.integers(100, 30000),  # ms until the next update
        st.integers(-400, 400),  # target offset from float, mV * 1000 / cells
        st.integers(-40, 25),  # block voltage offset, % of the float voltage / 10
        st.integers(-10, 60),  # ambient degC
        st.one_of(st.none(), st.integers(0, 60)),  # battery probe degC
        st.integers(-2000, 2000),  # internal sensor error, m degC
    ),
    min_size=1,
    max_size=400,
)


@settings(max_examples=150, deadline=None)
@given(
    variant_index=st.integers(0, len(VARIANTS) - 1),
    start=st.integers(0, TICKS_MAX),
    seq=events,
)
def test_never_bleeds_when_forbidden_and_never_overheats(variant_index, start, seq) -> None:
    variant = VARIANTS[variant_index]
    board = SimBoard(variant.id, seed=variant_index)
    board.thermal.temp_c = 25.0
    ctrl = BalanceController(variant)
    now = start
    target_ms = None
    limit_c = variant.board_temp_limit_mc / 1000.0
    duty = 0
    for action, step_ms, target_off, volt_off, ambient, battery, sensor_err in seq:
        if action <= 3:
            ctrl.set_target(now, variant.float_uv + target_off * variant.cells * 1000)
            target_ms = now
        elif action == 4:
            ctrl.set_discharge(not ctrl.discharge)
        elif action == 5:
            ctrl.set_enabled(not ctrl.enabled)
        # the board heats with the duty chosen at the previous update
        voltage_uv = variant.float_uv + variant.float_uv * volt_off // 1000
        ambient_c = float(min(ambient, 60))
        board.heat(step_ms / 1000.0, voltage_uv / 1e6, duty, ambient_c)
        assert board.thermal.temp_c <= limit_c, (board.thermal.temp_c, duty)
        # the bleed resistor's body (hot node) runs far above the die the controller
        # reads: it must stay within its own limit, with derating on the die alone
        assert board.resistor_c <= BLEED_BODY_LIMIT_C, (board.resistor_c, duty)
        now = ticks_add(now, step_ms)
        measured_voltage = None if action == 9 else voltage_uv
        board_mc = int(board.thermal.temp_c * 1000) + sensor_err
        battery_mc = None if battery is None else battery * 1000
        duty = ctrl.update(now, measured_voltage, board_mc, battery_mc)
        fresh = (
            target_ms is not None and 0 <= ticks_diff(now, target_ms) <= variant.target_timeout_ms
        )
        if (
            not fresh
            or ctrl.discharge
            or not ctrl.enabled
            or measured_voltage is None
            or voltage_uv < variant.min_voltage_uv
            or not variant.eq_min_uv <= voltage_uv <= variant.eq_max_uv
            or (battery_mc is not None and battery_mc >= variant.battery_temp_limit_mc)
        ):
            assert duty == 0
            assert ctrl.flags & bal.BAL_INHIBIT_MASK
        assert 0 <= duty <= bal.DUTY_MAX
        assert ctrl.level_pct == duty * 100 // bal.DUTY_MAX


@settings(max_examples=40, deadline=None)
@given(variant_index=st.integers(0, len(VARIANTS) - 1), ambient=st.integers(20, 60))
def test_full_bleed_for_hours_stays_under_the_limit(variant_index, ambient) -> None:
    # the worst case for heat: a block far above target for 6 hours at high ambient
    variant = VARIANTS[variant_index]
    board = SimBoard(variant.id)
    board.thermal.ambient_c = board.thermal.temp_c = float(ambient)
    ctrl = BalanceController(variant)
    high = min(variant.eq_max_uv - 1, variant.float_uv + 50 * variant.prop_band_uv)
    now = 0
    duty = 0
    peak = 0.0
    hot = 0.0
    for _ in range(6 * 3600 // 5):
        ctrl.set_target(now, variant.float_uv)
        board.heat(5.0, high / 1e6, duty, float(ambient))
        peak = max(peak, board.thermal.temp_c)
        hot = max(hot, board.resistor_c)
        now = ticks_add(now, 5000)
        duty = ctrl.update(now, high, int(board.thermal.temp_c * 1000) - 2000)
    assert peak <= variant.board_temp_limit_mc / 1000.0
    assert hot <= BLEED_BODY_LIMIT_C  # the resistor's body: ~2-3 W x 31.8 K/W above the air
    if ambient <= 30:
        assert duty > 0  # derated, not stopped, at ordinary temperatures
