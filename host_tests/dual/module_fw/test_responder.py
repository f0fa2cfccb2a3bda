# module_fw/responder: what a module answers to every command, and what it changes.
from dualtest import heap_locked

from module_fw import state as st
from module_fw.responder import Responder, uid_slot
from shared import auth
from shared import protocol as p
from shared import protocol_layouts as lay

UID = b"\x01\x02\x03\x04\x05\x06\x07\x08"
KEY = bytes.fromhex("537472696e67436172652d7465737421")  # the published test key
SIGNER = auth.Signer(KEY)


def make(address=5, key=KEY):
    s = st.ModuleState(UID, variant_id=3)
    s.address = address
    s.key = key
    s.target_min_uv, s.target_max_uv = 12600000, 14700000  # the core sets them (12 V)
    return s, Responder(s)


def ask(r, dst, cmd, payload=b"", seq=9, now_ms=1000, signer=SIGNER):
    """Send one request (payload: bytes, or a dict of fields that is signed when the
    command is authenticated); return (reply Frame or None, delay_us)."""
    if isinstance(payload, dict):
        data = lay.encode_request(dst, cmd, seq, payload, signer)
    else:
        data = p.encode_bytes(dst, p.ADDR_MANAGER, cmd, seq, payload)
    frame = p.decode_frame(data)
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
    s.voltage_uv, s.temp_mc, s.balance_pct, s.meas_flags = 13620010, 23400, 35, 1
    reply, delay = ask(r, 5, p.CMD_READ_MEAS)
    assert reply.cmd == 0x82 and reply.src == 5 and delay == 0
    assert p.meas_voltage_uv(reply.buf, reply.off) == 13620010
    assert p.meas_temp_mc(reply.buf, reply.off) == 23400
    assert fields(reply)["balance_pct"] == 35 and fields(reply)["flags"] == 1
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
    # a group the protocol does not define (count 0 or > 64): nobody answers
    s.address = 40
    errors = s.rx_errors
    assert ask(r, p.ADDR_BROADCAST, p.CMD_POLL_GROUP, b"\x21\x00\x41")[0] is None
    assert ask(r, p.ADDR_BROADCAST, p.CMD_POLL_GROUP, b"\x21\x00\x00")[0] is None
    assert s.rx_errors == errors + 2


def test_poll_group_handling_allocates_nothing():
    s, r = make(address=2)
    frame = p.decode_frame(p.encode_bytes(p.ADDR_BROADCAST, p.ADDR_MANAGER, p.CMD_POLL_GROUP,
                                          3, b"\x01\x00\x40"))  # fmt: skip
    assert heap_locked(r.handle, frame, 100) == 16
    # (an authenticated SET_TARGET allocates for its MAC check: shared/auth.py)


def target(first, last, target_uv, flags, timeout_s):
    return {"first": first, "last": last, "target_10uv": target_uv // 10, "flags": flags,
            "timeout_s": timeout_s}  # fmt: skip


def test_set_target_applies_to_its_range_with_timeout_limits():
    s, r = make(address=10)
    assert ask(r, p.ADDR_BROADCAST, p.CMD_SET_TARGET, target(1, 32, 13650370, 1, 30),
               now_ms=5000)[0] is None  # fmt: skip
    assert (s.target_uv, s.target_flags, s.target_timeout_ms, s.target_rx_ms) == (
        13650370, 1, 30000, 5000)  # fmt: skip
    assert s.target_received
    other = target(33, 64, 13000000, 1, 0)
    ask(r, p.ADDR_BROADCAST, p.CMD_SET_TARGET, other)
    assert s.target_uv == 13650370  # another string's target is not ours
    s.address = 40
    ask(r, p.ADDR_BROADCAST, p.CMD_SET_TARGET, other)
    assert s.target_timeout_ms == 10000  # 0 -> default
    ask(r, p.ADDR_BROADCAST, p.CMD_SET_TARGET, target(33, 64, 13000000, 0, 255))
    assert s.target_timeout_ms == 120000  # capped: a stale target never lasts long


