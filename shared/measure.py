# Measurement pipeline of the module: block voltage and temperatures.
#
#   raw ADC frames --frame_sum_x2--> frame sums --OutlierLowPass--> filtered sum
#                  --calibrated scale--> voltage_uv / temp_mc
#
# * A frame is a burst of samples spread over whole ripple periods (100 ms for the
#   block voltage), summed by shared.frontend.frame_sum_x2 with the RP2040's DNL
#   spikes linearised.  Ripple and mains hum average out of each frame.
# * OutlierLowPass: a Hampel filter (median of the last 5 frames, MAD-scaled
#   threshold) replaces outliers (bus glitches, switching spikes) by the median;
#   then a first-order integer IIR (alpha = 1/2**shift) smooths.  When the median
#   has moved far from the IIR output (a real step, seen in 3 of 5 frames), the IIR
#   is re-seeded at the median, so big steps settle in 3 frames while the noise
#   reduction of the IIR holds in steady state.  docs/measurement.md has the figures
#   and tools/bench/bench_module_measure.py measures them.
# * Calibration: offset (uV) and gain (ppm) per channel, folded into one Q30 scale
#   factor at setup; per frame only integer multiply/shift (shared.intmath.mul_q30).
# * Temperature coefficient of the voltage channel (divider ratio and reference, a
#   few ppm/K each): a board bleeding hard runs 30 K above the ambient it was
#   calibrated at, which moves a 13600 mV reading by several mV.  With a calibrated
#   coefficient (ppb/K, calibration channel 5) the reading is corrected from the board
#   temperature: v * (1 - tc * (T_board - T_ref)).  docs/measurement.md.
#
# Everything per frame is allocation-free (heap_locked tests).
from array import array

from shared import frontend as fe
from shared.compat import const
from shared.intmath import SMALL_INT_LIMIT, median_of, mul_q30

TEMP_UNKNOWN = const(-1 << 29)  # no board temperature yet (a small int, unlike None)

# Hampel window and thresholds.
OUTLIER_WINDOW = const(5)
OUTLIER_K = const(3)  # reject when |x - median| > 3 sigma (sigma from MAD)
STEP_K = const(6)  # re-seed the IIR when |median - output| > 6 sigma
IIR_FRACTION_BITS = const(4)
# MAD -> sigma for Gaussian noise is 1.4826; 1518/1024 = 1.4824.
_MAD_TO_SIGMA_NUM = const(1518)

# The IIR's time constant in time, whatever the frame rate: 8 frames of 100 ms on a
# board.  A shell that delivers frames less often (the simulator: one per 5 s tick)
# gets a shorter filter in frames, so the balancing loop sees the same lag in seconds.
VOLTAGE_FILTER_MS = const(800)

GAIN_PPM_LIMIT = const(50000)  # calibration may correct +-5 %
OFFSET_UV_LIMIT = const(500000)  # and +-0.5 V of offset


