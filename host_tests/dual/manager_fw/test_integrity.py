# Only the manager commands the modules (issue 13): a rogue device's RESET_ADDRESS,
# CAL_WRITE and SET_TARGET without the site key change nothing on any module, a replayed
# authenticated frame is refused, the modules count it and the manager warns; the
# manager reads every module's calibration and logs a change it did not make.
from corefixture import Site

from manager_fw import events as ev
from shared import auth
from shared import protocol as p
from shared import protocol_layouts as lay


class Sniffer:
    """A device on the bus that records the manager's SET_TARGET frames."""

    skips_replies = True

    def __init__(self):
        self.frames = []

    def on_bus_bytes(self, data, end_us, bus):
        if len(data) > 8 and data[0] == p.SYNC and data[6] == p.CMD_SET_TARGET:
            self.frames.append(bytes(data))

    def poll(self, bus):
        pass

    def wake_us(self, bus):
        return -1


def deliver(site, data):
    """A frame from a rogue device reaching every module."""
    for node in site.nodes:
        node.on_bus_bytes(bytearray(data), site.bus.now_us, site.bus)


def test_rogue_and_replayed_commands_change_nothing_and_the_manager_warns():
    site = Site(sizes=(3,))
    sniffer = Sniffer()
    site.bus.attach(sniffer)
    site.start()
    c = site.core
    assert c.mode_name() == "running" and c.warning_total() == 0
    mods = site.modules
    target_before = [m.target_uv for m in mods]
    assert target_before[0] > 0
    rogue = auth.Signer(bytes(16))  # some other key
    for signer in (None, rogue):
        deliver(site, lay.encode_request(p.ADDR_BROADCAST, p.CMD_RESET_ADDRESS, 1, {}, signer))
        deliver(site, lay.encode_request(1, p.CMD_CAL_WRITE, 2, {"channel": 3, "offset": -10000,
                                         "gain_ppm": 0}, signer))  # fmt: skip
        deliver(site, lay.encode_request(p.ADDR_BROADCAST, p.CMD_SET_TARGET, 3, {
            "first": 1, "last": 3, "target_10uv": 1260000, "flags": p.TARGET_EQUALISE,
            "timeout_s": 120}, signer))  # fmt: skip
    # the manager's own last SET_TARGET, replayed
    deliver(site, sniffer.frames[-1])
    assert [m.address for m in mods] == [1, 2, 3]
    assert [m.cal_offset[3] for m in mods] == [0, 0, 0]
    assert [m.target_uv for m in mods] == target_before
    assert [m.auth_refused for m in mods] == [7, 5, 5]  # module 1 also got the CAL_WRITEs
    site.run_s(5)
    assert sorted(c.integrity.refusing) == [0, 1, 2]
    assert list(c.integrity.refused) == [7, 5, 5]
    assert c.warning_total() >= 1
    assert any("refused unauthenticated or replayed" in t for t in c.problems)
    assert sorted(e[2] for e in site.events(ev.EV_AUTH_REFUSED)) == [0, 1, 2]  # indices
    # and the manager's own commands still go through
    assert [m.auth_refused for m in mods] == [7, 5, 5]
    assert all(m.target_received for m in mods)


def test_the_manager_starts_its_counter_past_every_module_floor():
    site = Site(sizes=(2,))
    for m in site.modules:
        m.ctr_hi, m.ctr_lo = 3, 0x123456  # a previous manager's frames
    site.start()
    s = site.core.master.signer
    assert (s.ctr_hi, s.ctr_lo) > (3, 0x123456)
    assert [m.auth_refused for m in site.modules] == [0, 0]
    assert all(m.target_received for m in site.modules)


def test_calibration_is_read_kept_and_a_change_is_logged():
    site = Site(sizes=(2,))
    site.modules[1].cal_offset[0] = -1500
    site.start()
    site.run_s(3)
    w = site.core.integrity
    assert list(w.cal_known) == [1] * 12
    assert w.cal_offset[6] == -1500 and w.cal_changes == 0
    site.modules[0].cal_offset[3] = 700  # changed behind the manager's back
    w.running(site.now_s())  # the daily read, now
    site.run_s(3)
    changes = site.events(ev.EV_CALIBRATION)
    assert [(e[2], e[5], e[4]) for e in changes] == [(0, 3, 700)]  # module index 0
    assert w.cal_changes == 1 and site.core.warning_total() >= 1
