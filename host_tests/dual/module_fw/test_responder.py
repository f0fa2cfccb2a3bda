# module_fw/responder: what a module answers to every command, and what it changes.
from dualtest import heap_locked

from module_fw import state as st
from module_fw.responder import Responder, uid_slot
from shared import protocol as p
from shared import protocol_layouts as lay

UID = b"\x01\x02\x03\x04\x05\x06\x07\x08"


def make(address=5):
    s = st.ModuleState(UID, variant_id=3)
    s.address = address
    return s, Responder(s)


def ask(r, dst, cmd, payload=b"", seq=9, now_ms=1000):
    """Send one request; return (reply Frame or None, delay_us)."""
    frame = p.decode_frame(p.encode_bytes(dst, p.ADDR_MANAGER, cmd, seq, payload))
    n = r.handle(frame, now_ms)
    if n == 0:
        return None, 0
    reply = p.decode_frame(bytes(r.tx[:n]))
    assert reply.seq == seq and reply.dst == p.ADDR_MANAGER
    return reply, r.tx_delay_us


def fields(reply):
    return lay.unpack(reply.cmd & 0x7F if reply.cmd != p.CMD_NAK else p.CMD_NAK, True,
                      reply.buf, reply.off, reply.length)  # fmt: skip


def test_read_meas_reports_the_snapshot():
    s, r = make()
    s.voltage_mv, s.temp_cc, s.balance_pct, s.meas_flags = 13620, 2345, 35, p.FLAG_BALANCING
    reply, delay = ask(r, 5, p.CMD_READ_MEAS)
    assert reply.cmd == 0x82 and reply.src == 5 and delay == 0
    assert fields(reply) == {"voltage_mv": 13620, "temp_cc": 2345, "balance_pct": 35, "flags": 1}
    assert s.ever_polled


def test_frames_for_others_and_replies_are_ignored():
    s, r = make()
    assert ask(r, 6, p.CMD_READ_MEAS)[0] is None
    frame = p.decode_frame(p.encode_bytes(p.ADDR_MANAGER, 7, p.CMD_READ_MEAS | p.REPLY, 1,
                                          bytes(6)))  # fmt: skip
    assert r.handle(frame, 0) == 0
    assert r.ignored == 2 and s.rx_frames == 0


def test_poll_group_reply_goes_in_its_slot():
    s, r = make(address=40)
    reply, delay = ask(r, p.ADDR_BROADCAST, p.CMD_POLL_GROUP, b"\x21\x00\x10")  # 33..48
    assert reply.cmd == 0x83 and reply.src == 40
    assert delay == p.group_slot_start_us(7, 115200)
    # outside the group: silent
    assert ask(r, p.ADDR_BROADCAST, p.CMD_POLL_GROUP, b"\x01\x00\x20")[0] is None
    # an unaddressed module never answers a group poll
    s.address = 0
    assert ask(r, p.ADDR_BROADCAST, p.CMD_POLL_GROUP, b"\x00\x00\x40")[0] is None


def test_poll_group_handling_allocates_nothing():
    s, r = make(address=2)
    frame = p.decode_frame(p.encode_bytes(p.ADDR_BROADCAST, p.ADDR_MANAGER, p.CMD_POLL_GROUP,
                                          3, b"\x01\x00\x40"))  # fmt: skip
    payload = bytes([1, 0, 64, 0, 0x34, 0x35, 1, 10, 50])
    target = p.decode_frame(p.encode_bytes(p.ADDR_BROADCAST, p.ADDR_MANAGER, p.CMD_SET_TARGET,
                                           4, payload))  # fmt: skip
    assert heap_locked(r.handle, frame, 100) == 16
    assert heap_locked(r.handle, target, 100) == 0
    assert (s.target_mv, s.target_10uv) == (0x3534, 50)


