"""Diff two policies on the same rows: which requests change model, and what that does to cost and quality.

The predicted change is the mean per-row difference (paired: the same prompt under both
policies); its confidence interval is a seeded percentile bootstrap over rows, so the same
seed prints the same interval.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from mm_litellm.evaluation.session import Evaluation
from mm_litellm.policy.schema import Policy

__all__ = ["bootstrap_mean_ci", "diff_policies"]


def bootstrap_mean_ci(
    columns: list[list[float]], *, samples: int, seed: int, confidence: float
) -> list[tuple[float, float]]:
    """Percentile bootstrap CIs of the mean of each column, resampling rows jointly (paired)."""
    n = len(columns[0])
    rng = random.Random(seed)
    population = range(n)
    means: list[list[float]] = [[] for _ in columns]
    for _ in range(samples):
        idx = rng.choices(population, k=n)
        for out, col in zip(means, columns, strict=True):
            out.append(sum(map(col.__getitem__, idx)) / n)
    alpha = (1 - confidence) / 2
    cis = []
    for values in means:
        values.sort()
        lo = values[int(alpha * (samples - 1))]
        hi = values[round((1 - alpha) * (samples - 1))]
        cis.append((lo, hi))
    return cis


def diff_policies(
    evaluation: Evaluation,
    old: Policy,
    new: Policy,
    *,
    route: str | None = None,
    samples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    examples: int = 10,
) -> dict[str, Any]:
    """The ``policy diff`` report."""
    a = evaluation.run(old, route)
    b = evaluation.run(new, route)
    table = evaluation.table
    n = len(table)

    def cost_of(outcome: Any, i: int) -> float:
        return outcome.costs[i] if outcome.costs is not None else table.cost[outcome.targets[i]][i]

    dq = [table.score[b.targets[i]][i] - table.score[a.targets[i]][i] for i in range(n)]
    dc = [(cost_of(b, i) - cost_of(a, i)) * 1000 for i in range(n)]
    changed = [i for i in range(n) if a.targets[i] != b.targets[i]]
    transitions = Counter(f"{a.targets[i]} -> {b.targets[i]}" for i in changed)
    by_task = Counter(table.rows[i].task or "(none)" for i in changed)
    (q_lo, q_hi), (c_lo, c_hi) = (
        bootstrap_mean_ci([dq, dc], samples=samples, seed=seed, confidence=confidence)
        if changed
        else ((0.0, 0.0), (0.0, 0.0))
    )
    return {
        **evaluation.header(),
        "old": {"policy": old.source, **_brief(a.result)},
        "new": {"policy": new.source, **_brief(b.result)},
        "changed": len(changed),
        "changed_share": len(changed) / n,
        "transitions": dict(transitions.most_common()),
        "changed_by_task": dict(by_task.most_common(10)),
        "delta_quality": sum(dq) / n,
        "delta_quality_ci": [q_lo, q_hi],
        "delta_cost_per_1k": sum(dc) / n,
        "delta_cost_per_1k_ci": [c_lo, c_hi],
        "bootstrap": {"samples": samples, "seed": seed, "confidence": confidence},
        "examples": [
            {
                "id": table.rows[i].id,
                "task": table.rows[i].task,
                "old": a.targets[i],
                "new": b.targets[i],
                "old_score": table.score[a.targets[i]][i],
                "new_score": table.score[b.targets[i]][i],
            }
            for i in changed[:examples]
        ],
    }


def _brief(result: Any) -> dict[str, Any]:
    return {"quality": result.quality, "cost_per_1k": result.cost_per_1k, "share": result.share}
