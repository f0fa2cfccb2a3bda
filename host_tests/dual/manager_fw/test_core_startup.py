# Manager core, start-up: WAKE preamble, census (initialised / not reachable / not yet
# polled), the revision check that refuses a mixed bus, sleep and wake, and addressing
# through the core.  Scenarios in virtual time on the virtual bus (corefixture.Site).
from corefixture import Site

from manager_fw import events as ev
from manager_fw import outputs as out
from module_fw.responder import Responder
from shared import protocol as p


def test_startup_shows_each_module_initialised_not_reachable_or_not_yet_polled():
    site = Site(sizes=(3, 3), absent=(4,))
    from manager_fw import modes as co  # MODE_*

    c = site.core
    assert c.mode_name() == "waking" and c.census_counts() == (0, 0, 6)
    seen = []

    def watch(shell):
        if c.mode == co.MODE_CENSUS:
            seen.append((shell.now_ms(), c.mode, c.census_counts()))

    site.shell.hooks.append(watch)
    site.shell.step_us = 2000  # look at the core every 2 ms
    site.shell.run_ms(2900)
    # WAKE preamble: 3 s of WAKE broadcasts before anything else talks
    assert c.mode_name() == "waking" and c.master.requests >= 29
    assert not any(m.ever_polled or m.rx_frames > 30 for m in site.modules)
    # then the census; the status shows it in progress
    site.shell.run_ms(300)
    census = [counts for _t, mode, counts in seen if mode == co.MODE_CENSUS]
    assert census[0] == (0, 0, 6)
    assert [x for x in census if x[0] and x[2]], census  # some initialised, some waiting
    site.start()
    assert c.mode_name() == "running"
    assert c.census_counts() == (5, 1, 0)
    from manager_fw.jobs.census import CENSUS_NAMES

    assert CENSUS_NAMES[c.census[4]] == "not reachable"
    assert CENSUS_NAMES[c.census[3]] == "initialised"
    assert c.hw_rev[0] == 1 and c.variant[0] == 3
    census = site.events(ev.EV_CENSUS)
    assert len(census) == 1 and census[0][4] == 5 and census[0][6] == 1
    assert site.modules[0].target_received and site.modules[0].ever_polled
    # the late module is plugged in: it is polled and then asked for its INFO
    site.replug(4)
    site.run_s(3)
    assert c.census_counts() == (6, 0, 0) and c.mode_name() == "running"


def test_mixed_hardware_generations_refuse_to_run_and_name_the_modules():
    site = Site(sizes=(3, 3), config={"io": {"alarm_relay": {"box": 1, "relay": 1}}})
    site.modules[2].hw_rev = 17
    site.modules[3].hw_rev = 16
    site.start()
    c = site.core
    assert c.mode_name() == "refused"
    assert c.refusal == (
        "refusing to run: modules of incompatible hardware revisions share the bus "
        "(hw_rev 1-15: 1-2, 5-6; hw_rev 16-31: 3, 4).  Replace the odd ones out, then restart."
    )
    site.run_s(20)
    # no polling, no targets: no module balances
    assert not any(m.target_received or m.ever_polled for m in site.modules)
    # an alarm: buzzer, alarm LED, contact dropped
    assert c.outputs.buzzer and c.outputs.led == out.LED_ON and not c.outputs.relay_energised
    assert site.boxes[1].relays == 0  # the box's alarm contact is dropped too
    refused = site.events(ev.EV_REFUSED)
    assert len(refused) == 1 and refused[0][5] == ev.REFUSED_HARDWARE and refused[0][2] == 2
    # the operator swaps the odd boards and asks again
    site.modules[2].hw_rev = 2
    site.modules[3].hw_rev = 15
    c.retry(site.now_s())
    site.start()
    assert c.mode_name() == "running" and c.refusal is None
    site.run_s(2)
    assert c.outputs.relay_energised and not c.outputs.buzzer and site.boxes[1].relays == 1


class OldFirmware(Responder):
    def _put_info(self, off):
        super()._put_info(off)
        self.tx[off + 2] = 9  # firmware 9.x
        self.tx[off + 3] = 4


