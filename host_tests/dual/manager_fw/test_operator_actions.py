# The operator's actions are plain core methods (docs/manager.md, "The shell
# contract"): the web interface and the `stringcare` CLI call these and nothing else.
from corefixture import Site

from manager_fw import core as co
from manager_fw import events as ev


def test_equalising_is_switched_per_string():
    site = Site(sizes=(2, 2))
    site.start()
    c = site.core
    assert list(c.strings.enabled) == [1, 1]
    assert c.set_equalising(1, False) and list(c.strings.enabled) == [1, 0]
    assert c.set_equalising(1, True) and list(c.strings.enabled) == [1, 1]
    assert not c.set_equalising(2, False) and not c.set_equalising(-1, True)


def test_an_ri_round_now_and_one_module_now():
    site = Site(sizes=(3,), config={"ri": {"enabled": True}})
    site.start()
    c = site.core
    t0 = site.now_s() - site.shell.start_s
    assert c.start_ri_round(site.now_s()) == co.RI_ROUND_STARTED
    site.run_s(2)
    assert c.start_ri_round(site.now_s()) == co.RI_ROUND_RUNNING
    assert site.ri_starts[0] == (site.ri_starts[0][0], 0) and site.ri_starts[0][0] - t0 <= 3
    site.run_s(120)
    assert [i for _t, i in site.ri_starts] == [0, 1, 2]  # the whole round, in order
    assert c.measure_ri_now(1, site.now_s())
    site.run_s(10)
    assert [i for _t, i in site.ri_starts] == [0, 1, 2, 1]
    assert len(site.events(ev.EV_RI_MEASURED)) == 4
    assert not c.measure_ri_now(3, site.now_s())  # no such module


def test_ri_actions_say_when_ri_is_off():
    site = Site(sizes=(2,))
    c = site.core
    assert c.start_ri_round(site.now_s()) == co.RI_ROUND_OFF
    assert not c.measure_ri_now(0, site.now_s())


def test_mute_and_runaway_reset_without_a_trip():
    site = Site(sizes=(2,), config={"runaway": {"enabled": True}})
    site.start()
    c = site.core
    c.press_mute(site.now_s())
    assert len(site.events(ev.EV_ALARM_MUTED)) == 1
    assert not c.reset_runaway(0, site.now_s())  # nothing latched: nothing logged
    assert not site.events(ev.EV_THERMAL_RUNAWAY)


def test_the_core_says_when_it_next_needs_time_and_what_a_module_shows():
    from manager_fw import core as co

    site = Site(sizes=(2,), config={"cycle_period_ms": 1000})
    site.start()
    c = site.core
    site.run_s(2)
    now = site.bus.now_us & 0x3FFFFFFF
    wait = c.next_wake_us(now)
    assert 0 <= wait <= co.STEP_EVERY_US
    assert c.module_state_name(0) == "ok" and c.module_state_name(1) == "ok"
    site.unplug(1)
    site.run_s(6)  # missed more than 3 polls and silent for more than 3 s
    assert c.module_state_name(1) == "silent" and c.module_state_name(0) == "ok"
