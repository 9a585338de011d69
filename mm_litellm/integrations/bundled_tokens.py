"""Exact token counts for a replay, as LiteLLM counts them, without importing LiteLLM.

The routing engine asks for an exact count only for requests near a threshold a rule or a
context window uses, and live that count is ``litellm.token_counter(model="gpt-4o", ...)``
(:mod:`mm_litellm.integrations.tokens`). Importing LiteLLM costs seconds, most of a replay's
time, for what is, for plain chat messages, tiktoken arithmetic:

- the ``o200k_base`` encoding (what LiteLLM picks for ``gpt-4o``), loaded from the tokenizer
  file LiteLLM ships in its wheel (found with ``importlib.util.find_spec``, which does not run
  the package), so nothing is downloaded;
- per message 3 tokens, plus every string field (``role``, ``content``, ``name``) encoded with
  special tokens allowed as text, plus 1 for a ``name``; 3 more for the reply's priming;
- text encoded in 1,024-character chunks (LiteLLM's ``TIKTOKEN_ENCODE_CHUNK_SIZE_CHARS``).

Anything else goes to LiteLLM itself: content parts (images, lists), tool calls, a text longer
than LiteLLM counts exactly, LiteLLM's tuning variables set in the environment, LiteLLM already
imported (its counter may be configured), or no bundled tokenizer file. A test checks that the
two counts agree on the recorded prompts near the example policies' thresholds.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["TokenCounter", "litellm_count", "plain_count"]

ENCODING = "o200k_base"
ENCODING_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
CHUNK_CHARS = 1024
MAX_PLAIN_CHARS = 1_000_000
"""Longer texts are counted by LiteLLM (it extrapolates texts above its exact-count limit)."""
TOKENS_PER_MESSAGE, TOKENS_PER_NAME, REPLY_PRIMING = 3, 1, 3
_PLAIN_KEYS = frozenset({"role", "content", "name"})
_LITELLM_TUNING = (
    "TIKTOKEN_ENCODE_CHUNK_SIZE_CHARS",
    "TOKEN_COUNTER_MAX_EXACT_CHARS",
    "CUSTOM_TIKTOKEN_CACHE_DIR",
)


def litellm_count(messages: Sequence[Any]) -> int:
    """LiteLLM's own count (imports LiteLLM)."""
    from mm_litellm.integrations.tokens import count_tokens

    return count_tokens(messages)


@functools.cache
def _encoding() -> Any:
    """tiktoken's ``o200k_base`` from LiteLLM's bundled file, or ``None`` when it cannot be had offline."""
    if any(name in os.environ for name in _LITELLM_TUNING):
        return None
    spec = importlib.util.find_spec("litellm")
    folders = list(spec.submodule_search_locations or []) if spec else []
    key = hashlib.sha1(ENCODING_URL.encode()).hexdigest()
    bundled = [Path(f) / "litellm_core_utils" / "tokenizers" for f in folders]
    folder = next((d for d in bundled if (d / key).is_file()), None)
    if folder is None:
        return None
    try:
        import tiktoken
    except ImportError:
        return None
    previous = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(folder)  # tiktoken reads the file from its cache folder
    try:
        return tiktoken.get_encoding(ENCODING)
    except Exception:  # a file that does not match tiktoken's hash: leave the count to LiteLLM
        return None
    finally:
        if previous is None:
            del os.environ["TIKTOKEN_CACHE_DIR"]
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = previous


def plain_count(messages: Sequence[Any]) -> int | None:
    """LiteLLM's count of plain chat messages (string fields only), or ``None`` when it must count."""
    encoding = _encoding()
    if encoding is None:
        return None
    total = REPLY_PRIMING
    for message in messages:
        if not isinstance(message, dict) or not set(message) <= _PLAIN_KEYS:
            return None
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if value is None:
                continue
            if not isinstance(value, str) or len(value) > MAX_PLAIN_CHARS:
                return None
            total += sum(
                len(encoding.encode(value[i : i + CHUNK_CHARS], disallowed_special=()))
                for i in range(0, len(value), CHUNK_CHARS)
            )
            if key == "name":
                total += TOKENS_PER_NAME
    return total


class TokenCounter:
    """Counts for one replay: plain messages without LiteLLM, the rest (or all, once imported) with it."""

    def __init__(self, fallback: Callable[[Sequence[Any]], int] = litellm_count) -> None:
        self.fallback = fallback
        self.by_litellm = 0
        """How many counts needed LiteLLM."""

    def __call__(self, messages: Sequence[Any]) -> int:
        if "litellm" not in sys.modules:
            count = plain_count(messages)
            if count is not None:
                return count
        self.by_litellm += 1
        return self.fallback(messages)
