"""Train a router on recorded outcomes: per model, the expected score of its answer to a prompt.

Needs the ``learn`` extra (scikit-learn); the artifact it writes needs only numpy to decide.

The rows and the train/test split are exactly those of ``mm-litellm policy evaluate`` (the same
loader, the same seeded split, the same pricing), so the held-out figures printed at the end of
training are what ``policy evaluate`` reports for a ``strategy: learned`` route over the same
rows. The trainer then reloads the artifact it wrote and computes those figures with it, so they
are the figures of what ships, not of an object in memory. Preparing the rows, prompts and
embeddings is :mod:`mm_litellm.learned.train_data`; the held-out figures are
:mod:`mm_litellm.learned.heldout`; this module fits and writes.

Learners (measured on ``shared/data/routing``, test split, seed 0: see docs/routing.md):

- ``logistic`` (default): one L2-regularised logistic regression per model over TF-IDF word
  1-2-grams and shape counts, with fractional labels for judged 0..1 scores (a row weighs
  ``score`` as a success and ``1 - score`` as a failure). ``C`` is chosen by 3-fold
  cross-validation on the train split (Brier score) unless given.
- embeddings (optional, ``embeddings=EmbeddingSpec(model)``; logistic only): a provider's vector
  of each prompt (through LiteLLM, cached on disk) appended to the text features.
- ``knn``: the mean score of the ``k`` most similar train prompts (cosine on the same TF-IDF).
  As good on MMLU, no better elsewhere, and 20-50x slower per decision with a much larger
  artifact (it keeps every train vector), so it is an option, not the default.

Either learner's predictions are then shrunk toward each model's mean score by a factor in [0, 1]
fitted on its out-of-fold predictions (:mod:`mm_litellm.learned.calibration`): a model the
features say nothing about gets its mean for every prompt.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from mm_litellm.evaluation.errors import EvaluationError
from mm_litellm.evaluation.table import OutcomeTable
from mm_litellm.learned import learners
from mm_litellm.learned.artifact import load_router, save_router
from mm_litellm.learned.calibration import CALIBRATION_NOTE, fit_shrinkage, shrink
from mm_litellm.learned.embeddings import EmbeddingSpec, scale
from mm_litellm.learned.heldout import heldout_report, train_view
from mm_litellm.learned.manifest import id_hash
from mm_litellm.learned.router import CostModel, Router
from mm_litellm.learned.text import SHAPE_FEATURES, FeatureSettings, Vocabulary, build_vocabulary
from mm_litellm.learned.train_data import load_rows, prompt_embeddings, prompt_texts, split_tables

__all__ = ["TrainOptions", "TrainResult", "heldout_report", "train_router"]


def _require_sklearn() -> Any:
    try:
        import sklearn  # noqa: F401
        from scipy import sparse
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise EvaluationError(
            "training a router needs scikit-learn: pip install 'mm-litellm[learn]' "
            "(deciding with a trained router needs only numpy)"
        ) from None
    return sparse


@dataclass(frozen=True)
class TrainOptions:
    """What to train on and how (the defaults are the measured choice)."""

    mapping: Mapping[str, str] = field(default_factory=dict)
    """Name in the artifact (your policy's model) -> recorded model; empty: every recorded model."""
    seed: int = 0
    test_fraction: float = 0.3
    resplit: bool = False
    prices: str | None = None
    default_completion_tokens: int | None = None
    features: FeatureSettings = field(default_factory=FeatureSettings)
    learner: str = "logistic"
    C: float | None = None
    """Inverse regularisation of the logistic learner; None: chosen by cross-validation."""
    k: int | None = None
    """Neighbours of the knn learner; None: chosen by cross-validation."""
    name: str | None = None
    embeddings: EmbeddingSpec | None = None
    """Also read each prompt's embedding from this model (through LiteLLM); None: text only."""
    embedding_api_key: str | None = None
    """Key for the embedding model (default: the provider's environment variable); never recorded."""
    embedding_cache: str | None = None
    """The persistent cache (default: ``$MM_LITELLM_EMBEDDING_CACHE`` or the user cache folder)."""
    embedding_batch: int = 64


@dataclass
class TrainResult:
    path: Path
    router: Router
    report: dict[str, Any]


def _cost_models(table: OutcomeTable, tokens: np.ndarray) -> dict[str, CostModel]:
    """Per model, recorded cost ~ base + per_token x estimated input tokens (both >= 0)."""
    out = {}
    for model in table.models:
        y = np.array(table.cost[model])
        base, slope = float(y.mean()), 0.0
        if len(y) > 2 and np.ptp(tokens) > 0:
            slope, base = (float(v) for v in np.polyfit(tokens, y, 1))
            if slope < 0:
                base, slope = float(y.mean()), 0.0
            elif base < 0:
                base, slope = 0.0, float((tokens @ y) / (tokens @ tokens))
        data_model = table.mapping[model]
        recorded = [
            tokens_ for r in table.rows if (tokens_ := r.outcomes[data_model].completion_tokens) is not None
        ]
        completion = float(sum(recorded)) / len(recorded) if recorded else None
        out[model] = CostModel(base, slope, completion)
    return out


def _file_sha(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _terms(
    vocab: Vocabulary,
    texts: Sequence[str],
    coef: np.ndarray,
    models: Sequence[str],
    best_column: int | None = None,
    top: int = 25,
) -> dict[str, Any]:
    """The n-grams with the largest weights per model, and those that most widen the gap between
    the best model (``best_column``) and each other one (strings recovered from train prompts)."""
    wanted: dict[int, str | None] = {}
    picks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    sparse = coef[: vocab.n_sparse]
    gap_picks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for j, model in enumerate(models):
        order = np.argsort(sparse[:, j])
        picks[model] = (order[::-1][:top], order[:top])
        if best_column is not None and j != best_column:
            gap = np.argsort(sparse[:, best_column] - sparse[:, j])
            gap_picks[model] = (gap[::-1][:top], gap[:top])
    for chosen in (*picks.values(), *gap_picks.values()):
        for i in (*chosen[0], *chosen[1]):
            wanted[int(vocab.buckets[i])] = None
    for text in texts[:5000]:
        if all(v is not None for v in wanted.values()):
            break
        for bucket, term in vocab.featurizer.terms(text):
            if bucket in wanted and wanted[bucket] is None:
                wanted[bucket] = term
    shape = {
        name: {m: round(float(coef[vocab.n_sparse + i, j]), 4) for j, m in enumerate(models)}
        for i, name in enumerate(SHAPE_FEATURES)
    }
    out: dict[str, Any] = {"shape_weights": shape, "top_terms": {}}
    for model, (pos, neg) in picks.items():
        j = list(models).index(model)
        out["top_terms"][model] = {
            direction: {
                str(wanted[int(vocab.buckets[i])]): round(float(sparse[i, j]), 4) for i in reversed(idx[::-1])
            }
            for direction, idx in (("raise", pos), ("lower", neg))
        }
    if gap_picks:
        reference = models[best_column] if best_column is not None else ""
        out[f"gap_vs_{reference}"] = {
            model: {
                direction: {
                    str(wanted[int(vocab.buckets[i])]): round(
                        float(sparse[i, best_column] - sparse[i, models.index(model)]), 4
                    )
                    for i in idx
                }
                for direction, idx in ((f"favour {reference}", pos), (f"favour {model}", neg))
            }
            for model, (pos, neg) in gap_picks.items()
        }
    return out


def train_router(
    data: str | Sequence[str], out: str | Path, options: TrainOptions | None = None
) -> TrainResult:
    """Fit, write the artifact to ``out``, reload it and report its held-out figures."""
    sparse = _require_sklearn()
    options = options or TrainOptions()
    if options.learner not in ("logistic", "knn"):
        raise EvaluationError(f"unknown learner '{options.learner}'; allowed: logistic, knn")
    if options.embeddings is not None and options.learner != "logistic":
        raise EvaluationError(
            "--embeddings works with the logistic learner only (knn compares the text vectors); "
            "drop --learner knn or --embeddings"
        )
    started = time.perf_counter()
    files = [data] if isinstance(data, str) else list(data)
    rows = load_rows(files)
    train, test, mapping, prices_path = split_tables(
        rows,
        files[0],
        mapping=options.mapping,
        seed=options.seed,
        test_fraction=options.test_fraction,
        resplit=options.resplit,
        prices=options.prices,
        default_completion_tokens=options.default_completion_tokens,
    )
    models = list(train.models)
    texts, tokens = prompt_texts(train)
    test_texts, test_tokens = prompt_texts(test)
    S = np.array([train.score[m] for m in models]).T
    vocab = build_vocabulary(texts, options.features)
    X = learners.matrix(vocab, texts, sparse)
    spec, embedded, test_embeddings = None, None, None
    if options.embeddings is not None:
        raw, spec, embedded = prompt_embeddings(
            options.embeddings,
            vocab,
            [*texts, *test_texts],
            api_key=options.embedding_api_key,
            cache_path=options.embedding_cache,
            batch_size=options.embedding_batch,
        )
        vectors = scale(raw, spec.weight)
        test_embeddings = vectors[len(texts) :]
        X = sparse.hstack([X, sparse.csr_matrix(vectors[: len(texts)].astype(np.float64))]).tocsr()
    # models that stand in for the same recorded model share one fit
    distinct: dict[str, list[int]] = {}
    for j, m in enumerate(models):
        distinct.setdefault(mapping[m], []).append(j)
    columns = [js[0] for js in distinct.values()]
    learner: dict[str, Any] = {"kind": options.learner}
    arrays: dict[str, np.ndarray] = {}
    selection: dict[str, Any] = {}
    if options.learner == "logistic":
        C = options.C
        if C is None:
            scores = learners.cv_logistic(X, S, columns, options.seed, sparse)
            C = learners.one_standard_error(scores, sorted(scores))  # smallest C: the most regularised
            selection = {"by": learners.CV_NOTE, "scores": scores}
        coef = np.zeros((X.shape[1], len(models)))
        intercept = np.zeros(len(models))
        for js in distinct.values():
            w, b = learners.fit_logistic(X, S[:, js[0]], C, sparse)
            for j in js:
                coef[:, j], intercept[j] = w, b
        learner["C"] = C
        arrays = {"coef": coef.astype(np.float32), "intercept": intercept.astype(np.float32)}
        terms = _terms(vocab, texts, coef, list(models), best_column=int(S.mean(axis=0).argmax()))
        oof = learners.oof_logistic(X, S, distinct, C, options.seed, sparse)
    else:
        k = options.k
        if k is None:
            scores_k = learners.cv_knn(X, S, options.seed, vocab.n_sparse)
            k = learners.one_standard_error(
                scores_k, sorted(scores_k, reverse=True)
            )  # largest k: the smoothest
            selection = {"by": learners.CV_NOTE, "scores": scores_k}
        Xs = X[:, : vocab.n_sparse].tocsr()
        learner["k"] = int(k)
        arrays = {
            "train_indptr": Xs.indptr.astype(np.int64),
            "train_indices": Xs.indices.astype(np.int32),
            "train_data": Xs.data.astype(np.float32),
            "train_scores": S.astype(np.float32),
        }
        terms = {}
        oof = learners.oof_knn(X, S, int(k), options.seed, vocab.n_sparse)
    learner["selection"] = selection
    # noisy per-prompt predictions are shrunk toward each model's mean, by their measured worth
    mean, factor = fit_shrinkage(oof, S)
    oof = shrink(oof, mean, factor)  # stored as the router predicts: corrected
    arrays["calibration_mean"], arrays["calibration_factor"] = mean, factor
    learner["calibration"] = {
        "by": CALIBRATION_NOTE,
        "mean": {m: round(float(mean[j]), 4) for j, m in enumerate(models)},
        "factor": {m: round(float(factor[j]), 4) for j, m in enumerate(models)},
    }
    hashed = id_hash([r.id for r in train.rows], sort=False)
    order = np.argsort(hashed, kind="stable")
    if len(np.unique(hashed)) != len(hashed):
        raise EvaluationError("two train row ids have the same 64-bit digest; rename one")
    arrays["train_ids"] = hashed[order]
    arrays["train_oof"] = oof[order].astype(np.float32)
    cost = _cost_models(train, tokens)
    fitted = time.perf_counter() - started
    info = {
        "name": options.name or Path(out).name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": {
            "files": [{"path": str(f), "sha256": _file_sha(str(f))} for f in files],
            "mapping": mapping,
            "prices": prices_path,
            "split": {
                "seed": options.seed,
                "test_fraction": options.test_fraction,
                "resplit": options.resplit,
            },
            "train_rows": len(train),
            "test_rows": len(test),
            "mean_input_tokens": float(tokens.mean()) if len(tokens) else 0.0,
            "rows_dropped": {"train": dict(train.dropped), "test": dict(test.dropped)},
            "train_ids_sha256": hashlib.sha256(
                "\n".join(sorted(r.id for r in train.rows)).encode()
            ).hexdigest(),
        },
        "input": "the last user message (as the task classifier reads it); no labels or metadata",
        "embeddings": spec.as_manifest() if spec is not None else {"used": False},
        "out_of_fold": "train_oof: 3-fold out-of-fold predictions for the train rows (train_ids), "
        "shrunk as the router shrinks its predictions, so that an evaluation or calibration on the "
        "train split sees predictions made without each row",
    }
    path = save_router(
        out,
        models=models,
        vocabulary=vocab,
        learner=learner,
        arrays=arrays,
        cost_model=cost,
        info=info,
        terms=terms,
    )
    router = load_router(path)
    report: dict[str, Any] = {
        "artifact": str(path),
        "models": models,
        "mapping": mapping,
        "learner": learner,
        "features": {"settings": vocab.settings.as_dict(), "kept": vocab.n_sparse},
        "embeddings": embedded,
        "train_rows": len(train),
        "test_rows": len(test),
        "cost_model": {m: c.as_dict() for m, c in cost.items()},
        "test": heldout_report(
            router,
            test,
            test_texts,
            test_tokens,
            train=train_view(router, train, tokens, arrays["train_oof"], order),
            embeddings=test_embeddings,
        ),
        "seconds": {"fit": round(fitted, 2), "total": 0.0},
    }
    report["seconds"]["total"] = round(time.perf_counter() - started, 2)
    _write_metrics(path, report)
    return TrainResult(path, load_router(path), report)


def _write_metrics(path: Path, report: Mapping[str, Any]) -> None:
    """Add the held-out figures to the manifest (checksums of the other files are unchanged)."""
    import json
    import os

    manifest_path = path / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    test = dict(report["test"])
    test.pop("curve", None)
    manifest["metrics"] = {"test": test, "seconds": report["seconds"]}
    tmp = manifest_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, manifest_path)
