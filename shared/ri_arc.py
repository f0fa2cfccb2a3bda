# The step method's charge-transfer arc (docs/ri.md, "Definition"): fitted on the
# Thue-Morse-weighted profile of a step capture and taken out of its slot sums, so that
# the step method reports R0 like the AC method.  Once per capture.

from shared.compat import const
from shared.intmath import isqrt
from shared.ri import thue_morse
from shared.ri_feed import BUF_ARC_YS, take

# The charge-transfer arc (docs/ri.md, "Definition"): candidate time constants of 2**(j/4)
# samples, j = 0..35 (0.4 ms .. 170 ms at 2.5 kHz), as exp(-1/tau) in Q30.
_ARC_RHO_Q30 = (
    395007542, 463130302, 529428476, 592470630, 651257337, 705182512, 753969162,
    797596699, 836230973, 870163178, 899760092, 925425813, 947573834, 966607779,
    982908970, 996829173, 1008687096, 1018767490, 1027321989, 1034571010, 1040706261,
    1045893524, 1050275481, 1053974460, 1057095000, 1059726201, 1061943836, 1063812229,
    1065385899, 1066710993, 1067826536, 1068765495, 1069555701, 1070220635, 1070780095,
    1071250770,
)  # fmt: skip
_ARC_FIRST_SAMPLE = const(3)  # the profile fit starts here (the sink's edge is over)
_ARC_FIRST_TAU = const(4)  # candidates from 2 samples (0.8 ms at 2.5 kHz)
_ARC_SIGNIFICANCE = const(9)  # an arc's fit must gain 9x the residual variance (3 sigma)
_H_Q = const(13)  # the fit's arc response h in its sums: Q13 (a unit rise is 2**13)
_H_STATE_Q = const(27)  # ... and while it is computed (h (1 - rho) stays resolved)
_Y_BITS = const(15)  # the fitted data: |y| < 2**15
_LIMB_BITS = const(28)
_LIMB_MASK = const((1 << 28) - 1)
# The work is a generator of bounded steps (the module answers the bus between them,
# docs/ri.md): a step after every 2**k points of a loop over the profile, fewer for the
# loops in big integers.  The largest step on the emulated Cortex-M0 is
# mcu.m0.ri_step_max_kinstr (docs/benchmarks.md).
_STEP_POINTS_MASK = const(15)
_STEP_BIG_MASK = const(3)


def _current_at_v(profile_i, p: int, skew_q10: int, q_ss: int) -> int:
    """The current profile at v's sampling instants (i lags v by s = skew_q10 / 1024 of
    a sample period): interpolated back, x1024.  The fit's first samples are still on
    the sink's edge, whose rest (q_ss minus the profile) falls about geometrically: a
    straight line between two i samples there was off by a third of what is still to
    come (0.9 % of the step at the third sample, docs/ri.md) and the arc fit took that
    for a faster, smaller arc.  Half a sample apart (a round robin): the geometric mean
    of the two rests while both are above 0.1 % of the step and falling; otherwise
    through the i samples before, at and after (quadratic: weights s(s+1)/2, 1-s^2
    and -s(1-s)/2, in Q10)."""
    q = profile_i[p]
    prev = profile_i[p - 1] if p else q
    if (skew_q10 + 4) >> 3 == 64 and p:  # 508-515: 200 us at 2500 Hz is 511
        r1 = q_ss - prev
        r2 = q_ss - q
        if r1 > r2 > 0 and r2 * 1000 > q_ss - profile_i[0]:
            return q_ss * 1024 - isqrt(r1 * r2 * 1048576)
    if 0 < p < len(profile_i) - 1:
        wa = (skew_q10 * (skew_q10 + 1024)) >> 11
        wc = (skew_q10 * (1024 - skew_q10)) >> 11
        return prev * wa + q * (1024 - wa + wc) - profile_i[p + 1] * wc
    return q * 1024 - (q - prev) * skew_q10


