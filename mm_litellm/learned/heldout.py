"""The held-out figures of a trained router: its lambda curve on the test rows beside the baselines
(always cheapest, always strongest, the oracle, the mix of single models), and lambda fitted on
the train split's out-of-fold predictions for three targets, as ``policy calibrate`` fits it.

:func:`mm_litellm.learned.train.train_router` reports these for the artifact it wrote and reloaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mm_litellm.evaluation.baselines import compute_baselines
from mm_litellm.evaluation.metrics import aiq
from mm_litellm.evaluation.table import OutcomeTable
from mm_litellm.learned.decide import choose_many, lambda_grid
from mm_litellm.learned.router import Router

__all__ = ["heldout_report", "train_view"]


def _predict_table(
    router: Router,
    table: OutcomeTable,
    texts: Sequence[str],
    tokens: np.ndarray,
    embeddings: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
    models = list(table.models)
    cols = [router.column(m) for m in models]
    Q = router.predict_many(texts, embeddings)[:, cols]
    C_hat = np.stack([router.expected_costs(t)[cols] for t in tokens])
    S = np.array([table.score[m] for m in models]).T
    C = np.array([table.cost[m] for m in models]).T
    return Q, C_hat, S, C


def _curve(
    Q: np.ndarray,
    C_hat: np.ndarray,
    S: np.ndarray,
    C: np.ndarray,
    lambdas: Sequence[float],
    mean_cost: np.ndarray | None,
) -> list[tuple[float, float, float]]:
    rows = np.arange(len(S))
    points = []
    for lam in lambdas:
        pick = choose_many(Q, C_hat, lam, None, mean_cost)
        points.append((float(C[rows, pick].mean() * 1000), float(S[rows, pick].mean()), float(lam)))
    return points


def _best_quality(points: Sequence[tuple[float, float, float]]) -> tuple[float, float, float]:
    return max(points, key=lambda p: (p[1], -p[0]))


def _lowest_cost(points: Sequence[tuple[float, float, float]]) -> tuple[float, float, float]:
    return min(points, key=lambda p: (p[0], -p[1]))


def heldout_report(
    router: Router,
    table: OutcomeTable,
    texts: Sequence[str],
    tokens: np.ndarray,
    train: tuple[np.ndarray, ...] | None = None,
    embeddings: np.ndarray | None = None,
) -> dict[str, Any]:
    """Routing figures of ``router`` on ``table``: the lambda curve beside the baselines.

    ``train``: (out-of-fold predictions, expected costs, scores, costs) on the train split; lambda
    is then also fitted there for two targets and reported on ``table``, as ``policy calibrate`` does.
    ``embeddings``: the rows' scaled vectors, for a router trained with embeddings.
    """
    models = list(table.models)
    Q, C_hat, S, C = _predict_table(router, table, texts, tokens, embeddings)
    means = router.mean_costs()
    mean_cost = None if means is None else means[[router.column(m) for m in models]]
    base = compute_baselines(table)
    cw, cs = base.cheapest.cost_per_1k, base.strongest.cost_per_1k
    qs = base.strongest.quality
    points = _curve(Q, C_hat, S, C, lambda_grid(Q, C_hat, 80, mean_cost), mean_cost)
    singles = [(float(C[:, j].mean() * 1000), float(S[:, j].mean())) for j in range(len(models))]

    def point(c: float, q: float, lam: float) -> dict[str, Any]:
        return {
            "lambda": lam,
            "quality": q,
            "cost_per_1k": c,
            "quality_vs_strongest": q / qs if qs else None,
            "cost_vs_strongest": c / cs if cs else None,
        }

    def best(limit: float) -> dict[str, Any] | None:
        ok = [p for p in points if p[0] <= limit + 1e-12]
        return point(*max(ok, key=lambda p: (p[1], -p[0]))) if ok else None

    reach = [p for p in points if p[1] >= 0.95 * qs - 1e-12]
    mse = {m: float(((Q[:, j] - S[:, j]) ** 2).mean()) for j, m in enumerate(models)}
    report: dict[str, Any] = {
        "rows": len(S),
        "aiq": aiq([(c, q) for c, q, _ in points], cw, cs),
        "aiq_random": aiq([(cw, base.cheapest.quality), (cs, qs)], cw, cs),
        "aiq_single_models": aiq(singles, cw, cs),
        "aiq_oracle": aiq(
            [(cw, base.cheapest.quality), (base.oracle.cost_per_1k, base.oracle.quality)], cw, cs
        ),
        "always_cheapest": {"model": base.cheapest_model, **base.cheapest.as_dict()},
        "always_strongest": {"model": base.strongest_model, **base.strongest.as_dict()},
        "oracle": base.oracle.as_dict(),
        "best_within_50pct_cost": best(0.5 * cs),
        "best_within_45pct_cost": best(0.45 * cs),
        "cheapest_95pct_quality": point(*min(reach, key=lambda p: p[0])) if reach else None,
        "brier": mse,
        "mean_predicted": {m: float(Q[:, j].mean()) for j, m in enumerate(models)},
        "mean_recorded": {m: float(S[:, j].mean()) for j, m in enumerate(models)},
        "curve": [{"lambda": lam, "quality": q, "cost_per_1k": c} for c, q, lam in points],
    }
    if train is not None:
        tQ, tC_hat, tS, tC = train
        tb_q, tb_c = max((tS[:, j].mean(), -tC[:, j].mean()) for j in range(tS.shape[1]))
        strong_q, strong_c = float(tb_q), float(-tb_c * 1000)
        grid = lambda_grid(tQ, tC_hat, 80, mean_cost)
        train_points = _curve(tQ, tC_hat, tS, tC, grid, mean_cost)
        fitted: dict[str, Any] = {}
        targets: list[tuple[str, bool, float]] = [
            ("cost <= 50%", True, 0.5 * strong_c),
            ("cost <= 45%", True, 0.45 * strong_c),
            ("quality >= 95%", False, 0.95 * strong_q),
        ]
        for label, by_cost, limit in targets:
            if by_cost:
                eligible = [p for p in train_points if p[0] <= limit]
                chosen = _best_quality(eligible) if eligible else None
            else:
                eligible = [p for p in train_points if p[1] >= limit]
                chosen = _lowest_cost(eligible) if eligible else None
            if chosen is not None:
                fitted[label] = point(*_curve(Q, C_hat, S, C, [chosen[2]], mean_cost)[0])
        report["fitted_on_train"] = fitted
    return report


def train_view(
    router: Router, table: OutcomeTable, tokens: np.ndarray, oof_sorted: np.ndarray, order: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Out-of-fold predictions, expected and recorded costs, scores of the train rows (table order)."""
    oof = np.empty_like(oof_sorted, dtype=np.float64)
    oof[order] = oof_sorted
    models = list(table.models)
    cols = [router.column(m) for m in models]
    C_hat = np.stack([router.expected_costs(t)[cols] for t in tokens])
    S = np.array([table.score[m] for m in models]).T
    C = np.array([table.cost[m] for m in models]).T
    return oof[:, cols], C_hat, S, C