def test_a_module_with_another_firmware_major_is_refused():
    site = Site(sizes=(2, 2), config={"numbering": "per_string"})
    node = site.nodes[3]
    node.responder = OldFirmware(node.responder.state)
    site.start()
    c = site.core
    assert c.mode_name() == "refused"
    assert c.refusal == (
        "refusing to run: module(s) 2S2 run firmware 9.x; this manager (0.1.0) needs "
        "firmware 0.x on every module.  Update them, then restart."
    )


class NextProtocol(Responder):
    """A module of a future protocol version 3: every reply carries version 3."""

    def handle(self, frame, now_ms):
        n = Responder.handle(self, frame, now_ms)
        if n:
            tx = self.tx
            tx[1] = (3 << 6) | (tx[1] & 0x3F)
            crc = p.crc16(tx, 1, n - 2)
            tx[n - 2] = crc & 0xFF
            tx[n - 1] = crc >> 8
        return n


def test_a_module_speaking_another_protocol_version_is_named():
    site = Site(sizes=(4,))
    node = site.nodes[1]
    node.responder = NextProtocol(node.responder.state)
    site.start()
    c = site.core
    assert c.mode_name() == "refused"
    assert c.refusal == (
        "refusing to run: module(s) 2 answer in protocol version 3; this manager speaks "
        "version 2.  Update their firmware (or the manager's)."
    )
    assert site.events(ev.EV_REFUSED)[0][5] == ev.REFUSED_PROTOCOL


def test_sleep_then_wake_preamble_before_polling_again():
    site = Site(sizes=(4,))
    site.start()
    c = site.core
    site.run_s(5)
    c.sleep_bus(site.now_s())
    site.shell.run_ms(200)
    assert all(m.sleeping for m in site.modules) and c.mode_name() == "sleeping"
    polled = [m.polled_ms for m in site.modules]
    site.run_s(600)  # ten minutes asleep: nothing polled, no silent-module alarm
    assert [m.polled_ms for m in site.modules] == polled
    assert not c.outputs.buzzer and c.silence.system_alarm_since_s < 0
    c.wake_bus(site.now_s())
    site.shell.run_ms(500)
    assert not any(m.sleeping for m in site.modules)  # the WAKE broadcasts woke them
    assert [m.polled_ms for m in site.modules] == polled  # but nobody is polled yet
    site.shell.run_ms(2400)
    assert c.mode_name() == "waking"
    site.run_s(3)
    assert c.mode_name() == "running" and [m.polled_ms for m in site.modules] != polled
    site.run_s(30)
    assert not c.outputs.buzzer and not c.silence.any_alarm()
    power = [e[5] for e in site.events(ev.EV_BUS_POWER)]
    assert power == [1, 0, 1]  # start-up wake, sleep, wake


def test_addressing_through_the_core_stops_polling_and_is_logged():
    site = Site(sizes=(4,))
    site.modules[3].address = 0  # a replaced module, as delivered
    site.start()
    c = site.core
    assert c.census_counts() == (3, 1, 0)
    from manager_fw import addressing as ad

    job = ad.AutoAddressing(4, 4)
    c.begin_setup(job, site.now_s())
    cycles = c.poller.cycle
    site.run_s(2)
    assert c.mode_name() == "setup" and c.poller.cycle == cycles  # setup stops polling
    assert site.modules[3].addressing and not site.modules[0].addressing
    site.modules[3].claim_armed = True  # the installer presses its button
    site.run_s(3)
    assert job.done and job.error is None and site.modules[3].address == 4
    site.start()
    assert c.mode_name() == "running" and c.census_counts() == (4, 0, 0)
    steps = [(e[5], e[2]) for e in site.events(ev.EV_ADDRESSING)]
    assert steps == [(ev.ADDR_START, 4), (ev.ADDR_ASSIGNED, 4), (ev.ADDR_DONE, 0xFFFF)]


def test_a_late_module_of_another_generation_stops_a_running_core():
    site = Site(sizes=(3,), absent=(2,), config={"io": {"alarm_relay": {"box": 1, "relay": 1}}})
    site.modules[2].hw_rev = 17
    site.start()
    c = site.core
    site.run_s(3)
    assert c.mode_name() == "running" and site.boxes[1].relays == 1
    site.replug(2)  # plugged in later: polled, asked for its INFO, refused
    site.run_s(3)
    assert c.mode_name() == "refused" and "hw_rev 16-31: 3" in c.refusal
    assert site.boxes[1].relays == 0 and not c.outputs.relay_energised