def _arc_fit(rho: int, inc, ys, p0: int, sums):
    """(explained, E numerator, determinant) of y ~ a + b p + E h(p) for one tau (a
    generator of bounded steps, like arc_slot_sums: the tuple is its return value).

    Small integers in the loop over the profile (this runs for every candidate tau):
    h runs in Q27 (rho rounded to Q15, the product in two halves) and enters the sums
    in Q13 (rounded: in Q13 alone a slow arc's tail would stop decaying once
    h (1 - rho) < 1/2), |y| < 2**15, so every product is < 2**29; the sums
    that can outgrow 2**30 (of h*h and h*y) are carried in two limbs of 28 bits.  Only
    Cramer's rule (a few products, once per tau) uses big integers.  The determinant
    is returned as for h in Q30 (times 2**17), what arc_slot_sums expects."""
    m, s_p, s_pp, y, y_p = sums
    n = len(ys)
    steps = len(inc)
    rho15 = (rho + 16384) >> 15
    h = 0
    s_r = 0
    s_pr = 0  # < 250 * 250 * 1.2 * 2**13 < 2**30 (250 samples per slot, the plans)
    rr_lo = 0
    rr_hi = 0
    yr_lo = 0
    yr_hi = 0
    for p in range(n):
        # h (Q27, < 2**28) times rho (Q15) in two halves: each product < 2**29
        h = ((h >> 14) * rho15 >> 1) + (((h & 16383) * rho15 + 16384) >> 15)
        if p < steps:
            h += inc[p]
        if p >= p0:
            r = (h + 8192) >> 14  # the regressor in Q13
            s_r += r
            s_pr += p * r
            rr_lo += r * r
            rr_hi += rr_lo >> _LIMB_BITS
            rr_lo &= _LIMB_MASK
            yr_lo += r * ys[p]
            yr_hi += yr_lo >> _LIMB_BITS
            yr_lo &= _LIMB_MASK
        if p & _STEP_POINTS_MASK == _STEP_POINTS_MASK:
            yield
    s_rr = (rr_hi << _LIMB_BITS) + rr_lo
    y_r = (yr_hi << _LIMB_BITS) + yr_lo
    # Cramer on [[m, s_p, s_r], [s_p, s_pp, s_pr], [s_r, s_pr, s_rr]] (a, b, E)
    c00 = s_pp * s_rr - s_pr * s_pr
    c01 = s_pr * s_r - s_p * s_rr
    c02 = s_p * s_pr - s_pp * s_r
    det = m * c00 + s_p * c01 + s_r * c02
    if det <= 0:
        return None
    yield
    c11 = m * s_rr - s_r * s_r
    c12 = s_p * s_r - m * s_pr
    c22 = m * s_pp - s_p * s_p
    na = c00 * y + c01 * y_p + c02 * y_r
    nb = c01 * y + c11 * y_p + c12 * y_r
    ne = c02 * y + c12 * y_p + c22 * y_r
    explained = (na * y + nb * y_p + ne * y_r) // det  # the fit's share of sum(y^2)
    return explained, ne, det << (30 - _H_Q)


