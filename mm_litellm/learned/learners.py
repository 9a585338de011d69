"""The learners a router is trained with: L2 logistic regression and k nearest neighbours over the
prompt features, their cross-validated settings and their out-of-fold predictions.

Called by :mod:`mm_litellm.learned.train` with scikit-learn's and SciPy's modules already
imported (the ``learn`` extra).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mm_litellm.learned.text import Vocabulary

__all__ = [
    "CV_NOTE",
    "CV_ROWS",
    "C_GRID",
    "K_GRID",
    "cv_knn",
    "cv_logistic",
    "fit_logistic",
    "knn_predict",
    "matrix",
    "one_standard_error",
    "oof_knn",
    "oof_logistic",
    "predict_logistic",
    "split_folds",
]

C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0)
K_GRID = (10, 20, 50, 100)
CV_ROWS = 3000
"""Cross-validation (choosing C or k) uses at most this many train rows (a seeded sample)."""
CV_NOTE = (
    f"3-fold cross-validation on at most {CV_ROWS} train rows (seeded), Brier score [mean, standard "
    "error]; the simplest setting within one standard error of the best"
)


def matrix(vocab: Vocabulary, texts: Sequence[str], sparse: Any) -> Any:
    indices, data, indptr = [], [], [0]
    for text in texts:
        i, v = vocab.vector(text)
        indices.append(i)
        data.append(v)
        indptr.append(indptr[-1] + len(i))
    return sparse.csr_matrix(
        (
            np.concatenate(data) if data else np.empty(0, np.float32),
            np.concatenate(indices) if indices else np.empty(0, np.int64),
            np.array(indptr),
        ),
        shape=(len(texts), vocab.n_features),
        dtype=np.float64,
    )


def fit_logistic(X: Any, y: np.ndarray, C: float, sparse: Any) -> tuple[np.ndarray, float]:
    """Weights and intercept of a logistic regression on fractional labels ``y`` in [0, 1]."""
    from sklearn.linear_model import LogisticRegression

    mean = float(y.mean()) if len(y) else 0.5
    if np.all(y == y[0]) if len(y) else True:  # one outcome only: a constant
        p = min(max(mean, 1e-3), 1 - 1e-3)
        return np.zeros(X.shape[1]), math.log(p / (1 - p))
    pos, neg = y > 0, y < 1
    Xs = sparse.vstack([X[pos], X[neg]]).tocsr()
    labels = np.r_[np.ones(pos.sum()), np.zeros(neg.sum())]
    weights = np.r_[y[pos], 1 - y[neg]]
    # liblinear's dual solver visits the rows in a random order: seeded, two trainings are identical
    model = LogisticRegression(C=C, solver="liblinear", dual=True, max_iter=1000, random_state=0)
    model.fit(Xs, labels, sample_weight=weights)
    return model.coef_[0].astype(np.float64), float(model.intercept_[0])


def predict_logistic(X: Any, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-(X @ coef + intercept))))


def knn_predict(Xq: Any, Xt: Any, S: np.ndarray, k: int, n_sparse: int) -> np.ndarray:
    sims = np.asarray((Xq[:, :n_sparse] @ Xt[:, :n_sparse].T).todense())
    norms = np.sqrt(np.asarray(Xq[:, :n_sparse].multiply(Xq[:, :n_sparse]).sum(axis=1))).ravel()
    norms[norms == 0] = 1.0
    sims /= norms[:, None]
    k = min(k, Xt.shape[0])
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    return np.stack([S[top, j].mean(axis=1) for j in range(S.shape[1])], axis=1)


def split_folds(n: int, seed: int, k: int = 3) -> tuple[np.ndarray, list[np.ndarray]]:
    """(the rows cross-validation uses, at most CV_ROWS of them; k folds of positions in it)."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.permutation(n)[:CV_ROWS])
    order = rng.permutation(len(rows))
    return rows, [order[i::k] for i in range(k)]


def cv_logistic(
    X: Any, S: np.ndarray, columns: Sequence[int], seed: int, sparse: Any
) -> dict[float, tuple[float, float]]:
    """Per C: (mean Brier score over 3 folds and the given columns, its standard error)."""
    rows, folds = split_folds(X.shape[0], seed)
    X, S = X[rows], S[rows]
    out = {}
    for C in C_GRID:
        errors = np.zeros(X.shape[0])
        for f in folds:
            train = np.setdiff1d(np.arange(X.shape[0]), f)
            for j in columns:
                coef, b = fit_logistic(X[train], S[train, j], C, sparse)
                errors[f] += (predict_logistic(X[f], coef, np.array(b)) - S[f, j]) ** 2 / len(columns)
        out[C] = (float(errors.mean()), float(errors.std() / np.sqrt(len(errors))))
    return out


def cv_knn(X: Any, S: np.ndarray, seed: int, n_sparse: int) -> dict[int, tuple[float, float]]:
    rows, folds = split_folds(X.shape[0], seed)
    X, S = X[rows], S[rows]
    out = {}
    for k in K_GRID:
        errors = np.zeros(X.shape[0])
        for f in folds:
            train = np.setdiff1d(np.arange(X.shape[0]), f)
            errors[f] = ((knn_predict(X[f], X[train], S[train], k, n_sparse) - S[f]) ** 2).mean(axis=1)
        out[k] = (float(errors.mean()), float(errors.std() / np.sqrt(len(errors))))
    return out


def one_standard_error(scores: Mapping[Any, tuple[float, float]], simplest: Sequence[Any]) -> Any:
    """The simplest setting whose error is within one standard error of the best (a common rule
    against fitting the noise of a small train split); ``simplest`` lists settings simplest first."""
    best = min(scores, key=lambda v: scores[v][0])
    limit = scores[best][0] + scores[best][1]
    return next(v for v in simplest if scores[v][0] <= limit)


def oof_logistic(
    X: Any, S: np.ndarray, distinct: Mapping[str, list[int]], C: float, seed: int, sparse: Any
) -> np.ndarray:
    """Out-of-fold predictions for every train row (3 folds over all of them)."""
    n = X.shape[0]
    out = np.zeros(S.shape)
    order = np.random.default_rng(seed + 1).permutation(n)
    for f in (order[i::3] for i in range(3)):
        train = np.setdiff1d(np.arange(n), f)
        for js in distinct.values():
            coef, b = fit_logistic(X[train], S[train, js[0]], C, sparse)
            p = predict_logistic(X[f], coef, np.array(b))
            for j in js:
                out[f, j] = p
    return out


def oof_knn(X: Any, S: np.ndarray, k: int, seed: int, n_sparse: int) -> np.ndarray:
    n = X.shape[0]
    out = np.zeros(S.shape)
    order = np.random.default_rng(seed + 1).permutation(n)
    for f in (order[i::3] for i in range(3)):
        train = np.setdiff1d(np.arange(n), f)
        out[f] = knn_predict(X[f], X[train], S[train], k, n_sparse)
    return out
