# manager_fw/poller + bus: measurement cycles over the virtual bus with real module
# responders: values, timing, lost modules, duplicates, noise.
from busfixture import Rig

from manager_fw import addressing as ad
from manager_fw import poller as pl
from shared import protocol as p


def expected_cycle_us(sizes, baud=115200, group_max=64):
    """docs/protocol.md, 'Cost of a cycle': per string one SET_TARGET and a gap, per
    group one POLL_GROUP, the lead, and one slot per module."""
    total = 0
    gap = p.wire_us(2, baud)
    for n in sizes:
        total += p.wire_us(p.OVERHEAD + p.SET_TARGET_FIELDS + p.AUTH_LEN, baud) + gap
        while n > 0:
            count = n if n < group_max else group_max
            total += p.wire_us(p.OVERHEAD + 3, baud) + p.group_slot_start_us(count, baud)
            n -= count
    return total


def test_one_cycle_reads_every_module():
    rig = Rig(strings=[(1, 12), (13, 20)], n_modules=20)
    rig.run_cycles(1)
    pol = rig.poller
    for a in range(1, 21):
        assert pol.state[a] == pl.ST_OK
        assert pol.voltage_uv[a] == 13000000 + 1010 * a
        assert pol.voltage_mv[a] == (13000000 + 1010 * a + 500) // 1000
        assert pol.temp_cc[a] == 2000 + 20 * a
        assert pol.balance_pct[a] == a % 101
    assert rig.master.unexpected == 0 and rig.bus.collisions == 0


def test_targets_reach_each_string():
    rig = Rig(strings=[(1, 4), (5, 8)], n_modules=8)
    rig.poller.target_uv[0] = 13500000
    rig.poller.target_uv[1] = 13620990
    rig.poller.target_flags[1] = p.TARGET_EQUALISE
    rig.run_cycles(1)
    assert [m.target_uv for m in rig.modules] == [13500000] * 4 + [13620990] * 4
    assert [m.target_flags for m in rig.modules] == [0] * 4 + [1] * 4


def test_cycle_time_is_the_documented_formula():
    # (~2.4 KB per simulated module: the MicroPython heap holds a few dozen, so group
    # splitting is exercised with a smaller group size; 600 modules: bench_bus.)
    for sizes, group_max in (([16], 64), ([20, 12], 8), ([9], 4)):
        strings = []
        a = 1
        for n in sizes:
            strings.append((a, a + n - 1))
            a += n
        rig = Rig(strings=strings, n_modules=a - 1)
        rig.poller.group_max = group_max
        rig.run_cycles(2)
        assert rig.poller.last_cycle_us == expected_cycle_us(sizes, group_max=group_max), sizes
        assert all(rig.poller.state[x] == 1 for x in range(1, a))


def test_silent_module_is_missed_and_recovers():
    rig = Rig(strings=[(1, 10)], n_modules=10)
    rig.run_cycles(1)
    rig.bus.unplug(rig.nodes[4])  # address 5
    rig.run_cycles(3)
    pol = rig.poller
    assert pol.state[5] == pl.ST_SILENT and pol.misses[5] == 3
    assert all(pol.state[a] == pl.ST_OK for a in range(1, 11) if a != 5)
    rig.bus.replug(rig.nodes[4])
    rig.run_cycles(1)
    assert pol.state[5] == pl.ST_OK and pol.misses[5] == 0


def test_never_answering_module_is_not_reachable():
    rig = Rig(strings=[(1, 6)], n_modules=5)
    rig.run_cycles(2)
    assert rig.poller.state[6] == pl.ST_NEVER and rig.poller.misses[6] == 2


def test_duplicate_address_is_detected_and_reported():
    rig = Rig(strings=[(1, 8)], addresses=[1, 2, 3, 4, 5, 6, 7, 7])
    rig.run_cycles(3)
    pol = rig.poller
    # the two modules at 7 collide in their slot: no value is merged from either
    assert pol.state[7] == pl.ST_NEVER
    assert pol.voltage_mv[7] == 0
    assert pol.suspect[7] >= 3
    assert rig.bus.collisions >= 3
    assert all(pol.state[a] == pl.ST_OK for a in range(1, 7))
    job = rig.run_job(ad.DuplicateCheck(7))
    assert len(job.result) == 2
    assert "address 7 is used by 2 modules" in job.error


