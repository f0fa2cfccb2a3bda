# Implausible data (docs/manager.md, "Implausible data"): a second device answering as
# a module, and readings outside what the module's variant can measure, put the module
# in the poller's ST_IMPLAUSIBLE state: its readings stay out of the string's average
# and target, balancing, the threshold levels and the runaway trip; an EV_IMPLAUSIBLE
# event and a warning name the module; it keeps counting as answering (no silent alarm)
# and comes back by itself once its data is plausible again.
from corefixture import Site

from manager_fw import events as ev
from manager_fw import poller as pl
from manager_fw import strings as strs


def implausible_events(site):
    return [(e[2], e[5], e[4]) for e in site.events(ev.EV_IMPLAUSIBLE)]


def attach_twin(site, of_module, slot_shift):
    """A second device with module `of_module`'s address, answering POLL_GROUP
    `slot_shift` slots after it (a free slot: no collision on the line)."""
    from corefixture import uid_for

    from boards.sim.bus import ResponderNode
    from module_fw.responder import Responder
    from module_fw.state import ModuleState
    from shared import protocol as p

    s = ModuleState(uid_for(99), variant_id=site.cfg.variant)
    s.address = site.cfg.layout.address(of_module)
    s.voltage_uv = 13000000
    s.temp_mc = 25000
    shift = p.chars_us(slot_shift, p.SLOT_CHARS, site.cfg.baud)

    class Late(ResponderNode):
        def _handle(self, frame, end_us, bus):
            r = self.responder
            n = r.handle(frame, (end_us // 1000) & 0x3FFFFFFF)
            if n:
                delay = r.tx_delay_us if r.tx_delay_us else self.latency_us
                if frame.cmd == p.CMD_POLL_GROUP:
                    delay += shift
                bus.transmit(self, r.tx[:n], end_us + delay)

    node = Late(Responder(s))
    site.bus.attach(node)
    return s, node


def test_two_devices_answering_as_one_module():
    site = Site(sizes=(4,), absent=(3,), config={"silent": {"alarm_delay_s": 60}})
    site.start()
    c = site.core
    site.run_s(5)
    twin, node = attach_twin(site, 1, 2)  # answers as module 2 in module 4's free slot
    site.run_s(10)
    a = c.layout.address(1)
    assert c.poller.state[a] == pl.ST_IMPLAUSIBLE and c.poller.duplicate[a] > 0
    assert implausible_events(site) == [(1, ev.IMPLAUSIBLE_DUPLICATE, 0)]
    text = c.module_implausible(1)
    assert text.startswith("module 2 (address 2): two devices answer as this module"), text
    assert text in c.problems and c.warning_total() >= 1
    # kept out of the average and the target; equalising of its string waits
    st = c.strings
    assert st.answered[0] == 2  # modules 1 and 3 (4 is absent, 2 implausible)
    assert st.avg_mv[0] == 13620
    assert st.reason[0] in (strs.REASON_SILENT, strs.REASON_IMPLAUSIBLE)
    assert not c.fresh[1]
    # it answers: no silent alarm for it, while module 4 (absent) does get one
    site.run_s(90)
    silent = [e[2] for e in site.events(ev.EV_MODULE_SILENT)]
    assert silent == [3], silent
    assert c.module_poll_state(1) == pl.ST_IMPLAUSIBLE
    # the second device goes: after the hold, module 2 is plausible again
    site.bus.unplug(node)
    site.run_s(40)
    assert c.poller.state[a] == pl.ST_OK and c.module_implausible(1) is None
    assert text not in c.problems
    assert implausible_events(site)[-1] == (1, ev.IMPLAUSIBLE_CLEARED, 0)
    assert c.fresh[1]


def test_readings_outside_the_measuring_range_are_not_used():
    site = Site(sizes=(4,))
    site.start()
    c = site.core
    site.run_s(5)
    st = c.strings
    assert st.equalising[0] and st.avg_mv[0] == 13620
    site.modules[1].voltage_mv = 30000  # a 12 V block module measures 8-17 V
    site.modules[2].temp_cc = -4000  # an open temperature probe
    site.run_s(10)
    evs = implausible_events(site)
    assert (1, ev.IMPLAUSIBLE_RANGE, 30000000) in evs and (2, ev.IMPLAUSIBLE_RANGE, 13620000) in evs
    text = c.module_implausible(1)
    assert text.startswith("module 2: reads 30.000 V and 22.00 °C, outside what a 12 V block "
                           "module measures (8.000-17.000 V"), text  # fmt: skip
    assert "-40.00 °C" in c.module_implausible(2)
    # not in the average, the target, the levels: no voltage alarm for 30 V, no
    # temperature alarm for -40 °C; the string stops equalising (its target is unknown)
    assert st.answered[0] == 2 and st.avg_mv[0] == 13620
    assert not st.equalising[0] and st.reason[0] == strs.REASON_IMPLAUSIBLE
    assert c.alarm_total() == 0 and not site.events(ev.EV_LEVEL)
    assert c.voltage_uv[1] == 13620000  # the last plausible reading is what is shown/stored
    assert c.warning_total() >= 1
    site.modules[1].voltage_mv = 13650
    site.modules[2].temp_cc = 2300
    site.run_s(10)
    assert c.module_implausible(1) is None and c.module_implausible(2) is None
    assert st.equalising[0] and c.voltage_uv[1] == 13650000
    assert not [p for p in c.problems if "reads" in p]


def test_the_sites_copy_of_the_measuring_ranges_agrees_with_the_variants():
    from manager_fw.site import VARIANT_MEASURE_MV
    from shared import variants as va

    for v in va.VARIANTS:
        assert VARIANT_MEASURE_MV[v.id] == (v.measure_min_uv // 1000, v.measure_max_uv // 1000)
