"""What the routing engine needs to know about models, as one injected object.

The engine is pure Python; prices, context windows and exact token counts come from a
:class:`ModelFacts` handed to it. Two implementations live in ``integrations/``:
``LiteLLMFacts`` (LiteLLM's live price table and ``token_counter``: what a process that calls
providers uses, so policy ``register_model`` prices and the Router's view agree) and
``BundledFacts`` (LiteLLM's bundled price file read straight from the installed wheel, without
importing LiteLLM: what ``policy check``, ``route --explain``, ``models`` use to start fast).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from mm_litellm.policy.schema import ModelSpec

__all__ = ["ModelFacts", "ModelPrice", "price_from_entry"]


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens (``None`` when unknown) and the context window."""

    input_per_mtok: float | None
    output_per_mtok: float | None
    context_window: int | None
    source: Literal["policy", "litellm", "unpriced"]


class ModelFacts(Protocol):
    """Prices, context windows and token counts of policy models."""

    def price(self, spec: ModelSpec) -> ModelPrice:
        """What ``spec`` costs: its ``pricing:`` override, else the LiteLLM price table."""
        ...

    def count_tokens(self, messages: Sequence[Any]) -> int:
        """Exact input tokens of ``messages`` (asked only near a threshold)."""
        ...


def price_from_entry(spec: ModelSpec, entry: dict[str, Any] | None) -> ModelPrice:
    """``spec``'s price from its override, else from a LiteLLM price-table ``entry`` (or ``None``)."""
    window = spec.context_window or (entry.get("max_input_tokens") if entry else None)
    if spec.pricing is not None:
        return ModelPrice(spec.pricing.input_per_mtok, spec.pricing.output_per_mtok, window, "policy")
    if entry and entry.get("input_cost_per_token") is not None:
        return ModelPrice(
            float(entry["input_cost_per_token"]) * 1e6,
            float(entry.get("output_cost_per_token") or 0.0) * 1e6,
            window,
            "litellm",
        )
    return ModelPrice(None, None, window, "unpriced")