def test_set_target_applies_to_its_range_with_timeout_limits():
    s, r = make(address=10)
    payload = lay.pack(
        p.CMD_SET_TARGET,
        False,
        {
            "first": 1,
            "last": 32,
            "target_mv": 13650,
            "flags": 1,
            "timeout_s": 30,
            "target_10uv": 37,
        },
    )
    assert ask(r, p.ADDR_BROADCAST, p.CMD_SET_TARGET, payload, now_ms=5000)[0] is None
    assert (s.target_mv, s.target_10uv, s.target_flags, s.target_timeout_ms, s.target_rx_ms) == (
        13650, 37, 1, 30000, 5000)  # fmt: skip
    assert s.target_received
    other = lay.pack(
        p.CMD_SET_TARGET,
        False,
        {"first": 33, "last": 64, "target_mv": 2000, "flags": 0, "timeout_s": 0, "target_10uv": 0},
    )
    ask(r, p.ADDR_BROADCAST, p.CMD_SET_TARGET, other)
    assert s.target_mv == 13650  # another string's target is not ours
    s.address = 40
    ask(r, p.ADDR_BROADCAST, p.CMD_SET_TARGET, other)
    assert s.target_timeout_ms == 10000  # 0 -> default
    huge = lay.pack(
        p.CMD_SET_TARGET,
        False,
        {
            "first": 33,
            "last": 64,
            "target_mv": 2000,
            "flags": 0,
            "timeout_s": 255,
            "target_10uv": 0,
        },
    )
    ask(r, p.ADDR_BROADCAST, p.CMD_SET_TARGET, huge)
    assert s.target_timeout_ms == 120000  # capped: a stale target never lasts long


def test_set_target_sub_mv_part_legacy_form_and_a_bad_value():
    s, r = make(address=10)
    # the 8-byte payload of a manager before the 10 uV field: sub-mV part 0
    legacy = bytes([1, 0, 32, 0]) + (13651).to_bytes(2, "little") + bytes([1, 30])
    assert ask(r, p.ADDR_BROADCAST, p.CMD_SET_TARGET, legacy, now_ms=1000)[0] is None
    assert (s.target_mv, s.target_10uv, s.target_rx_ms) == (13651, 0, 1000)
    good = legacy + bytes([99])
    ask(r, p.ADDR_BROADCAST, p.CMD_SET_TARGET, good, now_ms=2000)
    assert (s.target_mv, s.target_10uv, s.target_rx_ms) == (13651, 99, 2000)
    # 100 is not a sub-mV part: counted as an error, the last good target stays
    errors = s.rx_errors
    bad = bytes([1, 0, 32, 0]) + (9000).to_bytes(2, "little") + bytes([1, 30, 100])
    ask(r, p.ADDR_BROADCAST, p.CMD_SET_TARGET, bad, now_ms=3000)
    assert (s.target_mv, s.target_10uv, s.target_rx_ms) == (13651, 99, 2000)
    assert s.rx_errors == errors + 1
    # 7 or 10 bytes are neither form
    ask(r, p.ADDR_BROADCAST, p.CMD_SET_TARGET, legacy[:7], now_ms=4000)
    ask(r, p.ADDR_BROADCAST, p.CMD_SET_TARGET, good + b"\x00", now_ms=4000)
    assert s.target_rx_ms == 2000 and s.rx_errors == errors + 3


def test_meas_replies_round_with_error_feedback():
    # a steady 13 619.7 mV reading: replies average to it, not to 13 620
    s, r = make(address=3)
    s.voltage_uv = 13619700
    s.voltage_mv = 13620
    got = []
    for _ in range(10):
        reply, _ = ask(r, 3, p.CMD_READ_MEAS)
        got.append(fields(reply)["voltage_mv"])
    assert sum(got) == 136197, got
    assert min(got) == 13619 and max(got) == 13620
    s.voltage_uv = 0  # no reading: plain value, nothing carried over
    s.voltage_mv = 0
    reply, _ = ask(r, 3, p.CMD_READ_MEAS)
    assert fields(reply)["voltage_mv"] == 0 and s.report_residual_uv == 0


def test_unknown_command_and_bad_length_get_a_nak_unicast_only():
    s, r = make()
    reply, _ = ask(r, 5, 0x6E)
    assert reply.cmd == p.CMD_NAK and fields(reply) == {"request": 0x6E, "error": 1}
    reply, _ = ask(r, 5, p.CMD_IDENTIFY, b"\x01\x02")
    assert fields(reply) == {"request": p.CMD_IDENTIFY, "error": p.ERR_BAD_LENGTH}
    assert ask(r, p.ADDR_BROADCAST, 0x6E)[0] is None
    assert ask(r, p.ADDR_BROADCAST, p.CMD_IDENTIFY, b"\x01\x02")[0] is None
    assert s.rx_errors == 4


