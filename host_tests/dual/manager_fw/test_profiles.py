# manager_fw/profiles: chemistry profiles with default thresholds, scaled to blocks.
from dualtest import raises

from manager_fw import profiles as pr
from shared.thresholds import (
    COND_HIGH_WARNING,
    COND_LOW_ALARM,
    COND_NORMAL,
    SPREAD_MAX_UV,
    SPREAD_MIN_UV,
    AlarmEvaluator,
)


def test_every_profile_is_consistent_for_every_block_size():
    for p in pr.PROFILES:
        # float inside the equalising window, the window inside the warning levels,
        # boost above float, end-of-discharge below everything in float charge
        assert p.low_alarm_uv < p.low_warning_uv <= p.window_low_uv < p.float_uv
        assert p.float_uv < p.window_high_uv <= p.high_warning_uv < p.high_alarm_uv
        assert p.float_uv < p.boost_uv <= p.high_alarm_uv, p.key
        assert p.discharge_low_alarm_uv < p.discharge_low_warning_uv < p.low_alarm_uv
        assert p.cell_nominal_uv < p.float_uv
        assert p.temp_low_alarm_mc < p.temp_low_warning_mc < 20000 < 25000
        assert 25000 < p.temp_high_warning_mc < p.temp_high_alarm_mc
        for cells in range(1, 17):
            t = pr.thresholds_for(p, cells)
            assert SPREAD_MIN_UV <= t.spread_warning_uv < t.spread_alarm_uv <= SPREAD_MAX_UV
            b = pr.block_settings(p, cells)
            assert t.voltage_low_warning_uv <= b.window_low_uv < b.float_uv < b.window_high_uv
            assert b.window_high_uv <= t.voltage_high_warning_uv
            # everything stays a small int on a 31-bit board
            assert t.voltage_high_alarm_uv < (1 << 30)


def test_block_cells_for_the_module_variants():
    assert pr.block_cells(pr.VRLA, 2000) == 1
    assert pr.block_cells(pr.VRLA, 6000) == 3
    assert pr.block_cells(pr.VRLA, 12000) == 6
    assert pr.block_cells(pr.VRLA, 16000) == 8
    assert pr.block_cells(pr.NICD, 12000) == 10
    assert pr.block_cells(pr.NICD, 1200) == 1
    assert pr.block_cells(pr.LIFEPO4, 12800) == 4
    assert pr.block_cells(pr.LIFEPO4, 12000) == 4  # "12 V" LiFePO4 blocks are 4 cells
    assert pr.block_cells(pr.LTO, 12000) == 5
    e = raises(ValueError, pr.block_cells, pr.LIFEPO4, 2000)
    assert "not a whole number of 3200 mV" in str(e) and "cell count" in str(e)
    e = raises(ValueError, pr.profile, "lipo")
    assert "unknown chemistry 'lipo'" in str(e) and "vrla, gel, flooded, nicd, lifepo4, lto" in str(
        e
    )
    assert pr.profile("gel") is pr.GEL
    raises(ValueError, pr.block_settings, pr.VRLA, 0)


def test_vrla_12v_defaults_follow_the_spec_guidance():
    p = pr.profile("vrla")
    t = pr.thresholds_for(p, 6, ri_baseline_nohm=15000000)
    # SPEC §3: low temperature alarm 10 °C, high alarm about 30 °C
    assert t.temp_low_alarm_mc == 10000 and t.temp_high_alarm_mc == 30000
    # float 2.27 V/cell -> 13.62 V; high warning 14.10 V, alarm 14.70 V
    assert pr.block_settings(p, 6).float_uv == 13620000
    assert t.voltage_high_warning_uv == 14100000 and t.voltage_high_alarm_uv == 14700000
    assert t.voltage_hysteresis_uv == 30000
    # maximum difference in a string: 0.24 V warning, 0.48 V alarm for 12 V blocks
    assert t.spread_warning_uv == 240000 and t.spread_alarm_uv == 480000
    # Ri: mean 15 mΩ -> accepted up to 18 mΩ -> warning 23.4 mΩ
    assert t.ri_warning_nohm == 23400000
    # 2 V cells: the spread is clamped to the settable 0.05 V minimum
    one = pr.thresholds_for(p, 1)
    assert one.spread_warning_uv == 50000 and one.spread_alarm_uv == 100000
    # no baseline yet: Ri is not evaluated
    assert pr.thresholds_for(p, 6).ri_warning_nohm > 60000000


def test_profile_thresholds_drive_the_evaluator():
    t = pr.thresholds_for(pr.LIFEPO4, 4)
    ev = AlarmEvaluator([1], t)
    assert ev.evaluate_voltage(0, 0, 13600000) == COND_NORMAL  # 3.40 V/cell float
    for n in range(3):
        c = ev.evaluate_voltage(n, 0, 14250000)  # 3.56 V/cell: above 3.55
    assert c == COND_HIGH_WARNING
    for n in range(3):
        c = ev.evaluate_temperature(n, 0, -2000)  # charging below 0 °C is refused
    assert c == COND_LOW_ALARM
