"""Prices and context windows of policy models: the policy's override, else LiteLLM's table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mm_litellm.integrations._litellm import litellm
from mm_litellm.policy.schema import ModelSpec, Policy
from mm_litellm.routing.facts import ModelPrice, price_from_entry

__all__ = [
    "LiteLLMFacts",
    "ModelPrice",
    "count_prompt_tokens",
    "litellm_price",
    "max_output_tokens",
    "price_of",
]


def price_of(spec: ModelSpec) -> ModelPrice:
    """What ``spec`` costs, from its ``pricing`` override or LiteLLM's ``model_cost`` table."""
    return price_from_entry(spec, _litellm_info(spec.litellm_model))


class LiteLLMFacts:
    """:class:`~mm_litellm.routing.facts.ModelFacts` from the imported LiteLLM (live price table)."""

    def price(self, spec: ModelSpec) -> ModelPrice:
        return price_of(spec)

    def count_tokens(self, messages: Sequence[Any]) -> int:
        from mm_litellm.integrations.tokens import count_tokens

        return count_tokens(messages)


def _litellm_info(model: str) -> dict | None:  # type: ignore[type-arg]
    lt = litellm()
    try:
        info = dict(lt.get_model_info(model=model))
    except Exception:  # LiteLLM raises a bare Exception for a model missing from its table
        return None
    # A Router registers an empty entry for a deployment it does not know, and get_model_info
    # then reports it at price 0: only a price present in the table's own entry counts.
    raw = lt.model_cost.get(info.get("key") or model) or {}
    if raw.get("input_cost_per_token") is None:
        info["input_cost_per_token"] = info["output_cost_per_token"] = None
    return info


def litellm_price(model: str) -> tuple[float, float] | None:
    """USD per token (input, output) of a LiteLLM model string from its price table, or ``None``."""
    info = _litellm_info(model)
    if not info or info.get("input_cost_per_token") is None:
        return None
    return float(info["input_cost_per_token"]), float(info.get("output_cost_per_token") or 0.0)


def max_output_tokens(model: str) -> int | None:
    """The most completion tokens one call of a LiteLLM model string may produce (LiteLLM's table:
    ``max_output_tokens``, else ``max_tokens``), or ``None`` when the table does not say."""
    info = _litellm_info(model)
    if not info:
        return None
    for key in ("max_output_tokens", "max_tokens"):
        value = info.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def count_prompt_tokens(model: str, messages: list) -> int:  # type: ignore[type-arg]
    """Prompt tokens of ``messages`` for ``model`` (LiteLLM's ``token_counter``)."""
    try:
        return int(litellm().token_counter(model=model, messages=messages))
    except Exception:  # an unknown model or odd content: fall back to LiteLLM's default tokenizer
        return int(litellm().token_counter(messages=messages))


def per_token_price(policy: Policy, model: str) -> tuple[float, float] | None:
    """USD per token (input, output) of a policy model (its ``pricing``, else LiteLLM's) or of a
    LiteLLM model string; ``None`` when unknown. What the runtime gives the budget service."""
    spec = policy.models.get(model)
    if spec is None:
        return litellm_price(model)
    p = price_of(spec)
    if p.input_per_mtok is None:
        return None
    return p.input_per_mtok / 1e6, (p.output_per_mtok or 0) / 1e6
