"""Calibration: fit a policy's knob on the train split; report on test. The target both methods share.

Two methods, both ending in an ordinary policy file a person can review:

- ``knob`` (here): try each value of one numeric setting (a token threshold, a tier boundary, a
  confidence threshold, a cost weight) on the train split and keep the best under the target.
- ``groups`` (:mod:`mm_litellm.evaluation.groups`): learn which model serves each value of one
  or more request facts, written as readable rules.

Targets: ``quality`` (cheapest configuration keeping at least ``min_quality`` x always-strongest
quality) or ``cost`` (best quality within ``max_cost`` x always-strongest cost), measured on train.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mm_litellm.evaluation.errors import EvaluationError
from mm_litellm.evaluation.knobs import set_knob
from mm_litellm.evaluation.session import Evaluation

__all__ = ["Target", "calibrate_knob"]


@dataclass(frozen=True, slots=True)
class Target:
    """What "best" means: ``quality`` (min cost with quality >= ratio x strongest) or ``cost``."""

    kind: str
    ratio: float

    def __post_init__(self) -> None:
        if self.kind not in ("quality", "cost"):
            raise EvaluationError(f"unknown target '{self.kind}'; allowed: quality, cost")
        if not 0 < self.ratio <= 1.5:
            raise EvaluationError("the target ratio must be between 0 and 1.5 (a share of always-strongest)")

    def pick(
        self, candidates: Sequence[tuple[float, float, Any]], strong_q: float, strong_c: float
    ) -> tuple[Any, bool]:
        """The best (quality, cost, item) candidate, and whether it meets the target."""
        if self.kind == "quality":
            ok = [c for c in candidates if c[0] >= self.ratio * strong_q - 1e-12]
            if ok:
                return min(ok, key=lambda c: (c[1], -c[0]))[2], True
            return max(candidates, key=lambda c: (c[0], -c[1]))[2], False
        ok = [c for c in candidates if c[1] <= self.ratio * strong_c + 1e-12]
        if ok:
            return max(ok, key=lambda c: (c[0], -c[1]))[2], True
        return min(candidates, key=lambda c: (c[1], -c[0]))[2], False


def calibrate_knob(
    train: Evaluation,
    document: dict[str, Any],
    source: str,
    path: str,
    values: Sequence[Any],
    target: Target,
    route: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The best value of ``path`` on train; returns (the changed document, the fitting record)."""
    curve = train.curve(document, source, path, values, route)
    b = train.baselines
    candidates = [(p["quality"], p["cost_per_1k"], p["value"]) for p in curve["points"]]
    value, met = target.pick(candidates, b.strongest.quality, b.strongest.cost_per_1k)
    return set_knob(document, path, value), {
        "method": "knob",
        "knob": path,
        "value": value,
        "met_on_train": met,
        "train_points": curve["points"],
        "train_metrics": curve["metrics"],
    }
