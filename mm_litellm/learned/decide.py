"""The learned route's choice, one request at a time or for a whole table (the same arithmetic).

Two ways to trade quality for cost, both policy knobs of a ``strategy: learned`` route:

- ``lambda`` (a cost weight): pick the candidate maximising ``quality - lambda x cost per 1,000
  requests`` (quality on the 0..1 scale, cost in USD). ``lambda: 0.1`` means paying $1 more per
  1,000 requests must buy at least 0.1 of expected quality (10 points of accuracy).
- ``quality_target``: pick the cheapest candidate whose predicted quality is within
  ``quality_target`` of the best predicted quality.

Ties go to the cheaper candidate.

Dominated candidates are left out first (``mean_cost``, each candidate's expected cost at the
train split's mean prompt size): a candidate is not chosen for a prompt when another one is
predicted at least as good for it and costs no more on average (one of the two strictly). Per
prompt, the cost model separates models of nearly the same price by fractions of a cent, and a
large ``lambda`` would otherwise trade real predicted quality for that noise (measured on
arena-bench: under the mix of single models at the cheap end of the curve). A candidate that is
worse on average but predicted better for this prompt (a specialist) stays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["choose_lists", "choose_many", "dominated", "dominated_lists", "lambda_grid"]

_TIE = 1e-12


def _utility(q: np.ndarray, c: np.ndarray, lam: float) -> np.ndarray:
    return q - lam * c * 1000.0 - _TIE * c


def dominated(Q: np.ndarray, mean_cost: np.ndarray | Sequence[float] | None) -> np.ndarray:
    """Rows x models (or one row): True where another candidate is predicted at least as good for
    that row and costs no more on average, one of the two strictly (all False without ``mean_cost``)."""
    if mean_cost is None:
        return np.zeros(Q.shape, dtype=bool)
    means = np.asarray(mean_cost, dtype=np.float64)
    qj, qk = Q[..., :, None], Q[..., None, :]
    cj, ck = means[:, None], means[None, :]
    return np.asarray(((qk >= qj) & (ck <= cj) & ((qk > qj) | (ck < cj))).any(axis=-1))


def dominated_lists(q: list[float], mean_cost: list[float] | None) -> list[bool]:
    """:func:`dominated` for one prompt on plain lists (the per-request path)."""
    if mean_cost is None:
        return [False] * len(q)
    pairs = list(zip(q, mean_cost, strict=True))
    return [any(qk >= qj and ck <= cj and (qk > qj or ck < cj) for qk, ck in pairs) for qj, cj in pairs]


def choose_lists(
    q: list[float],
    c: list[float],
    lam: float | None,
    target: float | None,
    mean_cost: list[float] | None = None,
) -> tuple[int, list[float], float]:
    """(chosen index, every candidate's ranking key, the margin of the choice) for one prompt, on
    plain lists (the per-request path: a few candidates, no numpy overhead). The arithmetic is
    :func:`choose_many`'s, operation for operation, so both give the same choice.

    Lambda: the key is the utility and the margin is the chosen utility minus the runner-up's.
    Target: the key is ``-cost`` for candidates within the target (``-inf`` otherwise) and the
    margin is how far the chosen quality is above the cut-off (best minus target). A candidate
    :func:`dominated_lists` names has the key ``-inf``.
    """
    out = dominated_lists(q, mean_cost)
    if target is not None:
        cutoff = max(q) - target - 1e-12
        key = [
            (-ci + _TIE * qi) if qi >= cutoff and not o else -math.inf
            for qi, ci, o in zip(q, c, out, strict=True)
        ]
        best = max(range(len(key)), key=key.__getitem__)
        return best, key, q[best] - cutoff
    lam = lam or 0.0
    key = [
        -math.inf if o else qi - lam * ci * 1000.0 - _TIE * ci for qi, ci, o in zip(q, c, out, strict=True)
    ]
    best = max(range(len(key)), key=key.__getitem__)
    if len(key) < 2:
        return best, key, math.inf
    second = max(k for i, k in enumerate(key) if i != best)
    return best, key, key[best] - second


def choose_many(
    Q: np.ndarray,
    C: np.ndarray,
    lam: float | None,
    target: float | None,
    mean_cost: np.ndarray | None = None,
) -> np.ndarray:
    """The chosen column per row of ``Q`` (predicted quality) and ``C`` (expected USD), rows x models,
    leaving out the candidates :func:`dominated` names."""
    out = dominated(Q, mean_cost)
    if target is not None:
        cutoff = Q.max(axis=1, keepdims=True) - target - 1e-12
        key = np.where((cutoff <= Q) & ~out, -C + _TIE * Q, -np.inf)
        return np.asarray(np.argmax(key, axis=1))
    return np.asarray(np.argmax(np.where(out, -np.inf, _utility(Q, C, lam or 0.0)), axis=1))


def lambda_grid(
    Q: np.ndarray, C: np.ndarray, points: int = 60, mean_cost: np.ndarray | Sequence[float] | None = None
) -> list[float]:
    """Lambda values that trace the whole curve on these predictions, cheapest-first.

    Every switch between two models happens at ``lambda = dq / (dc x 1000)`` for some row; the
    grid takes quantiles of those break-even values, plus 0 (best quality) and beyond the largest
    (always the cheapest).
    """
    ratios: list[np.ndarray] = []
    m = Q.shape[1]
    live = ~dominated(Q, mean_cost)  # a dominated candidate is never chosen: no switch to it
    for i in range(m):
        for j in range(m):
            dq = Q[:, i] - Q[:, j]
            dc = (C[:, i] - C[:, j]) * 1000.0
            ok = (dq > 0) & (dc > 0) & live[:, i] & live[:, j]
            if ok.any():
                ratios.append(dq[ok] / dc[ok])
    if not ratios:
        return [0.0]
    pooled = np.concatenate(ratios)
    qs = np.quantile(pooled, np.linspace(0, 1, max(2, points)))
    values = sorted({0.0, *(float(f"{v:.4g}") for v in qs), float(f"{pooled.max() * 2:.4g}")})
    return values
