# The alarm contact on a relay/IO box, end to end in virtual time: the manager core
# keeps feeding the box's communication watchdog (shared/relaybox.py) on every cycle,
# however long the configured cycle period is, so "energised = all well" holds while it
# runs; when the manager falls silent the box drops the contact by itself within its
# watchdog time (docs/protocol.md §5.1).
from corefixture import Site

from shared import relaybox as rb

ALARM_ON_BOX_1 = {"io": {"alarm_relay": {"box": 1, "relay": 2}}}


def contact_watch(site, box):
    """Hook: the longest run (ms) the box's alarm relay was seen released after it was
    first energised, and the longest gap between two manager frames to the box."""
    seen = {"energised": False, "released_ms": 0, "since": -1, "gap_ms": 0, "last_req": -1}

    def hook(shell):
        now = shell.now_ms()
        if box.requests != seen.get("requests"):
            if seen["last_req"] >= 0:
                seen["gap_ms"] = max(seen["gap_ms"], now - seen["last_req"])
            seen["last_req"] = now
            seen["requests"] = box.requests
        if box.relays & 0b10:
            seen["energised"] = True
            seen["since"] = -1
        elif seen["energised"]:
            if seen["since"] < 0:
                seen["since"] = now
            seen["released_ms"] = max(seen["released_ms"], now - seen["since"])

    site.shell.hooks.append(hook)
    return seen


def test_the_manager_keeps_the_contact_energised_while_all_is_well():
    site = Site(sizes=(2,), config=ALARM_ON_BOX_1)
    box = site.boxes[1]
    assert box.relays == 0  # power-up: released until the manager sets it
    site.start()
    seen = contact_watch(site, box)
    site.run_s(120)
    c = site.core
    assert c.outputs.relay_energised and box.relays == 0b10
    assert seen["energised"] and seen["released_ms"] == 0 and box.expiries == 0
    assert seen["gap_ms"] <= 2100  # the box hears the manager at least every ~2 s


def test_a_long_cycle_period_still_feeds_the_box_every_two_seconds():
    config = {"cycle_period_ms": 30000, "target_timeout_s": 60}
    config.update(ALARM_ON_BOX_1)
    site = Site(sizes=(2,), config=config)
    site.start()
    box = site.boxes[1]
    seen = contact_watch(site, box)
    site.run_s(150)
    assert box.relays == 0b10 and box.expiries == 0 and seen["released_ms"] == 0
    assert seen["gap_ms"] <= 2100


def test_a_silent_manager_lets_the_box_release_the_contact_within_its_watchdog():
    site = Site(sizes=(2,), config=ALARM_ON_BOX_1)
    site.start()
    site.run_s(5)
    box = site.boxes[1]
    assert box.relays == 0b10
    site.bus.unplug(site.shell.node)  # the manager's frames stop (crash, cut cable)
    silent_from = site.shell.now_ms()
    last_fed = box.fed_ms
    released = -1
    while site.shell.now_ms() - silent_from < 15000:
        site.shell.run_ms(100)
        if released < 0 and box.relays == 0:
            released = site.shell.now_ms()
    assert released >= 0, "the contact was never released"
    assert released - last_fed <= rb.WATCHDOG_MS_DEFAULT + 100  # one 100 ms look late at most
    assert released - last_fed >= rb.WATCHDOG_MS_DEFAULT
    assert box.expiries == 1 and box.relay_log[-1][1] == 0
    # the manager comes back: it sees the relay dropped and energises it again
    site.bus.replug(site.shell.node)
    site.run_s(5)
    assert box.relays == 0b10 and site.core.outputs.relay_energised