class OutlierLowPass:
    """Hampel outlier rejection followed by an integer IIR with step re-seeding.

    Fed one integer per frame (|x| < 2**25); `value` is the filtered result in the
    same units.  `noise_floor` is the smallest sigma the thresholds assume (in input
    units): it keeps a noise-free input from rejecting every tiny change.
    """

    def __init__(self, shift: int = 3, noise_floor: int = 1, window: int = OUTLIER_WINDOW):
        if not 0 <= shift <= 8:
            raise ValueError("IIR shift must be 0..8 (alpha = 1/2**shift), got %r" % shift)
        if window < 3 or not window & 1:
            raise ValueError("outlier window must be odd and >= 3, got %r" % window)
        self.shift = shift
        self.noise_floor = max(1, noise_floor)
        self.window = window
        self._ring = array("i", [0] * window)
        self._scratch = array("i", [0] * window)
        self._dev = array("i", [0] * window)
        self.reset()

    def reset(self) -> None:
        self._count = 0
        self._next = 0
        self.state = 0  # IIR output << IIR_FRACTION_BITS
        self.value = 0
        self.ready = False
        self.rejected = 0  # frames replaced by the median since reset
        self.reseeds = 0  # steps that re-seeded the IIR since reset

    def push(self, x: int) -> int:
        ring = self._ring
        ring[self._next] = x
        self._next += 1
        if self._next == self.window:
            self._next = 0
        if self._count < self.window:
            self._count += 1
        count = self._count
        if count == 1:
            self.state = x << IIR_FRACTION_BITS
            self.value = x
            self.ready = True
            return x
        med = median_of(ring, count, self._scratch)
        dev = self._dev
        for i in range(count):
            d = ring[i] - med
            dev[i] = d if d >= 0 else -d
        mad = median_of(dev, count, self._scratch)
        sigma = (mad * _MAD_TO_SIGMA_NUM) >> 10
        if sigma < self.noise_floor:
            sigma = self.noise_floor
        d = x - med
        if d < 0:
            d = -d
        if count >= 3 and d > OUTLIER_K * sigma:
            x = med
            self.rejected += 1
        out = self.state >> IIR_FRACTION_BITS
        step = med - out
        if step < 0:
            step = -step
        if count == self.window and step > STEP_K * sigma:
            self.state = med << IIR_FRACTION_BITS
            self.reseeds += 1
        else:
            self.state += ((x << IIR_FRACTION_BITS) - self.state) >> self.shift
        self.value = self.state >> IIR_FRACTION_BITS
        return self.value