def test_set_target_outside_the_variants_float_range_never_equalises():
    s, r = make(address=10)  # a 12 V block: plausible targets 12.6-14.7 V
    ask(r, p.ADDR_BROADCAST, p.CMD_SET_TARGET, target(1, 32, 12600000, 1, 30), now_ms=1000)
    assert s.target_flags == p.TARGET_EQUALISE
    ask(r, p.ADDR_BROADCAST, p.CMD_SET_TARGET, target(1, 32, 12590000, 3, 30), now_ms=2000)
    assert s.target_flags == p.TARGET_DISCHARGE and s.target_rx_ms == 2000
    ask(r, p.ADDR_BROADCAST, p.CMD_SET_TARGET, target(1, 32, 14710000, 1, 30), now_ms=3000)
    assert s.target_flags == 0


def test_lengths_are_exact():
    s, r = make(address=10)
    good = lay.encode_request(p.ADDR_BROADCAST, p.CMD_SET_TARGET, 3,
                              target(1, 32, 13045470, 1, 30), SIGNER)  # fmt: skip
    short = bytearray(good[:-3])  # one byte less, as a flipped LEN bit makes it
    short[1] -= 1
    c = p.crc16(short, 1, len(short))
    short += bytes([c & 0xFF, c >> 8])
    errors = s.rx_errors
    assert r.handle(p.decode_frame(bytes(short)), 0) == 0
    assert s.rx_errors == errors + 1 and not s.target_received


def test_meas_carries_what_the_module_measured():
    s, r = make(address=3)
    s.voltage_uv, s.temp_mc = 13619704, 25130
    reply, _ = ask(r, 3, p.CMD_READ_MEAS)
    assert p.meas_voltage_uv(reply.buf, reply.off) == 13619700
    assert p.meas_temp_mc(reply.buf, reply.off) == 25200
    # beyond the layout: saturated, never wrapped
    s.voltage_uv, s.temp_mc = 70000000, 400000
    reply, _ = ask(r, 3, p.CMD_READ_MEAS)
    assert p.meas_voltage_uv(reply.buf, reply.off) == p.MEAS_VOLTAGE_MAX_UV
    assert p.meas_temp_mc(reply.buf, reply.off) == p.MEAS_TEMP_MAX_MC


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
    new_key = bytes(range(16))
    assert ask(r, p.ADDR_BROADCAST, p.CMD_ADDR_CONFIRM, b"\x09" * 8 + b"\x07\x00" + new_key)[
        0] is None  # fmt: skip
    reply, _ = ask(r, p.ADDR_BROADCAST, p.CMD_ADDR_CONFIRM, UID + b"\x07\x00" + new_key)
    assert reply.src == 7 and fields(reply)["address"] == 7
    assert s.address == 7 and not s.addressing and not s.claim_armed
    assert s.dirty & st.DIRTY_ADDRESS and s.dirty & st.DIRTY_KEY and s.key == new_key
    # once addressed, a confirm (a rogue's, say) changes nothing: no button, no address
    reply, _ = ask(r, p.ADDR_BROADCAST, p.CMD_ADDR_CONFIRM, UID + b"\x08\x00" + KEY)
    assert reply is None and s.address == 7 and s.key == new_key


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
    reply, _ = ask(r, 0, p.CMD_SET_ADDRESS, {"address": 12})
    assert reply.src == 12 and s.address == 12
    reply, _ = ask(r, 12, p.CMD_SET_ADDRESS, {"address": 0})
    assert reply.cmd == p.CMD_NAK and fields(reply)["error"] == p.ERR_BAD_VALUE
    reply, _ = ask(r, 12, p.CMD_SET_ADDRESS, {"address": 1000})  # 1000 > 999
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


def test_reset_address_needs_the_key():
    s, r = make(address=9)
    reply, _ = ask(r, 9, p.CMD_RESET_ADDRESS, {}, signer=None)  # no key: refused
    assert fields(reply)["error"] == p.ERR_NOT_AUTHENTIC and s.address == 9
    reply, _ = ask(r, 9, p.CMD_RESET_ADDRESS, {})
    assert reply.src == 9 and reply.length == 0
    assert s.address == 0
    s.address = 4
    assert ask(r, p.ADDR_BROADCAST, p.CMD_RESET_ADDRESS, {})[0] is None
    assert s.address == 0


