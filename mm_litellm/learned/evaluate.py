"""Learned routes in offline evaluation: what the router was trained on, and the knob values to sweep."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from mm_litellm.evaluation.errors import EvaluationError
from mm_litellm.learned.artifact import id_hash
from mm_litellm.learned.decide import lambda_grid
from mm_litellm.policy.schema import Policy

__all__ = ["auto_values", "is_learned_knob", "prime_out_of_fold", "trained_overlap"]

_KNOB = re.compile(
    r"routes\.(?:\[(?P<b>[^\]]+)\]|(?P<n>[^.\[\]]+))\.learned\.(?P<knob>lambda|quality_target)"
)


def trained_overlap(policy: Policy, ids: Sequence[str]) -> list[str]:
    """A note per learned route whose router was trained on some of the evaluated rows."""
    notes = []
    hashed = id_hash(list(ids))
    for name, compiled in policy.routers.items():
        seen = int(np.isin(hashed, compiled.router.trained_ids).sum())
        if not seen:
            continue
        if compiled.router.out_of_fold is not None:
            how = "they are decided with its out-of-fold predictions (made without each row), as if held out"
        else:
            how = "figures on them are optimistic (evaluate the split it held out)"
        notes.append(
            f"route '{name}': its router {compiled.router.path} was trained on {seen:,} of these "
            f"{len(hashed):,} rows; {how}"
        )
    return notes


def prime_out_of_fold(policy: Policy, features: Sequence[Any], hashed_ids: np.ndarray) -> None:
    """Give every row a router was trained on its out-of-fold prediction (in the features' memo).

    ``hashed_ids``: ``id_hash(ids, sort=False)`` of the rows, aligned with ``features``. A replay
    then decides train rows as it decides held-out ones, so calibrating a learned route's knob on
    the train split is not fooled by predictions that have seen the answers.
    """
    for compiled in policy.routers.values():
        router = compiled.router
        oof = router.out_of_fold
        if oof is None or not len(router.trained_ids):
            continue
        pos = np.searchsorted(router.trained_ids, hashed_ids)
        pos[pos >= len(router.trained_ids)] = 0
        found = router.trained_ids[pos] == hashed_ids
        key = compiled.memo_key
        for i in np.flatnonzero(found):
            feats = features[int(i)]
            if feats.memo is None:
                feats.memo = {}
            feats.memo[key] = oof[pos[i]].astype(np.float64)


def is_learned_knob(path: str) -> bool:
    return _KNOB.fullmatch(path) is not None


def auto_values(evaluation: Any, policy: Policy, path: str, points: int = 40) -> list[float]:
    """Values of a learned route's ``lambda`` or ``quality_target`` that trace its whole curve.

    Computed from the router's predictions and expected costs on the evaluation's rows (the train
    split when calibrating): the break-even values where a row changes model.
    """
    match = _KNOB.fullmatch(path)
    if match is None:
        raise EvaluationError(
            f"--values auto works for a learned route's knob (routes.NAME.learned.lambda or "
            f".quality_target), not '{path}'; give values like 0,0.05,0.1 or START:STOP:COUNT"
        )
    name = match.group("b") or match.group("n")
    compiled = policy.routers.get(name)
    if compiled is None:
        raise EvaluationError(f"route '{name}' is not a learned route of {policy.source}")
    route = policy.routes[name]
    engine = evaluation.replayer.engine(policy)
    feats = evaluation.replayer.features(policy, name, engine)
    Q = np.array([compiled.predict(f) for f in feats])
    C = np.array([compiled.costs(engine, route, f) for f in feats])
    if match.group("knob") == "lambda":
        return lambda_grid(Q, C, points, compiled.mean_costs(engine, route))
    gaps = (Q.max(axis=1, keepdims=True) - Q).ravel()
    gaps = gaps[gaps > 0]
    if not len(gaps):
        return [0.0]
    return sorted({0.0, *(float(f"{v:.4g}") for v in np.quantile(gaps, np.linspace(0, 1, points)))})
