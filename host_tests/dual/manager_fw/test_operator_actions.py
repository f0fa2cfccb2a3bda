# The operator's actions are plain core methods: the web interface and the `stringcare`
# CLI (manager_fw/actions.py) call these.
from corefixture import Site

from manager_fw import events as ev


def test_equalising_is_switched_per_string():
    site = Site(sizes=(2, 2))
    site.start()
    c = site.core
    assert list(c.strings.enabled) == [1, 1]
    assert c.set_equalising(1, False) and list(c.strings.enabled) == [1, 0]
    assert c.set_equalising(1, True) and list(c.strings.enabled) == [1, 1]
    assert not c.set_equalising(2, False) and not c.set_equalising(-1, True)


def test_mute_and_runaway_reset_without_a_trip():
    site = Site(sizes=(2,), config={"runaway": {"enabled": True}})
    site.start()
    c = site.core
    c.press_mute(site.now_s())
    assert len(site.events(ev.EV_ALARM_MUTED)) == 1
    assert not c.reset_runaway(0, site.now_s())  # nothing latched: nothing logged
    assert not site.events(ev.EV_THERMAL_RUNAWAY)
