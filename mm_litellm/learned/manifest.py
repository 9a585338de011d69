"""The format of a router artifact: its file names and version, and the checks that refuse a bad one.

A reader trusts nothing it reads: :func:`read_manifest` refuses a manifest that is too large, not
JSON, foreign, from a newer version or incomplete, and :func:`check_arrays` refuses arrays that do
not match it, each with :class:`ArtifactError` saying which file and why. Writing and loading the
files is :mod:`mm_litellm.learned.artifact`; what the arrays decide is
:mod:`mm_litellm.learned.router`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mm_litellm.errors import MMLiteLLMError
from mm_litellm.learned.embeddings import EmbeddingSpec
from mm_litellm.learned.text import SHAPE_FEATURES, FeatureSettings

__all__ = [
    "CALIBRATION",
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "VOCABULARY",
    "WEIGHTS",
    "ArtifactError",
    "check_arrays",
    "id_hash",
    "read_manifest",
]

FORMAT = "mm-litellm-router"
FORMAT_VERSION = 2
"""2: predictions are shrunk toward each model's mean (``calibration_mean`` and
``calibration_factor`` in the weights) and the manifest records the train split's mean input size
(``data.mean_input_tokens``, for leaving out dominated candidates). Version 1 artifacts still load,
without either."""
CALIBRATION = ("calibration_mean", "calibration_factor")
MANIFEST = "manifest.json"
WEIGHTS = "weights.npz"
VOCABULARY = "vocabulary.json"
LEARNERS = ("logistic", "knn")
_MAX_MANIFEST_BYTES = 16 << 20


class ArtifactError(MMLiteLLMError, ValueError):
    """A router artifact cannot be used: missing, corrupted, foreign, or from a newer version."""


def id_hash(ids: Sequence[str], *, sort: bool = True) -> np.ndarray:
    """64-bit digests of row ids (sorted and unique unless ``sort=False``): a router stores those of
    its train rows, so an evaluation knows which rows it was trained on."""
    values = np.array(
        [int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8).digest(), "big") for i in ids],
        dtype=np.uint64,
    )
    return np.unique(values) if sort else values


def fail(root: Path, message: str) -> ArtifactError:
    """The error refusing the artifact at ``root``, naming it."""
    return ArtifactError(f"router artifact {root}: {message}")


def read_manifest(root: Path) -> dict[str, Any]:
    """The manifest of the artifact directory ``root``, once it has passed every check."""
    manifest_path = root / MANIFEST
    if not root.is_dir():
        raise fail(root, "no such directory (train one with: mm-litellm router train --out DIR)")
    try:
        size = manifest_path.stat().st_size
    except OSError:
        raise fail(
            root, f"no {MANIFEST}: not a mm-litellm router (train one with mm-litellm router train)"
        ) from None
    if size > _MAX_MANIFEST_BYTES:
        raise fail(root, f"{MANIFEST} is {size} bytes: too large for a router manifest")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise fail(root, f"{MANIFEST} is not valid JSON ({exc}): corrupted or not a router") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise fail(root, f"{MANIFEST} has format {found!r}, not {FORMAT!r}: a foreign file, not a router")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise fail(root, "format_version missing or not an integer")
    if version > FORMAT_VERSION:
        raise fail(
            root,
            f"format version {version} was written by a newer mm_litellm ({manifest.get('created_by')}); "
            f"this one reads version {FORMAT_VERSION}: upgrade mm_litellm or retrain",
        )
    _check_manifest(root, manifest)
    return manifest


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
            raise fail(root, f"{MANIFEST}: '{key}' missing or not a {kind.__name__}")
    models = manifest["models"]
    if not models or not all(isinstance(m, str) and m for m in models) or len(set(models)) != len(models):
        raise fail(root, f"{MANIFEST}: 'models' must be a list of distinct model names")
    if WEIGHTS not in manifest["files"]:
        raise fail(root, f"{MANIFEST}: 'files' does not list {WEIGHTS}")
    for name in manifest["files"]:
        if not isinstance(name, str) or Path(name).name != name or name.startswith("."):
            raise fail(root, f"{MANIFEST}: file name {name!r} is not a plain file name in the artifact")
    try:
        FeatureSettings.from_dict(manifest["features"])
    except (TypeError, ValueError) as exc:
        raise fail(root, f"{MANIFEST}: features: {exc}") from None
    learner = manifest["learner"]
    if learner.get("kind") not in LEARNERS:
        raise fail(root, f"{MANIFEST}: unknown learner {learner.get('kind')!r}; known: {', '.join(LEARNERS)}")
    if learner["kind"] == "knn" and not (isinstance(learner.get("k"), int) and learner["k"] > 0):
        raise fail(root, f"{MANIFEST}: a knn learner needs a positive integer 'k'")
    try:
        embedding = EmbeddingSpec.from_manifest(manifest.get("embeddings"))
    except ValueError as exc:
        raise fail(root, f"{MANIFEST}: {exc}") from None
    if embedding is not None and learner["kind"] != "logistic":
        raise fail(
            root, f"{MANIFEST}: embeddings are read by the logistic learner only, not {learner['kind']}"
        )
    if manifest["format_version"] >= 2:
        data = manifest.get("data")
        tokens = data.get("mean_input_tokens") if isinstance(data, dict) else None
        if not isinstance(tokens, int | float) or isinstance(tokens, bool) or not 0 <= tokens < math.inf:
            raise fail(root, f"{MANIFEST}: data.mean_input_tokens must be a non-negative number (version 2)")
    missing = [m for m in models if not isinstance(manifest["cost_model"].get(m), dict)]
    if missing:
        raise fail(root, f"{MANIFEST}: no cost model for {', '.join(missing)}")
    for m in models:
        c = manifest["cost_model"][m]
        for key in ("base_usd", "per_token_usd"):
            v = c.get(key)
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
                raise fail(root, f"{MANIFEST}: cost_model.{m}.{key} must be a non-negative number")


_REQUIRED: dict[str, dict[str, Any]] = {
    "logistic": {"coef": np.floating, "intercept": np.floating},
    "knn": {
        "train_indptr": np.integer,
        "train_indices": np.integer,
        "train_data": np.floating,
        "train_scores": np.floating,
    },
}


def check_arrays(root: Path, manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    """Refuse arrays that do not match the manifest: missing, of another dtype or shape, not finite."""
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
            raise fail(root, f"{WEIGHTS} has no array '{name}'")
        if not np.issubdtype(arrays[name].dtype, dtype):
            raise fail(root, f"{WEIGHTS}: '{name}' has dtype {arrays[name].dtype}")
        if np.issubdtype(arrays[name].dtype, np.floating) and not np.isfinite(arrays[name]).all():
            raise fail(root, f"{WEIGHTS}: '{name}' holds NaN or infinite values")
    settings = FeatureSettings.from_dict(manifest["features"])
    buckets = arrays["buckets"]
    n, m = len(buckets), len(manifest["models"])
    if buckets.ndim != 1 or arrays["idf"].shape != (n,):
        raise fail(root, f"{WEIGHTS}: 'buckets' and 'idf' must be vectors of one length")
    if n and (buckets[0] < 0 or buckets[-1] >= 2 << settings.bits or np.any(np.diff(buckets) <= 0)):
        raise fail(root, f"{WEIGHTS}: 'buckets' must be increasing ids below 2**(bits+1)")
    ids = arrays.get("train_ids")
    if ids is not None:
        if ids.ndim != 1 or ids.dtype != np.uint64 or np.any(np.diff(ids) <= 0):
            raise fail(root, f"{WEIGHTS}: 'train_ids' must be increasing 64-bit digests")
        oof = arrays.get("train_oof")
        if oof is not None and (oof.shape != (len(ids), m) or not np.isfinite(oof).all()):
            raise fail(
                root, f"{WEIGHTS}: 'train_oof' must be finite, one row per train id and a column per model"
            )
    if manifest["format_version"] >= 2:
        for name in CALIBRATION:
            a = arrays.get(name)
            if a is None:
                raise fail(root, f"{WEIGHTS} has no array '{name}' (format version 2 needs it)")
            if not np.issubdtype(a.dtype, np.floating) or a.shape != (m,) or not np.isfinite(a).all():
                raise fail(root, f"{WEIGHTS}: '{name}' must be {m} finite numbers, one per model")
        if np.any(arrays["calibration_factor"] < 0) or np.any(arrays["calibration_factor"] > 1):
            raise fail(root, f"{WEIGHTS}: 'calibration_factor' must lie in [0, 1]")
    shape_n = len(SHAPE_FEATURES)
    if arrays["shape_mean"].shape != (shape_n,) or arrays["shape_scale"].shape != (shape_n,):
        raise fail(root, f"{WEIGHTS}: shape scaling must have {shape_n} values")
    if np.any(arrays["shape_scale"] <= 0):
        raise fail(root, f"{WEIGHTS}: 'shape_scale' must be positive")
    if kind == "logistic":
        embedding = EmbeddingSpec.from_manifest(manifest.get("embeddings"))
        dim = embedding.dimension if embedding is not None else 0
        if arrays["coef"].shape != (n + shape_n + dim, m) or arrays["intercept"].shape != (m,):
            raise fail(
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
            raise fail(root, f"{WEIGHTS}: the knn training matrix is inconsistent")
