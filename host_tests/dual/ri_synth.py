# Integer capture synthesiser for the dual Ri tests (both interpreters, no floats):
# a block of resistance ri_nohm seen through the nominal front end, plus charger
# ripple (two harmonics, off the nominal frequency), slow drift and LCG noise.
from dualtest import LCG

from shared import frontend as fe
from shared.intmath import sin_q15

# nV per ADC code: 3.0 V / 4096
_NV_PER_CODE_X1024 = fe.ADC_VREF_UV * 1000 * 1024 // fe.ADC_CODES


class Synth:
    def __init__(
        self,
        plan,
        ri_nohm,
        ripple_codes=0,
        ripple_mhz=100300,
        noise=2,
        seed=1,
        drift_codes=0,
        current_scale_pct=100,
        quadrature_codes=0,
    ):
        self.plan = plan
        self.rng = LCG(seed)
        self.noise = noise
        self.ripple_codes = ripple_codes
        self.drift_codes = drift_codes
        # a sine at the AC excitation frequency, 90 degrees from the square wave's
        # fundamental (what an inductive pick-up M dI/dt looks like to the lock-in)
        self.quadrature_codes = quadrature_codes
        # response of the v channel in codes * 16 for the planned current
        current_ma = plan.excitation_ma * current_scale_pct // 100
        resp_nv = ri_nohm * current_ma // 1000 * plan.v_gain
        self.step_x16 = resp_nv * 1024 * 16 // _NV_PER_CODE_X1024
        i_uv = current_ma * plan.shunt_uohm * plan.shunt_gain // 1000
        self.i_off = fe.SHUNT_REF_OFFSET_UV * fe.ADC_CODES // fe.ADC_VREF_UV
        self.i_on = self.i_off + i_uv * fe.ADC_CODES // fe.ADC_VREF_UV
        # ripple phase increments per sample in turns * 2**24
        self.inc1 = (ripple_mhz << 24) // (1000 * plan.sample_rate_hz)
        self.inc3 = 3 * self.inc1
        self.p1 = 1234567
        self.p3 = 7654321
        self.n = 0

    def stream(self, feed, vbuf, ibuf, chunk=256):
        """The whole capture of the plan handed to feed(v, i, n) in chunks of at most
        chunk sample pairs (vbuf and ibuf hold at least that many), as a board's DMA."""
        left = self.plan.samples
        while left:
            n = chunk if left > chunk else left
            self.fill(vbuf, ibuf, n)
            feed(vbuf, ibuf, n)
            left -= n

    def fill(self, vbuf, ibuf, count):
        plan = self.plan
        rng = self.rng
        noise = self.noise
        for j in range(count):
            on = plan.excitation_on(self.n // plan.slot_samples)
            half = self.step_x16 >> 1
            resp = half if on else -half
            rip = 0
            if self.ripple_codes:
                rip = (
                    self.ripple_codes * sin_q15(self.p1 >> 8)
                    + (self.ripple_codes // 3) * sin_q15(self.p3 >> 8)
                ) // 2048  # codes * 16
                self.p1 += self.inc1
                self.p3 += self.inc3
            drift = self.drift_codes * 16 * self.n // plan.samples
            quad = 0
            if self.quadrature_codes:
                period = 2 * plan.slot_samples
                k = self.n % period
                # the square (on for the first half period) has its fundamental
                # peaking mid-way through the on half, at (slot_samples - 1) / 2;
                # the quadrature is the sine about that point
                phase = ((2 * k - (plan.slot_samples - 1)) << 15) // period
                quad = self.quadrature_codes * sin_q15(phase) // 2048
            x16 = 2048 * 16 + resp + rip + drift + quad
            n1 = rng.between(-noise * 16, noise * 16) if noise else 0
            v = (x16 + n1 + 8) >> 4
            c = self.i_on if on else self.i_off
            if noise:
                c += rng.between(-noise, noise)
            vbuf[j] = 0 if v < 0 else (4095 if v > 4095 else v)
            ibuf[j] = c
            self.n += 1
        return count
