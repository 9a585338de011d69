"""A trained router on disk: a JSON manifest, numpy arrays (``.npz``) and a JSON vocabulary.

    config/routers/NAME/
      manifest.json      format and version, models, feature settings, embeddings (used or not:
                         model, dimension), learner, cost model, training data (files, hashes,
                         split), held-out metrics, file checksums
      weights.npz        the arrays: kept buckets, IDF, shape scaling, the learner's weights
      vocabulary.json    for people: the n-grams that weigh most for each model (not read to decide)

Loading executes nothing: the manifest is JSON, the arrays are read with
``numpy.load(allow_pickle=False)``, and every file's SHA-256 must match the manifest, so a
truncated, edited or foreign file is refused with :class:`ArtifactError` saying which and why.
Deciding needs numpy only; training needs the ``learn`` extra (scikit-learn).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mm_litellm.errors import MMLiteLLMError
from mm_litellm.learned.embeddings import EmbeddingSpec
from mm_litellm.learned.text import SHAPE_FEATURES, FeatureSettings, Vocabulary

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ArtifactError",
    "CostModel",
    "Router",
    "id_hash",
    "load_router",
    "save_router",
]

FORMAT = "mm-litellm-router"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.npz"
VOCABULARY = "vocabulary.json"
LEARNERS = ("logistic", "knn")
_MAX_MANIFEST_BYTES = 16 << 20


class ArtifactError(MMLiteLLMError, ValueError):
    """A router artifact cannot be used: missing, corrupted, foreign, or from a newer version."""


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


def id_hash(ids: Sequence[str], *, sort: bool = True) -> np.ndarray:
    """64-bit digests of row ids (sorted and unique unless ``sort=False``): a router stores those of
    its train rows, so an evaluation knows which rows it was trained on."""
    values = np.array(
        [int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8).digest(), "big") for i in ids],
        dtype=np.uint64,
    )
    return np.unique(values) if sort else values


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


# --- saving ----------------------------------------------------------------------------------


def save_router(
    directory: str | os.PathLike[str],
    *,
    models: Sequence[str],
    vocabulary: Vocabulary,
    learner: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
    cost_model: Mapping[str, CostModel],
    info: Mapping[str, Any],
    terms: Mapping[str, Any] | None = None,
) -> Path:
    """Write the artifact; the manifest goes last, so a half-written directory never loads."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    manifest_path = target / MANIFEST
    if manifest_path.exists():
        manifest_path.unlink()
    all_arrays: dict[str, np.ndarray] = {
        "buckets": vocabulary.buckets.astype(np.int32),  # ids < 2 ** 27
        "idf": vocabulary.idf.astype(np.float32),
        "shape_mean": vocabulary.shape_mean.astype(np.float64),
        "shape_scale": vocabulary.shape_scale.astype(np.float64),
        **arrays,
    }
    weights = target / WEIGHTS
    tmp = target / (WEIGHTS + ".tmp.npz")
    np.savez_compressed(tmp, **all_arrays)  # type: ignore[arg-type]
    os.replace(tmp, weights)
    vocab_path = target / VOCABULARY
    vocab_path.write_text(
        _compact_json({"note": "for people: not read when deciding", **(terms or {})}) + "\n",
        encoding="utf-8",
    )
    from mm_litellm import __version__

    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_by": f"mm-litellm {__version__}",
        **info,
        "models": list(models),
        "features": vocabulary.settings.as_dict(),
        "shape_features": list(SHAPE_FEATURES),
        "learner": dict(learner),
        "cost_model": {m: cost_model[m].as_dict() for m in models},
        "arrays": {name: {"dtype": str(a.dtype), "shape": list(a.shape)} for name, a in all_arrays.items()},
        "files": {WEIGHTS: _sha256(weights), VOCABULARY: _sha256(vocab_path)},
    }
    tmp_manifest = target / (MANIFEST + ".tmp")
    tmp_manifest.write_text(json.dumps(manifest, indent=2, default=_json_default) + "\n", encoding="utf-8")
    os.replace(tmp_manifest, manifest_path)
    return target


def _compact_json(data: Mapping[str, Any]) -> str:
    """JSON with one line per innermost mapping (readable in a diff, small on disk)."""

    def dump(value: Any, depth: int) -> str:
        if isinstance(value, Mapping) and any(isinstance(v, Mapping) for v in value.values()):
            pad = "  " * (depth + 1)
            items = [
                f"{pad}{json.dumps(str(k), ensure_ascii=False)}: {dump(v, depth + 1)}"
                for k, v in value.items()
            ]
            return "{\n" + ",\n".join(items) + "\n" + "  " * depth + "}"
        return json.dumps(value, ensure_ascii=False)

    return dump(data, 0)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# --- loading ---------------------------------------------------------------------------------

_CACHE: dict[tuple[Any, ...], Router] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 8