def test_rogue_commands_change_nothing_and_are_counted():
    s, r = make(address=9)
    rogue = auth.Signer(bytes(16))  # a device with some other key
    for signer in (None, rogue):
        assert ask(r, p.ADDR_BROADCAST, p.CMD_RESET_ADDRESS, {}, signer=signer)[0] is None
        ask(r, 9, p.CMD_CAL_WRITE, {"channel": 3, "offset": -10000, "gain_ppm": 0},
            signer=signer)  # fmt: skip
        ask(r, p.ADDR_BROADCAST, p.CMD_SET_TARGET, target(1, 32, 12600000, 1, 120),
            signer=signer)  # fmt: skip
        ask(r, 9, p.CMD_SET_VARIANT, {"variant": 0}, signer=signer)
    assert s.address == 9 and s.cal_offset[3] == 0 and not s.target_received
    assert s.variant_id == 3 and s.dirty == 0
    assert s.auth_refused == 8 and s.attention
    reply, _ = ask(r, 9, p.CMD_STATUS)
    assert fields(reply)["auth_refused"] == 8 and not s.attention


def test_a_replayed_frame_is_refused():
    s, r = make(address=9)
    data = lay.encode_request(9, p.CMD_CAL_WRITE, 5, {"channel": 0, "offset": 100,
                                                      "gain_ppm": 0}, SIGNER)  # fmt: skip
    assert r.handle(p.decode_frame(data), 0) > 0 and s.cal_offset[0] == 100
    s.cal_offset[0] = 7
    n = r.handle(p.decode_frame(data), 0)
    assert p.decode_frame(bytes(r.tx[:n])).u8(1) == p.ERR_NOT_AUTHENTIC
    assert s.cal_offset[0] == 7 and s.auth_refused == 1
    # a module without a key refuses everything authenticated
    s2, r2 = make(address=9, key=None)
    reply, _ = ask(r2, 9, p.CMD_CAL_WRITE, {"channel": 0, "offset": 1, "gain_ppm": 0})
    assert fields(reply)["error"] == p.ERR_NOT_AUTHENTIC and s2.auth_refused == 1


def test_set_key_rotates_the_key_without_sending_it_in_clear():
    from module_fw.responder import KEY_WRAP_LABEL, key_check

    s, r = make(address=9)
    new = bytes(range(100, 116))
    signer = auth.Signer(KEY)
    signer.advance_past(0, 5000, 0)
    ctr = (signer.ctr_lo + 1).to_bytes(3, "little") + signer.ctr_hi.to_bytes(3, "little")
    pad = auth.hmac_sha256(KEY, KEY_WRAP_LABEL + ctr)
    wrapped = "".join("%02x" % (new[i] ^ pad[i]) for i in range(16))
    reply, _ = ask(r, 9, p.CMD_SET_KEY, {"wrapped_key": wrapped}, signer=signer)
    assert fields(reply)["key_check"] == key_check(new) and s.key == new
    assert r.mac.key == new


