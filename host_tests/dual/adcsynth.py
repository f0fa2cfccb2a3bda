# ADC frames for tests, on both interpreters: what a module's front end would deliver
# for a given block voltage or temperature (ideal converter, STM32G4 linearity).
from array import array

from shared import frontend as fe


def frame_codes(code_x16, buf, n=fe.VOLTAGE_FRAME_SAMPLES):
    """Fill buf with n codes whose mean is code_x16 / 16 (two neighbouring codes)."""
    base = code_x16 >> 4
    frac = code_x16 & 15
    for j in range(n):
        buf[j] = base + 1 if (j & 15) < frac else base
    return buf


def pin_code_x16(variant_id, block_uv):
    """ADC code x16 of a block voltage seen through the variant's divider."""
    num, den = fe.frontend(variant_id).divider_ratio()
    return (block_uv * den * fe.ADC_CODES * 16 + (num * fe.ADC_VREF_UV) // 2) // (
        num * fe.ADC_VREF_UV
    )


def temp_frame(code_x16, n=fe.TEMP_FRAME_SAMPLES):
    """frame_sum_x2 of a temperature frame whose mean code is code_x16 / 16."""
    buf = array("H", bytes(2 * n))  # from bytes: no temporary list of n objects
    return fe.frame_sum_x2(frame_codes(code_x16, buf, n), n, fe.ADC_STM32G4)


def voltage_frame(variant_id, block_uv, buf=None):
    """frame_sum_x2 of a 100 ms block-voltage frame at block_uv."""
    n = fe.VOLTAGE_FRAME_SAMPLES
    if buf is None:
        buf = array("H", bytes(2 * n))  # from bytes: no temporary list of n objects
    frame_codes(pin_code_x16(variant_id, block_uv), buf, n)
    return fe.frame_sum_x2(buf, n, fe.ADC_STM32G4)


def internal_code_x16(temp_mc, adc_kind=fe.ADC_RP2040):
    """The MCU's internal temperature sensor (shared/frontend.INTERNAL_SENSOR) as a
    code x16."""
    ref_uv, ref_mc, slope_uv_per_k = fe.INTERNAL_SENSOR[adc_kind]
    uv = ref_uv + (temp_mc - ref_mc) * slope_uv_per_k // 1000
    return uv * fe.ADC_CODES * 16 // fe.ADC_VREF_UV


def internal_frame(temp_mc, adc_kind=fe.ADC_RP2040):
    return temp_frame(internal_code_x16(temp_mc, adc_kind))
