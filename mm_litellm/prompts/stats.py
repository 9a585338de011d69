"""The statistics behind experiment reports, with the standard library only.

Success rates: Wilson score interval and the pooled two-proportion z-test. Scores: Student-t
interval for a mean and Welch's unequal-variance t-test, with the t distribution computed from
the regularised incomplete beta function (Lentz's continued fraction), so small samples get
honest p-values instead of a normal approximation. scipy would give the same numbers; it is a
large dependency for four functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist, fmean, variance

__all__ = [
    "mean_interval",
    "student_t_sf",
    "student_t_two_sided_p",
    "two_proportion_test",
    "welch_test",
    "wilson_interval",
]

_NORMAL = NormalDist()


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a success rate (well-behaved near 0 and 1, unlike the Wald interval)."""
    if n == 0:
        return (0.0, 1.0)
    z = _NORMAL.inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def two_proportion_test(s1: int, n1: int, s2: int, n2: int) -> tuple[float, float]:
    """Pooled two-proportion z-test of ``s2/n2`` against ``s1/n1``: ``(z, two-sided p)``."""
    if n1 == 0 or n2 == 0:
        return (0.0, 1.0)
    pooled = (s1 + s2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return (0.0, 1.0)  # both arms all-success or all-failure: no evidence of a difference
    z = (s2 / n2 - s1 / n1) / se
    return (z, 2 * _NORMAL.cdf(-abs(z)))


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval of the mean of ``values``."""
    n = len(values)
    if n == 0:
        return (math.nan, math.nan)
    m = fmean(values)
    if n == 1:
        return (m, m)
    half = _t_ppf(0.5 + confidence / 2, n - 1) * math.sqrt(variance(values) / n)
    return (m - half, m + half)


def welch_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Welch's t-test of mean(b) against mean(a): ``(t, degrees of freedom, two-sided p)``."""
    n1, n2 = len(a), len(b)
    if n1 < 2 or n2 < 2:
        return (0.0, math.nan, 1.0)
    m1, m2 = fmean(a), fmean(b)
    q1, q2 = variance(a) / n1, variance(b) / n2
    se2 = q1 + q2
    if se2 == 0:
        return (0.0, math.inf, 1.0) if m1 == m2 else (math.copysign(math.inf, m2 - m1), math.inf, 0.0)
    t = (m2 - m1) / math.sqrt(se2)
    df = se2 * se2 / ((q1 * q1 / (n1 - 1) if q1 else 0.0) + (q2 * q2 / (n2 - 1) if q2 else 0.0))
    return (t, df, student_t_two_sided_p(t, df))


def student_t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom."""
    if math.isinf(df):
        return 2 * _NORMAL.cdf(-abs(t))
    return _betainc(df / 2, 0.5, df / (df + t * t))


def student_t_sf(t: float, df: float) -> float:
    """P(T >= t) for Student's t with ``df`` degrees of freedom."""
    half = student_t_two_sided_p(t, df) / 2
    return half if t >= 0 else 1 - half


def _t_ppf(q: float, df: float) -> float:
    """Quantile of Student's t (bisection on the survival function; q in (0.5, 1))."""
    lo, hi = 0.0, 1.0
    while student_t_sf(hi, df) > 1 - q:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        if student_t_sf(mid, df) > 1 - q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1 - math.exp(log_front) * _betacf(b, a, 1 - x) / b


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction for the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 3e-16
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1 + aa * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < eps:
            break
    return h
