# Manager core, discharges: detection from a UPS input (manager board or relay/IO box),
# a string current sensor and the voltage drop, how fast each one is, the DISCHARGE flag
# to the modules, the counter, the deepest point, the end of a discharge.
from corefixture import Site

from manager_fw import discharge as dis
from manager_fw import events as ev
from shared import protocol as p


def started_at(site, string):
    for e in site.events(ev.EV_DISCHARGE_START):
        if e[3] == string:
            return e[0]
    return None


def test_detection_per_source_and_how_fast():
    site = Site(
        config={
            "strings": [{"modules": 2}, {"modules": 2, "current_sensor": 2}, {"modules": 2}],
            "io": {"ups_input": {"source": "board", "strings": [1]}},
        },
    )
    site.start()
    c = site.core
    site.run_s(10)
    assert not c.discharge.any_active() and c.string_current(1) == 150
    t = site.now_s() - site.shell.start_s
    c.set_ups_input(True)  # string 1: the UPS says "on battery"
    site.sensors[1].current_ma = -25000  # string 2: its sensor reads 25 A out
    for m in site.modules[4:]:
        m.voltage_mv = 12400  # string 3: only the block voltages show it
    site.run_s(10)
    ups = started_at(site, 0) - t
    current = started_at(site, 1) - t
    voltage = started_at(site, 2) - t
    assert ups == 0  # the next core step
    assert current <= 1  # the next sensor read, once per cycle
    assert 1 <= voltage <= 3  # two cycles below the float band (confirm_cycles)
    starts = site.events(ev.EV_DISCHARGE_START)
    assert [(e[3], e[5]) for e in starts] == [
        (0, dis.SRC_UPS),
        (1, dis.SRC_CURRENT),
        (2, dis.SRC_VOLTAGE),
    ]
    assert [e[4] for e in starts if e[3] == 1] == [-25000]
    # the modules are told: no bleeding while the string discharges
    assert all(m.target_flags & p.TARGET_DISCHARGE for m in site.modules)
    assert all(not m.target_flags & p.TARGET_EQUALISE for m in site.modules)
    assert list(c.discharge.count) == [1, 1, 1]


def test_relay_box_ups_input_end_counter_and_deepest_point():
    site = Site(
        sizes=(4,),
        config={"io": {"ups_input": {"source": "box", "box": 3, "input": 2}}},
    )
    site.start()
    c = site.core
    box = site.boxes[3]
    site.run_s(5)
    t = site.now_s() - site.shell.start_s
    box.inputs = 0b0010  # the UPS closes its "on battery" contact on input 2
    site.run_s(2)
    assert started_at(site, 0) - t <= 1  # next IO_READ: once per cycle
    # the blocks sag; block 3 collapses early
    for step in range(6):
        for i in range(4):
            site.modules[i].voltage_mv = 12600 - 150 * step - (400 * step if i == 2 else 0)
        site.run_s(20)
    for i in range(4):
        site.modules[i].voltage_mv = 13620
    box.inputs = 0
    site.run_s(30)
    assert c.discharge.active[0]  # clear for 60 s before it ends
    site.run_s(40)
    assert not c.discharge.active[0]
    end = site.events(ev.EV_DISCHARGE_END)
    assert len(end) == 1 and end[0][6] == 1 and 150 <= end[0][4] <= 200  # duration, count
    deepest = [c.discharge.deepest_mv[a] for a in range(1, 5)]
    assert deepest == [11850, 11850, 9850, 11850]  # which block collapsed early
    # a second one counts
    box.inputs = 0b0010
    site.run_s(3)
    assert c.discharge.count[0] == 2
