"""``mm-litellm router train | show``: fit a learned router on recorded outcomes; inspect one.

Training needs the ``learn`` extra (scikit-learn); a ``strategy: learned`` route that uses the
artifact needs only numpy. Docs: docs/routing.md ("Learned routing").
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from mm_litellm.cli.common import fail

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "router",
        help="train a learned router on recorded outcomes, or inspect one",
        description="Learned routing: predict each model's quality from the prompt. Docs: docs/routing.md.",
    )
    verbs = p.add_subparsers(dest="router_command", metavar="COMMAND", required=True)
    t = verbs.add_parser(
        "train",
        help="fit per-model quality from prompt text; write a portable artifact; report held-out figures",
        description="Fit, for every recorded model, the expected score of its answer from the prompt's text "
        "(TF-IDF word 1-2-grams and shape counts; logistic regression, or kNN), on the train split that "
        "'mm-litellm policy evaluate' uses (same seed, same test fraction), and report the held-out test "
        "figures of the routing curve. Writes DIR/manifest.json, DIR/weights.npz and DIR/vocabulary.json. "
        "Needs: pip install 'mm-litellm[learn]'.",
    )
    t.add_argument(
        "--data",
        required=True,
        action="append",
        metavar="FILE",
        help="outcome dataset (.jsonl or .jsonl.gz; repeatable: the files are pooled)",
    )
    t.add_argument("--out", required=True, metavar="DIR", help="artifact directory, e.g. config/routers/NAME")
    t.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="POLICY_MODEL=DATASET_MODEL",
        help="name a recorded model as your policy's model (repeatable; default: every recorded model, "
        "under its own name)",
    )
    t.add_argument(
        "--eval-config",
        metavar="FILE",
        help="take models, prices, seed, test fraction and default completion tokens from an eval config",
    )
    t.add_argument("--seed", type=int, help="split seed (default: eval config, else 0)")
    t.add_argument("--test-fraction", type=float, help="share of unsplit rows held out (default 0.3)")
    t.add_argument("--resplit", action="store_true", help="ignore the rows' own split; assign a seeded one")
    t.add_argument(
        "--prices", metavar="FILE", help="pinned price table (default: prices_pinned.json beside the data)"
    )
    t.add_argument(
        "--default-completion-tokens", type=int, metavar="N", help="for outcomes that recorded none"
    )
    t.add_argument("--learner", choices=("logistic", "knn"), default="logistic", help="default: logistic")
    t.add_argument(
        "--C", type=float, dest="C", help="logistic: inverse regularisation (default: cross-validated)"
    )
    t.add_argument("--k", type=int, help="knn: neighbours (default: cross-validated)")
    t.add_argument(
        "--char-ngrams", metavar="LO,HI", help="also byte n-grams, e.g. 3,5 (default: words and bigrams only)"
    )
    t.add_argument("--min-df", type=int, help="keep n-grams seen in at least N train prompts (default 2)")
    e = t.add_argument_group(
        "embedding features (off by default)",
        "Also read each prompt's embedding, fetched through LiteLLM (paid per token; cached on disk, so "
        "retraining on the same prompts pays nothing). A policy using the router then fetches the "
        "embedding of every new prompt at decision time. Logistic learner only.",
    )
    e.add_argument(
        "--embeddings",
        metavar="MODEL",
        help="a LiteLLM embedding model, e.g. openai/text-embedding-3-small (its key: the provider's usual "
        "environment variable, e.g. OPENAI_API_KEY)",
    )
    e.add_argument(
        "--embedding-api-base", metavar="URL", help="where MODEL is served (recorded in the manifest)"
    )
    e.add_argument(
        "--embedding-api-key-env",
        metavar="VAR",
        help="read MODEL's key from this environment variable (never recorded)",
    )
    e.add_argument(
        "--embedding-dimensions",
        type=int,
        metavar="N",
        help="ask MODEL for N-value vectors (models that can)",
    )
    e.add_argument(
        "--embedding-weight",
        type=float,
        default=1.0,
        metavar="W",
        help="length of the embedding block beside the word block's 1 (default 1)",
    )
    e.add_argument(
        "--embedding-cache",
        metavar="FILE",
        help="the SQLite cache (default: $MM_LITELLM_EMBEDDING_CACHE, else "
        "~/.cache/mm-litellm/embeddings.sqlite3)",
    )
    e.add_argument("--embedding-batch", type=int, default=64, metavar="N", help="texts per call (default 64)")
    t.add_argument(
        "--compare",
        action="store_true",
        help="also train the other learner (not written) and print both held-out figures",
    )
    t.add_argument("--name", help="the router's name in its manifest (default: the directory name)")
    t.add_argument("--json", action="store_true", help="print the training report as JSON")
    t.set_defaults(handler=handle_train)
    s = verbs.add_parser(
        "show",
        help="what a router artifact holds: models, data, features, held-out figures, top n-grams",
        description="Print a router artifact's manifest summary (it is loaded and verified first).",
    )
    s.add_argument("dir", help="the artifact directory")
    s.add_argument(
        "--terms", type=int, default=8, metavar="N", help="top n-grams to show per model (default 8)"
    )
    s.add_argument("--json", action="store_true", help="print the manifest as JSON")
    s.set_defaults(handler=handle_show)


def _options(args: argparse.Namespace) -> Any:
    from mm_litellm.evaluation.config import load_eval_config, parse_mapping
    from mm_litellm.learned.text import FeatureSettings
    from mm_litellm.learned.train import TrainOptions

    config = load_eval_config(args.eval_config)
    mapping = {**config.models, **parse_mapping(args.map)}
    features = FeatureSettings()
    if args.char_ngrams:
        try:
            lo, hi = (int(v) for v in args.char_ngrams.split(","))
        except ValueError:
            fail("--char-ngrams expects LO,HI, e.g. 3,5")
        features = FeatureSettings(
            char_ngrams=(lo, hi), word_weight=0.7071067811865476, char_weight=0.7071067811865476
        )
    if args.min_df is not None:
        from dataclasses import replace

        features = replace(features, min_df=args.min_df)
    try:
        features.check()
    except ValueError as exc:
        fail(str(exc))
    embedding = _embedding_options(args)
    test_fraction = args.test_fraction if args.test_fraction is not None else config.test_fraction
    if not 0 < test_fraction < 1:
        fail("--test-fraction must be between 0 and 1")
    return TrainOptions(
        mapping=mapping,
        seed=args.seed if args.seed is not None else config.seed,
        test_fraction=test_fraction,
        resplit=args.resplit or config.resplit,
        prices=args.prices or config.prices,
        default_completion_tokens=(
            args.default_completion_tokens
            if args.default_completion_tokens is not None
            else config.default_completion_tokens
        ),
        features=features,
        learner=args.learner,
        C=args.C,
        k=args.k,
        name=args.name,
        **embedding,
    )


def _embedding_options(args: argparse.Namespace) -> dict[str, Any]:
    import math
    import os

    given = [
        f"--{name.replace('_', '-')}"
        for name in ("embedding_api_base", "embedding_api_key_env", "embedding_dimensions", "embedding_cache")
        if getattr(args, name) is not None
    ]
    if not args.embeddings:
        if given:
            fail(f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} --embeddings MODEL")
        return {}
    from mm_litellm.learned.embeddings import EmbeddingSpec

    if args.learner != "logistic":
        fail("--embeddings works with the logistic learner only (knn compares the text vectors)")
    if args.embedding_dimensions is not None and not 1 <= args.embedding_dimensions <= 65536:
        fail("--embedding-dimensions must be between 1 and 65536")
    if not math.isfinite(args.embedding_weight) or args.embedding_weight <= 0:
        fail("--embedding-weight must be a positive number")
    if args.embedding_batch < 1:
        fail("--embedding-batch must be at least 1")
    key = None
    if args.embedding_api_key_env:
        key = os.environ.get(args.embedding_api_key_env)
        if not key:
            fail(
                f"--embedding-api-key-env {args.embedding_api_key_env}: that environment variable is not set"
            )
    spec = EmbeddingSpec(
        args.embeddings,
        api_base=args.embedding_api_base,
        dimensions=args.embedding_dimensions,
        weight=args.embedding_weight,
    )
    return {
        "embeddings": spec,
        "embedding_api_key": key,
        "embedding_cache": args.embedding_cache,
        "embedding_batch": args.embedding_batch,
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def render_report(report: dict[str, Any]) -> str:
    t = report["test"]
    learner = report["learner"]
    knob = f"C={learner['C']:g}" if "C" in learner else f"k={learner['k']}"
    how = " (cross-validated)" if learner.get("selection") else ""
    mapping = ", ".join(m if d == m else f"{m} (= {d})" for m, d in report["mapping"].items())
    lines = [
        f"trained {report['artifact']}: {learner['kind']} {knob}{how} on {report['train_rows']:,} train rows "
        f"in {report['seconds']['total']:.1f} s",
        f"models:   {mapping}",
        f"features: {report['features']['kept']:,} n-gram buckets kept + shape counts"
        + _embedding_line(report.get("embeddings")),
        f"held-out test split ({t['rows']:,} rows; decisions from the router's predictions and cost model):",
        f"  AIQ {t['aiq']:.4f}   random {t['aiq_random']:.4f}, best single-model mix "
        f"{t['aiq_single_models']:.4f}, oracle {t['aiq_oracle']:.4f}",
    ]
    s = t["always_strongest"]
    lines.append(
        f"  always-strongest ({s['model']}): quality {s['quality']:.4f} at ${s['cost_per_1k']:.4f} per 1k; "
        f"always-cheapest ({t['always_cheapest']['model']}): {t['always_cheapest']['quality']:.4f} at "
        f"${t['always_cheapest']['cost_per_1k']:.4f}"
    )
    for key, label in (("best_within_50pct_cost", "50%"), ("best_within_45pct_cost", "45%")):
        p = t.get(key)
        if p:
            lines.append(
                f"  best within {label} of its cost: quality {p['quality']:.4f} "
                f"({_pct(p['quality_vs_strongest'])}) at ${p['cost_per_1k']:.4f} "
                f"({_pct(p['cost_vs_strongest'])}), lambda {p['lambda']:g}"
            )
    p = t.get("cheapest_95pct_quality")
    lines.append(
        "  95% of its quality: not reached"
        if not p
        else f"  95% of its quality from ${p['cost_per_1k']:.4f} per 1k ({_pct(p['cost_vs_strongest'])}), "
        f"lambda {p['lambda']:g}"
    )
    for label, p in (t.get("fitted_on_train") or {}).items():
        lines.append(
            f"  lambda fitted on train (out-of-fold) for {label}: {p['lambda']:g} -> on test quality "
            f"{p['quality']:.4f} ({_pct(p['quality_vs_strongest'])}) at ${p['cost_per_1k']:.4f} "
            f"({_pct(p['cost_vs_strongest'])})"
        )
    lines.append("  per model (mean predicted / recorded quality, Brier score):")
    for m in report["models"]:
        lines.append(
            f"    {m:<28} {t['mean_predicted'][m]:.3f} / {t['mean_recorded'][m]:.3f}   {t['brier'][m]:.4f}"
        )
    return "\n".join(lines)


def _embedding_line(e: dict[str, Any] | None) -> str:
    if not e:
        return ""
    cost = "cost unknown (unpriced in LiteLLM's table)" if e["cost_usd"] is None else f"${e['cost_usd']:.4f}"
    return (
        f" + {e['model']} embeddings ({e['dimension']} values): {e['fetched']:,} prompts fetched in "
        f"{e['calls']} calls ({cost}), {e['cached']:,} from the cache {e['cache']}"
    )


def handle_train(args: argparse.Namespace) -> int:
    from mm_litellm.errors import MMLiteLLMError

    try:
        from mm_litellm.learned.train import train_router

        options = _options(args)
        result = train_router(args.data, args.out, options)
        compared = None
        if args.compare:
            from dataclasses import replace

            other = "knn" if options.learner == "logistic" else "logistic"
            with tempfile.TemporaryDirectory() as tmp:
                compared = train_router(
                    args.data, Path(tmp) / "other", replace(options, learner=other)
                ).report
    except MMLiteLLMError as exc:
        fail(str(exc))
    report = result.report
    if args.json:
        out = {k: v for k, v in report.items()}
        if compared is not None:
            out["compared"] = compared
        print(json.dumps(out, indent=2, default=str))
        return 0
    print(render_report(report))
    if compared is not None:
        print("\ncompared (not written):")
        print(render_report(compared))
    best = (report["test"].get("fitted_on_train") or {}).get("cost <= 50%") or {}
    size = sum(f.stat().st_size for f in Path(report["artifact"]).iterdir() if f.is_file())
    print(
        f"\nwrote {report['artifact']} ({size / 1e6:.2f} MB). Use it in a policy route:\n"
        f"    strategy: learned\n    learned: {{artifact: PATH-RELATIVE-TO-THE-POLICY, lambda: "
        f"{best.get('lambda', 0.1):g}}}\n"
        "then fit lambda on the train split: mm-litellm policy calibrate --knob routes.ROUTE.learned.lambda "
        "--values auto ..."
    )
    return 0


def _embedding_summary(spec: Any) -> str:
    if spec is None:
        return "not used"
    where = f", api_base {spec.api_base}" if spec.api_base else ""
    return (
        f"{spec.model} ({spec.dimension} values, weight {spec.weight:g}{where}): fetched through LiteLLM "
        "for every new prompt a live request brings"
    )


def handle_show(args: argparse.Namespace) -> int:
    from mm_litellm.learned.artifact import load_router
    from mm_litellm.learned.manifest import VOCABULARY, ArtifactError

    try:
        router = load_router(args.dir)
    except ArtifactError as exc:
        fail(str(exc))
    m = router.manifest
    if args.json:
        print(json.dumps(m, indent=2))
        return 0
    data = m.get("data", {})
    split = data.get("split", {})
    lines = [
        f"{router.path}: {m.get('name')} ({m.get('created_by')}, {m.get('created_at')})",
        f"models:   {', '.join(router.models)}",
        f"learner:  {router.learner} {json.dumps({k: v for k, v in m['learner'].items() if k in 'Ck'})}",
        f"features: {json.dumps(m['features'])}",
        f"embeddings: {_embedding_summary(router.embedding)}",
        "data:     " + ", ".join(f.get("path", "?") for f in data.get("files", [])),
        f"split:    seed {split.get('seed')}, test fraction {split.get('test_fraction')}, resplit "
        f"{split.get('resplit')}: {data.get('train_rows')} train / {data.get('test_rows')} test rows",
        "cost:     "
        + "; ".join(
            f"{name} ${c.base_usd * 1000:.4f} per 1k calls + ${c.per_token_usd * 1e6:.2f} per 1M input tokens"
            for name, c in router.cost_models.items()
        ),
    ]
    test = m.get("metrics", {}).get("test")
    if test:
        lines.append(
            f"held-out: AIQ {test['aiq']:.4f} (random {test['aiq_random']:.4f}, single-model mix "
            f"{test['aiq_single_models']:.4f}, oracle {test['aiq_oracle']:.4f})"
        )
    try:
        terms = json.loads((router.path / VOCABULARY).read_text(encoding="utf-8")).get("top_terms", {})
    except (OSError, ValueError):
        terms = {}
    for model, sides in terms.items():
        for side in ("raise", "lower"):
            shown = ", ".join(list(sides.get(side, {}))[: args.terms])
            lines.append(
                f"  {model} predicted higher with: {shown}"
                if side == "raise"
                else f"  {model} predicted lower with:  {shown}"
            )
    try:
        vocab = json.loads((router.path / VOCABULARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        vocab = {}
    for key, by_model in vocab.items():
        if key.startswith("gap_vs_") and isinstance(by_model, dict):
            for _model, sides in by_model.items():
                for side, weights in sides.items():
                    lines.append(f"  {side}: {', '.join(list(weights)[: args.terms])}")
    print("\n".join(lines))
    return 0
