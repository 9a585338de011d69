"""A trained router in memory: each model's expected quality for a prompt, and its expected cost.

Plain numpy over the arrays of an artifact that :func:`mm_litellm.learned.artifact.load_router`
has read and :mod:`mm_litellm.learned.manifest` has checked; deciding needs nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mm_litellm.learned.embeddings import EmbeddingSpec
from mm_litellm.learned.manifest import CALIBRATION, WEIGHTS
from mm_litellm.learned.text import SHAPE_FEATURES, FeatureSettings, Vocabulary

__all__ = ["CostModel", "Router"]


@dataclass(frozen=True, slots=True)
class CostModel:
    """Expected USD of one call of a model: ``base_usd + per_token_usd x input tokens``.

    Fitted on the recorded costs of the training rows (completion included), against the input
    size the routing engine estimates for the same prompt.
    """

    base_usd: float
    per_token_usd: float
    completion_tokens: float | None = None
    """Mean completion tokens recorded for the model (None: not recorded)."""

    def cost(self, input_tokens: float) -> float:
        return self.base_usd + self.per_token_usd * input_tokens

    def as_dict(self) -> dict[str, Any]:
        return {
            "base_usd": self.base_usd,
            "per_token_usd": self.per_token_usd,
            "completion_tokens": self.completion_tokens,
        }


class Router:
    """A loaded artifact: each model's expected quality (0..1) for a prompt, in plain numpy."""

    def __init__(self, path: Path, manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.path = path
        self.manifest = dict(manifest)
        self.models: tuple[str, ...] = tuple(manifest["models"])
        self.digest: str = manifest["files"][WEIGHTS]
        settings = FeatureSettings.from_dict(manifest["features"])
        self.vocabulary = Vocabulary(
            arrays["buckets"], arrays["idf"], settings, arrays["shape_mean"], arrays["shape_scale"]
        )
        learner = manifest["learner"]
        self.learner: str = learner["kind"]
        self.embedding = EmbeddingSpec.from_manifest(manifest.get("embeddings"))
        """The embedding the router reads besides the text (None: text features only)."""
        self._n_sparse = len(arrays["buckets"])
        if self.learner == "logistic":
            self._coef = np.ascontiguousarray(arrays["coef"], dtype=np.float32)
            dense = self._coef[self._n_sparse :].astype(np.float64)
            self._shape_coef, self._embedding_coef = (
                dense[: len(SHAPE_FEATURES)],
                dense[len(SHAPE_FEATURES) :],
            )
            self._intercept = arrays["intercept"].astype(np.float64)
        else:
            self._k = int(learner["k"])
            self._indptr = arrays["train_indptr"]
            self._indices = arrays["train_indices"]
            self._data = arrays["train_data"]
            self._scores = arrays["train_scores"].astype(np.float64)
            self._rows = np.repeat(np.arange(len(self._indptr) - 1), np.diff(self._indptr))
        self.cost_models = {
            m: CostModel(
                float(c["base_usd"]),
                float(c["per_token_usd"]),
                None if c.get("completion_tokens") is None else float(c["completion_tokens"]),
            )
            for m, c in manifest["cost_model"].items()
        }
        self.trained_ids: np.ndarray = arrays.get("train_ids", np.empty(0, dtype=np.uint64))
        self.out_of_fold: np.ndarray | None = arrays.get("train_oof")
        self._column = {m: i for i, m in enumerate(self.models)}
        data = manifest.get("data")
        tokens = data.get("mean_input_tokens") if isinstance(data, dict) else None
        self.mean_input_tokens: float | None = None if tokens is None else float(tokens)
        """The train split's mean estimated input tokens (None: a format version 1 artifact)."""
        self.calibration: tuple[np.ndarray, np.ndarray] | None = None
        """Per model (mean, factor): predictions are ``mean + factor x (raw - mean)``; None: raw
        (a format version 1 artifact). See :mod:`mm_litellm.learned.calibration`."""
        if all(name in arrays for name in CALIBRATION):
            self.calibration = tuple(arrays[name].astype(np.float64) for name in CALIBRATION)  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Router({str(self.path)!r}, models={list(self.models)}, learner={self.learner})"

    @property
    def name(self) -> str:
        return str(self.manifest.get("name") or self.path.name)

    def column(self, model: str) -> int:
        return self._column[model]

    def predict(self, text: str, embedding: np.ndarray | None = None) -> np.ndarray:
        """Expected quality of every model (in :attr:`models` order) for a prompt's text.

        ``embedding``: the prompt's scaled vector (:func:`mm_litellm.learned.embeddings.scale`),
        required when the router was trained with embeddings and ignored otherwise.
        """
        raw = self._raw(text, embedding)
        if self.calibration is None:
            return raw
        mean, factor = self.calibration
        return mean + factor * (raw - mean)  # type: ignore[no-any-return]

    def _raw(self, text: str, embedding: np.ndarray | None) -> np.ndarray:
        index, values, shape = self.vocabulary.encode(text)
        if self.learner == "logistic":
            z = values @ np.take(self._coef, index, axis=0) + shape @ self._shape_coef + self._intercept
            if self.embedding is not None:
                if embedding is None or embedding.shape != (self.embedding.dimension,):
                    got = "none" if embedding is None else f"shape {embedding.shape}"
                    raise ValueError(
                        f"{self.path}: this router needs the prompt's {self.embedding.model} embedding "
                        f"({self.embedding.dimension} values), got {got}"
                    )
                z = z + embedding @ self._embedding_coef
            return 1.0 / (1.0 + np.exp(-z))
        return self._knn(index, values)

    def predict_many(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        rows = [self.predict(t, None if embeddings is None else embeddings[i]) for i, t in enumerate(texts)]
        return np.array(rows).reshape(len(texts), len(self.models))

    def _knn(self, index: np.ndarray, values: np.ndarray) -> np.ndarray:
        query = np.zeros(self._n_sparse, dtype=np.float32)
        np.add.at(query, index, values)
        norm = float(np.sqrt(query @ query))
        n_train = len(self._indptr) - 1
        if norm == 0 or n_train == 0:
            return self._scores.mean(axis=0) if n_train else np.full(len(self.models), 0.5)
        sims = np.bincount(self._rows, weights=self._data * query[self._indices], minlength=n_train) / norm
        k = min(self._k, n_train)
        top = np.argpartition(-sims, k - 1)[:k]
        return self._scores[top].mean(axis=0)  # type: ignore[no-any-return]

    def expected_costs(self, input_tokens: float) -> np.ndarray:
        return np.array([self.cost_models[m].cost(input_tokens) for m in self.models])

    def mean_costs(self) -> np.ndarray | None:
        """Each model's expected cost at the train split's mean prompt size: what a candidate costs
        on average, for leaving out dominated ones (None: not recorded, version 1)."""
        return None if self.mean_input_tokens is None else self.expected_costs(self.mean_input_tokens)
