"""What a router is trained and tested on: the recorded rows, split and priced exactly as
``mm-litellm policy evaluate`` splits and prices them, each prompt's text and size as the routing
engine reads them, and (optional) each prompt's embedding.

Used by :func:`mm_litellm.learned.train.train_router`; the fitting itself is there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mm_litellm.errors import MMLiteLLMError
from mm_litellm.evaluation.dataset import OutcomeRow, load_dataset
from mm_litellm.evaluation.errors import EvaluationError
from mm_litellm.evaluation.prices import load_pinned_prices
from mm_litellm.evaluation.table import OutcomeTable, build_table, select_split
from mm_litellm.learned.embeddings import EmbeddingSpec, EmbeddingUnavailable, embed_texts
from mm_litellm.learned.text import Vocabulary
from mm_litellm.routing.classifier import request_text
from mm_litellm.routing.features import estimate_tokens

__all__ = ["load_rows", "prompt_embeddings", "prompt_texts", "split_tables"]


def load_rows(files: Sequence[str]) -> list[OutcomeRow]:
    """The rows of every data file, in order; a row id found in two files is refused."""
    rows: list[OutcomeRow] = []
    seen: set[str] = set()
    for f in files:
        for row in load_dataset(f):
            if row.id in seen:
                raise EvaluationError(f"{f}: row id '{row.id}' appears in more than one data file")
            seen.add(row.id)
            rows.append(row)
    return rows


def _beside(data: str, name: str) -> str | None:
    candidate = Path(data).parent / name
    return str(candidate) if candidate.is_file() else None


def _mapping(rows: Sequence[OutcomeRow], explicit: Mapping[str, str]) -> dict[str, str]:
    if explicit:
        return dict(explicit)
    present: dict[str, int] = {}
    for row in rows:
        for m in row.outcomes:
            present[m] = present.get(m, 0) + 1
    return {m: m for m in present}


def split_tables(
    rows: Sequence[OutcomeRow],
    data: str,
    *,
    mapping: Mapping[str, str],
    seed: int,
    test_fraction: float,
    resplit: bool,
    prices: str | None,
    default_completion_tokens: int | None,
) -> tuple[OutcomeTable, OutcomeTable, dict[str, str], str | None]:
    """The train and test tables, the mapping used (``mapping``, else every recorded model) and the
    prices file read (``prices``, else ``prices_pinned.json`` beside ``data`` if there is one)."""
    used = _mapping(rows, mapping)
    prices_path = prices or _beside(data, "prices_pinned.json")
    pinned = load_pinned_prices(prices_path) if prices_path else None
    out = []
    for split in ("train", "test"):
        chosen = select_split(rows, split, seed=seed, test_fraction=test_fraction, resplit=resplit)
        if not chosen:
            hint = "" if resplit else " (the rows carry their own split; --resplit assigns a seeded one)"
            raise EvaluationError(f"no rows in split '{split}' of {data}{hint}")
        out.append(
            build_table(chosen, used, prices=pinned, default_completion_tokens=default_completion_tokens)
        )
    return out[0], out[1], used, prices_path


def prompt_texts(table: OutcomeTable) -> tuple[list[str], np.ndarray]:
    """Each row's prompt text (what the task classifier reads) and estimated input tokens."""
    texts, tokens = [], []
    for row in table.rows:
        chat = row.chat()
        texts.append(request_text(chat))
        tokens.append(estimate_tokens(chat)[0])
    return texts, np.array(tokens, dtype=np.float64)


def prompt_embeddings(
    spec: EmbeddingSpec,
    vocab: Vocabulary,
    texts: Sequence[str],
    *,
    api_key: str | None,
    cache_path: str | None,
    batch_size: int,
) -> tuple[np.ndarray, EmbeddingSpec, dict[str, Any]]:
    """Raw vectors of ``texts`` (cache first, then LiteLLM in batches), the spec, what it cost."""
    from mm_litellm.integrations.embeddings import fetch_embeddings
    from mm_litellm.learned.embedding_cache import EmbeddingCache, default_cache_path

    costs: list[float | None] = []

    def fetch(s: EmbeddingSpec, batch: Sequence[str]) -> np.ndarray:
        vectors, usd = fetch_embeddings(s, batch, api_key=api_key, timeout=120, num_retries=2)
        costs.append(usd)
        return vectors

    cache = EmbeddingCache(cache_path or default_cache_path())
    try:
        window = vocab.featurizer.window
        raw, spec, stats = embed_texts(spec, [window(t) for t in texts], fetch, cache, batch_size)
    except EmbeddingUnavailable as exc:
        raise EvaluationError(f"--embeddings {spec.model}: {exc.reason}") from None
    except MMLiteLLMError:
        raise
    except Exception as exc:  # the provider's error, as LiteLLM raised it
        raise EvaluationError(
            f"--embeddings {spec.model}: the embedding call failed ({type(exc).__name__}: {exc}); the "
            f"vectors fetched before it are kept in {cache.path}, so a rerun continues from there"
        ) from None
    finally:
        cache.close()
    priced = [c for c in costs if c is not None]
    cost = sum(priced) if len(priced) == len(costs) else None
    return raw, spec, {**spec.as_manifest(), **stats.as_dict(), "cost_usd": cost}
