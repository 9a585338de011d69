"""Strategies: how a route chooses among candidate models when none of its rules decides.

Every strategy sees the same filtered candidates (seed 004's budgets: the request's tier,
context window, ``require:`` quality, latency and cost) and only ranks them. New strategies
register a ranking key in :data:`STRATEGIES`; a strategy that reads more than a candidate's
catalog entry (the learned router reads the prompt) registers a chooser in :data:`CHOOSERS`.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from mm_litellm.policy.schema import Route
from mm_litellm.routing.catalog import TIER_RANK, Catalog, CatalogEntry
from mm_litellm.routing.features import RequestFeatures
from mm_litellm.routing.latency import LatencyTracker

__all__ = ["CHOOSERS", "STRATEGIES", "Candidate", "chooser_for", "evaluate", "rank"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One model a strategy considered, with what it would cost and why it was kept or not."""

    model: str
    tier: str
    quality: float
    est_cost: float | None
    latency_ms: float | None
    latency_source: str  # observed | hint | unknown
    rejected: tuple[str, ...] = ()

    @property
    def kept(self) -> bool:
        return not self.rejected

    def as_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "tier": self.tier,
            "quality": self.quality,
            "est_cost": self.est_cost,
            "latency_ms": self.latency_ms,
            "latency_source": self.latency_source,
            "kept": self.kept,
            "rejected": list(self.rejected),
        }


_INF = math.inf


def _cost_key(c: Candidate) -> tuple[float, ...]:
    return (c.est_cost if c.est_cost is not None else _INF, -TIER_RANK[c.tier], -c.quality)


def _quality_key(c: Candidate) -> tuple[float, ...]:
    return (-TIER_RANK[c.tier], -c.quality, c.est_cost if c.est_cost is not None else _INF)


def _speed_key(c: Candidate) -> tuple[float, ...]:
    return (
        c.latency_ms if c.latency_ms is not None else _INF,
        c.est_cost if c.est_cost is not None else _INF,
    )


STRATEGIES: dict[str, Callable[[Candidate], tuple[float, ...]]] = {
    "cost_optimized": _cost_key,
    "quality_optimized": _quality_key,
    "speed_optimized": _speed_key,
}
"""Strategy name -> sort key over kept candidates (smallest first wins)."""

Choice = tuple[str, str, tuple[str, ...], tuple[Candidate, ...]]
"""(target, reason, fallbacks, candidates considered)."""
Chooser = Callable[[Any, str, Route, RequestFeatures, bool], Choice]
"""Called as ``chooser(engine, route_name, route, features, explain)``."""

CHOOSERS: dict[str, Chooser] = {}
"""Strategy name -> a function that makes the whole choice (registered by its own module)."""
_CHOOSER_MODULES = {"learned": "mm_litellm.learned.strategy"}


def chooser_for(strategy: str) -> Chooser | None:
    """The chooser registered for ``strategy`` (importing its module on first use), if any."""
    chooser = CHOOSERS.get(strategy)
    if chooser is None and strategy in _CHOOSER_MODULES:
        importlib.import_module(_CHOOSER_MODULES[strategy])
        chooser = CHOOSERS.get(strategy)
    return chooser


def evaluate(
    route: Route, features: RequestFeatures, catalog: Catalog, latency: LatencyTracker, *, detail: bool = True
) -> list[Candidate]:
    """Every candidate of ``route`` with its estimated cost, latency and the filters it failed.

    ``detail=False`` (the per-request path) marks a rejected candidate with one short reason
    instead of formatting every reason; explain output and errors use ``detail=True``.
    """
    names: Iterable[str] = route.candidates or catalog.keys()
    req = route.require
    need = TIER_RANK[features.tier]
    if req.min_tier is not None:
        need = max(need, TIER_RANK[req.min_tier])
    out_tokens = features.max_tokens or route.expected_output_tokens
    tokens = features.input_tokens
    cost_only = route.strategy == "cost_optimized"
    result = []
    for name in names:
        entry: CatalogEntry = catalog[name]
        observed = latency.get(name)
        if observed is not None:
            lat, source = observed, "observed"
        elif entry.latency_ms is not None:
            lat, source = entry.latency_ms, "hint"
        else:
            lat, source = None, "unknown"
        cost = entry.cost(tokens, out_tokens)
        failed = (
            entry.rank < need
            or (entry.context_window is not None and tokens + out_tokens > entry.context_window)
            or (req.min_quality is not None and entry.quality < req.min_quality)
            or (req.max_latency_ms is not None and (lat is None or lat > req.max_latency_ms))
            or (req.max_cost is not None and (cost is None or cost > req.max_cost))
            or (
                req.max_output_per_mtok is not None
                and (entry.output_per_mtok is None or entry.output_per_mtok > req.max_output_per_mtok)
            )
            or (cost_only and cost is None)
        )
        why: tuple[str, ...] = ()
        if failed:
            why = _reasons(entry, need, tokens, out_tokens, lat, cost, route) if detail else ("filtered",)
        result.append(Candidate(name, entry.tier, entry.quality, cost, lat, source, why))
    return result


def _reasons(
    entry: CatalogEntry,
    need: int,
    tokens: int,
    out_tokens: int,
    lat: float | None,
    cost: float | None,
    route: Route,
) -> tuple[str, ...]:
    req = route.require
    why: list[str] = []
    if entry.rank < need:
        why.append(f"tier {entry.tier} below the needed {_tier_name(need)}")
    if entry.context_window is not None and tokens + out_tokens > entry.context_window:
        why.append(f"context window {entry.context_window} < {tokens} input + {out_tokens} output tokens")
    if req.min_quality is not None and entry.quality < req.min_quality:
        why.append(f"quality {entry.quality} < {req.min_quality}")
    if req.max_latency_ms is not None and (lat is None or lat > req.max_latency_ms):
        why.append("latency unknown" if lat is None else f"latency {lat:.0f} ms > {req.max_latency_ms:g} ms")
    if req.max_cost is not None and (cost is None or cost > req.max_cost):
        why.append("unpriced" if cost is None else f"estimated ${cost:.6f} > max_cost ${req.max_cost:g}")
    if req.max_output_per_mtok is not None and (
        entry.output_per_mtok is None or entry.output_per_mtok > req.max_output_per_mtok
    ):
        why.append(
            "unpriced"
            if entry.output_per_mtok is None
            else f"output ${entry.output_per_mtok:g}/Mtok > ${req.max_output_per_mtok:g}/Mtok"
        )
    if route.strategy == "cost_optimized" and cost is None and "unpriced" not in why:
        why.append("unpriced (cost_optimized needs a price: add pricing:)")
    return tuple(why)


def rank(strategy: str, candidates: Iterable[Candidate]) -> list[Candidate]:
    """The kept candidates, best first, by ``strategy``'s key (ties: declaration order)."""
    return sorted((c for c in candidates if c.kept), key=STRATEGIES[strategy])


def _tier_name(rank_: int) -> str:
    for name, r in TIER_RANK.items():
        if r == rank_:
            return name
    return str(rank_)
