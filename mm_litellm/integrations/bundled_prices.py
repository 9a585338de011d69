"""LiteLLM's bundled price table, read from the installed wheel without importing LiteLLM.

``import litellm`` costs seconds; commands that call no provider (``policy check``,
``policy test``, ``route --explain``, ``explain``, ``models``) only need prices and context
windows. LiteLLM ships them as ``model_prices_and_context_window_backup.json`` inside its
package (the same file it loads with ``LITELLM_LOCAL_MODEL_COST_MAP=True``); this module finds
it with ``importlib.util.find_spec`` (which locates the package without running it) and looks
models up the way ``litellm.get_model_info`` does for a provider-prefixed name: the full name,
then the name without the provider prefix when that entry belongs to the provider.

An exact token count (asked only near a threshold a rule or context window uses) of plain chat
messages is LiteLLM's arithmetic over the tokenizer file its wheel bundles
(:mod:`mm_litellm.integrations.bundled_tokens`); anything else (content parts, tool calls) is
counted by LiteLLM, imported then and only then.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mm_litellm.policy.schema import ModelSpec
from mm_litellm.routing.facts import ModelPrice, price_from_entry

__all__ = ["PRICE_FILE", "BundledFacts", "bundled_entry", "bundled_price_table", "facts_for_commands"]

PRICE_FILE = "model_prices_and_context_window_backup.json"
_PROVIDER_ALIASES = {"gemini": ("gemini", "vertex_ai-language-models")}


@functools.cache
def bundled_price_table() -> dict[str, dict[str, Any]]:
    """The price table LiteLLM ships in its wheel (empty when LiteLLM or the file is missing)."""
    spec = importlib.util.find_spec("litellm")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / PRICE_FILE
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            return {k: v for k, v in data.items() if isinstance(v, dict) and k != "sample_spec"}
    return {}


def bundled_entry(model: str) -> dict[str, Any] | None:
    """The table entry of a LiteLLM model string (``openai/gpt-4o-mini``), or ``None``."""
    table = bundled_price_table()
    entry = table.get(model)
    if entry is not None:
        return entry
    provider, _, bare = model.partition("/")
    if not bare:
        return None
    entry = table.get(bare)
    if entry is None:
        return None
    owner = str(entry.get("litellm_provider", ""))
    allowed = _PROVIDER_ALIASES.get(provider, (provider,))
    return entry if owner in allowed or owner.startswith(provider) else None


class BundledFacts:
    """:class:`~mm_litellm.routing.facts.ModelFacts` without importing LiteLLM (until a count)."""

    def price(self, spec: ModelSpec) -> ModelPrice:
        return price_from_entry(spec, bundled_entry(spec.litellm_model))

    def count_tokens(self, messages: Sequence[Any]) -> int:
        from mm_litellm.integrations.bundled_tokens import TokenCounter

        return TokenCounter()(messages)  # plain chat messages without LiteLLM, the rest with it


def facts_for_commands() -> Any:
    """The facts a command that calls no provider should use.

    LiteLLM's live table when LiteLLM is already imported (it may hold ``register_model``
    prices), else the bundled file, so the command never pays for importing LiteLLM.
    """
    import sys

    if "litellm" in sys.modules:
        from mm_litellm.integrations.prices import LiteLLMFacts

        return LiteLLMFacts()
    return BundledFacts()