def test_addressing_claim_confirm():
    s, r = make(address=0)
    ask(r, p.ADDR_BROADCAST, p.CMD_ADDR_MODE, b"\x01")
    assert s.addressing
    # no button press yet: the offer is not taken
    assert ask(r, p.ADDR_BROADCAST, p.CMD_ADDR_OFFER, b"\x07\x00")[0] is None
    s.claim_armed = True  # the core sets this on a short press
    reply, _ = ask(r, p.ADDR_BROADCAST, p.CMD_ADDR_OFFER, b"\x07\x00")
    assert reply.src == 0 and fields(reply) == {"address": 7, "uid": "0102030405060708"}
    # a confirm for another uid is not ours
    assert ask(r, p.ADDR_BROADCAST, p.CMD_ADDR_CONFIRM, b"\x09" * 8 + b"\x07\x00")[0] is None
    reply, _ = ask(r, p.ADDR_BROADCAST, p.CMD_ADDR_CONFIRM, UID + b"\x07\x00")
    assert reply.src == 7 and fields(reply)["address"] == 7
    assert s.address == 7 and not s.addressing and not s.claim_armed
    assert s.dirty & st.DIRTY_ADDRESS


def test_addressed_modules_ignore_addressing_mode():
    s, r = make(address=3)
    ask(r, p.ADDR_BROADCAST, p.CMD_ADDR_MODE, b"\x01")
    assert not s.addressing
    s2, r2 = make(address=0)
    ask(r2, p.ADDR_BROADCAST, p.CMD_ADDR_MODE, b"\x01")
    s2.claim_armed = True
    ask(r2, p.ADDR_BROADCAST, p.CMD_ADDR_MODE, b"\x00")
    assert not s2.addressing and not s2.claim_armed


def test_set_address_and_lone_module_query():
    s, r = make(address=0)
    reply, _ = ask(r, 0, p.CMD_SET_ADDRESS, b"\x0c\x00")
    assert reply.src == 12 and s.address == 12
    reply, _ = ask(r, 12, p.CMD_SET_ADDRESS, b"\x00\x00")
    assert reply.cmd == p.CMD_NAK and fields(reply)["error"] == p.ERR_BAD_VALUE
    reply, _ = ask(r, 12, p.CMD_SET_ADDRESS, b"\xe8\x03")  # 1000 > 999
    assert reply.cmd == p.CMD_NAK and s.address == 12
    reply, _ = ask(r, p.ADDR_BROADCAST, p.CMD_GET_ADDRESS)
    assert fields(reply) == {"address": 12, "uid": "0102030405060708"}


def test_identify_on_off_and_button_confirmation_in_status():
    s, r = make()
    reply, _ = ask(r, 5, p.CMD_IDENTIFY, b"\x01")
    assert fields(reply) == {"on": 1} and s.identify
    s.identify = False  # the core: button pressed in identify mode
    s.identify_confirmed = True
    reply, _ = ask(r, 5, p.CMD_STATUS)
    f = fields(reply)
    assert f["flags"] & st.STATUS_IDENTIFY_CONFIRMED
    assert not s.identify_confirmed  # reported once
    reply, _ = ask(r, 5, p.CMD_IDENTIFY, b"\x00")
    assert fields(reply) == {"on": 0}


def test_reset_address_needs_the_magic_word():
    s, r = make(address=9)
    reply, _ = ask(r, 9, p.CMD_RESET_ADDRESS, b"\x00\x00")
    assert reply.cmd == p.CMD_NAK and s.address == 9
    reply, _ = ask(r, 9, p.CMD_RESET_ADDRESS, b"\xfe\x5a")
    assert reply.src == 9 and reply.length == 0
    assert s.address == 0
    s.address = 4
    assert ask(r, p.ADDR_BROADCAST, p.CMD_RESET_ADDRESS, b"\xfe\x5a")[0] is None
    assert s.address == 0


