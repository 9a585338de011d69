"""The ``learned`` route strategy: predicted quality against expected cost, per request.

Registered into the routing engine's :data:`~mm_litellm.routing.strategies.CHOOSERS` when this
module is imported (the engine imports it on the first ``strategy: learned`` decision). A
route's rules still go first; only the requests they leave are decided here, among the route's
candidates (default: every policy model the router predicts).

The router is loaded with the policy (:func:`attach_routers`), so a policy reload, by hand or by
hot reload, picks up a retrained artifact, and a broken artifact is refused like a broken
policy. Deciding needs numpy only, calls no provider and, with ``prices: recorded`` (the
default), reads no price table: a replay (``policy evaluate``) never imports LiteLLM for it.

A router trained with embeddings also needs the prompt's vector: from memory, the persistent
cache, or, for a live request only, the engine's ``embed`` (a runtime's engine has LiteLLM's).
When it cannot be had (explain and replays call no provider; the provider failed), the route
serves its ``default`` (else its first candidate) and the reason says why; a request never fails
for it.
"""

from __future__ import annotations

import logging
import math
import os
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mm_litellm.errors import RoutingError
from mm_litellm.learned.artifact import load_router
from mm_litellm.learned.decide import choose_lists, dominated_lists
from mm_litellm.learned.embeddings import EmbeddingLookup, EmbeddingUnavailable, Fetch
from mm_litellm.learned.manifest import ArtifactError
from mm_litellm.learned.router import Router
from mm_litellm.policy.routing import LearnedSettings
from mm_litellm.policy.schema import Policy, Route
from mm_litellm.routing.features import RequestFeatures
from mm_litellm.routing.strategies import CHOOSERS, Candidate, Choice

__all__ = ["LearnedCandidate", "LearnedRoute", "artifact_path", "attach_routers", "choose_learned"]

Loc = tuple[str | int, ...]
log = logging.getLogger("mm_litellm.routing")
_LOOKUPS: weakref.WeakKeyDictionary[Router, EmbeddingLookup] = weakref.WeakKeyDictionary()
_WARN_EVERY = 60.0
_warned: dict[str, float] = {}


@dataclass(frozen=True, slots=True)
class LearnedCandidate(Candidate):
    """A candidate of a learned route: ``quality`` is the router's prediction for this prompt."""

    key: float = 0.0
    """Utility (``lambda``) or ``-cost`` within the target (``quality_target``); the largest wins."""
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            **Candidate.as_dict(self),
            "predicted_quality": self.quality,
            "expected_cost": self.est_cost,
            "key": None if math.isinf(self.key) else self.key,
            "note": self.note,
        }


def artifact_path(policy: Policy, settings: LearnedSettings) -> Path:
    """Where a route's artifact is: absolute, or relative to the policy file's folder."""
    path = Path(os.path.expanduser(settings.artifact))
    return path if path.is_absolute() else Path(policy.base_dir) / path


