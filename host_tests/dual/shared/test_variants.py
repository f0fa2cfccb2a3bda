# shared/variants and shared/frontend: the one table the core, shells and sim read.
from dualtest import raises

from shared import frontend as fe
from shared import variants


def test_ids_and_codes_are_consistent():
    assert len(variants.VARIANTS) == variants.VARIANT_COUNT == len(fe.FRONTENDS)
    for i, v in enumerate(variants.VARIANTS):
        assert v.id == i
        assert variants.by_id(i) is v
        assert variants.by_code(v.code) is v
    assert [v.code for v in variants.VARIANTS] == ["2v", "4v", "6v", "12v", "16v"]


def test_unknown_variant_errors_name_the_valid_ones():
    msg = str(raises(ValueError, variants.by_code, "24v"))
    assert "24v" in msg and "12v" in msg
    msg = str(raises(ValueError, variants.by_id, 9))
    assert "0..4" in msg
    raises(ValueError, fe.frontend, -1)


def test_spec_ranges():
    v2 = variants.by_code("2v")
    assert (v2.measure_min_uv, v2.measure_max_uv) == (700000, 6000000)
    assert (v2.ri_min_nohm, v2.ri_max_nohm) == (20000, 6000000)
    assert 850 <= v2.bleed_ma <= 900
    v12 = variants.by_code("12v")
    assert (v12.measure_min_uv, v12.measure_max_uv) == (8000000, 17000000)
    assert (v12.ri_min_nohm, v12.ri_max_nohm) == (500000, 60000000)
    assert v12.bleed_ma == 150
    assert variants.by_code("16v").bleed_ma == 120
    assert variants.by_code("4v").bleed_ma == variants.by_code("6v").bleed_ma == 300


def test_limits_are_sane_and_small_ints():
    limit = 1 << 30
    for v in variants.VARIANTS:
        assert v.min_voltage_uv >= v.measure_min_uv
        assert v.measure_min_uv <= v.eq_min_uv < v.float_uv < v.eq_max_uv <= v.measure_max_uv
        assert v.deadband_uv < v.prop_band_uv
        assert v.battery_temp_limit_mc < v.board_temp_limit_mc
        for value in (v.measure_max_uv, v.ri_max_nohm, v.target_timeout_ms, v.integral_ms):
            assert 0 < value < limit


def test_divider_keeps_the_measuring_range_inside_the_converter():
    # the top of each measuring range lands below 95 % of the reference
    for v in variants.VARIANTS:
        num, den = fe.frontend(v.id).divider_ratio()
        pin_uv = v.measure_max_uv * den // num
        assert pin_uv < fe.ADC_VREF_UV * 95 // 100, v.code
        # and the bottom of the nominal range still spans > 300 codes
        pin_low = v.nominal_min_uv * den // num
        assert pin_low * fe.ADC_CODES // fe.ADC_VREF_UV > 300, v.code
        # the ADS1219 board's divider network (RES21A ratios) too, with 20 bits to spare
        num, den = fe.frontend(v.id).divider_ratio(fe.VADC_ADS1219)
        assert v.measure_max_uv * den // num < fe.ADC_VREF_UV * 95 // 100, v.code
        pin_low = v.nominal_min_uv * den // num
        assert pin_low * fe.ADS1219_UNITS_PER_VREF // fe.ADC_VREF_UV > 100000, v.code


def test_excitation_fits_the_shunt_channel():
    # the planned excitation reads 1.5..2.6 V on the shunt channel, inside the clip band
    for v in variants.VARIANTS:
        front = fe.frontend(v.id)
        uv = front.excitation_ma * front.shunt_uohm * front.shunt_gain // 1000
        assert 1500000 <= uv + fe.SHUNT_REF_OFFSET_UV <= 2600000, v.code
        assert front.ri_gain_high > front.ri_gain_low


def test_rp2040_linearisation():
    k = fe.ADC_RP2040
    assert fe.corrected_x2(100, k) == 200
    assert fe.corrected_x2(511, k) == 1022
    assert fe.corrected_x2(512, k) == 1024 + 20 - 10  # the wide code: its middle
    assert fe.corrected_x2(513, k) == 1026 + 20
    assert fe.corrected_x2(1536, k) == 3072 + 38 - 9
    assert fe.corrected_x2(4095, k) == 8190 + 76
    assert fe.corrected_x2(512, fe.ADC_STM32G4) == 1024
    # monotonic over the whole range
    last = -1
    for code in range(4096):
        x = fe.corrected_x2(code, k)
        assert x > last
        last = x
