"""What a recorded outcome cost: the row's own ``cost_usd``, else tokens at a pinned price.

The pinned table (``prices_pinned.json``: USD per million tokens ``[input, output]`` per
dataset model) makes a benchmark's costs reproducible; live prices move. A model missing
from it falls back to the policy's price for the policy model (its ``pricing:`` override or
LiteLLM's price table, the same lookup ``mm-litellm models`` shows).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mm_litellm.evaluation.errors import EvaluationError

__all__ = ["PinnedPrices", "TokenPrice", "load_pinned_prices"]


@dataclass(frozen=True, slots=True)
class TokenPrice:
    """USD per million input and output tokens, and where the numbers came from."""

    input_per_mtok: float
    output_per_mtok: float
    source: str

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok) / 1e6


@dataclass(frozen=True, slots=True)
class PinnedPrices:
    """A pinned price table keyed by dataset model name."""

    prices: Mapping[str, TokenPrice]
    path: str

    def get(self, model: str) -> TokenPrice | None:
        return self.prices.get(model)


def load_pinned_prices(path: str | os.PathLike[str]) -> PinnedPrices:
    """Read ``{"per_million_tokens_usd": {"model": [input, output]}}`` (other keys are ignored)."""
    source = Path(path)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EvaluationError(f"{source}: cannot read the price table: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise EvaluationError(f"{source}: invalid JSON: {exc}") from exc
    table = data.get("per_million_tokens_usd") if isinstance(data, dict) else None
    if not isinstance(table, dict):
        raise EvaluationError(
            f"{source}: expected an object with 'per_million_tokens_usd': {{model: [in, out]}}"
        )
    sources = data.get("sources") or {}
    prices: dict[str, TokenPrice] = {}
    for model, pair in table.items():
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in pair)
        ):
            raise EvaluationError(f"{source}: '{model}' must be [input, output] USD per million tokens")
        prices[model] = TokenPrice(
            float(pair[0]), float(pair[1]), f"pinned: {sources.get(model, source.name)}"
        )
    return PinnedPrices(prices, str(source))
