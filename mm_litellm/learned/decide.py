"""The learned route's choice, one request at a time or for a whole table (the same arithmetic).

Two ways to trade quality for cost, both policy knobs of a ``strategy: learned`` route:

- ``lambda`` (a cost weight): pick the candidate maximising ``quality - lambda x cost per 1,000
  requests`` (quality on the 0..1 scale, cost in USD). ``lambda: 0.1`` means paying $1 more per
  1,000 requests must buy at least 0.1 of expected quality (10 points of accuracy).
- ``quality_target``: pick the cheapest candidate whose predicted quality is within
  ``quality_target`` of the best predicted quality.

Ties go to the cheaper candidate.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["choose", "choose_lists", "choose_many", "lambda_grid"]

_TIE = 1e-12


def _utility(q: np.ndarray, c: np.ndarray, lam: float) -> np.ndarray:
    return q - lam * c * 1000.0 - _TIE * c


def choose(
    q: np.ndarray, c: np.ndarray, lam: float | None, target: float | None
) -> tuple[int, np.ndarray, float]:
    """(chosen index, every candidate's ranking key, the margin of the choice).

    Lambda: the key is the utility and the margin is the chosen utility minus the runner-up's.
    Target: the key is ``-cost`` for candidates within the target (``-inf`` otherwise) and the
    margin is how far the chosen quality is above the cut-off (best minus target).
    """
    if target is not None:
        cutoff = q.max() - target - 1e-12
        key = np.where(q >= cutoff, -c + _TIE * q, -np.inf)
        best = int(np.argmax(key))
        return best, key, float(q[best] - cutoff)
    key = _utility(q, c, lam or 0.0)
    best = int(np.argmax(key))
    if len(key) < 2:
        return best, key, float("inf")
    second = float(np.partition(key, -2)[-2])
    return best, key, float(key[best] - second)


def choose_lists(
    q: list[float], c: list[float], lam: float | None, target: float | None
) -> tuple[int, list[float], float]:
    """:func:`choose` on plain lists (the per-request path: a few candidates, no numpy overhead).

    The arithmetic is the same, operation for operation, so both give the same choice.
    """
    if target is not None:
        cutoff = max(q) - target - 1e-12
        key = [(-ci + _TIE * qi) if qi >= cutoff else -math.inf for qi, ci in zip(q, c, strict=True)]
        best = max(range(len(key)), key=key.__getitem__)
        return best, key, q[best] - cutoff
    lam = lam or 0.0
    key = [qi - lam * ci * 1000.0 - _TIE * ci for qi, ci in zip(q, c, strict=True)]
    best = max(range(len(key)), key=key.__getitem__)
    if len(key) < 2:
        return best, key, math.inf
    second = max(k for i, k in enumerate(key) if i != best)
    return best, key, key[best] - second


def choose_many(Q: np.ndarray, C: np.ndarray, lam: float | None, target: float | None) -> np.ndarray:
    """The chosen column per row of ``Q`` (predicted quality) and ``C`` (expected USD), rows x models."""
    if target is not None:
        cutoff = Q.max(axis=1, keepdims=True) - target - 1e-12
        key = np.where(cutoff <= Q, -C + _TIE * Q, -np.inf)
        return np.asarray(np.argmax(key, axis=1))
    return np.asarray(np.argmax(_utility(Q, C, lam or 0.0), axis=1))


def lambda_grid(Q: np.ndarray, C: np.ndarray, points: int = 60) -> list[float]:
    """Lambda values that trace the whole curve on these predictions, cheapest-first.

    Every switch between two models happens at ``lambda = dq / (dc x 1000)`` for some row; the
    grid takes quantiles of those break-even values, plus 0 (best quality) and beyond the largest
    (always the cheapest).
    """
    ratios: list[np.ndarray] = []
    m = Q.shape[1]
    for i in range(m):
        for j in range(m):
            dq = Q[:, i] - Q[:, j]
            dc = (C[:, i] - C[:, j]) * 1000.0
            ok = (dq > 0) & (dc > 0)
            if ok.any():
                ratios.append(dq[ok] / dc[ok])
    if not ratios:
        return [0.0]
    pooled = np.concatenate(ratios)
    qs = np.quantile(pooled, np.linspace(0, 1, max(2, points)))
    values = sorted({0.0, *(float(f"{v:.4g}") for v in qs), float(f"{pooled.max() * 2:.4g}")})
    return values