def test_reply_from_unexpected_address_is_not_stored():
    rig = Rig(strings=[(1, 4)], n_modules=4)
    rig.run_cycles(1)
    # a stray device answers in the middle of a group window with another address
    stray = p.encode_bytes(p.ADDR_MANAGER, 99, p.CMD_POLL_GROUP | p.REPLY, 0, bytes(6))
    rig.master.waiting = True
    seq = rig.master.seq
    rig.master.receive(stray[:7] + bytes([seq]) + stray[8:], 0)  # wrong CRC once seq changed
    assert rig.poller.voltage_mv[4] == 13004
    fixed = p.encode_bytes(p.ADDR_MANAGER, 99, p.CMD_POLL_GROUP | p.REPLY, seq, bytes(6))
    before = rig.master.unexpected
    rig.master._current = rig.poller
    rig.master.receive(fixed, 0)
    assert rig.master.unexpected == before + 1
    assert rig.master.last_unexpected_src == 99


def test_noisy_bus_never_stores_a_wrong_value():
    rig = Rig(strings=[(1, 16)], n_modules=16, seed=7)
    rig.bus.bit_error_ppm = 300  # ~4 % of 16-byte frames carry a flipped bit
    rig.run_cycles(30)
    pol = rig.poller
    assert rig.bus.corrupted_bytes > 0
    assert rig.master.deframer.crc_errors > 0
    for a in range(1, 17):
        assert pol.voltage_uv[a] == 13000000 + 1010 * a
        assert pol.voltage_mv[a] == (13000000 + 1010 * a + 500) // 1000
        assert pol.temp_cc[a] == 2000 + 20 * a


def test_service_requests_run_between_cycles():
    rig = Rig(strings=[(1, 4)], n_modules=4)
    answers = []

    def done(master, frame):
        answers.append(None if frame is None else frame.src)

    from manager_fw.bus import ServiceRequest

    rig.master.enqueue_service(ServiceRequest(3, p.CMD_INFO, b"", done))
    rig.master.enqueue_service(ServiceRequest(9, p.CMD_INFO, b"", done))  # nobody there
    rig.run_cycles(3)
    assert answers == [3, None]
    assert rig.master.timeouts == 1


def test_polling_resumes_after_a_pause_longer_than_half_the_tick_period():
    # Tick comparisons hold for half the 2**30 µs period (537 s).  A master or poller
    # left idle longer than that (modules asleep, setup mode) must not take its old
    # time marks for future ones and stay silent for up to another 9 minutes.
    rig = Rig(strings=[(1, 2)], n_modules=2)
    rig.poller.cycle_period_us = 1000000
    rig.run_cycles(2)
    rig.master.poller = None
    rig.run_ms(600000)  # ten minutes without polling
    rig.master.poller = rig.poller
    cycle = rig.poller.cycle
    rig.run_ms(1500)
    assert rig.poller.cycle >= cycle + 1


def test_the_first_request_goes_out_whatever_the_tick_counter_reads():
    # a host's tick counter starts anywhere; half of all start times are "before" 0
    from manager_fw import bus as b

    for start in (0, 5, (1 << 29) + 5, (1 << 30) - 10):
        master = b.BusMaster()
        job = ad.QueryLone()
        master.foreground = job
        assert master.step(start) > 0, start


def _meas(src, voltage_mv, temp_cc):
    """A MEAS reply frame from `src` (the wire carries 10 µV and 0.2 °C steps), through
    the real deframer."""
    buf = bytearray(p.FRAME_MAX)
    n = p.encode_meas(buf, p.ADDR_MANAGER, src, p.CMD_POLL_GROUP | p.REPLY, 0,
                      voltage_mv * 1000, temp_cc * 10, 0, 0)  # fmt: skip
    raw = bytes(buf[:n])
    d = p.Deframer()
    d.feed(raw, 0, len(raw))
    d.idle()
    return d.poll()


def _window(pol, replies):
    """One POLL_GROUP window of addresses 1..4 receiving these (src, mV, c°C) replies."""
    pol._group_first = 1
    pol._group_count = 4
    for i in range(4):
        pol._got[i] = 0
    for src, mv, cc in replies:
        pol.on_reply(None, _meas(src, mv, cc), 0)


