"""Tail probabilities of the Kolmogorov-Smirnov distributions, in numpy (no scipy).

The drift function ships without scipy (it would blow the Lambda size and cold-start
budget), yet its KS p-values must equal ``scipy.stats.ks_2samp``. In the asymptotic
regime scipy evaluates ``kstwo.sf(d, round(m*n/(m+n)))``: the survival function of the
*exact* one-sample two-sided statistic D_n, chosen among five algorithms by the rule of
Simard & L'Ecuyer (2011). This module ports that rule and those algorithms:

* :func:`kstwo_sf` - ``P(D_n >= x)``, the port of ``scipy.stats._ksstats._kolmogn`` with
  ``cdf=False``: the Ruben-Gambino closed forms near the ends of the support, the
  Durbin matrix (Marsaglia-Tsang-Wang), the Pomeranz recursion, the Pelz-Good
  asymptotic series and ``2 * smirnov`` in the upper tail;
* :func:`smirnov_sf` - ``P(D_n^+ >= x)``, the one-sided exact sum of Birnbaum & Tingey as
  in ``scipy.special.smirnov`` (cephes/xsf), evaluated in log space.

**Where the arithmetic differs from scipy, and by how much.** The branch rule, the
constants and the algorithms are scipy's; three evaluations differ in rounding only.
(1) xsf sums the Smirnov series in double-double arithmetic; here each term is
``exp(log C(n,v) + (n-v) log(1-x-v/n) + (v-1) log(x+v/n))`` with ``1-x-v/n`` and
``x+v/n`` formed exactly from ``floor(n*x)`` and its remainder (as xsf does) and the
binomial's log from ``math.lgamma``; its relative error is about ``1e-16 * n``, 1e-11 at
n = 100,000. (2) The Durbin algorithm's final ``n!/n^n`` product is a compensated log
sum (``math.fsum``) instead of a loop in extended precision. (3) numpy's ``log``/``exp``
may differ from libm in the last bit. The tests hold every branch to ``rtol=1e-9`` of
scipy over a grid of n and x.

>>> round(kstwo_sf(0.05, 1000), 12)
0.013012074781
>>> kstwo_sf(0.0, 10), kstwo_sf(1.0, 10)
(1.0, 0.0)
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

_E128 = 128
_EP128 = 2.0**128
_EM128 = 2.0**-128
_SQRT2PI = math.sqrt(2 * math.pi)
_LOG_2PI = math.log(2 * math.pi)
_MIN_LOG = -708
_SQRT3 = math.sqrt(3)
_PI_SQUARED = math.pi**2
_PI_FOUR = math.pi**4
_PI_SIX = math.pi**6
_MINLOG_CEPHES = -7.451332191019412076235e2  # log(2**-1075), xsf's MINLOG
_SMIRNOV_MAX_COMPUTE_N = 1_000_000
_EPS = float(np.finfo(float).eps)

# B_{2j}/(2j)/(2j-1) for j = 8..1 (scipy.stats._ksstats._STIRLING_COEFFS).
_STIRLING_COEFFS = [-2.955065359477124183e-2, 6.4102564102564102564e-3,
                    -1.9175269175269175269e-3, 8.4175084175084175084e-4,
                    -5.952380952380952381e-4, 7.9365079365079365079e-4,
                    -2.7777777777777777778e-3, 8.3333333333333333333e-2]


def _clip(p: float) -> float:
    return float(min(max(p, 0.0), 1.0))


def _log_nfactorial_div_n_pow_n(n: int) -> float:
    """log(n!/n**n) by Stirling's series with n*log(n) removed up front."""
    rn = 1.0 / n
    return float(np.log(n) / 2 - n + _LOG_2PI / 2 + rn * np.polyval(_STIRLING_COEFFS, rn / n))


# -- Smirnov (one-sided) -------------------------------------------------------------------

