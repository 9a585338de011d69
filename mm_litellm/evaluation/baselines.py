"""The reference points every policy is shown beside: cheapest, strongest, random at matched cost, oracle,
and, for pools of more than two models, the best single model and the best mix of single models.

The random router follows RouteLLM: it sends each request to the strongest model with
probability ``p`` and to the cheapest otherwise. Its quality and cost are expected values,
computed exactly (no sampling): with ``p`` chosen so that the expected cost equals the
policy's, a policy that does not beat it has learnt nothing about which requests need the
strong model.

With more than two models that mix is a weak reference: always using a good mid-priced model can
beat it. So every policy is also shown beside the best single model at or below its cost, and
beside the best random mix of single models at its cost (the upper convex hull of the models'
cost-quality points): a router that does not beat that mix has learnt nothing that per-model
averages do not already say.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from mm_litellm.evaluation.metrics import nondecreasing_hull
from mm_litellm.evaluation.table import OutcomeTable

__all__ = ["Baselines", "MixCheck", "Point", "check_above_single_mix", "compute_baselines", "random_at_cost"]


@dataclass(frozen=True, slots=True)
class Point:
    """A router's quality and cost per 1,000 requests (``detail`` says which model, or ``p``)."""

    quality: float
    cost_per_1k: float
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"quality": self.quality, "cost_per_1k": self.cost_per_1k, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Baselines:
    cheapest_model: str
    strongest_model: str
    cheapest: Point
    strongest: Point
    oracle: Point
    singles: dict[str, Point] = field(default_factory=dict)
    """Every model alone (a policy model; models standing in for one recorded model share its point)."""

    def random_at(self, cost_per_1k: float) -> Point:
        return random_at_cost(self.cheapest, self.strongest, cost_per_1k)

    def best_single_at(self, cost_per_1k: float) -> Point | None:
        """The best single model costing at most ``cost_per_1k`` (None: every model costs more)."""
        fits = [p for p in self.singles.values() if p.cost_per_1k <= cost_per_1k * (1 + 1e-9) + 1e-12]
        return max(fits, key=lambda p: (p.quality, -p.cost_per_1k)) if fits else None

    def single_mix_at(self, cost_per_1k: float) -> Point | None:
        """The best random mix of single models whose expected cost is at most ``cost_per_1k``."""
        hull = nondecreasing_hull([(p.cost_per_1k, p.quality) for p in self.singles.values()])
        if not hull or cost_per_1k < hull[0][0] - 1e-12:
            return None
        by_point = {(p.cost_per_1k, p.quality): p.detail for p in self.singles.values()}
        if cost_per_1k >= hull[-1][0]:
            c, q = hull[-1]
            return Point(q, c, by_point.get((c, q), ""))
        for (c1, q1), (c2, q2) in pairwise(hull):
            if c1 <= cost_per_1k <= c2:
                w = 0.0 if c2 == c1 else (cost_per_1k - c1) / (c2 - c1)
                detail = f"{by_point.get((c1, q1), '')} {1 - w:.0%} + {by_point.get((c2, q2), '')} {w:.0%}"
                return Point(q1 + w * (q2 - q1), cost_per_1k, detail)
        c, q = hull[0]
        return Point(q, c, by_point.get((c, q), ""))

    def matched(self, cost_per_1k: float) -> dict[str, Any]:
        """The cost-matched baselines of a policy that costs ``cost_per_1k``."""
        out: dict[str, Any] = {"random_matched_cost": self.random_at(cost_per_1k).as_dict()}
        if len(self.singles) > 2:
            best, mix = self.best_single_at(cost_per_1k), self.single_mix_at(cost_per_1k)
            out["best_single_within_cost"] = None if best is None else best.as_dict()
            out["single_mix_matched_cost"] = None if mix is None else mix.as_dict()
        return out

    def as_dict(self) -> dict[str, Any]:
        out = {
            "always_cheapest": self.cheapest.as_dict(),
            "always_strongest": self.strongest.as_dict(),
            "oracle": self.oracle.as_dict(),
        }
        if len(self.singles) > 2:
            out["single_models"] = {m: p.as_dict() for m, p in self.singles.items()}
        return out


