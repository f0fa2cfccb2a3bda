# The relay/IO box's communication watchdog (shared/relaybox.py, docs/protocol.md §5.1):
# the fail-safe relays (the alarm contact) drop when no valid manager frame has reached
# the box for watchdog_ms, and only real manager requests to this box keep them up.
from dualtest import heap_locked

from shared import protocol as p
from shared import relaybox as rb

UID = bytes([0x5C, 0xB0, 0, 0, 0, 0, 0, 1])
BOX = p.ADDR_RELAY_BOX_BASE + 1


def frame(cmd, payload=b"", dst=BOX, src=p.ADDR_MANAGER, seq=1):
    return p.encode_bytes(dst, src, cmd, seq, payload)


def send(box, data, now_ms):
    """Bytes on the line, then the line goes quiet; returns the reply (or b"")."""
    n = box.bus_bytes(data, len(data), now_ms)
    m = box.bus_idle(now_ms)
    n = n or m
    return bytes(box.tx[:n]) if n else b""


def energise(box, now_ms, mask=0x0F, state=0x0F):
    reply = send(box, frame(p.CMD_RELAY_SET, bytes([mask, state])), now_ms)
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
    box = rb.RelayBoxCore(1, UID)
    assert box.relays == 0 and not box.fed  # de-energised: the contact signals alarm
    box.tick(5000)
    assert box.relays == 0
    energise(box, 6000)
    assert box.relays == 0x0F and box.fed


def test_released_at_the_watchdog_time_after_the_last_frame():
    box = rb.RelayBoxCore(1, UID)
    assert box.watchdog_ms == rb.WATCHDOG_MS_DEFAULT == 10000
    energise(box, 1000)
    released = run_until_release(box, 1000, 30000)
    assert released == 11000  # 10 s after the last manager frame, not before
    assert box.expiries == 1 and not box.fed
    reply = p.decode_frame(send(box, frame(p.CMD_IO_READ), 12000))
    assert reply.u8(0) == 0  # the manager sees the relays dropped


def test_held_while_manager_frames_arrive():
    box = rb.RelayBoxCore(1, UID)
    energise(box, 0)
    t = 0
    while t < 120000:  # two minutes of IO_READ every 2 s
        t += 2000
        assert run_until_release(box, t - 2000 + 10, t) == -1
        send(box, frame(p.CMD_IO_READ, seq=t & 0xFF), t)
    assert box.relays == 0x0F and box.expiries == 0
    assert run_until_release(box, t, t + 20000) == t + 10000


def test_bad_crc_other_addresses_broadcasts_and_replies_do_not_feed_it():
    box = rb.RelayBoxCore(1, UID)
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
    ]
    t = 0
    while t < 9500:
        t += 500
        for data in noise:
            send(box, data, t)
    assert box.deframer.crc_errors == t // 500
    assert run_until_release(box, t, 20000) == 10000  # as if nothing had been heard


def test_any_manager_request_to_the_box_feeds_it_even_one_it_refuses():
    box = rb.RelayBoxCore(1, UID)
    energise(box, 0)
    nak = p.decode_frame(send(box, frame(0x3F), 8000))  # unknown command: NAK
    assert nak.cmd == p.CMD_NAK and nak.u8(1) == p.ERR_UNKNOWN_COMMAND
    assert run_until_release(box, 8000, 30000) == 18000


def test_failsafe_relays_are_configurable_and_others_hold():
    box = rb.RelayBoxCore(1, UID, failsafe_mask=rb.failsafe_mask_of([1, 3]))
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
    box = rb.RelayBoxCore(1, UID, watchdog_ms=3000)
    energise(box, 100)
    assert run_until_release(box, 100, 20000) == 3100
    for bad in (rb.WATCHDOG_MS_MIN - 1, rb.WATCHDOG_MS_MAX + 1):
        try:
            rb.RelayBoxCore(1, UID, watchdog_ms=bad)
            raise AssertionError("watchdog_ms %d accepted" % bad)
        except ValueError as exc:
            assert "watchdog_ms %d outside 3000..60000" % bad in str(exc)


def test_after_an_expiry_the_manager_sets_the_relays_again():
    box = rb.RelayBoxCore(1, UID)
    energise(box, 0, mask=0b0011, state=0b0011)
    box.tick(10000)
    assert box.relays == 0
    reply = p.decode_frame(energise(box, 15000, mask=0b0001, state=0b0001))
    assert reply.u8(0) == 0b0001 and box.relays == 0b0001  # only what it set again
    assert run_until_release(box, 15000, 40000) == 25000 and box.expiries == 2


def test_only_the_manager_can_energise_a_failsafe_relay():
    box = rb.RelayBoxCore(1, UID, failsafe_mask=0b0001)
    send(box, frame(p.CMD_RELAY_SET, bytes([0x0F, 0x0F]), src=0x0005), 100)
    assert box.relays == 0b1110  # the fail-safe relay 1 stays released
    assert not box.fed


def test_inputs_are_debounced_before_io_read_reports_them():
    box = rb.RelayBoxCore(1, UID)
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
    box = rb.RelayBoxCore(1, UID)
    box.inputs = 0b1001
    r = p.decode_frame(send(box, frame(p.CMD_IO_READ), 10))
    assert (r.u8(0), r.u8(1)) == (0, 0b1001)
    r = p.decode_frame(send(box, frame(p.CMD_RELAY_SET, bytes([0x10, 0x10])), 20))
    assert r.cmd == p.CMD_NAK and r.u8(1) == p.ERR_BAD_VALUE
    r = p.decode_frame(send(box, frame(p.CMD_RELAY_SET, bytes([1])), 30))
    assert r.cmd == p.CMD_NAK and r.u8(1) == p.ERR_BAD_LENGTH
    d = p.decode_frame(send(box, frame(p.CMD_DISCOVER, bytes([1])), 40))
    assert d.u8(0) == p.DEVICE_RELAY_BOX and d.payload()[6:14] == UID
    try:
        rb.RelayBoxCore(16, UID)
        raise AssertionError("box 16 accepted")
    except ValueError as exc:
        assert "box number 16 is not 1..15" in str(exc)


def test_frames_and_ticks_allocate_nothing():
    box = rb.RelayBoxCore(1, UID)
    req = frame(p.CMD_RELAY_SET, bytes([1, 1]))
    assert heap_locked(box.bus_bytes, req, len(req), 100) == 12
    assert heap_locked(box.tick, 5000) is None
    heap_locked(box.tick, 10100)
    assert box.relays == 0
