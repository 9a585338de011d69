"""Exact input-token counts from LiteLLM's ``token_counter``, for decisions near a threshold.

The routing engine estimates tokens from characters (free) and asks for an exact count only
when the estimate is close to a threshold a rule or a context window uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mm_litellm.integrations._litellm import litellm

__all__ = ["COUNTING_MODEL", "count_tokens"]

COUNTING_MODEL = "gpt-4o"
"""Tokenizer used before the model is known (the decision picks the model)."""


def count_tokens(messages: Sequence[Any], model: str = COUNTING_MODEL) -> int:
    """Exact input tokens of ``messages`` as LiteLLM counts them for ``model``."""
    return int(litellm().token_counter(model=model, messages=list(messages)))
