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

This module writes and reads the files (and keeps recently loaded routers); the format and the
checks that refuse a bad artifact are :mod:`mm_litellm.learned.manifest`, the loaded router
:mod:`mm_litellm.learned.router`.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mm_litellm.learned.manifest import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    VOCABULARY,
    WEIGHTS,
    ArtifactError,
    check_arrays,
    fail,
    id_hash,
    read_manifest,
)
from mm_litellm.learned.router import CostModel, Router
from mm_litellm.learned.text import SHAPE_FEATURES, Vocabulary

# FORMAT, FORMAT_VERSION, ArtifactError, id_hash (manifest) and CostModel, Router (router) are
# also importable from here, where they were defined before the split.
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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def _load(root: Path) -> Router:
    manifest = read_manifest(root)
    for name, expected in manifest["files"].items():
        file = root / name
        if not file.is_file():
            raise fail(root, f"{name} is missing")
        if _sha256(file) != expected:
            raise fail(
                root,
                f"{name} does not match the SHA-256 in {MANIFEST}: the file was truncated or changed "
                "after training; restore it or retrain",
            )
    try:
        with np.load(root / WEIGHTS, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except ValueError as exc:  # an object array needs pickle: refused
        raise fail(root, f"{WEIGHTS} holds an array that needs pickle to load; refused ({exc})") from None
    except Exception as exc:  # zipfile.BadZipFile, OSError, EOFError...
        raise fail(root, f"{WEIGHTS} cannot be read as numpy arrays ({type(exc).__name__}: {exc})") from None
    check_arrays(root, manifest, arrays)
    try:
        return Router(root, manifest, arrays)
    except (KeyError, ValueError, TypeError) as exc:
        raise fail(root, f"inconsistent artifact ({exc})") from None
