# Manager core, thermal runaway (SPEC §3, IFC 608.3): a block heating while the float
# current climbs trips the string's breaker through the relay/IO box, raises the alarm
# and stays latched until an operator resets it.  Samples every 60 s here (the shortest
# setting) so that the detector's one-hour window is six minutes of virtual time.
from corefixture import Site

from manager_fw import events as ev
from manager_fw import outputs as out
from shared import protocol as p

CONFIG = {
    "strings": [{"modules": 4, "current_sensor": 1}, {"modules": 1}],
    "runaway": {"enabled": True, "sample_s": 60},
    "io": {
        "breaker_trip": [{"box": 1, "relay": 1, "strings": [1]}],
        "alarm_relay": {"box": 1, "relay": 2},
    },
}


def probed_site():
    site = Site(config=CONFIG)
    for s in site.modules:
        s.meas_flags |= p.FLAG_PROBE  # every module has its probe on the battery
    site.start()
    return site


def test_runaway_trips_the_breaker_raises_the_alarm_and_latches():
    site = probed_site()
    c = site.core
    box = site.boxes[1]
    sensor = site.sensors[0]
    site.run_s(600)  # a calm float: the detector fills its hour
    assert box.relays == 0b10 and not c.outputs.buzzer  # alarm relay energised (fail-safe)
    assert not c.runaway.tripped[0]
    # block 3 heats 1 °C a minute and the float current climbs
    # (20 min the deadline; it keeps heating 2 min past the trip: still one trip)
    tripped_at = None
    for minute in range(20):
        site.modules[2].temp_cc += 100
        sensor.current_ma = sensor.current_ma * 13 // 10
        site.run_s(60)
        if tripped_at is None and c.runaway.tripped[0]:
            tripped_at = minute
        if tripped_at is not None and minute >= tripped_at + 2:
            break
    assert tripped_at is not None and tripped_at <= 8
    assert box.relays & 0b01  # the breaker trip relay of string 1 is energised
    assert not box.relays & 0b10  # and the alarm contact dropped
    assert c.outputs.buzzer and c.outputs.led == out.LED_ON
    trips = [e for e in site.events(ev.EV_THERMAL_RUNAWAY) if e[5] == 0]
    assert len(trips) == 1 and trips[0][2] == 2 and trips[0][3] == 0
    assert trips[0][4] >= 3000  # it rose at least 3 °C over the string in the window
    suspects = [e for e in site.events(ev.EV_THERMAL_RUNAWAY) if e[5] == 2]
    assert len(suspects) == 1 and suspects[0][2] == 2 and suspects[0][0] <= trips[0][0]
    assert not c.runaway.tripped[1]  # the other string is not touched
    # latched: the block cools, the current falls, the breaker stays open (7 min: the
    # heating has left the detector's 6-min window)
    site.modules[2].temp_cc = 2200
    sensor.current_ma = 150
    site.run_s(420)
    assert c.runaway.tripped[0] and box.relays & 0b01
    # the operator inspected the string and resets
    assert c.reset_runaway(0, site.now_s())
    site.run_s(3)
    assert box.relays == 0b10 and not c.outputs.buzzer and c.outputs.relay_energised
    assert [e[5] for e in site.events(ev.EV_THERMAL_RUNAWAY)] == [2, 0, 1]
    relay = [(e[5], e[4], e[6]) for e in site.events(ev.EV_RELAY)]
    assert (1, 0b01, 0b11) in relay and relay[-1] == (1, 0b10, 0b11)
    assert not c.reset_runaway(0, site.now_s())  # nothing latched any more


def test_a_warm_block_with_a_flat_current_does_not_trip():
    site = probed_site()
    c = site.core
    site.run_s(600)
    for _ in range(7):
        site.modules[1].temp_cc += 100  # sun on the cabinet: warm, but no electrical sign
        site.run_s(60)
    site.run_s(600)
    assert c.runaway.suspect[2] == 0 and c.temp_mc[1] == 29000
    assert not c.runaway.tripped[0] and site.boxes[1].relays == 0b10
    assert not c.outputs.buzzer  # a temperature warning only (28 °C), no alarm


def test_modules_without_a_probe_are_named_once():
    site = Site(config=CONFIG)
    for s in site.modules[:3]:
        s.meas_flags |= p.FLAG_PROBE
    site.start()
    site.run_s(600 + 180)
    told = [(e[2], e[3]) for e in site.events(ev.EV_NO_PROBE)]
    assert told == [(3, 0), (4, 1)]  # 4S1 and the lone block of string 2, once each
    assert site.core.judge.runaway_probed(0) == (3, 4)
    assert site.core.judge.runaway_probed(1) == (0, 1)
