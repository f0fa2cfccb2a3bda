# The step method's charge-transfer arc (docs/ri.md, "Definition"): fitted on the
# Thue-Morse-weighted profile of a step capture, with the mains ripple's leakage into
# that profile projected out, and taken out of the slot sums so that the step method
# reports R0 like the AC method.  Once per capture, after the last sample.
from array import array

from shared.compat import const
from shared.intmath import sin_q15
from shared.ri import thue_morse

# Candidate time constants of 2**(j/4) samples, j = 0..35 (0.4 ms .. 170 ms at 2.5 kHz),
# as exp(-1/tau) in Q30.
_ARC_RHO_Q30 = (
    395007542, 463130302, 529428476, 592470630, 651257337, 705182512, 753969162,
    797596699, 836230973, 870163178, 899760092, 925425813, 947573834, 966607779,
    982908970, 996829173, 1008687096, 1018767490, 1027321989, 1034571010, 1040706261,
    1045893524, 1050275481, 1053974460, 1057095000, 1059726201, 1061943836, 1063812229,
    1065385899, 1066710993, 1067826536, 1068765495, 1069555701, 1070220635, 1070780095,
    1071250770,
)  # fmt: skip
# The fit starts at the third sample: at the first two the current is still rising and
# its value at v's instants (interpolated over the skew) is not good enough.
_FIRST_SAMPLE = const(2)
_FIRST_TAU = const(5)  # candidates from 2**(5/4) samples (0.95 ms at 2.5 kHz)
# ... to 2**7 samples (51 ms at 2.5 kHz): the arcs of the issue (1-50 ms).  A slower one
# is, within a 100 ms slot, nearly a straight line (the drift the fold takes out): its
# fit would be all uncertainty, and the slot sums' integrated-pattern fit (the RC pair)
# takes most of it.
_LAST_TAU = const(28)
_PASSES = const(3)  # alternating projections (50 Hz fold, 60 Hz bins) before the fit
_R_BITS = const(13)  # the arc regressor: Q13 of the steady current profile
_V_BITS = const(14)  # projected vectors are held below 2**14
_LIMB_BITS = const(28)
_LIMB_MASK = const((1 << 28) - 1)
# The arc correction's own relative standard uncertainty (of R0) above which the capture
# is not a number: NOISY_LIMIT_PPM applies to the total, this enters it in quadrature.


def _dot(a, b, p0: int, n: int) -> int:
    """sum(a[p] * b[p]) for p0 <= p < n; every |product| < 2**30, the sum in two limbs."""
    lo = 0
    hi = 0
    for p in range(p0, n):
        lo += a[p] * b[p]
        hi += lo >> _LIMB_BITS
        lo &= _LIMB_MASK
    return (hi << _LIMB_BITS) + lo


def _fold_lin(x, out, n: int, p0: int) -> None:
    """out = 20 x minus, per phase of the 50 Hz grid (period n // 5: every multiple of 5
    cycles per slot), the straight line through that phase's samples (p >= p0): exact
    small integers (the line's values times 20).  A line, not only the mean: mains ripple
    off its nominal frequency drifts in phase from one 20 ms period to the next, to first
    order linearly."""
    period = n // 5
    for ph in range(period):
        if ph >= p0:
            s0 = x[ph] + x[ph + period] + x[ph + 2 * period] + x[ph + 3 * period]
            s0 += x[ph + 4 * period]
            s1 = 2 * (x[ph + 4 * period] - x[ph]) + x[ph + 3 * period] - x[ph + period]
            for j in range(5):
                # mean s0 / 5, slope s1 / 10 per period, j - 2 periods from the middle
                out[ph + j * period] = 20 * x[ph + j * period] - 4 * s0 - 2 * (j - 2) * s1
        else:  # the phase's first sample is left out: four points, j = 1..4
            s0 = x[ph + period] + x[ph + 2 * period] + x[ph + 3 * period] + x[ph + 4 * period]
            s1 = 3 * (x[ph + 4 * period] - x[ph + period])
            s1 += x[ph + 3 * period] - x[ph + 2 * period]
            out[ph] = 0
            for j in range(1, 5):
                out[ph + j * period] = 20 * x[ph + j * period] - 5 * s0 - (2 * j - 5) * s1


