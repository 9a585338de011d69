"""What strategies know about each policy model: tier, quality, prices, context window, latency hint.

Built once per policy. Prices and context windows come from a price function (in production
:func:`mm_litellm.integrations.prices.price_of`: the policy's ``pricing:`` override, else
LiteLLM's price table), so this module stays free of LiteLLM.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mm_litellm.policy.schema import ModelSpec, Policy
from mm_litellm.policy.types import TIERS

__all__ = ["TIER_QUALITY", "Catalog", "CatalogEntry", "build_catalog"]

TIER_QUALITY: dict[str, float] = {"basic": 0.6, "intermediate": 0.7, "advanced": 0.8, "expert": 0.9}
"""Quality assumed for a model without a ``quality:`` hint, from its tier."""

TIER_RANK: dict[str, int] = {name: i for i, name in enumerate(TIERS)}


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One model as a strategy sees it. Prices are USD per million tokens (``None``: unpriced)."""

    name: str
    tier: str
    quality: float
    input_per_mtok: float | None
    output_per_mtok: float | None
    context_window: int | None
    latency_ms: float | None
    price_source: str = "unpriced"

    @property
    def rank(self) -> int:
        return TIER_RANK[self.tier]

    def cost(self, input_tokens: int, output_tokens: int) -> float | None:
        """Estimated USD for one call of this size (``None`` when the model is unpriced)."""
        if self.input_per_mtok is None or self.output_per_mtok is None:
            return None
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6


class Catalog(Mapping[str, CatalogEntry]):
    """Read-only mapping model name -> :class:`CatalogEntry`."""

    def __init__(self, entries: Mapping[str, CatalogEntry]) -> None:
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> CatalogEntry:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def windows(self) -> tuple[int, ...]:
        """Every known context window (thresholds near which tokens are counted exactly)."""
        return tuple(sorted({e.context_window for e in self._entries.values() if e.context_window}))


PriceFn = Callable[[ModelSpec], Any]
"""Returns an object with ``input_per_mtok``, ``output_per_mtok``, ``context_window``, ``source``."""


def build_catalog(policy: Policy, price_of: PriceFn) -> Catalog:
    """The catalog of every model in ``policy``."""
    entries = {}
    for name, spec in policy.models.items():
        price = price_of(spec)
        entries[name] = CatalogEntry(
            name=name,
            tier=spec.tier,
            quality=spec.quality if spec.quality is not None else TIER_QUALITY[spec.tier],
            input_per_mtok=price.input_per_mtok,
            output_per_mtok=price.output_per_mtok,
            context_window=price.context_window,
            latency_ms=spec.latency_ms,
            price_source=price.source,
        )
    return Catalog(entries)