def test_info_calibration_variant():
    s, r = make()
    s.ri_method = 2
    reply, _ = ask(r, 5, p.CMD_INFO)
    f = fields(reply)
    assert f["device_type"] == p.DEVICE_MODULE and f["variant"] == 3 and f["ri_method"] == 2
    assert f["uid"] == "0102030405060708"
    payload = {"channel": 0, "offset": -1500, "gain_ppm": 2100}
    reply, _ = ask(r, 5, p.CMD_CAL_WRITE, payload)
    assert fields(reply) == {"channel": 0, "offset": -1500, "gain_ppm": 2100}
    assert s.cal_offset[0] == -1500 and s.cal_gain_ppm[0] == 2100
    reply, _ = ask(r, 5, p.CMD_CAL_READ, b"\x00")
    assert fields(reply)["gain_ppm"] == 2100
    absurd = {"channel": 0, "offset": 0, "gain_ppm": 50001}
    assert ask(r, 5, p.CMD_CAL_WRITE, absurd)[0].cmd == p.CMD_NAK
    far = {"channel": 0, "offset": -500001, "gain_ppm": 0}
    assert ask(r, 5, p.CMD_CAL_WRITE, far)[0].cmd == p.CMD_NAK
    # temperature offsets within +-10 degC, whatever the frame (issue 13)
    for ch in (3, 4):
        hot = {"channel": ch, "offset": -10001, "gain_ppm": 0}
        assert fields(ask(r, 5, p.CMD_CAL_WRITE, hot)[0])["error"] == p.ERR_BAD_VALUE
        ok = {"channel": ch, "offset": -10000, "gain_ppm": 0}
        assert fields(ask(r, 5, p.CMD_CAL_WRITE, ok)[0])["offset"] == -10000
    assert s.cal_gain_ppm[0] == 2100 and s.cal_offset[0] == -1500
    assert ask(r, 5, p.CMD_CAL_READ, b"\x09")[0].cmd == p.CMD_NAK
    # channel 5, the voltage tempco: reference board temperature and ppb/K
    tc = {"channel": 5, "offset": 24500, "gain_ppm": -6200}
    assert fields(ask(r, 5, p.CMD_CAL_WRITE, tc)[0])["gain_ppm"] == -6200
    assert s.cal_offset[5] == 24500 and s.cal_gain_ppm[5] == -6200
    assert ask(r, 5, p.CMD_CAL_READ, b"\x06")[0].cmd == p.CMD_NAK
    reply, _ = ask(r, 5, p.CMD_SET_VARIANT, {"variant": 1})
    assert s.variant_id == 1 and s.dirty & st.DIRTY_VARIANT
    assert ask(r, 5, p.CMD_SET_VARIANT, {"variant": 5})[0].cmd == p.CMD_NAK


def test_ri_start_busy_and_read():
    s, r = make()
    s.ri_duration_ms[1] = 3200
    s.ri_duration_ms[2] = 1200
    s.ri_method = 2
    reply, _ = ask(r, 5, p.CMD_RI_START, {"method": 0})  # 0: the board's own method
    assert fields(reply) == {"method": 2, "duration_ms": 1200} and s.ri_request == 2
    s.ri_request = -1
    reply, _ = ask(r, 5, p.CMD_RI_START, {"method": 1})
    assert fields(reply) == {"method": 1, "duration_ms": 3200} and s.ri_request == 1
    reply, _ = ask(r, 5, p.CMD_RI_START, {"method": 1})
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
    assert delay == p.discover_slot_start_us(slot, 115200)
    # a broadcast with slots 0 or 1 would make every module answer at once: silence
    assert ask(r, p.ADDR_BROADCAST, p.CMD_DISCOVER, b"\x01")[0] is None
    assert ask(r, p.ADDR_BROADCAST, p.CMD_DISCOVER, b"\x00")[0] is None
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


def test_a_signed_set_target_allocates_nothing_but_its_mac():
    # Over hashlib the MAC check leaves ~510 bytes of garbage (two hash objects, two
    # digests; module_fw/responder.py says why the module keeps it).  Everything else a
    # signed command does - the counter floor, the target, its flags and timeout - must
    # allocate nothing: checked with the allocation-free MAC of shared/sha256.py, as on a
    # board without hashlib.  (Last in this file: on the emulated M0 its viper code stays
    # in RAM until the next file's soft reset.)
    s, r = make(address=5)
    r.mac = auth.Mac(KEY, pure=True)
    refused = s.auth_refused
    for target_mv in (13500, 13600):
        data = lay.encode_request(p.ADDR_BROADCAST, p.CMD_SET_TARGET, 9, {
            "first": 1, "last": 64, "target_10uv": target_mv * 100,
            "flags": p.TARGET_EQUALISE, "timeout_s": 40}, SIGNER)  # fmt: skip
        frame = p.decode_frame(data)
        hi, lo = s.ctr_hi, s.ctr_lo
        assert heap_locked(r.handle, frame, 2000) == 0  # a broadcast: no reply
        assert s.target_uv == target_mv * 1000 and s.target_timeout_ms == 40000
        assert auth.ctr_newer(s.ctr_hi, s.ctr_lo, hi, lo)
    assert s.auth_refused == refused