def _shift_down(x, p0: int, n: int) -> int:
    """Shift x (in place) right until every |x[p]| < 2**_V_BITS; the shift."""
    peak = 0
    for p in range(p0, n):
        v = x[p]
        if v < 0:
            v = -v
        if v > peak:
            peak = v
    shift = 0
    while peak >> shift >= 1 << _V_BITS:
        shift += 1
    if shift:
        half = 1 << (shift - 1)
        for p in range(p0, n):
            x[p] = (x[p] + half) >> shift
    return shift


class _Grid:
    """The 60 Hz harmonic grid (every multiple of 6 cycles per slot that is not one of
    5, below the Nyquist bin) as Q14 cosine/sine tables of the slot's n positions."""

    def __init__(self, n: int):
        self.n = n
        self.cos = array("h", bytes(2 * n))
        self.sin = array("h", bytes(2 * n))
        for q in range(n):
            ph = (q * 65536 + n // 2) // n
            self.sin[q] = (sin_q15(ph) + 1) >> 1
            self.cos[q] = (sin_q15(ph + 16384) + 1) >> 1
        bins = []
        m = 6
        while 2 * m < n:
            if m % 5:
                bins.append(m)
            m += 6
        self.bins = bins

    def project_out(self, x, p0: int) -> None:
        """x (|x| < 2**14) minus its components at the grid's bins (over p >= p0; the
        bins are orthogonal over the whole slot, so this is one pass of the iteration)."""
        n = self.n
        cos = self.cos
        sin = self.sin
        for m in self.bins:
            c_lo = 0
            c_hi = 0
            s_lo = 0
            s_hi = 0
            q = (m * p0) % n
            for p in range(p0, n):
                v = x[p]
                c_lo += v * cos[q]
                c_hi += c_lo >> _LIMB_BITS
                c_lo &= _LIMB_MASK
                s_lo += v * sin[q]
                s_hi += s_lo >> _LIMB_BITS
                s_lo &= _LIMB_MASK
                q += m
                if q >= n:
                    q -= n
            # amplitudes (x units, Q14): 2 / n of the sums (which are in Q14)
            a = (2 * ((c_hi << _LIMB_BITS) + c_lo)) // n
            b = (2 * ((s_hi << _LIMB_BITS) + s_lo)) // n
            if a >= 1 << 29 or a < -(1 << 29) or b >= 1 << 29 or b < -(1 << 29):
                continue  # not for data held below 2**14
            a_hi = a >> 14
            a_lo = a & 16383
            b_hi = b >> 14
            b_lo = b & 16383
            q = (m * p0) % n
            for p in range(p0, n):
                cq = cos[q]
                sq = sin[q]
                w = a_hi * cq + ((a_lo * cq) >> 14) + b_hi * sq + ((b_lo * sq) >> 14)
                x[p] -= (w + 8192) >> 14
                q += m
                if q >= n:
                    q -= n


def _nuisance_out(x, tmp, grid, p0: int, n: int) -> int:
    """Project x (in place) off the mains grids: the 50 Hz fold with its linear drift,
    then the 60 Hz bins, _PASSES times (the two are not orthogonal: alternating
    projections), then the fold again.  Returns the log2 of the factor x was divided by
    (x ends as 20**(_PASSES + 1) / 2**shift times its projection)."""
    shift = 0
    for k in range(_PASSES + 1):
        _fold_lin(x, tmp, n, p0)
        for p in range(n):
            x[p] = tmp[p]
        shift += _shift_down(x, p0, n)
        if k < _PASSES:
            grid.project_out(x, p0)
    return shift


def _arc_response(rho_q30: int, xn, a0_q27: int, out, n: int) -> None:
    """The arc's response A(p) (Q13 of the steady current profile) to the current profile:
    A(p + 1) = rho A(p) + (1 - rho) xn(p), xn the current at the middle of each sample
    interval (Q13), A(0) = a0 (Q27: the pattern's arc state at the slot starts)."""
    rho15 = (rho_q30 + 16384) >> 15
    gain = 32768 - rho15
    h = a0_q27
    for p in range(n):
        out[p] = (h + 8192) >> 14
        # h (Q27, < 2**28) times rho (Q15) in two halves: each product < 2**29
        h = ((h >> 14) * rho15 >> 1) + (((h & 16383) * rho15 + 16384) >> 15)
        h += (gain * xn[p]) >> 1


def _arc_state(rho_q30: int, n: int, slots: int):
    """(C0, alpha) for unit current: C0 (Q30) the Thue-Morse sum of the arc's state at
    the slot starts; alpha the list of those states (Q30, at rest before the capture)."""
    one = 1 << 30
    rn = one
    for _ in range(n):
        rn = (rn * rho_q30) >> 30
    alpha = 0
    c0 = 0
    states = [0] * slots
    for k in range(slots):
        u = one if thue_morse(k) else 0
        states[k] = alpha
        c0 += alpha if u else -alpha
        alpha = u + (((alpha - u) * rn) >> 30)
    return c0, states


def _solve2(g_ii, g_ia, g_aa, b_i, b_a, yy):
    """Least squares of y on the current I and the arc A from the normal equations
    (Cramer, big integers): (residual sum of squares, det, I and A numerators, the
    cofactor of A): the coefficients are the numerators / det, var(A's) = rss / dof *
    cofactor / det.  When I carries nothing that A and the grids do not (an ideal step:
    after the edge the current profile is constant, in the 50 Hz fold), A alone."""
    if g_aa <= 0:
        return None
    det = g_ii * g_aa - g_ia * g_ia
    if det <= (g_ii * g_aa) >> 16:
        return yy - (b_a * b_a) // g_aa, g_aa, 1, b_a, 1
    n_i = g_aa * b_i - g_ia * b_a
    n_a = g_ii * b_a - g_ia * b_i
    return yy - (n_i * b_i + n_a * b_a) // det, det, n_i, n_a, g_ii


def _rho_at(j8: int) -> int:
    """exp(-1/tau) (Q30) between the grid's points: j8 in eighths of a grid step,
    linear in between."""
    j = j8 >> 3
    f = j8 & 7
    if f and j + 1 < len(_ARC_RHO_Q30):
        return _ARC_RHO_Q30[j] + (((_ARC_RHO_Q30[j + 1] - _ARC_RHO_Q30[j]) * f) >> 3)
    return _ARC_RHO_Q30[j]


def arc_correction(profile, profile_i, window, skew_q10: int, dv: int, di: int):
    """The charge-transfer arc's part of the step response dv (slot-sum units) with its
    variance and time constant, or None (no arc fit: no step, or a plan without 100 ms
    slots of a multiple of 5 samples).  docs/ri.md, "Definition".

    The Thue-Morse-weighted profile P_v(p) (sum over the slots of +-v at position p)
    holds R0 I(p) + R_ct A(p) + slow drift (a + b p) + what the mains ripple leaves:
    at one position the ripple has nearly the same phase in every slot, but the mains
    frequency error drifts it, and the +-1 weights leave up to half of it.  That
    leakage lies at (near) every multiple of 5 (50 Hz) or 6 (60 Hz) cycles per slot;
    it is projected out of the profile and of every regressor alike (Frisch-Waugh-
    Lovell): the 50 Hz grid exactly, as the sequences of period n / 5 and their linear
    drift over the five periods; the 60 Hz grid by its bins.  Then least squares of
    P_v on b p, I (the current at v's instants) and A (the current through the arc's
    lag, tau on a quarter-octave grid from 0.57 ms, refined by parabolas through the
    fit's residuals), from the third sample on.  Returns (dv_arc, var_dv_arc, rho_q30)
    with dv_arc = R_ct times the Hann-weighted sum of A: what the arc adds to dv (0
    when the fit says the arc would lower the resistance; its variance still counts),
    or a str saying why no fit could be made (then no number: the step response would
    be R0 plus an unknown part of the arc)."""
    n = len(profile)
    p0 = _FIRST_SAMPLE
    if di <= 0 or n % 5 or n < 40:
        return None
    slots = 32
    # the current's steady level in the profile (16 on-slots of the current)
    q_ss = 0
    for p in range(n // 2, n):
        q_ss += profile_i[p]
    q_ss //= n - n // 2
    if q_ss <= 0:
        return None
    # the current at v's instants (i lags v by skew_q10 / 1024 of a sample), and at the
    # middle of each sample interval (the arc integrates the current over it), Q13 of q_ss
    iv = array("i", bytes(4 * n))
    xn = array("i", bytes(4 * n))
    f_q10 = 512 - skew_q10  # from the i sample to the interval's middle
    for p in range(n):
        q = profile_i[p]
        prev = profile_i[p - 1] if p else q
        nxt = profile_i[p + 1] if p + 1 < n else q
        iv[p] = (q * 1024 - (q - prev) * skew_q10 + 512) >> 10
        if f_q10 >= 0:
            mid = q * 1024 + (nxt - q) * f_q10
        else:
            mid = q * 1024 + (q - prev) * f_q10
        xn[p] = (mid << (_R_BITS - 10)) // q_ss
    tmp = array("i", bytes(4 * n))
    grid = _Grid(n)
    # --- stage 1: tau by the 50 Hz fold alone (exact, cheap for every candidate)
    y1 = array("i", bytes(4 * n))
    i1 = array("i", bytes(4 * n))
    _fold_lin(profile, y1, n, p0)
    _shift_down(y1, p0, n)
    _fold_lin(iv, i1, n, p0)
    _shift_down(i1, p0, n)
    g_ii = _dot(i1, i1, p0, n)
    b_i = _dot(i1, y1, p0, n)
    yy1 = _dot(y1, y1, p0, n)
    ar = array("i", bytes(4 * n))
    af = tmp
    rss = []
    for j in range(_FIRST_TAU, _LAST_TAU + 1):
        rho = _ARC_RHO_Q30[j]
        c0, _states = _arc_state(rho, n, slots)
        _arc_response(rho, xn, c0 >> 7, ar, n)  # C0 / 16 of the steady profile
        _fold_lin(ar, af, n, p0)
        for p in range(p0, n):
            af[p] = (af[p] + 16) >> 5  # 20 / 32 of the projection: < 2**14
        g_aa = (_dot(ar, af, p0, n) * 8) // 5
        fit = _solve2(g_ii, _dot(ar, i1, p0, n), g_aa, b_i, _dot(ar, y1, p0, n), yy1)
        if fit is None:
            rss.append(None)
        elif fit[3] < 0:
            rss.append(-1 - fit[0])  # an arc that lowers the resistance: only if no other
        else:
            rss.append(fit[0])
    best = -1
    for k in range(len(rss)):
        e = rss[k]
        if e is None:
            continue
        if best < 0:
            best = k
            continue
        b = rss[best]
        if (e >= 0 and (b < 0 or e < b)) or (e < 0 and b < 0 and e > b):
            best = k
    if best < 0:
        return "no fit of the charge-transfer arc"
    j_best = best + _FIRST_TAU
    # --- stage 2: the 50 and 60 Hz grids together, around that tau
    y2 = y1
    i2 = i1
    for p in range(n):
        y2[p] = profile[p]
        i2[p] = iv[p]
    sy = _nuisance_out(y2, tmp, grid, p0, n)
    _nuisance_out(i2, tmp, grid, p0, n)
    g_ii = _dot(i2, i2, p0, n)
    b_i = _dot(i2, y2, p0, n)
    yy2 = _dot(y2, y2, p0, n)
    a2 = array("i", bytes(4 * n))

    def fit2(j8):
        rho = _rho_at(j8)
        c0, _states = _arc_state(rho, n, slots)
        _arc_response(rho, xn, c0 >> 7, ar, n)
        for p in range(n):
            a2[p] = ar[p]
        sa = _nuisance_out(a2, tmp, grid, p0, n)
        f = _solve2(g_ii, _dot(a2, i2, p0, n), _dot(a2, a2, p0, n), b_i, _dot(a2, y2, p0, n), yy2)
        return f, sa, rho

    j8 = 8 * j_best
    lo = j8 - 8 if j_best > _FIRST_TAU else j8
    hi = j8 + 8 if j_best < _LAST_TAU else j8
    f_lo = fit2(lo)[0]
    f_mid, sa, rho = fit2(j8)
    f_hi = fit2(hi)[0]
    if lo < j8 < hi and f_lo is not None and f_mid is not None and f_hi is not None:
        e0 = f_lo[0]
        e1 = f_mid[0]
        e2 = f_hi[0]
        curv = e0 - 2 * e1 + e2
        if curv > 0:
            # the parabola's minimum, in eighths of a grid step (-8 .. 8)
            d = (4 * (e0 - e2) + (curv >> 1)) // curv
            if d > 8:
                d = 8
            if d < -8:
                d = -8
            if d:
                f_new, sa_new, rho_new = fit2(j8 + d)
                if f_new is not None:
                    f_mid, sa, rho = f_new, sa_new, rho_new
    if f_mid is None:
        return "no fit of the charge-transfer arc"
    res, det, n_i, n_a, cof = f_mid
    if n_a < 0:
        n_a = 0  # an arc would lower the resistance: none (its uncertainty still counts)
    if res < 0:
        res = 0
    # dof: the support, less the 50 Hz fold with its drift (2 per phase), the 60 Hz
    # bins (2 each) and the two regressors (the fold's line holds a + b p)
    dof = n - p0 - 2 * (n // 5) - 2 * len(grid.bins) - 2
    if dof <= 0:
        return None  # a slot too short for the grids: no arc fit
    # R_ct (y2 units per unit of a2) = n_a / det; var = res / dof * c_aa / det
    # y2 = profile * 20**(PASSES+1) / 2**sy; a2 = A(Q13) * 20**(PASSES+1) / 2**sa, so
    # R_ct in profile units per Q13 unit of A is n_a / det * 2**(sy - sa)
    c0, _states = _arc_state(rho, n, slots)
    _arc_response(rho, xn, c0 >> 7, ar, n)  # A at the final tau (fit2 overwrote it)
    s_wa = 0
    for p in range(n):
        s_wa += window[p] * ar[p]  # the arc's Hann-weighted sum
    # dv_arc = R_ct * s_wa (profile = slot-sum units once weighted by the window)
    num = n_a * s_wa
    den = det
    if sy >= sa:
        num <<= sy - sa
    else:
        den <<= sa - sy
    dv_arc = num // den
    # var(R_ct) = res / dof * cof / det (in (y2/a2 units)**2), scaled the same way
    var_num = res * cof * s_wa * s_wa
    var_den = dof * det
    if sy >= sa:
        var_num <<= 2 * (sy - sa)
    else:
        var_den <<= 2 * (sa - sy)
    var_arc = var_num // var_den
    return dv_arc, var_arc, rho


def arc_slot_shares(rho_q30: int, window, slots: int):
    """Each slot's share of the arc (its Hann-weighted sum for unit current, relative):
    u_k W + (alpha_k - u_k) sum(w_p rho**p), alpha_k the arc's state at the slot start.
    ri_step scales them so that their pattern sum is the fitted dv_arc: the arc's part
    of every slot sum, for the noise channels too."""
    n = len(window)
    one = 1 << 30
    w_sum = 0
    s_wr = 0
    r = one
    for p in range(n):
        w_sum += window[p]
        s_wr += window[p] * (r >> 15)  # Q15
        r = (r * rho_q30) >> 30
    _c0, states = _arc_state(rho_q30, n, slots)
    out = [0] * slots
    for k in range(slots):
        u = one if thue_morse(k) else 0
        out[k] = ((u * w_sum) >> 15) + (((states[k] - u) >> 15) * s_wr >> 15)
    return out