def smirnov_sf(n: int, x: float) -> float:
    """``P(D_n^+ >= x)`` for the one-sided one-sample KS statistic (= ``scipy.special.smirnov``).

    >>> smirnov_sf(1, 0.25), smirnov_sf(5, 0.0), smirnov_sf(5, 1.0)
    (0.75, 1.0, 0.0)
    """
    if not (n > 0 and 0.0 <= x <= 1.0):
        return math.nan
    if n == 1:
        return 1.0 - x
    if x == 0.0:
        return 1.0
    if x == 1.0:
        return 0.0
    exact_nx = Fraction(x) * n
    nxfl = math.floor(exact_nx)
    alpha = float(exact_nx - nxfl)  # remainder of n*x, exact then rounded once
    n1mxfl = n - nxfl - (0 if alpha == 0 else 1)
    if alpha == 0:
        n1mxfl -= 1
    if nxfl == 0 or (nxfl == 1 and alpha == 0):  # x <= 1/n
        cdf = x * math.exp((n - 1) * math.log1p(x))
        return _clip(1.0 - cdf)
    if -2 * n * x * x < _MINLOG_CEPHES:
        return 0.0
    if nxfl >= n - 1:  # x >= 1 - 1/n
        return _clip(math.exp(n * math.log1p(-x)))
    if n > _SMIRNOV_MAX_COMPUTE_N:  # xsf's approximation p ~ exp(-(6nx+1)^2 / 18n)
        logp = -((6.0 * n * x + 1) ** 2) / 18.0 / n
        return _clip(math.exp(logp) if logp < -math.log(2) else 1.0 + math.expm1(logp))
    return _clip(x * _smirnov_lower_sum(n, x, nxfl, alpha, n1mxfl))


def _stirlerr(k: np.ndarray) -> np.ndarray:
    """log(k!) - log(sqrt(2 pi k) (k/e)^k) for integers k >= 1 (Loader 2000), vectorised.

    A table up to 15, the five-term asymptotic series above (Loader's shorter series for
    larger k are only faster, not more accurate).
    """
    nn = k * k
    s0, s1, s2, s3, s4 = 1 / 12, 1 / 360, 1 / 1260, 1 / 1680, 1 / 1188
    out = (s0 - (s1 - (s2 - (s3 - s4 / nn) / nn) / nn) / nn) / k
    small = k <= 15
    if small.any():
        out[small] = _STIRLERR_TABLE[k[small].astype(np.int64)]
    return out