class LearnedRoute:
    """One learned route, compiled when the policy is loaded: its router, candidates and knobs."""

    def __init__(
        self, name: str, policy: Policy, route: Route, router: Router, candidates: tuple[str, ...]
    ) -> None:
        settings = route.learned
        assert settings is not None
        self.name = name
        self.router = router
        self.settings = settings
        self.candidates = candidates
        self.columns = np.array([router.column(settings.models.get(m, m)) for m in candidates], dtype=np.intp)
        self.tiers = tuple(policy.models[m].tier for m in candidates)
        self.lam = settings.cost_weight
        self.target = settings.quality_target
        self.memo_key = ("learned", router.digest)
        cost = router.cost_models
        self._base = np.array([cost[router.models[c]].base_usd for c in self.columns])
        self._slope = np.array([cost[router.models[c]].per_token_usd for c in self.columns])
        self._completion = tuple(cost[router.models[c]].completion_tokens for c in self.columns)
        self._mean_tokens = router.mean_input_tokens
        self._recorded_means: list[float] | None = (
            None if self._mean_tokens is None else (self._base + self._slope * self._mean_tokens).tolist()
        )
        self._policy_means: tuple[int, list[float]] | None = None
        self.lookup: EmbeddingLookup | None = None
        if router.embedding is not None:  # one memory per loaded router, shared by its routes
            self.lookup = _LOOKUPS.get(router)
            if self.lookup is None:
                self.lookup = _LOOKUPS[router] = EmbeddingLookup(router.embedding)

    def predict(self, features: RequestFeatures, fetch: Fetch | None = None) -> np.ndarray:
        """Predicted quality of each candidate (cached on the request's features).

        ``fetch``: how to get the prompt's embedding when it is not in memory or the cache (None:
        not fetched); raises :class:`EmbeddingUnavailable` when the router needs one it cannot have.
        """
        memo = features.memo
        if memo is None:
            memo = features.memo = {}
        q = memo.get(self.memo_key)
        if q is None:
            vector = self.embedding(features, fetch)[0] if self.lookup is not None else None
            q = memo[self.memo_key] = self.router.predict(features.text, vector)
        return np.asarray(q[self.columns])

    def embedding(self, features: RequestFeatures, fetch: Fetch | None) -> tuple[np.ndarray, str]:
        """(the prompt's scaled vector, where it came from); a failure is remembered per request."""
        assert self.lookup is not None
        memo = features.memo if features.memo is not None else {}
        features.memo = memo
        key = self._embedding_key(fetch)
        found = memo.get(key)
        if found is None:
            try:
                found = self.lookup.vector(self.router.vocabulary.featurizer.window(features.text), fetch)
            except EmbeddingUnavailable as exc:
                found = exc
            memo[key] = found
        if isinstance(found, EmbeddingUnavailable):
            raise found
        return found

    def _embedding_key(self, fetch: Fetch | None) -> tuple[object, ...]:
        assert self.lookup is not None
        return ("embedding", self.lookup.spec.model, self.lookup.spec.dimensions, fetch is not None)

    def embedding_source(self, features: RequestFeatures, fetch: Fetch | None) -> str | None:
        """Where this request's embedding came from (None: not read, e.g. an out-of-fold prediction)."""
        found = (features.memo or {}).get(self._embedding_key(fetch))
        if not isinstance(found, tuple):
            return None
        return {"memory": "memory", "cache": "the embedding cache"}.get(found[1], str(found[1]))

    def costs(self, engine: Any, route: Route, features: RequestFeatures) -> np.ndarray:
        """Expected USD of one call of each candidate (inf where the policy has no price)."""
        if self.settings.prices == "recorded":
            return self._base + self._slope * features.input_tokens  # type: ignore[no-any-return]
        return self._policy_costs(engine, route, features.input_tokens, features.max_tokens)

    def _policy_costs(self, engine: Any, route: Route, tokens: float, max_tokens: int | None) -> np.ndarray:
        catalog = engine.catalog
        out = np.empty(len(self.candidates))
        for i, model in enumerate(self.candidates):
            expected = self._completion[i] or route.expected_output_tokens
            if max_tokens:
                expected = min(expected, max_tokens)
            cost = catalog[model].cost(tokens, round(expected))
            out[i] = math.inf if cost is None else cost
        return out

    def mean_costs(self, engine: Any, route: Route) -> list[float] | None:
        """Each candidate's expected cost at the train split's mean prompt size, at the route's
        prices (None: the artifact does not record that size): :func:`decide.dominated_lists`."""
        if self.settings.prices == "recorded" or self._mean_tokens is None:
            return self._recorded_means
        catalog = engine.catalog
        cached = self._policy_means
        if cached is None or cached[0] != id(catalog):  # one price table per engine: computed once
            cached = self._policy_means = (
                id(catalog),
                self._policy_costs(engine, route, self._mean_tokens, None).tolist(),
            )
        return cached[1]


def attach_routers(policy: Policy) -> Iterator[tuple[Loc, str]]:
    """Load the router of every learned route into ``policy.routers``; yield what is wrong."""
    for name, route in policy.routes.items():
        settings = route.learned
        if route.strategy != "learned" or settings is None:
            continue
        where: Loc = ("routes", name, "learned", "artifact")
        try:
            router = load_router(artifact_path(policy, settings))
        except ArtifactError as exc:
            yield where, str(exc)
            continue
        problems = False
        for policy_model in settings.models:
            if policy_model not in policy.models:
                problems = True
                yield ("routes", name, "learned", "models", policy_model), f"unknown model '{policy_model}'"
        predicted = ", ".join(router.models)
        for i, model in enumerate(route.candidates):
            if settings.models.get(model, model) not in router.models:
                problems = True
                yield (
                    ("routes", name, "candidates", i),
                    (
                        f"'{model}' is not predicted by the router {router.path} (it predicts: {predicted}); "
                        "retrain with --map, or map it under learned.models"
                    ),
                )
        candidates = route.candidates or tuple(
            m for m in policy.models if settings.models.get(m, m) in router.models
        )
        if not candidates and not problems:
            problems = True
            yield (
                where,
                (
                    f"no model of the policy is predicted by the router {router.path} (it predicts: "
                    f"{predicted}); list candidates and map them under learned.models, or retrain "
                    "with --map POLICY_MODEL=..."
                ),
            )
        if not problems:
            policy.routers[name] = LearnedRoute(name, policy, route, router, candidates)


