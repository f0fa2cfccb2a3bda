# shared/measure: outlier rejection + IIR, calibrated block voltage, temperatures.
from adcsynth import frame_codes, internal_code_x16, pin_code_x16, temp_frame
from dualtest import LCG, heap_locked, raises

from shared import frontend as fe
from shared import measure
from shared.measure import BlockVoltage, OutlierLowPass, Temperature, filter_shift_for

try:
    from array import array
except ImportError:
    from uarray import array

FRAME = fe.VOLTAGE_FRAME_SAMPLES


def _noisy(rng, sigma_x4):
    # roughly Gaussian integer noise: sum of 4 uniforms, sigma ~ sigma_x4 / 4 * 2.3
    total = 0
    for _ in range(4):
        total += rng.between(-sigma_x4, sigma_x4)
    return total // 4


def test_filter_passes_a_constant_exactly():
    f = OutlierLowPass(3, noise_floor=8)
    for _ in range(20):
        assert f.push(123456) == 123456
    assert f.rejected == 0


def test_filter_rejects_a_single_spike():
    f = OutlierLowPass(3, noise_floor=8)
    for _ in range(10):
        f.push(50000)
    out = f.push(90000)  # one glitched frame
    assert out == 50000
    assert f.rejected == 1
    for _ in range(5):
        assert f.push(50000) == 50000


def test_filter_follows_a_big_step_within_three_frames():
    f = OutlierLowPass(3, noise_floor=8)
    for _ in range(10):
        f.push(10000)
    outs = [f.push(20000) for _ in range(3)]
    assert outs[0] == 10000 and outs[1] == 10000  # first two frames look like outliers
    assert outs[2] == 20000  # median moved: the IIR is re-seeded
    assert f.reseeds == 1


def test_filter_small_step_settles_like_the_iir():
    f = OutlierLowPass(3, noise_floor=100)
    for _ in range(10):
        f.push(0)
    frames = 0
    while f.push(250) < 225:  # 90 % of a step below the re-seed threshold
        frames += 1
        assert frames < 40
    # alpha = 1/8: 17 frames to 90 % for an unfiltered IIR; the median adds two
    assert 15 <= frames <= 21


def test_filter_reduces_noise():
    rng = LCG(3)
    f = OutlierLowPass(3, noise_floor=1)
    sum_in = 0
    sum_out = 0
    n = 0
    for i in range(600):
        x = 100000 + _noisy(rng, 400)
        y = f.push(x)
        if i >= 50:
            sum_in += (x - 100000) ** 2
            sum_out += (y - 100000) ** 2
            n += 1
    # IIR alpha 1/8 alone: variance / 15 (noise / 3.9); demand at least noise / 3
    assert sum_out * 9 < sum_in


def test_filter_push_allocates_nothing():
    f = OutlierLowPass(3, noise_floor=8)
    for x in (5, 6, 7, 6, 5):
        f.push(x)
    assert heap_locked(f.push, 6) == 5 or f.value in (5, 6)
    heap_locked(f.push, 90000)


def test_filter_arguments_are_checked():
    raises(ValueError, OutlierLowPass, 9)
    raises(ValueError, OutlierLowPass, 3, 1, 4)


def test_block_voltage_from_ideal_frames():
    buf = array("H", [0] * FRAME)
    for variant_id, block_uv in ((0, 2250000), (3, 13500000), (4, 18000000), (1, 4500000)):
        bv = BlockVoltage(variant_id)
        frame = frame_codes(pin_code_x16(variant_id, block_uv), buf)
        for _ in range(8):
            bv.push_frame(fe.frame_sum_x2(frame, FRAME, fe.ADC_STM32G4))
        num, den = fe.frontend(variant_id).divider_ratio()
        lsb_block_uv = fe.ADC_VREF_UV * num // (den * fe.ADC_CODES)
        # within 1/16 LSB (the frame's resolution) plus rounding
        assert abs(bv.voltage_uv - block_uv) <= lsb_block_uv // 16 + 2, (variant_id, bv.voltage_uv)