def arc_slot_sums(profile, profile_i, window, skew_q10: int, dv: int, di: int, bufs=None):
    """The charge-transfer arc's part of every slot sum (a list, slot-sum units; None
    when there is none), so that the step method reports R0 like the AC method
    (docs/ri.md, "Definition").  A generator: each next() does a bounded step of the
    work (the module core runs them across its loop turns and answers the bus
    meanwhile); the list is its return value (`arc = yield from arc_slot_sums(...)`).

    Within a slot the arc relaxes as exp(-t / tau) after each edge, following the
    current (which rises with the sink's lag); the Thue-Morse-weighted profile over
    the slots keeps that (the ripple, in phase at a position in every slot, cancels
    like drift).  What is fitted is y_p = P_v(p) di - P_i(p) dv (the current's own
    profile scaled by the slot result taken out), from _ARC_FIRST_SAMPLE on, with
    a + b p + E h(p) for each candidate tau, h the current's measured rise convolved
    with exp(-p / tau) (least squares; the best fit wins).  E = R_ct C, C the pattern's arc
    state at the slot starts; each slot's Hann-weighted sum contains R_ct times the
    arc's response in that slot.  Once per capture, big integers."""
    if di <= 0:
        return None
    slots = 32
    n = len(profile)
    p0 = _ARC_FIRST_SAMPLE
    if n < 4 * p0:
        return None
    window_sum = 0
    for p in range(n):
        window_sum += window[p]
    yield
    one = 1 << 30
    # The current's unit rise at the i samples' instants: increments (Q27) summing to
    # one.  Before the edge the profile holds sum(s_k u_(k-1)) of the current, after
    # it sum(s_k u_k) = slots / 2 of it (u_-1 = 0: at rest before the capture).
    before = 0
    for k in range(1, slots):
        if thue_morse(k - 1):
            before += 1 if thue_morse(k) else -1
    yield
    q_ss = 0
    for p in range(n // 2, n):
        q_ss += profile_i[p]
    q_ss //= n - n // 2
    q_pre = q_ss * before // (slots // 2)
    rise = q_ss - q_pre
    if rise <= 0:
        return None
    yield
    steps = p0 + 8  # the sink's edge is over by then
    inc = [0] * steps
    prev = q_pre
    for p in range(steps):
        q = profile_i[p]
        inc[p] = ((q - prev) << _H_STATE_Q) // rise  # Q27 increments (the fit's h)
        prev = q
    # the data's sums (independent of tau)
    m = n - p0
    s_p = 0
    s_pp = 0
    y = 0
    y_p = 0
    # y is held shifted right by y_shift so that every |y_p| < 2**15: 250 small ints,
    # and h * y < 2**29 in the fit (the fit is linear in y, E is shifted back)
    peak = 0
    yield
    for p in range(p0, n):
        v = profile[p] * di * 1024 - _current_at_v(profile_i, p, skew_q10, q_ss) * dv
        if v < 0:
            v = -v
        if v > peak:
            peak = v
        if p & _STEP_BIG_MASK == _STEP_BIG_MASK:
            yield
    y_shift = 0
    while peak >> y_shift >= 1 << _Y_BITS:
        y_shift += 1
    ys = take(bufs, BUF_ARC_YS, "h", n, False)  # |y| < 2**15; each ys[p] written first
    yp_lo = 0  # y_p in two limbs (p * y < 2**23, the sum not)
    yp_hi = 0
    for p in range(p0, n):
        v = (profile[p] * di * 1024 - _current_at_v(profile_i, p, skew_q10, q_ss) * dv) >> y_shift
        ys[p] = v
        s_p += p
        s_pp += p * p
        y += v
        yp_lo += p * v
        yp_hi += yp_lo >> _LIMB_BITS
        yp_lo &= _LIMB_MASK
        if p & _STEP_BIG_MASK == _STEP_BIG_MASK:
            yield
    y_p = (yp_hi << _LIMB_BITS) + yp_lo
    sums = (m, s_p, s_pp, y, y_p)
    # the straight line alone (a + b p) and the data's sum of squares: an arc must
    # explain clearly more than noise and ripple leakage would (ARC_SIGNIFICANCE
    # times the residual variance per point)
    det2 = m * s_pp - s_p * s_p
    if det2 <= 0:
        return None
    line = (s_pp * y * y - 2 * s_p * y * y_p + m * y_p * y_p) // det2
    yy_lo = 0
    yy_hi = 0
    for p in range(p0, n):
        yy_lo += ys[p] * ys[p]
        yy_hi += yy_lo >> _LIMB_BITS
        yy_lo &= _LIMB_MASK
        if p & _STEP_POINTS_MASK == _STEP_POINTS_MASK:
            yield
    yy = (yy_hi << _LIMB_BITS) + yy_lo
    yield
    best = None
    fits = []
    for j in range(_ARC_FIRST_TAU, len(_ARC_RHO_Q30)):
        fit = yield from _arc_fit(_ARC_RHO_Q30[j], inc, ys, p0, sums)
        fits.append(fit)
        if fit is not None and (best is None or fit[0] > fits[best][0]):
            best = len(fits) - 1
    if best is None:
        return None
    # refine tau between the grid's neighbours (a parabola through the fit qualities)
    rho = _ARC_RHO_Q30[_ARC_FIRST_TAU + best]
    if 0 < best < len(fits) - 1 and fits[best - 1] is not None and fits[best + 1] is not None:
        e0 = fits[best - 1][0]
        e1 = fits[best][0]
        e2 = fits[best + 1][0]
        curv = e0 - 2 * e1 + e2
        if curv < 0:
            delta_q10 = ((e0 - e2) * 512) // curv  # -512 .. 512: half a grid step
            lo = _ARC_RHO_Q30[_ARC_FIRST_TAU + best - 1]
            hi = _ARC_RHO_Q30[_ARC_FIRST_TAU + best + 1]
            rho = rho + ((hi - lo) * delta_q10 >> 11)
            fit = yield from _arc_fit(rho, inc, ys, p0, sums)
            if fit is not None:
                fits[best] = fit
    explained, ne, det = fits[best]
    residual = (yy - explained) // (m - 3)
    if explained - line <= _ARC_SIGNIFICANCE * residual:
        return None  # no arc to speak of: nothing is taken out
    # h was built from the current's rise between i samples, which lag v's by skew:
    # a rise spread over a sample period acts from its middle, f = skew - 1/2 sample
    # after v's instants; at v's instants h is larger by rho^-f, so E (fitted with h)
    # is E_v rho^-f
    # rho^f = exp(f ln rho), f = skew - 1/2 in [-1/2, 1/2]: ln rho from x = 1 - rho to
    # third order, the exponential to third order (to first order it left +3.8 % of
    # R0 at tau = 1 ms with simultaneous channels, f = -1/2; big integers, once)
    x = one - rho
    ln_rho = -(x + ((x * x) >> 31) + ((x * x * x) // (3 << 60)))
    fl = (ln_rho * (skew_q10 - 512)) >> 10
    shift = one + fl + ((fl * fl) >> 31) + ((fl * fl * fl) // (6 << 60))
    ne = (ne * shift) >> 30
    # the arc's decay over a whole slot, and its Hann-weighted decaying part
    rn = one
    for p in range(n):
        rn = (rn * rho) >> 30
        if p & _STEP_BIG_MASK == _STEP_BIG_MASK:
            yield
    s_wr = 0
    h = 0
    for p in range(n):
        h = (h * rho) >> 30
        if p < steps:
            h += inc[p] << (30 - _H_STATE_Q)  # Q30 here
        s_wr += window[p] * ((h << 30) // shift)
        if p & _STEP_BIG_MASK == _STEP_BIG_MASK:
            yield
    # per slot: the arc's Hann-weighted sum for a unit arc voltage (Q30 x window units),
    # alpha the arc state at the slot start (at rest before the capture); C (Q30) the
    # Thue-Morse sum of (alpha_k - u_k), what the profile's decaying part is made of
    c = 0
    alpha = 0
    arc_sums = [0] * slots
    for k in range(slots):
        u = one if thue_morse(k) else 0
        if u:
            c += alpha - u
        else:
            c -= alpha - u
        arc_sums[k] = u * window_sum + (((alpha - u) * s_wr) >> 30)
        alpha = u + (((alpha - u) * rn) >> 30)
        if k & 7 == 7:
            yield
    ne <<= y_shift
    den = det * di * 1024 * c
    if c == 0 or ne * den <= 0:
        return None  # no arc, or one that would lower the resistance: not an arc
    # E (y units) = ne / det * 2**30; the arc voltage per unit current
    # R = E / (di * 1024 * c / 2**30); per slot R * arc_sums[k] / 2**30
    for k in range(slots):
        arc_sums[k] = (ne * one * arc_sums[k]) // den
        if k & 3 == 3:
            yield
    return arc_sums
