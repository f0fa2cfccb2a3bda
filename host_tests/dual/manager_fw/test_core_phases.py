# Manager core, charge phases (manager_fw/phases.py, SPEC §3a): float, discharge,
# recharge, boost per string; a normal recharge raises no low-voltage warning, a slow
# one raises one EV_RECHARGE_SLOW naming the lowest block and the float levels return.
from corefixture import Site

from manager_fw import events as ev
from manager_fw import phases as ph
from shared import thresholds as th


def phase_events(site):
    return [(e[3], e[5], e[6]) for e in site.events(ev.EV_CHARGE_PHASE)]


def low_voltage_events(site):
    return [e for e in site.events(ev.EV_LEVEL) if e[5] == th.Q_VOLTAGE]


def outage(site, volts_after):
    """Mains fail for 3 min (the blocks sag to 11.8 V), then the mains return and the
    blocks sit at volts_after (mV, per module) while the charger brings them up."""
    c = site.core
    c.set_ups_input(True)
    for m in site.modules:
        m.voltage_mv = 11800
    site.run_s(180)
    assert c.judge.phases.phase[0] == ph.PH_DISCHARGE
    c.set_ups_input(False)
    for i in range(len(site.modules)):
        site.modules[i].voltage_mv = volts_after[i]


CONFIG = {"io": {"ups_input": {"source": "board"}}}


def test_a_normal_recharge_raises_no_low_voltage_warning():
    site = Site(sizes=(4,), config=CONFIG)
    site.start()
    c = site.core
    site.run_s(10)
    assert c.judge.phases.name(0) == "float"
    outage(site, [12600, 12550, 12650, 12600])  # recharging: below the float band
    site.run_s(600)
    assert c.judge.phases.phase[0] == ph.PH_RECHARGE and not c.discharge.active[0]
    assert c.judge.relaxed(0)
    for v in (12900, 13300, 13620):  # the charger brings the string up
        for m in site.modules:
            m.voltage_mv = v
        site.run_s(600)
    site.run_s(ph.SETTLE_S)  # back in the float band, and settled
    assert c.judge.phases.name(0) == "float" and not c.judge.relaxed(0)
    assert low_voltage_events(site) == []  # none in the discharge, none in the recharge
    assert phase_events(site) == [
        (0, ph.PH_DISCHARGE, ph.PH_FLOAT),
        (0, ph.PH_RECHARGE, ph.PH_DISCHARGE),
        (0, ph.PH_FLOAT, ph.PH_RECHARGE),
    ]
    assert site.events(ev.EV_RECHARGE_SLOW) == []


def test_a_slow_recharge_raises_one_event_and_the_float_levels_return():
    config = {"io": {"ups_input": {"source": "board"}}, "discharge": {"recharge_max_s": 900}}
    site = Site(sizes=(4,), config=config)
    site.start()
    c = site.core
    site.run_s(10)
    outage(site, [13400, 13400, 12500, 13400])  # block 3 does not take charge
    site.run_s(600)
    assert c.judge.phases.phase[0] == ph.PH_RECHARGE and c.judge.relaxed(0)
    assert low_voltage_events(site) == []
    site.run_s(600)  # 20 min after the end of the discharge: slow
    slow = site.events(ev.EV_RECHARGE_SLOW)
    assert len(slow) == 1 and slow[0][2] == 2 and slow[0][3] == 0 and slow[0][4] == 12500
    assert 15 <= slow[0][6] <= 20  # minutes since the recharge began
    assert not c.judge.relaxed(0) and c.judge.phases.name(0) == "recharge"
    # the float levels are back: block 3 now warns (12.5 V < 13.08 V)
    low = low_voltage_events(site)
    assert [e[2] for e in low] == [2] and low[0][6] & 0xFF != th.COND_NORMAL
    site.run_s(1800)
    assert len(site.events(ev.EV_RECHARGE_SLOW)) == 1  # one event, not one per cycle
    # the block recovers: float, and the warning clears
    site.modules[2].voltage_mv = 13500
    site.run_s(60 + ph.SETTLE_S)
    assert c.judge.phases.name(0) == "float"
    assert c.alarms.condition(2, th.Q_VOLTAGE) == th.COND_NORMAL


def test_boost_is_a_phase_of_its_own():
    site = Site(sizes=(4,))
    site.start()
    c = site.core
    site.run_s(10)
    for m in site.modules:
        m.voltage_mv = 14400  # 2.40 V/cell: above the equalising window
    site.run_s(10)
    assert c.judge.phases.name(0) == "boost"
    for m in site.modules:
        m.voltage_mv = 13620
    site.run_s(10)
    assert c.judge.phases.name(0) == "float"
    assert phase_events(site) == [(0, ph.PH_BOOST, ph.PH_FLOAT), (0, ph.PH_FLOAT, ph.PH_BOOST)]


