# The relay/IO box's communication watchdog (shared/relaybox.py, docs/protocol.md §5.1):
# the fail-safe relays (the alarm contact) drop when no accepted RELAY_SET has reached
# the box for watchdog_ms; only the manager's authenticated RELAY_SETs (the site key,
# a fresh counter) change relays and keep them up (docs/protocol.md §5a).
from dualtest import heap_locked

from shared import auth
from shared import protocol as p
from shared import protocol_layouts as lay
from shared import relaybox as rb

UID = bytes([0x5C, 0xB0, 0, 0, 0, 0, 0, 1])
BOX = p.ADDR_RELAY_BOX_BASE + 1
KEY = b"StringCare-test!"  # the published test key
SIGNER = auth.Signer(KEY)  # the manager's counter: increases over every test


def frame(cmd, payload=b"", dst=BOX, src=p.ADDR_MANAGER, seq=1):
    return p.encode_bytes(dst, src, cmd, seq, payload)


def relay_set(mask, state, signer=SIGNER, dst=BOX, seq=1, src=p.ADDR_MANAGER):
    """A RELAY_SET signed by signer (None: the trailer left zero, as a device without
    the key sends it)."""
    return lay.encode_request(dst, p.CMD_RELAY_SET, seq, {"mask": mask, "state": state},
                              signer, src)  # fmt: skip


def new_box(**kw):
    kw.setdefault("key", KEY)
    return rb.RelayBoxCore(1, UID, **kw)


def send(box, data, now_ms):
    """Bytes on the line, then the line goes quiet; returns the reply (or b"")."""
    n = box.bus_bytes(data, len(data), now_ms)
    m = box.bus_idle(now_ms)
    n = n or m
    return bytes(box.tx[:n]) if n else b""


def energise(box, now_ms, mask=0x0F, state=0x0F):
    reply = send(box, relay_set(mask, state), now_ms)
    assert p.decode_frame(reply).cmd == p.CMD_RELAY_SET | p.REPLY
    return reply


def run_until_release(box, start_ms, end_ms, step_ms=10):
    """Tick the box every step_ms; the time its relays first changed to 0, or -1."""
    t = start_ms
    while t <= end_ms:
        box.tick(t)
        if box.relays == 0:
            return t
        t += step_ms
    return -1


def test_power_up_is_released_until_the_manager_sets_the_relays():
    box = new_box()
    assert box.relays == 0 and not box.fed  # de-energised: the contact signals alarm
    box.tick(5000)
    assert box.relays == 0
    energise(box, 6000)
    assert box.relays == 0x0F and box.fed


def test_released_at_the_watchdog_time_after_the_last_frame():
    box = new_box()
    assert box.watchdog_ms == rb.WATCHDOG_MS_DEFAULT == 10000
    energise(box, 1000)
    released = run_until_release(box, 1000, 30000)
    assert released == 11000  # 10 s after the last manager frame, not before
    assert box.expiries == 1 and not box.fed
    reply = p.decode_frame(send(box, frame(p.CMD_IO_READ), 12000))
    assert reply.u8(0) == 0  # the manager sees the relays dropped


def test_held_while_manager_frames_arrive():
    box = new_box()
    energise(box, 0)
    t = 0
    while t < 120000:  # two minutes of the manager's RELAY_SET every 2 s
        t += 2000
        assert run_until_release(box, t - 2000 + 10, t) == -1
        send(box, relay_set(0x0F, 0x0F, seq=t & 0xFF), t)
    assert box.relays == 0x0F and box.expiries == 0
    assert run_until_release(box, t, t + 20000) == t + 10000


