"""Train a router on recorded outcomes: per model, the expected score of its answer to a prompt.

Needs the ``learn`` extra (scikit-learn); the artifact it writes needs only numpy to decide.

The rows and the train/test split are exactly those of ``mm-litellm policy evaluate`` (the same
loader, the same seeded split, the same pricing), so the held-out figures printed at the end of
training are what ``policy evaluate`` reports for a ``strategy: learned`` route over the same
rows. The trainer then reloads the artifact it wrote and computes those figures with it, so they
are the figures of what ships, not of an object in memory.

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

from mm_litellm.errors import MMLiteLLMError
from mm_litellm.evaluation.baselines import compute_baselines
from mm_litellm.evaluation.dataset import OutcomeRow, load_dataset
from mm_litellm.evaluation.errors import EvaluationError
from mm_litellm.evaluation.metrics import aiq
from mm_litellm.evaluation.prices import load_pinned_prices
from mm_litellm.evaluation.table import OutcomeTable, build_table, select_split
from mm_litellm.learned import learners
from mm_litellm.learned.artifact import CostModel, Router, id_hash, load_router, save_router
from mm_litellm.learned.decide import choose_many, lambda_grid
from mm_litellm.learned.embeddings import EmbeddingSpec, EmbeddingUnavailable, embed_texts, scale
from mm_litellm.learned.text import SHAPE_FEATURES, FeatureSettings, Vocabulary, build_vocabulary
from mm_litellm.routing.classifier import request_text
from mm_litellm.routing.features import estimate_tokens

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


def _tables(
    rows: Sequence[OutcomeRow], options: TrainOptions, data: str
) -> tuple[OutcomeTable, OutcomeTable, dict[str, str], str | None]:
    mapping = _mapping(rows, options.mapping)
    prices_path = options.prices or _beside(data, "prices_pinned.json")
    prices = load_pinned_prices(prices_path) if prices_path else None
    out = []
    for split in ("train", "test"):
        chosen = select_split(
            rows, split, seed=options.seed, test_fraction=options.test_fraction, resplit=options.resplit
        )
        if not chosen:
            hint = (
                "" if options.resplit else " (the rows carry their own split; --resplit assigns a seeded one)"
            )
            raise EvaluationError(f"no rows in split '{split}' of {data}{hint}")
        out.append(
            build_table(
                chosen, mapping, prices=prices, default_completion_tokens=options.default_completion_tokens
            )
        )
    return out[0], out[1], mapping, prices_path


def _texts(table: OutcomeTable) -> tuple[list[str], np.ndarray]:
    texts, tokens = [], []
    for row in table.rows:
        chat = row.chat()
        texts.append(request_text(chat))
        tokens.append(estimate_tokens(chat)[0])
    return texts, np.array(tokens, dtype=np.float64)


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


def _embeddings(
    options: TrainOptions, vocab: Vocabulary, texts: Sequence[str]
) -> tuple[np.ndarray, EmbeddingSpec, dict[str, Any]]:
    """Raw vectors of ``texts`` (cache first, then LiteLLM in batches), the spec, what it cost."""
    from mm_litellm.integrations.embeddings import fetch_embeddings
    from mm_litellm.learned.embedding_cache import EmbeddingCache, default_cache_path

    spec = options.embeddings
    assert spec is not None
    costs: list[float | None] = []

    def fetch(s: EmbeddingSpec, batch: Sequence[str]) -> np.ndarray:
        vectors, usd = fetch_embeddings(
            s, batch, api_key=options.embedding_api_key, timeout=120, num_retries=2
        )
        costs.append(usd)
        return vectors

    cache = EmbeddingCache(options.embedding_cache or default_cache_path())
    try:
        window = vocab.featurizer.window
        raw, spec, stats = embed_texts(
            spec, [window(t) for t in texts], fetch, cache, options.embedding_batch
        )
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


def _predict_table(
    router: Router,
    table: OutcomeTable,
    texts: Sequence[str],
    tokens: np.ndarray,
    embeddings: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
    models = list(table.models)
    cols = [router.column(m) for m in models]
    Q = router.predict_many(texts, embeddings)[:, cols]
    C_hat = np.stack([router.expected_costs(t)[cols] for t in tokens])
    S = np.array([table.score[m] for m in models]).T
    C = np.array([table.cost[m] for m in models]).T
    return Q, C_hat, S, C


def _curve(
    Q: np.ndarray, C_hat: np.ndarray, S: np.ndarray, C: np.ndarray, lambdas: Sequence[float]
) -> list[tuple[float, float, float]]:
    rows = np.arange(len(S))
    points = []
    for lam in lambdas:
        pick = choose_many(Q, C_hat, lam, None)
        points.append((float(C[rows, pick].mean() * 1000), float(S[rows, pick].mean()), float(lam)))
    return points


def _best_quality(points: Sequence[tuple[float, float, float]]) -> tuple[float, float, float]:
    return max(points, key=lambda p: (p[1], -p[0]))


def _lowest_cost(points: Sequence[tuple[float, float, float]]) -> tuple[float, float, float]:
    return min(points, key=lambda p: (p[0], -p[1]))


def heldout_report(
    router: Router,
    table: OutcomeTable,
    texts: Sequence[str],
    tokens: np.ndarray,
    train: tuple[np.ndarray, ...] | None = None,
    embeddings: np.ndarray | None = None,
) -> dict[str, Any]:
    """Routing figures of ``router`` on ``table``: the lambda curve beside the baselines.

    ``train``: (out-of-fold predictions, expected costs, scores, costs) on the train split; lambda
    is then also fitted there for two targets and reported on ``table``, as ``policy calibrate`` does.
    ``embeddings``: the rows' scaled vectors, for a router trained with embeddings.
    """
    models = list(table.models)
    Q, C_hat, S, C = _predict_table(router, table, texts, tokens, embeddings)
    base = compute_baselines(table)
    cw, cs = base.cheapest.cost_per_1k, base.strongest.cost_per_1k
    qs = base.strongest.quality
    points = _curve(Q, C_hat, S, C, lambda_grid(Q, C_hat, 80))
    singles = [(float(C[:, j].mean() * 1000), float(S[:, j].mean())) for j in range(len(models))]

    def point(c: float, q: float, lam: float) -> dict[str, Any]:
        return {
            "lambda": lam,
            "quality": q,
            "cost_per_1k": c,
            "quality_vs_strongest": q / qs if qs else None,
            "cost_vs_strongest": c / cs if cs else None,
        }

    def best(limit: float) -> dict[str, Any] | None:
        ok = [p for p in points if p[0] <= limit + 1e-12]
        return point(*max(ok, key=lambda p: (p[1], -p[0]))) if ok else None

    reach = [p for p in points if p[1] >= 0.95 * qs - 1e-12]
    mse = {m: float(((Q[:, j] - S[:, j]) ** 2).mean()) for j, m in enumerate(models)}
    report: dict[str, Any] = {
        "rows": len(S),
        "aiq": aiq([(c, q) for c, q, _ in points], cw, cs),
        "aiq_random": aiq([(cw, base.cheapest.quality), (cs, qs)], cw, cs),
        "aiq_single_models": aiq(singles, cw, cs),
        "aiq_oracle": aiq(
            [(cw, base.cheapest.quality), (base.oracle.cost_per_1k, base.oracle.quality)], cw, cs
        ),
        "always_cheapest": {"model": base.cheapest_model, **base.cheapest.as_dict()},
        "always_strongest": {"model": base.strongest_model, **base.strongest.as_dict()},
        "oracle": base.oracle.as_dict(),
        "best_within_50pct_cost": best(0.5 * cs),
        "best_within_45pct_cost": best(0.45 * cs),
        "cheapest_95pct_quality": point(*min(reach, key=lambda p: p[0])) if reach else None,
        "brier": mse,
        "mean_predicted": {m: float(Q[:, j].mean()) for j, m in enumerate(models)},
        "mean_recorded": {m: float(S[:, j].mean()) for j, m in enumerate(models)},
        "curve": [{"lambda": lam, "quality": q, "cost_per_1k": c} for c, q, lam in points],
    }
    if train is not None:
        tQ, tC_hat, tS, tC = train
        tb_q, tb_c = max((tS[:, j].mean(), -tC[:, j].mean()) for j in range(tS.shape[1]))
        strong_q, strong_c = float(tb_q), float(-tb_c * 1000)
        grid = lambda_grid(tQ, tC_hat, 80)
        train_points = _curve(tQ, tC_hat, tS, tC, grid)
        fitted: dict[str, Any] = {}
        targets: list[tuple[str, bool, float]] = [
            ("cost <= 50%", True, 0.5 * strong_c),
            ("cost <= 45%", True, 0.45 * strong_c),
            ("quality >= 95%", False, 0.95 * strong_q),
        ]
        for label, by_cost, limit in targets:
            if by_cost:
                eligible = [p for p in train_points if p[0] <= limit]
                chosen = _best_quality(eligible) if eligible else None
            else:
                eligible = [p for p in train_points if p[1] >= limit]
                chosen = _lowest_cost(eligible) if eligible else None
            if chosen is not None:
                fitted[label] = point(*_curve(Q, C_hat, S, C, [chosen[2]])[0])
        report["fitted_on_train"] = fitted
    return report


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
    rows: list[OutcomeRow] = []
    seen: set[str] = set()
    for f in files:
        for row in load_dataset(f):
            if row.id in seen:
                raise EvaluationError(f"{f}: row id '{row.id}' appears in more than one data file")
            seen.add(row.id)
            rows.append(row)
    train, test, mapping, prices_path = _tables(rows, options, files[0])
    models = list(train.models)
    texts, tokens = _texts(train)
    test_texts, test_tokens = _texts(test)
    S = np.array([train.score[m] for m in models]).T
    vocab = build_vocabulary(texts, options.features)
    X = learners.matrix(vocab, texts, sparse)
    spec, embedded, test_embeddings = None, None, None
    if options.embeddings is not None:
        raw, spec, embedded = _embeddings(options, vocab, [*texts, *test_texts])
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
            "rows_dropped": {"train": dict(train.dropped), "test": dict(test.dropped)},
            "train_ids_sha256": hashlib.sha256(
                "\n".join(sorted(r.id for r in train.rows)).encode()
            ).hexdigest(),
        },
        "input": "the last user message (as the task classifier reads it); no labels or metadata",
        "embeddings": spec.as_manifest() if spec is not None else {"used": False},
        "out_of_fold": "train_oof: 3-fold out-of-fold predictions for the train rows (train_ids), so "
        "that an evaluation or calibration on the train split sees predictions made without each row",
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
            train=_train_view(router, train, tokens, arrays["train_oof"], order),
            embeddings=test_embeddings,
        ),
        "seconds": {"fit": round(fitted, 2), "total": 0.0},
    }
    report["seconds"]["total"] = round(time.perf_counter() - started, 2)
    _write_metrics(path, report)
    return TrainResult(path, load_router(path), report)


def _train_view(
    router: Router, table: OutcomeTable, tokens: np.ndarray, oof_sorted: np.ndarray, order: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Out-of-fold predictions, expected and recorded costs, scores of the train rows (table order)."""
    oof = np.empty_like(oof_sorted, dtype=np.float64)
    oof[order] = oof_sorted
    models = list(table.models)
    cols = [router.column(m) for m in models]
    C_hat = np.stack([router.expected_costs(t)[cols] for t in tokens])
    S = np.array([table.score[m] for m in models]).T
    C = np.array([table.cost[m] for m in models]).T
    return oof[:, cols], C_hat, S, C


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
