"""Embedding features (optional): a provider's vector of the prompt, next to the local text features.

Off unless a router is trained with ``--embeddings MODEL``. The vectors come from any embedding
model LiteLLM supports; the call itself is made in ``integrations/embeddings.py`` (the LiteLLM
boundary) and handed in here as a :data:`Fetch`, so this module stays plain numpy.

- Features: each vector is scaled to unit length and then by ``weight`` (default 1: the same length
  as the TF-IDF word block), and appended after the text features (words, characters, shape).
- Text: the same window of the prompt the text features read (``max_chars``), so long prompts
  cost a bounded number of embedding tokens.
- Training: :func:`embed_texts` fetches in batches and goes through the persistent cache
  (:mod:`mm_litellm.learned.embedding_cache`), so retraining on the same prompts pays nothing.
- Deciding: :class:`EmbeddingLookup` keeps recent vectors in memory (a bounded LRU by prompt hash),
  then reads the persistent cache if there is one, then fetches (only when given a fetch: a live
  request; explain and replays never call a provider). Whatever fails is an
  :class:`EmbeddingUnavailable` with the reason; the learned route then falls back.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mm_litellm.errors import MMLiteLLMError
from mm_litellm.learned.embedding_cache import EmbeddingCache, default_cache_path

__all__ = [
    "EmbeddingLookup",
    "EmbeddingSpec",
    "EmbeddingUnavailable",
    "Fetch",
    "embed_texts",
    "scale",
]

MEMORY_ENTRIES = 4096
"""Prompts whose vector a deciding process keeps in memory (least recently used dropped first)."""

Fetch = Callable[["EmbeddingSpec", Sequence[str]], np.ndarray]
"""``fetch(spec, texts)``: the provider's raw vectors of ``texts``, one row per text (or raises)."""


class EmbeddingUnavailable(MMLiteLLMError):
    """The prompt's embedding could not be had (not cached and not fetched, or the fetch failed)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class EmbeddingSpec:
    """Which embedding a router was trained with; stored in its manifest under ``embeddings``."""

    model: str
    """A LiteLLM model string, e.g. ``openai/text-embedding-3-small``."""
    dimension: int = 0
    """Length of the vectors (0: not known yet, before the first fetch)."""
    api_base: str | None = None
    """Where the model is served, when not the provider's default (recorded: it is not a secret)."""
    dimensions: int | None = None
    """``dimensions`` asked of the provider (models that can shorten their vectors), else None."""
    weight: float = 1.0
    """Length of the embedding block in the feature vector (the word block's is 1)."""

    def key(self, text: str) -> str:
        """The cache key: a SHA-256 of (model, requested dimensions, text)."""
        raw = json.dumps([self.model, self.dimensions, text], ensure_ascii=False)
        return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()

    def as_manifest(self) -> dict[str, Any]:
        return {
            "used": True,
            "model": self.model,
            "dimension": self.dimension,
            "api_base": self.api_base,
            "dimensions": self.dimensions,
            "weight": self.weight,
            "input": "the window of the prompt the text features read (max_chars), unit length x weight",
        }

    @classmethod
    def from_manifest(cls, data: Any) -> EmbeddingSpec | None:
        """The spec of a manifest's ``embeddings`` (None: not used); ValueError says what is wrong."""
        if data is None:
            return None
        if not isinstance(data, Mapping) or not isinstance(data.get("used"), bool):
            raise ValueError("'embeddings' must be a mapping with 'used': true or false")
        if not data["used"]:
            return None
        model, dim, weight = data.get("model"), data.get("dimension"), data.get("weight", 1.0)
        if not isinstance(model, str) or not model:
            raise ValueError("embeddings.model must name the embedding model (a LiteLLM model string)")
        if not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= 65536:
            raise ValueError(f"embeddings.dimension must be an integer from 1 to 65536, not {dim!r}")
        if not isinstance(weight, int | float) or isinstance(weight, bool) or not math.isfinite(weight):
            raise ValueError("embeddings.weight must be a number")
        base, asked = data.get("api_base"), data.get("dimensions")
        if base is not None and not isinstance(base, str):
            raise ValueError("embeddings.api_base must be a URL or null")
        if asked is not None and (not isinstance(asked, int) or isinstance(asked, bool) or asked != dim):
            raise ValueError(f"embeddings.dimensions (asked of the provider) must be null or {dim}")
        return cls(model, dim, base, asked, float(weight))


def scale(vectors: np.ndarray, weight: float) -> np.ndarray:
    """Rows scaled to unit length, then by ``weight`` (an all-zero row stays zero), as float32."""
    v = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.asarray(v / norms * weight, dtype=np.float32)


def _check(spec: EmbeddingSpec, raw: Any, n: int) -> np.ndarray:
    vectors = np.asarray(raw, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != n:
        raise EmbeddingUnavailable(
            f"{spec.model} returned {vectors.shape[0] if vectors.ndim else 0} vectors for {n} texts"
        )
    if spec.dimension and vectors.shape[1] != spec.dimension:
        raise EmbeddingUnavailable(
            f"{spec.model} returned vectors of {vectors.shape[1]} values; the router was trained on "
            f"{spec.dimension} (another model or setting behind the same name?)"
        )
    if spec.dimensions and vectors.shape[1] != spec.dimensions:
        raise EmbeddingUnavailable(
            f"{spec.model} returned vectors of {vectors.shape[1]} values for dimensions={spec.dimensions}: "
            "the model does not shorten its vectors; drop --embedding-dimensions"
        )
    if not np.isfinite(vectors).all():
        raise EmbeddingUnavailable(f"{spec.model} returned NaN or infinite values")
    return vectors


@dataclass
class EmbedStats:
    """What training paid for: vectors fetched (and in how many calls) and found in the cache."""

    fetched: int = 0
    cached: int = 0
    calls: int = 0
    cache: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"fetched": self.fetched, "cached": self.cached, "calls": self.calls, "cache": self.cache}