def test_a_second_reply_or_an_impossible_reading_makes_the_module_implausible():
    pol = pl.Poller([(1, 4)])
    pol.voltage_min_mv, pol.voltage_max_mv = 8000, 17000  # a 12 V block module
    _window(pol, [(1, 13600, 2500), (2, 13600, 2500), (2, 41000, -4000), (3, 13600, 2500)])
    assert [pol.state[a] for a in (1, 2, 3)] == [pl.ST_OK, pl.ST_IMPLAUSIBLE, pl.ST_OK]
    assert pol.duplicate[2] == 1 and pol.implausible[2] == pl.IMPL_DUPLICATE
    assert pol.voltage_mv[2] == 13600  # the second reply is not stored
    # one reply per window from now on: still implausible for DUPLICATE_HOLD cycles
    for _ in range(pl.DUPLICATE_HOLD):
        _window(pol, [(2, 13600, 2500)])
        assert pol.state[2] == pl.ST_IMPLAUSIBLE
    _window(pol, [(2, 13600, 2500)])
    assert pol.state[2] == pl.ST_OK and pol.implausible[2] == 0
    # readings the module cannot measure
    for mv, cc in ((7999, 2500), (17001, 2500), (13600, -4000), (13600, 10020), (0, 0)):
        _window(pol, [(3, mv, cc)])
        assert pol.state[3] == pl.ST_IMPLAUSIBLE and pol.implausible[3] == pl.IMPL_RANGE
        assert pol.misses[3] == 0  # it answered
    _window(pol, [(3, 8000, -3980)])  # -39.8 °C: the wire's step nearest -40 °C
    assert pol.state[3] == pl.ST_OK


def test_hot_path_constants_are_the_protocols():
    # bus.py and poller.py compile these in (a module attribute is a dictionary look-up
    # per use on MicroPython); they must stay the protocol's values
    from manager_fw import bus as b

    assert b.REPLY_BIT == p.REPLY
    assert b.MANAGER_ADDR == p.ADDR_MANAGER
    assert pl.MEAS_REPLY_CMD == p.CMD_POLL_GROUP | p.REPLY
    assert pl.MEAS_REPLY_LEN == p.MEAS_LEN


def test_stored_readings_are_the_protocols_decoding_at_the_field_edges():
    # the poller reads the MEAS layout inline (hot path); protocol.meas_* is the reference
    cases = [
        (0, p.MEAS_TEMP_MIN_MC, 0, 0),
        (p.MEAS_VOLTAGE_MAX_UV, p.MEAS_TEMP_MAX_MC, 100, 255),
        (13612340, 25000, 37, 0x81),
        (2000010, -200, 1, 0x40),
        (41943020, 99800, 99, 7),
    ]
    for uv, mc, pct, flags in cases:
        pol = pl.Poller([(1, 4)])
        pol._group_first = 1
        pol._group_count = 4
        buf = bytearray(p.FRAME_MAX)
        n = p.encode_meas(buf, p.ADDR_MANAGER, 2, p.CMD_POLL_GROUP | p.REPLY, 0, uv, mc, pct,
                          flags)  # fmt: skip
        d = p.Deframer()
        d.feed(buf, 0, n)
        frame = d.poll()
        pol.on_reply(None, frame, 0)
        want_uv = p.meas_voltage_uv(frame.buf, frame.off)
        assert pol.voltage_uv[2] == want_uv, uv
        assert pol.voltage_mv[2] == (want_uv + 500) // 1000, uv
        assert pol.temp_cc[2] == p.meas_temp_mc(frame.buf, frame.off) // 10, mc
        assert (pol.balance_pct[2], pol.flags[2]) == (pct, flags)


def test_taking_in_replies_allocates_not_even_a_call_frame():
    # MicroPython allocates a bytecode function's frame from the heap at every call when
    # it is larger than 11 words (locals plus value stack), and silently falls back to the
    # C stack when the heap is locked, so heap_locked() cannot see it.  The reply path
    # must not (docs/benchmarks.md, "Emulated Cortex-M0"): micropython.mem_total() counts
    # every byte ever allocated (the unix port; the emulated M0's build has no counter).
    from dualtest import IS_MICROPYTHON

    from manager_fw import bus as b

    master = b.BusMaster()
    pol = pl.Poller([(1, 4)])
    master.poller = pol
    assert master.step(1000) and master.tx[6] == p.CMD_POLL_GROUP
    replies = []
    for a in range(1, 5):
        buf = bytearray(16)
        p.encode_meas(buf, p.ADDR_MANAGER, a, p.CMD_POLL_GROUP | p.REPLY, master.seq,
                      13000000 + a * 1000, 21000, a, 0)  # fmt: skip
        replies.append(bytes(buf))
    total = None
    if IS_MICROPYTHON:
        import micropython

        total = getattr(micropython, "mem_total", None)
    before = total() if total else 0
    for r in replies:
        master.receive(r, 2000)
    master.line_idle(3000)
    after = total() if total else 0
    assert after == before, "%d bytes allocated taking in 4 replies" % (after - before)
    assert [pol.state[a] for a in range(1, 5)] == [pl.ST_OK] * 4
    assert [pol.voltage_mv[a] for a in range(1, 5)] == [13001, 13002, 13003, 13004]
