# The string current sensor's core (shared/currentsensor.py): ADC codes -> averaged,
# scaled mA in CURRENT_READ, with the fault and over-range flags.
from dualtest import heap_locked

from shared import currentsensor as cs
from shared import protocol as p

UID = bytes([0x5C, 0xC5, 0, 0, 0, 0, 0, 2])
ADDR = p.ADDR_CURRENT_SENSOR_BASE + 2


def read(sensor, now_ms):
    req = p.encode_bytes(ADDR, p.ADDR_MANAGER, p.CMD_CURRENT_READ, 7)
    n = sensor.bus_bytes(req, len(req), now_ms)
    r = p.decode_frame(bytes(sensor.tx[:n]))
    assert r.cmd == p.CMD_CURRENT_READ | p.REPLY and r.seq == 7 and r.src == ADDR
    return r.i32(0), r.u8(4), r.u8(5)


def test_nothing_measured_yet_is_a_sensor_fault():
    s = cs.CurrentSensorCore(2, UID)
    assert read(s, 0) == (0, 2, cs.FLAG_FAULT)


def test_codes_are_averaged_and_scaled_both_signs():
    # LEM HASS 100-S (6.25 mV/A) on an ADS1115 at +-2.048 V (62.5 uV/code): 10 mA/code
    s = cs.CurrentSensorCore(2, UID, ma_per_code_num=10, ma_per_code_den=1)
    for k in range(cs.SAMPLES):
        s.sample(1000 + (k & 1), 10 * k)  # 1000 and 1001 alternating: 10.005 A
    assert read(s, 200) == (10005, 2, 0)
    for k in range(cs.SAMPLES):
        s.sample(-1000 - (k & 1), 300 + 10 * k)
    assert read(s, 500)[0] == -10005  # discharging: the same magnitude, negative


def test_a_partly_filled_window_averages_what_it_has_and_zero_is_subtracted():
    s = cs.CurrentSensorCore(1, UID[:7] + b"\x01", ma_per_code_num=4, ma_per_code_den=3,
                             zero_code=-20)  # fmt: skip
    s.sample(280, 0)
    s.sample(580, 10)  # codes 300 and 600 after the zero: mean 450 -> 600 mA
    assert s.current_ma == 600 and s.flags == 0


def test_over_range_and_faults():
    s = cs.CurrentSensorCore(2, UID, range_ma=100000)
    for k in range(cs.SAMPLES):
        s.sample(10001, k)
    assert s.current_ma == 100010 and s.flags == cs.FLAG_OVER_RANGE
    s.sample_fault(20)
    assert read(s, 20)[2] == cs.FLAG_OVER_RANGE | cs.FLAG_FAULT
    s.sample(10001, 30)  # the next good conversion clears the fault
    assert s.flags == cs.FLAG_OVER_RANGE
    s.tick(30 + cs.STALE_MS - 1)
    assert not s.flags & cs.FLAG_FAULT
    s.tick(30 + cs.STALE_MS)  # no conversion for a second: stale
    assert s.flags & cs.FLAG_FAULT


def test_bad_requests_and_settings():
    s = cs.CurrentSensorCore(2, UID)
    req = p.encode_bytes(ADDR, p.ADDR_MANAGER, p.CMD_CURRENT_READ, 1, b"\x00")
    n = s.bus_bytes(req, len(req), 0)
    r = p.decode_frame(bytes(s.tx[:n]))
    assert r.cmd == p.CMD_NAK and r.u8(1) == p.ERR_BAD_LENGTH
    other = p.encode_bytes(ADDR + 1, p.ADDR_MANAGER, p.CMD_CURRENT_READ, 1)
    assert s.bus_bytes(other, len(other), 0) == 0
    for kw, text in (({"string_no": 9}, "string 9 is not 1..8"),
                     ({"ma_per_code_den": 0}, "must be positive")):  # fmt: skip
        args = {"string_no": 2, "uid": UID}
        args.update(kw)
        try:
            cs.CurrentSensorCore(**args)
            raise AssertionError("accepted %r" % (kw,))
        except ValueError as exc:
            assert text in str(exc)


def test_samples_and_reads_allocate_nothing():
    s = cs.CurrentSensorCore(2, UID)
    heap_locked(s.sample, 1234, 0)
    req = p.encode_bytes(ADDR, p.ADDR_MANAGER, p.CMD_CURRENT_READ, 7)
    assert heap_locked(s.bus_bytes, req, len(req), 10) == 16
    assert s.current_ma == 12340
