"""Embedding calls through LiteLLM: the vectors a learned router with embedding features reads.

The one place mm_litellm asks a provider for embeddings (``litellm.embedding``: any provider
LiteLLM supports; the API key comes from the provider's usual environment variable, as for any
LiteLLM call, unless given). Used by ``router train --embeddings`` (batched, retried) and by a
runtime deciding a live request (one text, no retries, a short timeout: the request waits).

A live request waits at most ``$MM_LITELLM_EMBEDDING_TIMEOUT`` seconds (5) in all: the call runs
on a small worker pool and is abandoned at the deadline, because the provider SDK may retry on
its own (LiteLLM 1.106 turns ``max_retries=0`` into its default of 2 for OpenAI embeddings).
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import numpy as np

from mm_litellm.integrations._litellm import litellm
from mm_litellm.learned.embeddings import EmbeddingSpec

__all__ = ["DECISION_TIMEOUT_ENV", "decision_fetch", "fetch_embeddings"]

DECISION_TIMEOUT_ENV = "MM_LITELLM_EMBEDDING_TIMEOUT"
_DECISION_TIMEOUT = 5.0
_WORKERS = 4
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def fetch_embeddings(
    spec: EmbeddingSpec,
    texts: Sequence[str],
    *,
    api_key: str | None = None,
    timeout: float | None = None,
    num_retries: int = 0,
    max_retries: int | None = None,
) -> tuple[np.ndarray, float | None]:
    """(one row per text, the USD LiteLLM's price table gives for the call, or None if unpriced).

    ``num_retries``: LiteLLM's retries; ``max_retries``: the provider SDK's own (None: its default,
    2 for OpenAI-compatible ones).
    """
    params: dict[str, Any] = {"model": spec.model, "input": list(texts), "num_retries": num_retries}
    if max_retries is not None:
        params["max_retries"] = max_retries
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
    """Vectors for a request being decided: no retries asked, at most the decision timeout in all."""
    try:
        budget = float(os.environ.get(DECISION_TIMEOUT_ENV) or _DECISION_TIMEOUT)
    except ValueError:
        budget = _DECISION_TIMEOUT
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="mm-litellm-embedding")
        pool = _pool
    future = pool.submit(fetch_embeddings, spec, texts, timeout=budget, num_retries=0, max_retries=0)
    try:
        return future.result(timeout=budget)[0]
    except FutureTimeout:
        future.cancel()  # still queued behind slow calls: never sent
        raise TimeoutError(f"no answer within {budget:g} s (${DECISION_TIMEOUT_ENV})") from None


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


def _vector(value: Any) -> list[float]:
    if isinstance(value, str):  # base64 little-endian float32 (encoding_format="base64")
        return [float(v) for v in np.frombuffer(base64.b64decode(value), dtype="<f4")]
    if not isinstance(value, list):
        raise ValueError(f"an embedding must be a list of numbers, got {type(value).__name__}")
    return [float(v) for v in value]