def test_block_voltage_calibration_is_applied():
    buf = array("H", [0] * FRAME)
    frame = frame_codes(pin_code_x16(3, 13500000), buf)
    plain = BlockVoltage(3)
    cal = BlockVoltage(3, offset_uv=-25000, gain_ppm=2000)
    s = fe.frame_sum_x2(frame, FRAME, fe.ADC_RP2040)
    for _ in range(5):
        plain.push_frame(s)
        cal.push_frame(s)
    expected = plain.voltage_uv + plain.voltage_uv * 2000 // 1000000 - 25000
    assert abs(cal.voltage_uv - expected) <= 2


def test_tempco_correction_follows_the_board_temperature():
    buf = array("H", [0] * FRAME)
    s = fe.frame_sum_x2(frame_codes(pin_code_x16(3, 13600000), buf), FRAME, fe.ADC_RP2040)
    plain = BlockVoltage(3)
    tc = BlockVoltage(3)
    tc.set_tempco(24000, 12500)  # +12.5 ppm/K, calibrated at a 24.0 degC board
    for _ in range(5):
        plain.push_frame(s)
        tc.push_frame(s, 24000)
    v0 = plain.voltage_uv
    assert tc.voltage_uv == v0  # at the reference temperature: no change
    # a board 35 K hotter reads 437.5 ppm high: the correction takes it back
    tc.push_frame(s, 59000)
    assert abs((v0 - tc.voltage_uv) - v0 * 4375 // 10000000) <= 2, (v0, tc.voltage_uv)
    tc.push_frame(s, 4000)  # 20 K colder: 250 ppm the other way
    assert abs((tc.voltage_uv - v0) - v0 * 250 // 1000000) <= 2
    tc.push_frame(s, measure.TEMP_UNKNOWN)  # no board temperature yet: uncorrected
    assert tc.voltage_uv == v0
    assert heap_locked(tc.push_frame, s, 61000) == tc.voltage_uv < v0
    # the correction itself: exact within rounding, clamped at 150 K, both signs
    cases = ((13600000, 13000, 35000), (2250000, -8000, 41234), (18000000, 50000, -90000))
    for v_uv, ppb, dt_mc in cases:
        exact = v_uv * (ppb / 1e9) * (dt_mc / 1e3)
        assert abs(measure.tempco_correction_uv(v_uv, ppb, dt_mc) - exact) <= 2
    assert measure.tempco_correction_uv(13600000, 10000, 400000) == 20400  # 150 K
    assert measure.tempco_correction_uv(13600000, -10000, -400000) == 20400
    raises(ValueError, tc.set_tempco, 25000, 60000)


def test_calibration_from_two_points():
    # a channel reading 0.3 % low with a +4 mV offset
    def raw(ref):
        return ref * 997 // 1000 + 4000

    offset, gain = measure.calibration_from_points(raw(12000000), 12000000, raw(15000000), 15000000)
    for ref in (12000000, 13500000, 15000000):
        corrected = (raw(ref) * (1000000 + gain) + 500000) // 1000000 + offset
        assert abs(corrected - ref) <= 60, (ref, corrected)
    msg = str(raises(ValueError, measure.calibration_from_points, 1, 5, 1, 6))
    assert "two different points" in msg
    msg = str(
        raises(ValueError, measure.calibration_from_points, 1000000, 1000000, 2000000, 2600000)
    )
    assert "ppm" in msg and "divider" in msg
    raises(ValueError, BlockVoltage, 3, 0, 90000)


def test_voltage_frame_path_allocates_nothing():
    buf = array("H", [2000] * FRAME)
    bv = BlockVoltage(3)
    s = fe.frame_sum_x2(buf, FRAME, fe.ADC_RP2040)
    bv.push_frame(s)
    assert heap_locked(fe.frame_sum_x2, buf, FRAME, fe.ADC_RP2040) == s
    assert heap_locked(fe.frame_sum_x2, buf, FRAME, fe.ADC_STM32G4) == 4000 * FRAME
    v = heap_locked(bv.push_frame, s)
    assert v == bv.voltage_uv > 0


def test_ntc_table_lookup():
    # table points exactly, and a mid point between 20 and 25 degC
    table = fe.NTC_TABLE_CODE_X16
    assert measure.ntc_temp_mc(table[13]) == 25000
    assert measure.ntc_temp_mc(table[0]) == -40000
    assert measure.ntc_temp_mc(table[-1]) == 125000
    mid = (table[12] + table[13]) // 2
    assert 22400 <= measure.ntc_temp_mc(mid) <= 22600
    assert measure.ntc_temp_mc(70000) == -40000  # clamps
    assert measure.ntc_temp_mc(10) == 125000


def test_internal_sensor_and_probe_auto_detection():
    t = Temperature(fe.ADC_RP2040)
    internal = temp_frame(internal_code_x16(31000))
    absent = temp_frame(4094 * 16)
    probe_20c = temp_frame(fe.NTC_TABLE_CODE_X16[12])  # 20 degC
    for _ in range(3):
        t.push_frame(internal, absent)
    assert not t.probe_present
    assert t.battery_temp_mc is None
    assert t.source == measure.TEMP_SOURCE_INTERNAL
    assert abs(t.board_temp_mc - 31000) <= 700  # 1 LSB of the sensor is ~0.43 K
    assert t.temp_mc == t.board_temp_mc
    # plug the probe in: debounced over 3 frames, then reported instead
    t.push_frame(internal, probe_20c)
    t.push_frame(internal, probe_20c)
    assert not t.probe_present
    t.push_frame(internal, probe_20c)
    assert t.probe_present
    assert abs(t.battery_temp_mc - 20000) <= 100
    assert t.temp_mc == t.battery_temp_mc
    assert t.source == measure.TEMP_SOURCE_PROBE
    assert abs(t.board_temp_mc - 31000) <= 700  # still measured for protection
    # unplug: back to the internal sensor after 3 frames
    for _ in range(3):
        t.push_frame(internal, absent)
    assert not t.probe_present and t.battery_temp_mc is None
    # a shorted probe is absent and flagged
    for _ in range(3):
        t.push_frame(internal, temp_frame(3 * 16))
    assert not t.probe_present and t.probe_fault


def test_temperature_without_probe_input():
    t = Temperature(fe.ADC_STM32G4, internal_offset_mc=-1500)
    code = (760000 + 2500 * 10) * fe.ADC_CODES * 16 // fe.ADC_VREF_UV  # 40 degC
    for _ in range(4):
        t.push_frame(temp_frame(code))
    assert abs(t.temp_mc - 38500) <= 500
    assert t.battery_temp_mc is None


def test_temperature_frame_allocates_nothing():
    t = Temperature(fe.ADC_RP2040)
    internal = temp_frame(internal_code_x16(30000))
    probe = temp_frame(fe.NTC_TABLE_CODE_X16[12])
    for _ in range(4):
        t.push_frame(internal, probe)
    assert t.probe_present
    assert heap_locked(t.push_frame, internal, probe) == t.battery_temp_mc
    # a wild reading (sensor input at the rail) stays a small-int computation
    heap_locked(t.push_frame, temp_frame(4095 * 16), None)


def test_temperature_frame_allocates_nothing_whatever_the_inputs_read():
    # every 64th code of either sensor input on both converters, probe present, absent
    # and shorted: on a board's 31-bit small ints an intermediate above 2**30 would
    # allocate (the unix port's 63-bit ints would not notice; the emulated M0 does)
    for adc in (fe.ADC_RP2040, fe.ADC_STM32G4):
        t = Temperature(adc, internal_offset_mc=-1500)
        for code in range(0, 4096, 64):
            frame = temp_frame(code * 16)
            heap_locked(t.push_frame, frame, frame)
            heap_locked(t.push_frame, frame, None)


def test_filter_shift_keeps_the_time_constant_near_800_ms():
    got = [filter_shift_for(ms) for ms in (10, 25, 50, 100, 200, 400, 1000, 5000)]
    assert got == [6, 5, 4, 3, 2, 1, 0, 0], got
    assert filter_shift_for(120) == 3 and filter_shift_for(150) == 2  # nearest, log scale
    raises(ValueError, filter_shift_for, 0)


def test_ads1219_conversion_decoding():
    # 24-bit two's complement, MSB first, to frame units (code >> 3, floor)
    cases = (
        (b"\x00\x00\x00", 0),
        (b"\x00\x00\x08", 1),
        (b"\x00\x00\x0f", 1),
        (b"\x7f\xff\xff", (1 << 20) - 1),  # positive full scale
        (b"\xff\xff\xff", -1),  # -1 LSB floors to -1 unit
        (b"\xff\xff\xf8", -1),
        (b"\xff\xff\xf7", -2),
        (b"\x80\x00\x00", -(1 << 20)),  # negative full scale
        (b"\x40\x00\x00", 1 << 19),  # half the reference
    )
    for raw, units in cases:
        assert fe.ads1219_units(raw) == units, (raw, units)
    buf = bytearray(b"\x12\x34\x56")
    assert heap_locked(fe.ads1219_units, buf) == 0x123456 >> 3


def _ads1219_frame(variant_id, block_uv):
    # an ideal ADS1219 frame (two conversions) of a block voltage through the divider
    num, den = fe.frontend(variant_id).divider_ratio(fe.VADC_ADS1219)
    pin_uv = block_uv * den // num
    code = pin_uv * (1 << 23) // fe.ADC_VREF_UV
    units = code >> fe.ADS1219_SHIFT
    return units << fe.ADS1219_FRAME_LOG2


def test_block_voltage_from_an_ads1219():
    for variant_id, block_uv in ((0, 2250000), (1, 4500000), (2, 6750000), (3, 13500000),
                                 (4, 18000000), (4, 9700000), (0, 1200000)):  # fmt: skip
        bv = BlockVoltage(variant_id, vadc=fe.VADC_ADS1219)
        assert bv.frame_log2 == fe.ADS1219_FRAME_LOG2
        s = _ads1219_frame(variant_id, block_uv)
        for _ in range(8):
            bv.push_frame(s)
        num, den = fe.frontend(variant_id).divider_ratio(fe.VADC_ADS1219)
        unit_block_uv = fe.ADC_VREF_UV * num // (den * fe.ADS1219_UNITS_PER_VREF) + 1
        # within one unit (the code's truncation) plus rounding
        assert -2 <= block_uv - bv.voltage_uv <= unit_block_uv + 2, (variant_id, bv.voltage_uv)
        assert abs(bv.raw_uv(s) - bv.voltage_uv) <= 1
    # calibration acts on it as on the MCU's converter
    plain = BlockVoltage(3, vadc=fe.VADC_ADS1219)
    cal = BlockVoltage(3, offset_uv=-2500, gain_ppm=-300, vadc=fe.VADC_ADS1219)
    s = _ads1219_frame(3, 13600000)
    for _ in range(5):
        plain.push_frame(s)
        cal.push_frame(s)
    expected = plain.voltage_uv - plain.voltage_uv * 300 // 1000000 - 2500
    assert abs(cal.voltage_uv - expected) <= 2
    v = heap_locked(cal.push_frame, s, 30000)
    assert v == cal.voltage_uv
    msg = str(raises(ValueError, BlockVoltage, 3, 0, 0, -1, 3, 7))
    assert "converter" in msg and "VADC_NAMES" in msg
