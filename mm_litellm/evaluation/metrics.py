"""Cost-quality curve metrics from the routing literature, implemented as defined there.

RouteLLM (Ong et al., 2024, "RouteLLM: Learning to Route LLMs with Preference Data",
arXiv:2406.18665, section 5.1 and ``routellm/evals/evaluate.py``):

- PGR, performance gap recovered: ``(q(router) - q(weak)) / (q(strong) - q(weak))``.
- APGR, average PGR: the area under PGR as a function of the cost axis, by the trapezoid rule
  over the measured points, divided by the width of the axis they cover (RouteLLM's code divides
  the router's area above the weak line by the strong-minus-weak area over the same range; when
  the points cover 0..100 % this is the paper's integral over [0, 1]).
- CPT(x %), call-performance threshold: the smallest cost at which the curve reaches PGR = x %,
  by linear interpolation between measured points; ``None`` when it never does.

RouteLLM's cost axis is the share of calls sent to the strong model. We report that axis
(``strong_share``) and also dollars normalised between the two single-model baselines
(``(cost - cost(weak)) / (cost(strong) - cost(weak))``), which is the same thing when every
request costs the same and the honest axis when they do not (long prompts cost more).

RouterBench (Hu et al., 2024, "RouterBench: A Benchmark for Multi-LLM Routing System",
arXiv:2403.12031, section 3.2):

- AIQ, average improvement in quality: ``1/(c_max - c_min) * integral over [c_min, c_max] of
  R~(c) dc`` where ``R~`` is the router's non-decreasing convex hull in the (cost, quality)
  plane: any two configurations can be mixed at random, so every point of the upper hull is
  reachable, and more budget can always be left unspent, so the curve never decreases. Below the
  hull's cheapest point the router has no configuration, and it contributes 0 there (as in
  RouterBench's ``evaluation/AIQ.py``). We take ``[c_min, c_max]`` = [cost of always-cheapest,
  cost of always-strongest].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

__all__ = ["CurvePoint", "aiq", "apgr", "cpt", "nondecreasing_hull", "pgr"]


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """One configuration of a swept policy."""

    value: object
    quality: float
    cost_per_1k: float
    strong_share: float


def pgr(quality: float, weak: float, strong: float) -> float | None:
    """Performance gap recovered; ``None`` when the two models score the same."""
    gap = strong - weak
    return None if gap == 0 else (quality - weak) / gap


Axis = Callable[[CurvePoint], float]


def _sorted(points: Sequence[CurvePoint], axis: Axis) -> list[CurvePoint]:
    return sorted(points, key=lambda p: (axis(p), p.quality))


def apgr(
    points: Sequence[CurvePoint], weak: float, strong: float, axis: Axis
) -> tuple[float | None, float, float]:
    """APGR over the covered range of ``axis``, and that range (lo, hi).

    With a single point (or all points at one x), the APGR is that point's PGR.
    """
    if not points or strong == weak:
        return None, 0.0, 0.0
    pts = _sorted(points, axis)
    xs = [axis(p) for p in pts]
    ys = [(p.quality - weak) / (strong - weak) for p in pts]
    lo, hi = xs[0], xs[-1]
    if hi == lo:
        return max(ys), lo, hi
    area = sum((xs[i + 1] - xs[i]) * (ys[i] + ys[i + 1]) / 2 for i in range(len(xs) - 1))
    return area / (hi - lo), lo, hi


def cpt(points: Sequence[CurvePoint], weak: float, strong: float, target: float, axis: Axis) -> float | None:
    """The smallest ``axis`` value at which the interpolated curve reaches PGR ``target`` (0..1)."""
    if not points or strong == weak:
        return None
    goal = weak + target * (strong - weak)
    pts = _sorted(points, axis)
    if pts[0].quality >= goal:
        return axis(pts[0])
    for a, b in pairwise(pts):
        if a.quality < goal <= b.quality:
            xa, xb = axis(a), axis(b)
            return xa + (goal - a.quality) / (b.quality - a.quality) * (xb - xa)
    return None


def nondecreasing_hull(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Upper convex hull of (cost, quality) points, cut at its highest point (flat after it)."""
    pts = sorted(set(points))
    hull: list[tuple[float, float]] = []
    for p in pts:  # Andrew's monotone chain, upper part (keep only right turns)
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:
                hull.pop()
            else:
                break
        hull.append(p)
    best = max(range(len(hull)), key=lambda i: (hull[i][1], -hull[i][0])) if hull else 0
    return hull[: best + 1]


def aiq(points: Sequence[tuple[float, float]], c_min: float, c_max: float) -> float | None:
    """RouterBench's AIQ of (cost, quality) points over [c_min, c_max]."""
    if not points or c_max <= c_min:
        return None
    hull = nondecreasing_hull(points)

    def value(c: float) -> float:
        if c < hull[0][0]:
            return 0.0
        for (x1, y1), (x2, y2) in pairwise(hull):
            if x1 <= c <= x2:
                return y1 if x2 == x1 else y1 + (c - x1) / (x2 - x1) * (y2 - y1)
        return hull[-1][1]

    # piecewise linear between the breakpoints: the trapezoid rule is exact on each piece
    start = hull[0][0]
    breaks = sorted({c_min, c_max, *(x for x, _ in hull if c_min < x < c_max)})
    area = 0.0
    for a, b in pairwise(breaks):
        if (a + b) / 2 >= start:
            area += (b - a) * (value(a) + value(b)) / 2
    return area / (c_max - c_min)