def calibration_from_points(
    raw_low_uv: int, ref_low_uv: int, raw_high_uv: int, ref_high_uv: int
) -> tuple:
    """(offset_uv, gain_ppm) that map two uncalibrated readings onto references.

    Two-point calibration (setup time; big integers allowed).  The readings are
    what BlockVoltage reports with zero calibration; the references are the
    calibrator's values.  corrected = raw * (1 + gain_ppm/1e6) + offset_uv.
    """
    if raw_high_uv == raw_low_uv or ref_high_uv == ref_low_uv:
        raise ValueError("calibration needs two different points, got one voltage twice")
    if (raw_high_uv - raw_low_uv) * (ref_high_uv - ref_low_uv) < 0:
        raise ValueError("calibration points are reversed: reading falls as reference rises")
    # gain = (ref_hi - ref_lo) / (raw_hi - raw_lo)
    num = (ref_high_uv - ref_low_uv) * 1000000
    den = raw_high_uv - raw_low_uv
    gain_ppm = (num + den // 2) // den - 1000000
    offset_uv = ref_low_uv - (raw_low_uv * (1000000 + gain_ppm) + 500000) // 1000000
    if not -GAIN_PPM_LIMIT <= gain_ppm <= GAIN_PPM_LIMIT:
        raise ValueError(
            "calibration gain %+d ppm is outside +-%d ppm: check the reference voltages "
            "and the divider option fitted for this variant" % (gain_ppm, GAIN_PPM_LIMIT)
        )
    if not -OFFSET_UV_LIMIT <= offset_uv <= OFFSET_UV_LIMIT:
        raise ValueError(
            "calibration offset %+d uV is outside +-%d uV: check the wiring of the "
            "sense pair" % (offset_uv, OFFSET_UV_LIMIT)
        )
    return offset_uv, gain_ppm


# Voltage tempco (calibration channel 5): coefficient limit, and the temperature
# difference the correction follows (beyond it the board is far outside its rating).
TEMPCO_PPB_LIMIT = const(50000)  # 50 ppm/K
TEMPCO_SPAN_DK = const(1500)  # 150 K, in tenths of a kelvin


def _div_round(a: int, b: int) -> int:
    """a / b (b > 0) rounded half away from zero, the same on both interpreters."""
    return (a + b // 2) // b if a >= 0 else -((b // 2 - a) // b)


def tempco_correction_uv(v_uv: int, tc_ppb_per_k: int, dt_mc: int) -> int:
    """What to subtract from a reading of v_uv taken dt_mc away from the reference
    temperature: v * tc * dT, in small ints (v below 140 V, |tc| <= 50 ppm/K)."""
    dt_dk = dt_mc // 100
    if dt_dk > TEMPCO_SPAN_DK:
        dt_dk = TEMPCO_SPAN_DK
    elif dt_dk < -TEMPCO_SPAN_DK:
        dt_dk = -TEMPCO_SPAN_DK
    k7 = _div_round(tc_ppb_per_k * dt_dk, 1000)  # tc * dT in units of 10**-7, <= 75000
    # v in whole 10 mV: costs at most 10 mV * tc * dT (5 uV at 500 ppm)
    return _div_round((v_uv // 10000) * k7, 1000)


def _check_calibration(offset_uv: int, gain_ppm: int) -> None:
    if not -GAIN_PPM_LIMIT <= gain_ppm <= GAIN_PPM_LIMIT:
        raise ValueError("gain_ppm %r outside +-%d" % (gain_ppm, GAIN_PPM_LIMIT))
    if not -OFFSET_UV_LIMIT <= offset_uv <= OFFSET_UV_LIMIT:
        raise ValueError("offset_uv %r outside +-%d" % (offset_uv, OFFSET_UV_LIMIT))


def filter_shift_for(frame_ms: int) -> int:
    """IIR shift whose time constant (2**shift frames) is nearest VOLTAGE_FILTER_MS
    (on a log scale) for frames frame_ms apart: 3 at 100 ms, 0 at 1 s and slower."""
    if frame_ms <= 0:
        raise ValueError("frame period must be > 0 ms, got %r" % frame_ms)
    shift = 0
    # 1131 / 800 = sqrt(2): round log2(VOLTAGE_FILTER_MS / frame_ms) to nearest
    while shift < 8 and frame_ms << (shift + 1) <= (VOLTAGE_FILTER_MS * 1131) // 800:
        shift += 1
    return shift


class BlockVoltage:
    """Block voltage in uV from frames of raw ADC codes.

    push_frame(sum_x2) takes shared.frontend.frame_sum_x2(buffer, FRAME_SAMPLES, kind)
    of one 100 ms frame (vadc VADC_MCU), or the sum of a frame's ADS1219 conversions in
    frontend.ads1219_units (VADC_ADS1219); voltage_uv is the filtered, calibrated block
    voltage.
    """

    def __init__(
        self,
        variant_id: int,
        offset_uv: int = 0,
        gain_ppm: int = 0,
        frame_log2: int = -1,
        shift: int = 3,
        vadc: int = fe.VADC_MCU,
    ):
        _check_calibration(offset_uv, gain_ppm)
        front = fe.frontend(variant_id)
        # The converter (frontend.VADC_*) sets a frame's units: half LSB of the MCU's
        # ADC (4096 * 2 per reference voltage), or ADS1219 units (2**20 per reference).
        if vadc == fe.VADC_MCU:
            units_per_vref = fe.ADC_CODES * 2
            if frame_log2 < 0:
                frame_log2 = fe.VOLTAGE_FRAME_LOG2
        elif vadc == fe.VADC_ADS1219:
            units_per_vref = fe.ADS1219_UNITS_PER_VREF
            if frame_log2 < 0:
                frame_log2 = fe.ADS1219_FRAME_LOG2
        else:
            raise ValueError(
                "unknown block-voltage converter %r: valid are 0..%d (frontend.VADC_NAMES)"
                % (vadc, len(fe.VADC_NAMES) - 1)
            )
        num, den = front.divider_ratio(vadc)  # each converter has its own divider
        self.vadc = vadc
        self.offset_uv = offset_uv
        self.gain_ppm = gain_ppm
        self.frame_log2 = frame_log2
        # uV per unit of the filter state: the state is a frame sum with
        # IIR_FRACTION_BITS more, so one unit is
        #   vref / units_per_vref / 2**frame_log2 / 2**F  (at the pin)  * divider * gain.
        scale_num = fe.ADC_VREF_UV * num * (1000000 + gain_ppm)
        scale_den = den * 1000000 * (units_per_vref << (frame_log2 + IIR_FRACTION_BITS))
        # Setup time: big integers are fine here.  The factor must be < 1 for mul_q30:
        # ~0.17 at most for the MCU's converter, 0.89 for the ADS1219 behind the 1:10
        # divider network (0.94 at the +5 % calibration limit).
        k = (scale_num * (1 << 30) + scale_den // 2) // scale_den
        if not 0 < k < SMALL_INT_LIMIT:
            raise ValueError("voltage scale out of range; frame_log2 %r too small" % frame_log2)
        self._k_q30 = k
        # Noise floor of a frame sum: about one LSB of the mean (MCU ADC), or two
        # ADS1219 units of the mean (its noise at 20 SPS).
        self.filter = OutlierLowPass(shift, noise_floor=2 << frame_log2)
        self.tempco_ppb = 0
        self.tempco_ref_mc = 0
        self.voltage_uv = 0
        self.ready = False

    def set_tempco(self, ref_mc: int, tc_ppb_per_k: int) -> None:
        """Correct readings by tc_ppb_per_k (ppb/K) away from ref_mc (board, m°C)."""
        if not -TEMPCO_PPB_LIMIT <= tc_ppb_per_k <= TEMPCO_PPB_LIMIT:
            raise ValueError("tempco %r ppb/K outside +-%d" % (tc_ppb_per_k, TEMPCO_PPB_LIMIT))
        self.tempco_ppb = tc_ppb_per_k
        self.tempco_ref_mc = ref_mc

    def push_frame(self, sum_x2: int, board_mc: int = TEMP_UNKNOWN) -> int:
        """board_mc: the board temperature for the tempco correction (TEMP_UNKNOWN:
        none yet, the reading stays uncorrected)."""
        self.filter.push(sum_x2)
        state = self.filter.state  # filtered sum, with IIR_FRACTION_BITS
        v = mul_q30(state, self._k_q30) + self.offset_uv
        if self.tempco_ppb and board_mc != TEMP_UNKNOWN:
            v -= tempco_correction_uv(v, self.tempco_ppb, board_mc - self.tempco_ref_mc)
        self.voltage_uv = v
        self.ready = True
        return v

    def raw_uv(self, sum_x2: int) -> int:
        """One frame converted without filtering (calibration, diagnostics)."""
        return mul_q30(sum_x2 << IIR_FRACTION_BITS, self._k_q30) + self.offset_uv


# Temperature sources reported by Temperature.source
TEMP_SOURCE_NONE = const(0)
TEMP_SOURCE_INTERNAL = const(1)
TEMP_SOURCE_PROBE = const(2)

PROBE_DEBOUNCE_FRAMES = const(3)


def ntc_temp_mc(code_x16: int) -> int:
    """Probe temperature (m°C) from the mean NTC divider code * 16.

    Linear interpolation in the 5 K table; clamps to the table's ends.
    """
    table = fe.NTC_TABLE_CODE_X16
    if code_x16 >= table[0]:
        return fe.NTC_TABLE_FIRST_MC
    last = len(table) - 1
    if code_x16 <= table[last]:
        return fe.NTC_TABLE_FIRST_MC + last * fe.NTC_TABLE_STEP_MC
    lo = 0
    hi = last
    while hi - lo > 1:  # table falls with temperature
        mid = (lo + hi) >> 1
        if table[mid] > code_x16:
            lo = mid
        else:
            hi = mid
    span = table[lo] - table[hi]
    frac = ((table[lo] - code_x16) * fe.NTC_TABLE_STEP_MC + span // 2) // span
    return fe.NTC_TABLE_FIRST_MC + lo * fe.NTC_TABLE_STEP_MC + frac


class Temperature:
    """Board (internal sensor) and battery (external NTC probe) temperatures.

    push_frame(internal_sum_x2, probe_sum_x2) once per second with the
    frame_sum_x2 of TEMP_FRAME_SAMPLES samples of each channel (probe_sum_x2 may be
    None on a board without the probe input).  Results:
      board_temp_mc    internal sensor, always (the module's own protection)
      battery_temp_mc  probe, or None when no probe is present
      temp_mc          what the module reports: probe when present, else internal
      probe_present    debounced auto-detection (open/short probe = absent)
    """

    def __init__(
        self,
        adc_kind: int = fe.ADC_RP2040,
        internal_offset_mc: int = 0,
        probe_offset_mc: int = 0,
        frame_log2: int = fe.TEMP_FRAME_LOG2,
    ):
        if not 0 <= adc_kind < len(fe.INTERNAL_SENSOR):
            raise ValueError("unknown ADC kind %r" % adc_kind)
        self.adc_kind = adc_kind
        self.internal_offset_mc = internal_offset_mc
        self.probe_offset_mc = probe_offset_mc
        self.frame_log2 = frame_log2
        self._ref_uv, self._ref_mc, self._slope_uv_per_k = fe.INTERNAL_SENSOR[adc_kind]
        # 1 K of internal sensor is ~1.7 mV = 2.3 LSB -> floor 1 LSB of the mean
        self.internal_filter = OutlierLowPass(2, noise_floor=2 << frame_log2)
        self.probe_filter = OutlierLowPass(2, noise_floor=16)  # fed mean code * 16
        # uV per unit of an internal-sensor frame sum: vref / 2**(13 + L), split into
        # an integer part and a Q30 fraction so no product leaves the small ints.
        per_unit_num = fe.ADC_VREF_UV
        per_unit_den = 1 << (13 + frame_log2)
        self._uv_int = per_unit_num // per_unit_den
        rest = per_unit_num - self._uv_int * per_unit_den
        self._uv_frac_q30 = (rest << 30) // per_unit_den
        self.board_temp_mc = 0
        self.battery_temp_mc = None  # type: int | None
        self.temp_mc = 0
        self.source = TEMP_SOURCE_NONE
        self.probe_present = False
        self.probe_fault = False  # a probe input reading a short (not just absent)
        self._probe_votes = 0  # consecutive frames disagreeing with probe_present

    def _internal_mc(self, sum_x2: int) -> int:
        # mean pin voltage in uV: sum_x2 / 2 / 2**L * vref / 4096
        uv = sum_x2 * self._uv_int + mul_q30(sum_x2, self._uv_frac_q30)
        d = uv - self._ref_uv
        # a working sensor is within a few hundred mV of its reference point; the
        # clamp keeps d * 1000 a small int whatever the input reads
        if d > 1000000:
            d = 1000000
        elif d < -1000000:
            d = -1000000
        return self._ref_mc + (d * 1000) // self._slope_uv_per_k + self.internal_offset_mc

    def push_frame(self, internal_sum_x2: int, probe_sum_x2=None) -> int:
        internal = self.internal_filter.push(internal_sum_x2)
        self.board_temp_mc = self._internal_mc(internal)
        valid = False
        code_x16 = 0
        if probe_sum_x2 is not None:
            code_x16 = (probe_sum_x2 << 3) >> self.frame_log2  # mean code * 16
            valid = fe.PROBE_SHORT_CODE * 16 < code_x16 < fe.PROBE_OPEN_CODE * 16
            self.probe_fault = code_x16 <= fe.PROBE_SHORT_CODE * 16
        if valid != self.probe_present:
            self._probe_votes += 1
            if self._probe_votes >= PROBE_DEBOUNCE_FRAMES:
                self.probe_present = valid
                self._probe_votes = 0
                self.probe_filter.reset()
        else:
            self._probe_votes = 0
        if self.probe_present and valid:
            filtered = self.probe_filter.push(code_x16)
            self.battery_temp_mc = ntc_temp_mc(filtered) + self.probe_offset_mc
        elif not self.probe_present:
            self.battery_temp_mc = None
        # (present but this frame invalid: keep the last probe value while debouncing)
        battery = self.battery_temp_mc
        if self.probe_present and battery is not None:
            self.temp_mc = battery
            self.source = TEMP_SOURCE_PROBE
        else:
            self.temp_mc = self.board_temp_mc
            self.source = TEMP_SOURCE_INTERNAL
        return self.temp_mc
