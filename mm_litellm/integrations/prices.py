"""Prices and context windows of policy models: the policy's override, else LiteLLM's table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mm_litellm.integrations._litellm import litellm
from mm_litellm.policy.schema import ModelSpec

__all__ = ["ModelPrice", "price_of"]


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens (``None`` when unknown) and the context window."""

    input_per_mtok: float | None
    output_per_mtok: float | None
    context_window: int | None
    source: Literal["policy", "litellm", "unpriced"]


def price_of(spec: ModelSpec) -> ModelPrice:
    """What ``spec`` costs, from its ``pricing`` override or LiteLLM's ``model_cost`` table."""
    info = _litellm_info(spec.litellm_model)
    window = spec.context_window or (info.get("max_input_tokens") if info else None)
    if spec.pricing is not None:
        return ModelPrice(spec.pricing.input_per_mtok, spec.pricing.output_per_mtok, window, "policy")
    if info and info.get("input_cost_per_token") is not None:
        return ModelPrice(
            info["input_cost_per_token"] * 1e6, (info.get("output_cost_per_token") or 0.0) * 1e6, window, "litellm"
        )
    return ModelPrice(None, None, window, "unpriced")


def _litellm_info(model: str) -> dict | None:  # type: ignore[type-arg]
    lt = litellm()
    try:
        return dict(lt.get_model_info(model=model))
    except Exception:  # LiteLLM raises a bare Exception for a model missing from its table
        return None
