"""The reference points every policy is shown beside: cheapest, strongest, random at matched cost, oracle.

The random router follows RouteLLM: it sends each request to the strongest model with
probability ``p`` and to the cheapest otherwise. Its quality and cost are expected values,
computed exactly (no sampling): with ``p`` chosen so that the expected cost equals the
policy's, a policy that does not beat it has learnt nothing about which requests need the
strong model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mm_litellm.evaluation.table import OutcomeTable

__all__ = ["Baselines", "Point", "compute_baselines", "random_at_cost"]


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

    def random_at(self, cost_per_1k: float) -> Point:
        return random_at_cost(self.cheapest, self.strongest, cost_per_1k)

    def as_dict(self) -> dict[str, Any]:
        return {
            "always_cheapest": self.cheapest.as_dict(),
            "always_strongest": self.strongest.as_dict(),
            "oracle": self.oracle.as_dict(),
        }


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
    )


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