def test_bad_crc_other_addresses_broadcasts_and_replies_do_not_feed_it():
    box = new_box()
    energise(box, 0)
    bad = bytearray(frame(p.CMD_IO_READ))
    bad[-1] ^= 0x40  # a flipped bit in the CRC
    noise = [
        bytes(bad),
        frame(p.CMD_IO_READ, dst=BOX + 1),  # another box
        frame(p.CMD_CURRENT_READ, dst=p.ADDR_CURRENT_SENSOR_BASE + 1),
        frame(p.CMD_SET_TARGET, bytes(10), dst=p.ADDR_BROADCAST),
        frame(p.CMD_IO_READ | p.REPLY, bytes(2), dst=p.ADDR_MANAGER, src=BOX),  # a reply
        frame(p.CMD_IO_READ, src=0x0005),  # a request to this box, not from the manager
        frame(p.CMD_IO_READ),  # the manager's IO_READ: unauthenticated, feeds nothing
        frame(0x3F),  # an unknown command from the manager's address (NAK)
        relay_set(0x0F, 0x0F, signer=None),  # the manager's address, no key
        relay_set(0x0F, 0x0F, signer=auth.Signer(bytes(16))),  # another key
    ]
    t = 0
    while t < 9500:
        t += 500
        for data in noise:
            send(box, data, t)
    assert box.deframer.crc_errors == t // 500
    assert box.auth_refused == 2 * (t // 500)
    assert run_until_release(box, t, 20000) == 10000  # as if nothing had been heard


def test_a_replayed_relay_set_is_refused_and_feeds_nothing():
    box = new_box()
    recorded = relay_set(0x0F, 0x0F)
    send(box, recorded, 0)
    assert box.relays == 0x0F and box.fed
    for t in range(2000, 20000, 2000):  # a recorder plays the manager's frame again
        nak = p.decode_frame(send(box, recorded, t))
        assert nak.cmd == p.CMD_NAK and nak.u8(1) == p.ERR_NOT_AUTHENTIC
    assert box.auth_refused == 9
    assert box.relays == 0  # released 10 s after the one accepted frame
    assert box.expiries == 1


def test_without_a_key_every_relay_set_is_refused():
    box = rb.RelayBoxCore(1, UID)  # never given the site key (deploy --site-key)
    nak = p.decode_frame(send(box, relay_set(0x0F, 0x0F), 0))
    assert nak.cmd == p.CMD_NAK and nak.u8(1) == p.ERR_NOT_AUTHENTIC
    assert box.relays == 0 and not box.fed and box.auth_refused == 1
    info = p.decode_frame(send(box, frame(p.CMD_INFO), 10))
    assert info.length == 25 and info.u8(16) == 0 and info.u16(17) == 1


def test_failsafe_relays_are_configurable_and_others_hold():
    box = new_box(failsafe_mask=rb.failsafe_mask_of([1, 3]))
    assert box.failsafe_mask == 0b0101
    energise(box, 0)
    box.tick(9999)
    assert box.relays == 0x0F
    box.tick(10000)
    assert box.relays == 0b1010  # relays 2 and 4 keep their state
    try:
        rb.failsafe_mask_of([0, 5])
        raise AssertionError("relay 0 accepted")
    except ValueError as exc:
        assert "relay 0 is not 1..4" in str(exc)


def test_watchdog_time_is_configurable_within_limits():
    box = new_box(watchdog_ms=3000)
    energise(box, 100)
    assert run_until_release(box, 100, 20000) == 3100
    for bad in (rb.WATCHDOG_MS_MIN - 1, rb.WATCHDOG_MS_MAX + 1):
        try:
            rb.RelayBoxCore(1, UID, watchdog_ms=bad)
            raise AssertionError("watchdog_ms %d accepted" % bad)
        except ValueError as exc:
            assert "watchdog_ms %d outside 3000..60000" % bad in str(exc)


def test_after_an_expiry_the_manager_sets_the_relays_again():
    box = new_box()
    energise(box, 0, mask=0b0011, state=0b0011)
    box.tick(10000)
    assert box.relays == 0
    reply = p.decode_frame(energise(box, 15000, mask=0b0001, state=0b0001))
    assert reply.u8(0) == 0b0001 and box.relays == 0b0001  # only what it set again
    assert run_until_release(box, 15000, 40000) == 25000 and box.expiries == 2


def test_a_rogue_relay_set_changes_nothing():
    box = new_box(failsafe_mask=0b0001)
    energise(box, 0, mask=0x0F, state=0b0110)
    for src in (0x0005, p.ADDR_MANAGER):  # its own address, or the manager's
        for signer in (None, auth.Signer(bytes(16))):
            nak = p.decode_frame(send(box, relay_set(0x0F, 0b1001, signer, src=src), 100))
            assert nak.cmd == p.CMD_NAK and nak.u8(1) == p.ERR_NOT_AUTHENTIC
    assert box.relays == 0b0110 and box.auth_refused == 4
    box.tick(9999)
    assert box.fed
    box.tick(10000)  # 10 s after the manager's frame, not after the rogue ones
    assert not box.fed and box.expiries == 1


def test_inputs_are_debounced_before_io_read_reports_them():
    box = new_box()
    t = 1000
    for level in (0b0001, 0, 0b0001, 0, 0b0001):  # a bouncing contact, 10 ms steps
        box.set_inputs(level, t)
        t += 10
    box.set_inputs(0b0001, t)
    assert box.inputs == 0
    box.set_inputs(0b0001, 1040 + rb.INPUT_DEBOUNCE_MS - 1)
    assert box.inputs == 0
    box.set_inputs(0b0001, 1040 + rb.INPUT_DEBOUNCE_MS)  # held 50 ms: closed
    assert box.inputs == 0b0001
    box.set_inputs(0b1001, 2000)
    box.set_inputs(0b0001, 2020)  # a 20 ms glitch on input 4 never shows
    box.set_inputs(0b0001, 2100)
    assert box.inputs == 0b0001
    assert heap_locked(box.set_inputs, 0b0011, 3000) is None


def test_inputs_and_bad_requests():
    box = new_box()
    box.inputs = 0b1001
    r = p.decode_frame(send(box, frame(p.CMD_IO_READ), 10))
    assert (r.u8(0), r.u8(1)) == (0, 0b1001)
    r = p.decode_frame(send(box, relay_set(0x10, 0x10), 20))
    assert r.cmd == p.CMD_NAK and r.u8(1) == p.ERR_BAD_VALUE
    r = p.decode_frame(send(box, frame(p.CMD_RELAY_SET, bytes([1, 1])), 30))  # version 1
    assert r.cmd == p.CMD_NAK and r.u8(1) == p.ERR_BAD_LENGTH
    d = p.decode_frame(send(box, frame(p.CMD_DISCOVER, bytes([1])), 40))
    assert d.u8(0) == p.DEVICE_RELAY_BOX and d.payload()[6:14] == UID
    try:
        rb.RelayBoxCore(16, UID)
        raise AssertionError("box 16 accepted")
    except ValueError as exc:
        assert "box number 16 is not 1..15" in str(exc)


def test_frames_and_ticks_allocate_nothing():
    box = new_box()
    req = relay_set(1, 1)
    assert heap_locked(box.bus_bytes, req, len(req), 100) == 12
    assert box.relays == 1
    assert heap_locked(box.bus_bytes, req, len(req), 200) == 12  # its replay: a NAK
    assert heap_locked(box.tick, 5000) is None
    heap_locked(box.tick, 10100)
    assert box.relays == 0


def test_the_box_vectors_of_the_protocol_document():
    # docs/protocol-vectors.json: RELAY_SET to box 1 under the test key, floor 0x10000
    import json

    checked = 0
    with open("docs/protocol-vectors.json") as f:
        for line in f:
            line = line.strip().rstrip(",")
            if '"outcome"' not in line or '"module": 61697' not in line:
                continue
            v = json.loads(line)
            box = rb.RelayBoxCore(1, UID, key=bytes.fromhex(v["key"]))
            box.ctr_hi, box.ctr_lo = v["floor"] >> 24, v["floor"] & 0xFFFFFF
            reply = p.decode_frame(send(box, bytes.fromhex(v["hex"]), 100))
            if v["nak"]:
                assert reply.cmd == p.CMD_NAK and reply.u8(1) == v["nak"], v["name"]
                assert box.relays == 0 and not box.fed, v["name"]
            else:
                assert reply.cmd == p.CMD_RELAY_SET | p.REPLY and reply.u8(0) == 1
                assert box.fed and (box.ctr_hi << 24 | box.ctr_lo) == 0x10001
            assert box.auth_refused == (1 if v["nak"] == 6 else 0), v["name"]
            checked += 1
    assert checked == 4


def test_the_key_file_keeps_the_key_and_the_floor():
    box = rb.RelayBoxCore(1, UID)
    assert not box.store_due
    box.set_key(KEY, 0)
    assert box.store_due  # a new key is written at once
    energise(box, 10)
    buf = bytearray(rb.KEY_FILE_LEN)
    assert box.store_bytes(buf) == 28 and not box.store_due
    again = rb.RelayBoxCore(1, UID)
    assert again.load_store(buf)
    assert again.mac.key == KEY and (again.ctr_hi, again.ctr_lo) == (box.ctr_hi, box.ctr_lo)
    nak = p.decode_frame(send(again, relay_set(1, 1, signer=None), 20))
    assert nak.u8(1) == p.ERR_NOT_AUTHENTIC
    buf[7] ^= 1  # a damaged file: nothing taken
    assert not rb.RelayBoxCore(1, UID).load_store(buf)
    # the floor moves with every accepted RELAY_SET; the file follows at most hourly
    energise(box, 1000)
    box.tick(rb.FLOOR_SAVE_MS - 1)
    assert not box.store_due
    box.tick(rb.FLOOR_SAVE_MS)
    assert box.store_due


def test_info_reports_the_key_the_refusals_and_the_floor():
    box = new_box()
    energise(box, 0)
    send(box, relay_set(1, 1, signer=None), 10)
    info = p.decode_frame(send(box, frame(p.CMD_INFO), 20))
    f = lay.unpack(p.CMD_INFO, True, info.buf, info.off, info.length)
    assert f["device_type"] == p.DEVICE_RELAY_BOX and f["key_state"] == 1
    assert f["auth_refused"] == 1 and f["auth_ctr"] == (box.ctr_hi << 24 | box.ctr_lo)
