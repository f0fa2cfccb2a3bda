# RELAY_SET is authenticated (docs/protocol.md §5.1, §5a): on a simulated site whose
# alarm contact is relay 2 of relay/IO box 1, a rogue device on the bus - forging the
# manager's address, or replaying the manager's own recorded frames - changes no relay
# and feeds no watchdog, and the manager warns about the box's refusals.
from corefixture import Site

from manager_fw import events as ev
from shared import auth
from shared import protocol as p
from shared import protocol_layouts as lay
from shared import relaybox as rb

ALARM_ON_BOX_1 = {"io": {"alarm_relay": {"box": 1, "relay": 2}}}
BOX = p.ADDR_RELAY_BOX_BASE + 1


class Rogue:
    """A device on the bus: records the manager's RELAY_SETs, sends what it is told."""

    def __init__(self):
        self.recorded = []

    def on_bus_bytes(self, data, end_us, bus):
        if len(data) > 8 and data[6] == p.CMD_RELAY_SET and data[2] | data[3] << 8 == BOX:
            self.recorded.append(bytes(data))


def _send_when_idle(site, rogue, frames, every_ms):
    state = {"next": 0, "i": 0}

    def hook(shell):
        now = shell.now_ms()
        if now < state["next"] or site.bus.inflight or not frames:
            return
        state["next"] = now + every_ms
        site.bus.transmit(rogue, frames[state["i"] % len(frames)], site.bus.now_us)
        state["i"] += 1

    site.shell.hooks.append(hook)
    return state


def test_a_forged_relay_set_changes_nothing_and_the_manager_warns():
    site = Site(sizes=(2,), config=ALARM_ON_BOX_1)
    site.start()
    site.run_s(5)
    box = site.boxes[1]
    assert box.relays == 0b10 and site.core.outputs.relay_energised
    rogue = Rogue()
    site.bus.attach(rogue)
    # "alarm off" and "all relays on" under a guessed key, from the manager's address
    forged = [
        lay.encode_request(
            BOX, p.CMD_RELAY_SET, 7, {"mask": 0x0F, "state": s}, auth.Signer(bytes(16))
        )  # fmt: skip
        for s in (0x00, 0x0F)
    ]
    sent = _send_when_idle(site, rogue, forged, 700)
    relays_seen = set()
    site.shell.hooks.append(lambda shell: relays_seen.add(box.relays))
    site.run_s(90)  # the manager reads the box's INFO about once a minute
    assert sent["i"] > 50 and box.auth_refused > 50  # (some collide with the manager)
    assert relays_seen == {0b10}  # never released, never anything else energised
    assert any(
        "relay/IO box 1 refused unauthenticated or replayed RELAY_SET" in t
        for t in site.core.problems
    ), site.core.problems
    logged = site.events(ev.EV_AUTH_REFUSED)
    assert logged and logged[-1][5] == 1  # arg: the box


def test_replayed_frames_feed_nothing_once_the_manager_is_gone():
    site = Site(sizes=(2,), config=ALARM_ON_BOX_1)
    rogue = Rogue()
    site.bus.attach(rogue)
    site.start()
    site.run_s(20)  # the rogue records ten of the manager's RELAY_SETs
    box = site.boxes[1]
    assert len(rogue.recorded) >= 5 and box.relays == 0b10
    site.bus.unplug(site.shell.node)  # the manager dies
    silent_from = site.shell.now_ms()
    last_fed = box.fed_ms
    _send_when_idle(site, rogue, list(rogue.recorded), 500)  # and the rogue replays
    released = -1
    while site.shell.now_ms() - silent_from < 15000:
        site.shell.run_ms(100)
        if released < 0 and box.relays == 0:
            released = site.shell.now_ms()
    assert released >= 0, "replays kept the contact energised"
    assert released - last_fed <= rb.WATCHDOG_MS_DEFAULT + 100
    assert box.fed_ms == last_fed and box.auth_refused > 10


def test_a_box_without_the_key_is_named_and_its_contact_stays_released():
    site = Site(sizes=(2,), config=ALARM_ON_BOX_1)
    box = site.boxes[1]
    box.mac = auth.Mac(None, pure=True)  # deployed without --site-key
    site.start()
    site.run_s(10)
    assert box.relays == 0 and box.auth_refused > 0
    assert any("relay/IO box 1 has no site key" in t for t in site.core.problems), (
        site.core.problems
    )
    assert any(
        "relay/IO box 1 refuses this manager's RELAY_SET" in t for t in site.core.problems
    ), site.core.problems