def _bd0(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """x log(x/m) + m - x without cancellation (Loader 2000), vectorised."""
    out = x * np.log(x / m) + m - x
    near = np.abs(x - m) < 0.1 * (x + m)
    if near.any():
        xs, ms = x[near], m[near]
        v = (xs - ms) / (xs + ms)
        s = (xs - ms) * v
        ej = 2 * xs * v
        v2 = v * v
        active = np.arange(len(s))
        for j in range(1, 200):  # converged entries leave the active set (no subnormals)
            ej *= v2
            term = ej / (2 * j + 1)
            s[active] += term
            going = np.abs(term) > 1e-17 * np.abs(s[active])
            if not going.any():
                break
            active, ej, v2 = active[going], ej[going], v2[going]
        out[near] = s
    return out


_STIRLERR_TABLE = np.array([0.0] + [
    math.lgamma(k + 1.0) - (k + 0.5) * math.log(k) + k - 0.5 * _LOG_2PI for k in range(1, 16)])


def _smirnov_log_terms(n: int, nxfl: int, alpha: float, v: np.ndarray) -> np.ndarray:
    """log of A_v = C(n,v) (1-x-v/n)^(n-v) (x+v/n)^(v-1) for 1 <= v < n.

    With b = x + v/n and a = 1 - b, A_v = dbinom(v; n, b) / b; the binomial probability is
    Loader's saddle-point form (as R's dbinom), accurate to a few ulps, and n*b, n*a are
    formed exactly from the integer part of n*x and its remainder.
    """
    nb = (nxfl + v) + alpha  # n * (x + v/n)
    na = (n - v - nxfl) - alpha  # n * (1 - x - v/n)
    nf = float(n)
    lc = _stirlerr(np.array([nf]))[0] - _stirlerr(v) - _stirlerr(nf - v) - _bd0(v, nb) - _bd0(nf - v, na)
    lf = _LOG_2PI + np.log(v) + np.log1p(-v / nf)
    return lc - 0.5 * lf - (np.log(nb) - math.log(nf))


def _smirnov_lower_sum(n: int, x: float, nxfl: int, alpha: float, last: int) -> float:
    """sum_{v=0}^{last} A_v, all terms positive (the lower sum of Birnbaum-Tingey).

    For large n the terms vary smoothly on a scale of hundreds of v and are negligible at
    both ends of the range (below e^-400 of the largest for the n and x that reach this
    sum). The sum is first taken over every h-th term (times h), then h is halved, each
    level adding only the new terms, until two successive estimates agree to 1e-14: by
    Poisson summation such a subsampled sum converges exponentially fast in 1/h, and at
    h = 1 it is the plain sum. n = 100,000 needs about a thousand terms instead of 50,000.
    """
    log_t0 = n * math.log1p(-x) - math.log(x)  # v = 0: (1-x)^n / x
    if last < 1:
        return math.exp(log_t0)
    h = 1
    while last // (2 * h) >= 256:
        h *= 2
    logt = _smirnov_log_terms(n, nxfl, alpha, np.arange(1, last + 1, h, dtype=np.float64))
    peak = max(float(np.max(logt)), log_t0)
    raw = float(np.sum(np.exp(logt - peak)))  # sum over the current grid, unscaled by h
    estimate = h * raw
    while h > 1:
        half = h // 2
        new = _smirnov_log_terms(n, nxfl, alpha, np.arange(1 + half, last + 1, h, dtype=np.float64))
        raw += float(np.sum(np.exp(new - peak)))
        finer = half * raw
        h = half
        converged = abs(finer - estimate) <= 1e-14 * abs(finer)
        estimate = finer
        if converged:
            break
    return math.exp(peak) * (estimate + math.exp(log_t0 - peak))


# -- Durbin / Marsaglia-Tsang-Wang -----------------------------------------------------------

def _kolmogn_dmtw_cdf(n: int, d: float) -> float:
    """Pr(D_n <= d) by the Durbin matrix algorithm (MTW); suits small n*d."""
    if d >= 1.0:
        return 1.0
    nd = n * d
    if nd <= 0.5:
        return 0.0
    k = int(math.ceil(nd))
    h = k - nd
    m = 2 * k - 1
    H = np.zeros([m, m])
    intm = np.arange(1, m + 1)
    v = 1.0 - h**intm
    w = np.empty(m)
    fac = 1.0
    for j in intm:
        w[j - 1] = fac
        fac /= j
        v[j - 1] *= fac
    tt = max(2 * h - 1.0, 0) ** m - 2 * h**m
    v[-1] = (1.0 + tt) * fac
    for i in range(1, m):
        H[i - 1:, i] = w[:m - i + 1]
    H[:, 0] = v
    H[-1, :] = np.flip(v, axis=0)
    Hpwr = np.eye(m)
    nn = n
    expnt = 0
    Hexpnt = 0
    while nn > 0:
        if nn % 2:
            Hpwr = np.matmul(Hpwr, H)
            expnt += Hexpnt
        H = np.matmul(H, H)
        Hexpnt *= 2
        if abs(H[k - 1, k - 1]) > _EP128:
            H /= _EP128
            Hexpnt += _E128
        nn = nn // 2
    p = float(Hpwr[k - 1, k - 1])
    if p <= 0.0:
        return _clip(p)
    # p * n!/n**n * 2**expnt, with log(n!/n**n) summed exactly from rounded logs.
    log_fact = math.fsum(np.log(np.arange(1, n + 1) / n).tolist())
    return _clip(math.exp(math.log(p) + log_fact + expnt * math.log(2.0)))


# -- Pomeranz ------------------------------------------------------------------------------

def _pomeranz_j1j2(i: int, n: int, ll: int, ceilf: int, roundf: int) -> tuple[int, int]:
    if i == 0:
        j1, j2 = -ll - ceilf - 1, ll + ceilf - 1
    else:
        ip1div2, ip1mod2 = divmod(i + 1, 2)
        if ip1mod2 == 0:
            if ip1div2 == n + 1:
                j1, j2 = n - ll - ceilf - 1, n + ll + ceilf - 1
            else:
                j1, j2 = ip1div2 - 1 - ll - roundf - 1, ip1div2 + ll - 1 + ceilf - 1
        else:
            j1, j2 = ip1div2 - 1 - ll - 1, ip1div2 + ll + roundf - 1
    return max(j1 + 2, 0), min(j2, n)


def _kolmogn_pomeranz_cdf(n: int, x: float) -> float:
    """Pr(D_n <= x) by the Pomeranz recursion (n <= 140 in scipy's rule)."""
    t = n * x
    ll = int(math.floor(t))
    f = 1.0 * (t - ll)
    g = min(f, 1.0 - f)
    ceilf = 1 if f > 0 else 0
    roundf = 1 if f > 0.5 else 0
    npwrs = 2 * (ll + 1)
    gpower = np.empty(npwrs)
    twogpower = np.empty(npwrs)
    onem2gpower = np.empty(npwrs)
    gpower[0] = twogpower[0] = onem2gpower[0] = 1.0
    expnt = 0
    g_over_n, two_g_over_n, one_minus_two_g_over_n = g / n, 2 * g / n, (1 - 2 * g) / n
    for m in range(1, npwrs):
        gpower[m] = gpower[m - 1] * g_over_n / m
        twogpower[m] = twogpower[m - 1] * two_g_over_n / m
        onem2gpower[m] = onem2gpower[m - 1] * one_minus_two_g_over_n / m
    V0 = np.zeros([npwrs])
    V1 = np.zeros([npwrs])
    V1[0] = 1
    V0s, V1s = 0, 0
    j1, j2 = _pomeranz_j1j2(0, n, ll, ceilf, roundf)
    for i in range(1, 2 * n + 2):
        k1 = j1
        V0, V1 = V1, V0
        V0s, V1s = V1s, V0s
        V1.fill(0.0)
        j1, j2 = _pomeranz_j1j2(i, n, ll, ceilf, roundf)
        if i == 1 or i == 2 * n + 1:
            pwrs = gpower
        else:
            pwrs = twogpower if i % 2 else onem2gpower
        ln2 = j2 - k1 + 1
        if ln2 > 0:
            conv = np.convolve(V0[k1 - V0s:k1 - V0s + ln2], pwrs[:ln2])
            conv_start = j1 - k1
            conv_len = j2 - j1 + 1
            V1[:conv_len] = conv[conv_start:conv_start + conv_len]
            if 0 < np.max(V1) < _EM128:
                V1 *= _EP128
                expnt -= _E128
            V1s = V0s + j1 - k1
    ans = float(V1[n - V1s])
    for m in range(1, n + 1):
        if abs(ans) > _EP128:
            ans *= _EM128
            expnt += _E128
        ans *= m
    if expnt != 0:
        ans = math.ldexp(ans, expnt)
    return _clip(ans)


# -- Pelz-Good -----------------------------------------------------------------------------

def _kolmogn_pelzgood_cdf(n: int, x: float) -> float:
    """Pelz-Good approximation to Pr(D_n <= x) (large n, moderate x).

    scipy's code, with its four-element numpy vectors written as four Python floats (the
    same operations in the same order; no numpy call per term, which matters when many
    features are tested on several threads).
    """
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    z = math.sqrt(n) * x
    zsquared, zthree, zfour, zsix = z**2, z**3, z**4, z**6
    qlog = -_PI_SQUARED / 8 / zsquared
    if qlog < _MIN_LOG:
        return 0.0
    q = math.exp(qlog)
    k1a = -zsquared
    k1b = _PI_SQUARED / 4
    k2a = 6 * zsix + 2 * zfour
    k2b = (2 * zfour - 5 * zsquared) * _PI_SQUARED / 4
    k2c = _PI_FOUR * (1 - 2 * zsquared) / 16
    k3d = _PI_SIX * (5 - 30 * zsquared) / 64
    k3c = _PI_FOUR * (-60 * zsquared + 212 * zfour) / 16
    k3b = _PI_SQUARED * (135 * zfour - 96 * zsix) / 4
    k3a = -30 * zsix - 90 * z**8
    k0 = k1 = k2 = k3 = 0.0
    maxk = int(math.ceil(16 * z / math.pi))
    for k in range(maxk, 0, -1):
        m = 2 * k - 1
        msquared, mfour, msix = m**2, m**4, m**6
        qpower = q ** (8 * k)
        k0 = k0 * qpower + 1.0
        k1 = k1 * qpower + (k1a + k1b * msquared)
        k2 = k2 * qpower + (k2a + k2b * msquared + k2c * mfour)
        k3 = k3 * qpower + (k3a + k3b * msquared + k3c * mfour + k3d * msix)
    k0, k1, k2, k3 = (v * q * _SQRT2PI for v in (k0, k1, k2, k3))
    k0 /= z
    k1 /= 6 * zfour
    k2 /= 72 * z**7
    k3 /= 6480 * z**10
    q = math.exp(-_PI_SQUARED / 2 / zsquared)
    sqrt3z = _SQRT3 * z
    k2extra = 0.0
    k3extra = 0.0
    for k in range(maxk, 0, -1):
        ksq = k * k
        qp = q**ksq
        kpi = math.pi * k
        k2extra += ksq * qp
        k3extra += (sqrt3z + kpi) * (sqrt3z - kpi) * ksq * qp
    k2 += k2extra * (_PI_SQUARED * _SQRT2PI / (-36 * zthree))
    k3 += k3extra * (_PI_SQUARED * _SQRT2PI / (216 * zsix))
    nf = n * 1.0
    return k0 + k1 / nf**0.5 + k2 / nf**1.0 + k3 / nf**1.5


# -- the dispatcher ------------------------------------------------------------------------

def kstwo_sf(x: float, n: int) -> float:
    """``P(D_n >= x)`` for the two-sided one-sample KS statistic (= ``scipy.stats.kstwo.sf``).

    ``n`` is a positive integer (a float holding an integer is accepted, as scipy's
    ``np.round(en)`` gives).
    """
    if isinstance(n, float):
        if math.isnan(n) or n != int(n):
            return math.nan
        n = int(n)
    if n <= 0 or math.isnan(x):
        return math.nan
    if x >= 1.0:
        return 0.0
    if x <= 0.5 / n:  # below scipy's support of kstwo: sf = 1
        return 1.0
    t = n * x
    if t <= 1.0:  # Ruben-Gambino: 1/2n <= x <= 1/n
        if t <= 0.5:
            return 1.0
        if n <= 140:
            prob = float(np.prod(np.arange(1, n + 1) * (1.0 / n) * (2 * t - 1)))
        else:
            prob = math.exp(_log_nfactorial_div_n_pow_n(n) + n * math.log(2 * t - 1))
        return _clip(1.0 - prob)
    if t >= n - 1:  # Ruben-Gambino
        return _clip(2 * (1.0 - x) ** n)
    if x >= 0.5:  # exact: 2 * smirnov
        return _clip(2 * smirnov_sf(n, x))
    nxsquared = t * x
    if n <= 140:
        if nxsquared <= 0.754693:
            return _clip(1.0 - _kolmogn_dmtw_cdf(n, x))
        if nxsquared <= 4:
            return _clip(1.0 - _kolmogn_pomeranz_cdf(n, x))
        return _clip(2 * smirnov_sf(n, x))
    if nxsquared >= 370.0:
        return 0.0
    if nxsquared >= 2.2:
        return _clip(2 * smirnov_sf(n, x))
    if n <= 100000 and n * x**1.5 <= 1.4:
        cdf = _kolmogn_dmtw_cdf(n, x)
    else:
        cdf = _kolmogn_pelzgood_cdf(n, x)
    return _clip(1.0 - cdf)
