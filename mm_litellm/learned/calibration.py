"""Shrink each model's predictions toward its mean quality by how much they are worth, measured.

With few train rows per model the per-prompt predictions are noisy: a router that trusts them
fully picks, at a given cost trade-off, worse than always picking the right single models. The
trainer already has every train row's out-of-fold prediction (made without that row), so it fits,
per model, the stacking-style correction

    q = mean + factor x (prediction - mean)

where ``mean`` is the model's mean recorded score on the train split and ``factor`` in [0, 1] the
least-squares slope of the recorded scores on the out-of-fold predictions (both centred on
``mean``). A factor near 1 keeps predictions that carry real signal; near 0, when the features
say nothing about a model, the router predicts its mean for every prompt and, for each lambda,
picks the single model that is best on average: the vertices of the single-model hull.

Used by :mod:`mm_litellm.learned.train`; the router applies the arrays it stores
(:mod:`mm_litellm.learned.router`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["CALIBRATION_NOTE", "fit_shrinkage", "shrink"]

CALIBRATION_NOTE = (
    "per model: q = mean + factor x (prediction - mean); mean = the train split's mean score, factor in "
    "[0, 1] = least squares of the scores on the 3-fold out-of-fold predictions"
)


def fit_shrinkage(oof: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, factor) per column of ``oof`` (out-of-fold predictions) and ``scores`` (rows x models)."""
    oof = np.asarray(oof, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if not len(scores):
        return np.full(scores.shape[1], 0.5), np.ones(scores.shape[1])
    mean = scores.mean(axis=0)
    p, y = oof - mean, scores - mean
    spread = (p * p).sum(axis=0)
    slope = np.divide((p * y).sum(axis=0), spread, out=np.zeros_like(mean), where=spread > 1e-12)
    return mean, np.clip(slope, 0.0, 1.0)


def shrink(predictions: np.ndarray, mean: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Apply :func:`fit_shrinkage`'s correction to predictions (rows x models, or one row)."""
    return mean + factor * (predictions - mean)  # type: ignore[no-any-return]