def compute_baselines(table: OutcomeTable) -> Baselines:
    """Always-cheapest (lowest mean cost), always-strongest (highest mean quality) and the oracle.

    The oracle sends each row to a model with the best score there, the cheapest such model
    when several tie (for 0/1 scores: the cheap model whenever it is right).
    """
    models = table.models
    quality = {m: table.mean_score(m) for m in models}
    cost = {m: table.mean_cost(m) * 1000 for m in models}
    cheapest = min(models, key=lambda m: (cost[m], -quality[m]))
    strongest = max(models, key=lambda m: (quality[m], -cost[m]))
    oq = oc = 0.0
    for i in range(len(table)):
        best = max(models, key=lambda m: (table.score[m][i], -table.cost[m][i]))
        oq += table.score[best][i]
        oc += table.cost[best][i]
    n = len(table)
    return Baselines(
        cheapest_model=cheapest,
        strongest_model=strongest,
        cheapest=Point(quality[cheapest], cost[cheapest], cheapest),
        strongest=Point(quality[strongest], cost[strongest], strongest),
        oracle=Point(oq / n, oc / n * 1000, "best score per row, cheapest among ties"),
        singles=_singles(table, quality, cost),
    )


def _singles(table: OutcomeTable, quality: dict[str, float], cost: dict[str, float]) -> dict[str, Point]:
    """One point per recorded model (policy models mapped to the same one are listed together)."""
    names: dict[str, list[str]] = {}
    for model in table.models:
        names.setdefault(table.mapping[model], []).append(model)
    return {group[0]: Point(quality[group[0]], cost[group[0]], "/".join(group)) for group in names.values()}


def random_at_cost(weak: Point, strong: Point, cost_per_1k: float) -> Point:
    """Expected quality of the random weak/strong mix whose expected cost is ``cost_per_1k``.

    ``p`` is clipped to [0, 1]: below the weak model's cost the mix is the weak model alone,
    above the strong model's it is the strong model alone.
    """
    span = strong.cost_per_1k - weak.cost_per_1k
    p = 1.0 if span <= 0 else min(1.0, max(0.0, (cost_per_1k - weak.cost_per_1k) / span))
    return Point(
        weak.quality + p * (strong.quality - weak.quality),
        weak.cost_per_1k + p * span,
        f"p(strong)={p:.3f}",
    )


@dataclass(frozen=True, slots=True)
class MixCheck:
    """Whether a curve lies on or above the single-model mix, point by point.

    ``gaps``: per point (cost per 1k, quality, the mix's quality at that cost, quality - mix); a
    point cheaper than every single model has no mix to compare with and is counted in ``skipped``.
    """

    tolerance: float
    gaps: list[tuple[float, float, float, float]]
    skipped: int

    @property
    def worst(self) -> float | None:
        return min((g[3] for g in self.gaps), default=None)

    @property
    def below(self) -> list[tuple[float, float, float, float]]:
        """The points under the mix by more than the tolerance."""
        return [g for g in self.gaps if g[3] < -self.tolerance]

    @property
    def ok(self) -> bool:
        return not self.below


def check_above_single_mix(
    points: Sequence[tuple[float, float]], baselines: Baselines, tolerance: float
) -> MixCheck:
    """Each (cost per 1k, quality) point against the single-model mix at its cost (interpolated on
    the mix's upper hull), allowing ``tolerance`` below it."""
    gaps, skipped = [], 0
    for cost, quality in points:
        mix = baselines.single_mix_at(cost)
        if mix is None:
            skipped += 1
            continue
        gaps.append((cost, quality, mix.quality, quality - mix.quality))
    return MixCheck(tolerance, gaps, skipped)