def choose_learned(engine: Any, name: str, route: Route, features: RequestFeatures, explain: bool) -> Choice:
    compiled: LearnedRoute | None = engine.policy.routers.get(name)
    if compiled is None:
        raise RoutingError(
            name,
            "a learned route whose router is not loaded: build the policy with mm_litellm.load_policy "
            "or parse_policy, which load it",
        )
    fetch = None if explain else getattr(engine, "embed", None)  # explain calls no provider
    try:
        q = compiled.predict(features, fetch).tolist()
    except EmbeddingUnavailable as exc:
        return _without_embedding(compiled, name, route, exc, explain)
    c = compiled.costs(engine, route, features).tolist()
    means = compiled.mean_costs(engine, route)
    best, key, margin = choose_lists(q, c, compiled.lam, compiled.target, means)
    names = compiled.candidates
    order = sorted(range(len(key)), key=lambda i: -key[i])
    fallbacks = route.fallbacks or tuple(names[i] for i in order[1:3] if key[i] > -math.inf)
    runner = names[order[1]] if len(order) > 1 else None
    if compiled.target is None:
        knob = f"lambda {compiled.lam:g}"
        against = f", utility margin {margin:.4f} over '{runner}'" if runner is not None else ""
    else:
        knob = f"quality_target {compiled.target:g}"
        against = f", {margin:.4f} above the cut-off (best predicted {max(q):.3f})"
    why = (
        f"route '{name}' learned ({knob}): '{names[best]}' predicted quality {q[best]:.3f} "
        f"at an expected ${c[best] * 1000:.4f} per 1k{against}"
    )
    source = compiled.embedding_source(features, fetch) if compiled.lookup is not None else None
    if source is not None:
        why += f"; prompt embedding from {source}"
    candidates: tuple[Candidate, ...] = ()
    if explain:  # the per-request path builds none: they are for explain output
        candidates = tuple(
            LearnedCandidate(
                model=m,
                tier=compiled.tiers[i],
                quality=q[i],
                est_cost=None if math.isinf(c[i]) else c[i],
                latency_ms=None,
                latency_source="unknown",
                key=key[i],
                note=_note(i, best, q, c, key, means),
            )
            for i, m in enumerate(names)
        )
    return names[best], why, fallbacks, candidates


def _without_embedding(
    compiled: LearnedRoute, name: str, route: Route, exc: EmbeddingUnavailable, explain: bool
) -> Choice:
    """The route's ``default`` (else its first candidate), with the reason: the request goes on."""
    names = compiled.candidates
    target = route.default or names[0]
    which = "its default" if route.default else "its first candidate (no 'default' set)"
    fallbacks = route.fallbacks or tuple(m for m in names if m != target)[:2]
    why = f"route '{name}' learned: {exc.reason}; served by {which} '{target}' without the router"
    if not explain:
        now = time.monotonic()
        if now - _warned.get(name, -_WARN_EVERY) >= _WARN_EVERY:  # at most one a minute per route
            _warned[name] = now
            log.warning("learned route %r decided without its router: %s", name, exc.reason)
    return target, why, fallbacks, ()


def _note(
    i: int, best: int, q: list[float], c: list[float], key: list[float], means: list[float] | None
) -> str:
    if i == best:
        verdict = "chosen"
    elif dominated_lists(q, means)[i]:
        verdict = "dominated (another candidate is predicted at least as good and costs no more on average)"
    elif math.isinf(key[i]):
        verdict = "outside the quality target"
    else:
        verdict = f"{key[best] - key[i]:.4f} behind"
    return f"predicted q={q[i]:.3f}, expected ${c[i] * 1000:.4f}/1k: {verdict}"


CHOOSERS["learned"] = choose_learned