def _signature(path: Path) -> tuple[Any, ...]:
    out: list[Any] = [str(path)]
    for name in (MANIFEST, WEIGHTS):
        try:
            st = os.stat(path / name)
        except OSError:
            out.append(None)
        else:
            out.append((st.st_mtime_ns, st.st_size))
    return tuple(out)


def artifact_files(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The files whose change means a new artifact (what hot reload watches)."""
    root = _root(Path(path))
    return root / MANIFEST, root / WEIGHTS


def _root(path: Path) -> Path:
    return path.parent if path.name == MANIFEST else path


def load_router(path: str | os.PathLike[str]) -> Router:
    """Load (or reuse, while its files are unchanged) the artifact at ``path`` (its directory).

    Raises :class:`ArtifactError` for a missing, corrupted, foreign or too-new artifact.
    """
    root = _root(Path(path)).resolve()
    key = _signature(root)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    router = _load(root)
    with _CACHE_LOCK:
        for stale in [k for k in _CACHE if k[0] == key[0]]:
            del _CACHE[stale]
        while len(_CACHE) >= _CACHE_SIZE:
            del _CACHE[next(iter(_CACHE))]
        _CACHE[key] = router
    return router


def _fail(root: Path, message: str) -> ArtifactError:
    return ArtifactError(f"router artifact {root}: {message}")


def _load(root: Path) -> Router:
    manifest_path = root / MANIFEST
    if not root.is_dir():
        raise _fail(root, "no such directory (train one with: mm-litellm router train --out DIR)")
    try:
        size = manifest_path.stat().st_size
    except OSError:
        raise _fail(
            root, f"no {MANIFEST}: not a mm-litellm router (train one with mm-litellm router train)"
        ) from None
    if size > _MAX_MANIFEST_BYTES:
        raise _fail(root, f"{MANIFEST} is {size} bytes: too large for a router manifest")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(root, f"{MANIFEST} is not valid JSON ({exc}): corrupted or not a router") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise _fail(root, f"{MANIFEST} has format {found!r}, not {FORMAT!r}: a foreign file, not a router")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _fail(root, "format_version missing or not an integer")
    if version > FORMAT_VERSION:
        raise _fail(
            root,
            f"format version {version} was written by a newer mm_litellm ({manifest.get('created_by')}); "
            f"this one reads version {FORMAT_VERSION}: upgrade mm_litellm or retrain",
        )
    _check_manifest(root, manifest)
    for name, expected in manifest["files"].items():
        file = root / name
        if not file.is_file():
            raise _fail(root, f"{name} is missing")
        if _sha256(file) != expected:
            raise _fail(
                root,
                f"{name} does not match the SHA-256 in {MANIFEST}: the file was truncated or changed "
                "after training; restore it or retrain",
            )
    try:
        with np.load(root / WEIGHTS, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except ValueError as exc:  # an object array needs pickle: refused
        raise _fail(root, f"{WEIGHTS} holds an array that needs pickle to load; refused ({exc})") from None
    except Exception as exc:  # zipfile.BadZipFile, OSError, EOFError...
        raise _fail(root, f"{WEIGHTS} cannot be read as numpy arrays ({type(exc).__name__}: {exc})") from None
    _check_arrays(root, manifest, arrays)
    try:
        return Router(root, manifest, arrays)
    except (KeyError, ValueError, TypeError) as exc:
        raise _fail(root, f"inconsistent artifact ({exc})") from None


def _check_manifest(root: Path, manifest: Mapping[str, Any]) -> None:
    for key, kind in (
        ("models", list),
        ("features", dict),
        ("learner", dict),
        ("cost_model", dict),
        ("files", dict),
        ("arrays", dict),
    ):
        if not isinstance(manifest.get(key), kind):
            raise _fail(root, f"{MANIFEST}: '{key}' missing or not a {kind.__name__}")
    models = manifest["models"]
    if not models or not all(isinstance(m, str) and m for m in models) or len(set(models)) != len(models):
        raise _fail(root, f"{MANIFEST}: 'models' must be a list of distinct model names")
    if WEIGHTS not in manifest["files"]:
        raise _fail(root, f"{MANIFEST}: 'files' does not list {WEIGHTS}")
    for name in manifest["files"]:
        if not isinstance(name, str) or Path(name).name != name or name.startswith("."):
            raise _fail(root, f"{MANIFEST}: file name {name!r} is not a plain file name in the artifact")
    try:
        FeatureSettings.from_dict(manifest["features"])
    except (TypeError, ValueError) as exc:
        raise _fail(root, f"{MANIFEST}: features: {exc}") from None
    learner = manifest["learner"]
    if learner.get("kind") not in LEARNERS:
        raise _fail(
            root, f"{MANIFEST}: unknown learner {learner.get('kind')!r}; known: {', '.join(LEARNERS)}"
        )
    if learner["kind"] == "knn" and not (isinstance(learner.get("k"), int) and learner["k"] > 0):
        raise _fail(root, f"{MANIFEST}: a knn learner needs a positive integer 'k'")
    try:
        embedding = EmbeddingSpec.from_manifest(manifest.get("embeddings"))
    except ValueError as exc:
        raise _fail(root, f"{MANIFEST}: {exc}") from None
    if embedding is not None and learner["kind"] != "logistic":
        raise _fail(
            root, f"{MANIFEST}: embeddings are read by the logistic learner only, not {learner['kind']}"
        )
    missing = [m for m in models if not isinstance(manifest["cost_model"].get(m), dict)]
    if missing:
        raise _fail(root, f"{MANIFEST}: no cost model for {', '.join(missing)}")
    for m in models:
        c = manifest["cost_model"][m]
        for key in ("base_usd", "per_token_usd"):
            v = c.get(key)
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
                raise _fail(root, f"{MANIFEST}: cost_model.{m}.{key} must be a non-negative number")


_REQUIRED: dict[str, dict[str, Any]] = {
    "logistic": {"coef": np.floating, "intercept": np.floating},
    "knn": {
        "train_indptr": np.integer,
        "train_indices": np.integer,
        "train_data": np.floating,
        "train_scores": np.floating,
    },
}


def _check_arrays(root: Path, manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    kind = manifest["learner"]["kind"]
    required: dict[str, Any] = {
        "buckets": np.integer,
        "idf": np.floating,
        "shape_mean": np.floating,
        "shape_scale": np.floating,
        **_REQUIRED[kind],
    }
    for name, dtype in required.items():
        if name not in arrays:
            raise _fail(root, f"{WEIGHTS} has no array '{name}'")
        if not np.issubdtype(arrays[name].dtype, dtype):
            raise _fail(root, f"{WEIGHTS}: '{name}' has dtype {arrays[name].dtype}")
        if np.issubdtype(arrays[name].dtype, np.floating) and not np.isfinite(arrays[name]).all():
            raise _fail(root, f"{WEIGHTS}: '{name}' holds NaN or infinite values")
    settings = FeatureSettings.from_dict(manifest["features"])
    buckets = arrays["buckets"]
    n, m = len(buckets), len(manifest["models"])
    if buckets.ndim != 1 or arrays["idf"].shape != (n,):
        raise _fail(root, f"{WEIGHTS}: 'buckets' and 'idf' must be vectors of one length")
    if n and (buckets[0] < 0 or buckets[-1] >= 2 << settings.bits or np.any(np.diff(buckets) <= 0)):
        raise _fail(root, f"{WEIGHTS}: 'buckets' must be increasing ids below 2**(bits+1)")
    ids = arrays.get("train_ids")
    if ids is not None:
        if ids.ndim != 1 or ids.dtype != np.uint64 or np.any(np.diff(ids) <= 0):
            raise _fail(root, f"{WEIGHTS}: 'train_ids' must be increasing 64-bit digests")
        oof = arrays.get("train_oof")
        if oof is not None and (oof.shape != (len(ids), m) or not np.isfinite(oof).all()):
            raise _fail(
                root, f"{WEIGHTS}: 'train_oof' must be finite, one row per train id and a column per model"
            )
    shape_n = len(SHAPE_FEATURES)
    if arrays["shape_mean"].shape != (shape_n,) or arrays["shape_scale"].shape != (shape_n,):
        raise _fail(root, f"{WEIGHTS}: shape scaling must have {shape_n} values")
    if np.any(arrays["shape_scale"] <= 0):
        raise _fail(root, f"{WEIGHTS}: 'shape_scale' must be positive")
    if kind == "logistic":
        embedding = EmbeddingSpec.from_manifest(manifest.get("embeddings"))
        dim = embedding.dimension if embedding is not None else 0
        if arrays["coef"].shape != (n + shape_n + dim, m) or arrays["intercept"].shape != (m,):
            raise _fail(
                root,
                f"{WEIGHTS}: 'coef' must be ({n + shape_n + dim}, {m}) and 'intercept' ({m},) for "
                f"{n} n-gram features, {shape_n} shape counts, {dim} embedding dimensions (manifest) and "
                f"{m} models; 'coef' is {arrays['coef'].shape}: the manifest and the weights disagree",
            )
    else:
        indptr, indices = arrays["train_indptr"], arrays["train_indices"]
        rows = len(indptr) - 1
        if (
            indptr.ndim != 1
            or rows < 1
            or indptr[0] != 0
            or np.any(np.diff(indptr) < 0)
            or indptr[-1] != len(indices)
            or arrays["train_data"].shape != indices.shape
            or arrays["train_scores"].shape != (rows, m)
            or (len(indices) and (indices.min() < 0 or indices.max() >= n))
        ):
            raise _fail(root, f"{WEIGHTS}: the knn training matrix is inconsistent")