def test_info_calibration_variant():
    s, r = make()
    s.ri_method = 2
    reply, _ = ask(r, 5, p.CMD_INFO)
    f = fields(reply)
    assert f["device_type"] == p.DEVICE_MODULE and f["variant"] == 3 and f["ri_method"] == 2
    assert f["uid"] == "0102030405060708"
    payload = lay.pack(p.CMD_CAL_WRITE, False, {"channel": 0, "offset": -1500, "gain_ppm": 2100})
    reply, _ = ask(r, 5, p.CMD_CAL_WRITE, payload)
    assert fields(reply) == {"channel": 0, "offset": -1500, "gain_ppm": 2100}
    assert s.cal_offset[0] == -1500 and s.cal_gain_ppm[0] == 2100
    reply, _ = ask(r, 5, p.CMD_CAL_READ, b"\x00")
    assert fields(reply)["gain_ppm"] == 2100
    absurd = lay.pack(p.CMD_CAL_WRITE, False, {"channel": 0, "offset": 0, "gain_ppm": 50001})
    assert ask(r, 5, p.CMD_CAL_WRITE, absurd)[0].cmd == p.CMD_NAK
    far = lay.pack(p.CMD_CAL_WRITE, False, {"channel": 0, "offset": -500001, "gain_ppm": 0})
    assert ask(r, 5, p.CMD_CAL_WRITE, far)[0].cmd == p.CMD_NAK
    assert s.cal_gain_ppm[0] == 2100 and s.cal_offset[0] == -1500
    assert ask(r, 5, p.CMD_CAL_READ, b"\x09")[0].cmd == p.CMD_NAK
    # channel 5, the voltage tempco: reference board temperature and ppb/K
    tc = lay.pack(p.CMD_CAL_WRITE, False, {"channel": 5, "offset": 24500, "gain_ppm": -6200})
    assert fields(ask(r, 5, p.CMD_CAL_WRITE, tc)[0])["gain_ppm"] == -6200
    assert s.cal_offset[5] == 24500 and s.cal_gain_ppm[5] == -6200
    assert ask(r, 5, p.CMD_CAL_READ, b"\x06")[0].cmd == p.CMD_NAK
    reply, _ = ask(r, 5, p.CMD_SET_VARIANT, b"\x01")
    assert s.variant_id == 1 and s.dirty & st.DIRTY_VARIANT
    assert ask(r, 5, p.CMD_SET_VARIANT, b"\x05")[0].cmd == p.CMD_NAK


def test_ri_start_busy_and_read():
    s, r = make()
    s.ri_duration_ms[1] = 3200
    s.ri_duration_ms[2] = 1200
    s.ri_method = 2
    reply, _ = ask(r, 5, p.CMD_RI_START, b"\x00")  # 0: the board's own method
    assert fields(reply) == {"method": 2, "duration_ms": 1200} and s.ri_request == 2
    s.ri_request = -1
    reply, _ = ask(r, 5, p.CMD_RI_START, b"\x01")
    assert fields(reply) == {"method": 1, "duration_ms": 3200} and s.ri_request == 1
    reply, _ = ask(r, 5, p.CMD_RI_START, b"\x01")
    assert fields(reply)["error"] == p.ERR_BUSY
    reply, _ = ask(r, 5, p.CMD_RI_READ)
    assert fields(reply)["state"] == p.RI_BUSY
    # the core finishes the measurement
    s.ri_request = -1
    s.ri_state, s.ri_quality, s.ri_nohm, s.ri_done_ms = p.RI_OK, 97, 4_250_000, 1000
    s.meas_flags |= p.FLAG_RI_RESULT
    reply, _ = ask(r, 5, p.CMD_RI_READ, now_ms=61000)
    assert fields(reply) == {"state": 2, "quality": 97, "ri_nohm": 4250000, "age_s": 60}
    assert not s.meas_flags & p.FLAG_RI_RESULT
    # too little signal is reported as such, never as a number
    s.ri_state, s.ri_nohm = p.RI_LOW_SIGNAL, 123
    reply, _ = ask(r, 5, p.CMD_RI_READ)
    assert fields(reply)["state"] == p.RI_LOW_SIGNAL and fields(reply)["ri_nohm"] == 0


def test_sleep_and_wake():
    s, r = make()
    ask(r, p.ADDR_BROADCAST, p.CMD_SLEEP)
    assert s.sleeping and s.mode() == st.MODE_SLEEP
    ask(r, p.ADDR_BROADCAST, p.CMD_WAKE)
    assert not s.sleeping


def test_discover_slots_spread_modules_by_uid():
    s, r = make()
    reply, delay = ask(r, 5, p.CMD_DISCOVER, b"\x01")
    assert delay == 0 and fields(reply)["uid"] == "0102030405060708"
    reply, delay = ask(r, 5, p.CMD_DISCOVER, b"\x10")
    slot = uid_slot(UID, 16)
    assert delay == p.group_lead_us(115200) + slot * p.wire_us(26, 115200)
    # different uids land in different slots often enough to tell duplicates apart
    slots = [uid_slot(bytes([i, 7, 7, 7, 7, 7, 7, i]), 16) for i in range(64)]
    assert len(set(slots)) >= 12


def test_mark_from_the_manager():
    s, r = make()
    reply, _ = ask(r, 5, p.CMD_MARK, b"\x02", now_ms=777)
    assert fields(reply) == {"state": 2} and s.mark == 2 and s.mark_ms == 777
    assert ask(r, 5, p.CMD_MARK, b"\x03")[0].cmd == p.CMD_NAK
    ask(r, 5, p.CMD_MARK, b"\x00")
    assert s.mark == 0