def embed_texts(
    spec: EmbeddingSpec,
    texts: Sequence[str],
    fetch: Fetch,
    cache: EmbeddingCache | None,
    batch_size: int = 64,
) -> tuple[np.ndarray, EmbeddingSpec, EmbedStats]:
    """Raw vectors of ``texts`` (rows in order), the spec with its dimension, and what it cost.

    Cached vectors are read first; the others are fetched ``batch_size`` distinct texts at a time,
    and each batch is committed to the cache as soon as it arrives (an interrupted run keeps them).
    """
    if batch_size < 1:
        raise ValueError("the embedding batch size must be at least 1")
    keys = [spec.key(t) for t in texts]
    found = cache.get_many(keys) if cache is not None else {}
    stats = EmbedStats(cache=str(cache.path) if cache is not None and cache.usable else None)
    dims = {len(v) for v in found.values()}
    if spec.dimension:
        found = {k: v for k, v in found.items() if len(v) == spec.dimension}
    elif len(dims) > 1:
        raise EmbeddingUnavailable(
            f"the cache {stats.cache} holds vectors of different lengths ({sorted(dims)}) for {spec.model}"
        )
    missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in found))
    stats.cached = sum(k in found for k in keys)
    for start in range(0, len(missing), batch_size):
        batch = missing[start : start + batch_size]
        vectors = _check(spec, fetch(spec, batch), len(batch))
        stats.calls += 1
        stats.fetched += len(batch)
        if not spec.dimension:
            spec = EmbeddingSpec(
                spec.model, int(vectors.shape[1]), spec.api_base, spec.dimensions, spec.weight
            )
            if dims and dims != {spec.dimension}:
                raise EmbeddingUnavailable(
                    f"{spec.model} now returns {spec.dimension} values; the cache {stats.cache} holds "
                    f"{sorted(dims)}: use another cache file"
                )
        fresh = {spec.key(t): v for t, v in zip(batch, vectors, strict=True)}
        found.update(fresh)
        if cache is not None:
            cache.put_many(spec.model, fresh)
    if not spec.dimension:
        if not found:
            raise EmbeddingUnavailable("no texts to embed")
        spec = EmbeddingSpec(
            spec.model, len(next(iter(found.values()))), spec.api_base, spec.dimensions, spec.weight
        )
    out = np.stack([found[k] for k in keys]) if keys else np.zeros((0, spec.dimension), np.float32)
    return out, spec, stats


class EmbeddingLookup:
    """A router's embeddings at decision time: memory (LRU), then the persistent cache, then fetch."""

    def __init__(
        self, spec: EmbeddingSpec, cache_path: str | Path | None = None, entries: int = MEMORY_ENTRIES
    ) -> None:
        self.spec = spec
        self.cache_path = Path(cache_path) if cache_path is not None else default_cache_path()
        self._entries = entries
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._cache: EmbeddingCache | None = None

    def _cached(self, key: str) -> np.ndarray | None:
        if self._cache is None or not self._cache.usable:
            if not self.cache_path.is_file():
                return None
            try:
                self._cache = EmbeddingCache(self.cache_path, readonly=True)
            except MMLiteLLMError:
                return None
        found = self._cache.get_many([key]).get(key)
        return found if found is not None and len(found) == self.spec.dimension else None

    def vector(self, text: str, fetch: Fetch | None) -> tuple[np.ndarray, str]:
        """(the scaled vector of ``text``, where it came from: memory, cache or the model's name).

        ``fetch`` None: the provider is not called (explain, replays); raises
        :class:`EmbeddingUnavailable` when the vector is nowhere else.
        """
        spec = self.spec
        if not text.strip():
            raise EmbeddingUnavailable("the request has no prompt text to embed")
        key = spec.key(text)
        with self._lock:
            hit = self._memory.get(key)
            if hit is not None:
                self._memory.move_to_end(key)
                return hit, "memory"
        raw = self._cached(key)
        source = "cache"
        if raw is None:
            if fetch is None:
                raise EmbeddingUnavailable(
                    f"the prompt's embedding ({spec.model}) was not computed: explain and replays call "
                    f"no provider, and the cache {self.cache_path} has no vector for this prompt"
                )
            try:
                raw = _check(spec, fetch(spec, [text]), 1)[0]
            except EmbeddingUnavailable:
                raise
            except Exception as exc:  # any provider error: the request is decided without it
                message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
                raise EmbeddingUnavailable(
                    f"the embedding call to {spec.model} failed ({type(exc).__name__}: {message})"
                ) from exc
            source = spec.model
        vector = scale(raw, spec.weight)
        with self._lock:
            self._memory[key] = vector
            while len(self._memory) > self._entries:
                self._memory.popitem(last=False)
        return vector, source