def test_on_boost_the_high_voltage_levels_follow_the_charger():
    # VRLA: float 2.27, boost 2.40 V/cell; the float levels warn at 2.35 and alarm at
    # 2.45 V/cell (14.1 / 14.7 V on a 12 V block).  On boost they move up by the boost
    # step, 0.13 V/cell (0.78 V): 14.88 / 15.48 V.
    site = Site(sizes=(4,))
    site.start()
    c = site.core
    site.run_s(10)
    for m in site.modules:
        m.voltage_mv = 14400
    site.modules[3].voltage_mv = 14800  # the highest block of a boost, still in range
    site.run_s(600)
    assert c.judge.phases.name(0) == "boost"
    assert low_voltage_events(site) == []  # no voltage condition at all: none high
    site.modules[3].voltage_mv = 15000  # 2.50 V/cell on boost: too high even so
    site.run_s(60)
    assert c.alarms.condition(3, th.Q_VOLTAGE) == th.COND_HIGH_WARNING
    # back on float, 14.3 V is above the float level again
    for m in site.modules:
        m.voltage_mv = 13620
    site.modules[3].voltage_mv = 14300
    site.run_s(60)
    assert c.judge.phases.name(0) == "float"
    assert c.alarms.condition(3, th.Q_VOLTAGE) == th.COND_HIGH_WARNING
    assert c.alarms.condition(0, th.Q_VOLTAGE) == th.COND_NORMAL


def test_phase_transitions_as_a_table():
    phs = ph.ChargePhases(1, 3600)
    lo, hi = 13080, 14100
    steps = [
        # (t, discharging, avg, lowest ok) -> phase
        (0, False, 13600, True, ph.PH_FLOAT),
        (10, True, 12000, False, ph.PH_DISCHARGE),
        (20, False, 12600, False, ph.PH_RECHARGE),
        (30, False, 13200, False, ph.PH_RECHARGE),  # the average is back, a block is not
        (40, True, 12000, False, ph.PH_DISCHARGE),  # the mains fail again
        (50, False, 12600, False, ph.PH_RECHARGE),
        (60, False, 14300, True, ph.PH_RECHARGE),  # recharged at the boost voltage ...
        (60 + ph.SETTLE_S, False, 14300, True, ph.PH_BOOST),  # ... and settled
        (70 + ph.SETTLE_S, False, 13600, True, ph.PH_FLOAT),
    ]
    for t, disch, avg, ok, want in steps:
        phs.begin_update()
        phs.update(t, 0, disch, True, avg, lo, hi, ok)
        assert phs.phase[0] == want, (t, phs.name(0))
    # slow: exactly once, at recharge_max_s
    phs.begin_update()
    phs.update(100, 0, True, True, 12000, lo, hi, False)
    phs.update(110, 0, False, True, 12500, lo, hi, False)
    news = 0
    for t in range(120, 110 + 3600 * 2, 60):
        phs.begin_update()
        phs.update(t, 0, False, True, 12500, lo, hi, False)
        news += len(phs.slow_now)
        if t < 110 + 3600:
            assert phs.relaxed(0)
    assert news == 1 and not phs.relaxed(0)


def test_a_recharge_ends_only_once_the_blocks_have_settled():
    # site-centre-tapped-ups: the recharge's end condition held for one cycle, then a
    # block fell below the float low-warning level for minutes while a block that had
    # filled first climbed (the charger holds the string's sum).  The float levels
    # return only after the condition has held SETTLE_S.
    phs = ph.ChargePhases(1, 43200)
    lo, hi = 13080, 14100
    phs.update(0, 0, True, True, 12000, lo, hi, False)
    phs.update(900, 0, False, True, 13000, lo, hi, False)
    assert phs.phase[0] == ph.PH_RECHARGE
    phs.update(1900, 0, False, True, 13600, lo, hi, True)  # every block back: not yet
    assert phs.phase[0] == ph.PH_RECHARGE and phs.relaxed(0)
    phs.update(2050, 0, False, True, 13600, lo, hi, False)  # a block dips 2.5 min later
    assert phs.phase[0] == ph.PH_RECHARGE and phs.relaxed(0)
    phs.update(2320, 0, False, True, 13600, lo, hi, True)  # back 4.5 min later
    phs.update(2320 + ph.SETTLE_S - 10, 0, False, True, 13600, lo, hi, True)
    assert phs.phase[0] == ph.PH_RECHARGE  # the clock started again at 2320
    phs.begin_update()
    phs.update(2320 + ph.SETTLE_S, 0, False, True, 13600, lo, hi, True)
    assert phs.phase[0] == ph.PH_FLOAT and not phs.relaxed(0)
    assert phs.changed == [0] and phs.previous[0] == ph.PH_RECHARGE
