"""Embedding calls through LiteLLM: the vectors a learned router with embedding features reads.

The one place mm_litellm asks a provider for embeddings (``litellm.embedding``: any provider
LiteLLM supports; the API key comes from the provider's usual environment variable, as for any
LiteLLM call, unless given). Used by ``router train --embeddings`` (batched, retried) and by a
runtime deciding a live request (one text, no retries, a short timeout: the request waits).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from mm_litellm.integrations._litellm import litellm
from mm_litellm.learned.embeddings import EmbeddingSpec

__all__ = ["DECISION_TIMEOUT_ENV", "decision_fetch", "fetch_embeddings"]

DECISION_TIMEOUT_ENV = "MM_LITELLM_EMBEDDING_TIMEOUT"
_DECISION_TIMEOUT = 5.0


def fetch_embeddings(
    spec: EmbeddingSpec,
    texts: Sequence[str],
    *,
    api_key: str | None = None,
    timeout: float | None = None,
    num_retries: int = 0,
) -> tuple[np.ndarray, float | None]:
    """(one row per text, the USD LiteLLM's price table gives for the call, or None if unpriced)."""
    params: dict[str, Any] = {"model": spec.model, "input": list(texts), "num_retries": num_retries}
    if spec.api_base:
        params["api_base"] = spec.api_base
    if api_key:
        params["api_key"] = api_key
    if spec.dimensions:
        params["dimensions"] = spec.dimensions
    if timeout is not None:
        params["timeout"] = timeout
    module = litellm()
    response = module.embedding(**params)
    items = sorted(response.data, key=lambda item: _field(item, "index") or 0)
    rows = [_vector(_field(item, "embedding")) for item in items]
    cost = None
    try:
        cost = float(module.completion_cost(completion_response=response))
    except Exception:
        cost = None
    return np.array(rows, dtype=np.float32), cost


def decision_fetch(spec: EmbeddingSpec, texts: Sequence[str]) -> np.ndarray:
    """Vectors for a request being decided: no retries, ``$MM_LITELLM_EMBEDDING_TIMEOUT`` s (5)."""
    try:
        timeout = float(os.environ.get(DECISION_TIMEOUT_ENV) or _DECISION_TIMEOUT)
    except ValueError:
        timeout = _DECISION_TIMEOUT
    return fetch_embeddings(spec, texts, timeout=timeout, num_retries=0)[0]


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


def _vector(value: Any) -> list[float]:
    if isinstance(value, str):  # base64 little-endian float32 (encoding_format="base64")
        return [float(v) for v in np.frombuffer(base64.b64decode(value), dtype="<f4")]
    if not isinstance(value, list):
        raise ValueError(f"an embedding must be a list of numbers, got {type(value).__name__}")
    return [float(v) for v in value]
