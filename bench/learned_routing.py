"""Learned routing on shared/data/routing: the figures docs/routing.md quotes, reproduced.

For each dataset: train a router on its train split (``mm-litellm router train``, seed 0, test
fraction 0.3, prompt text only), put it in a ``strategy: learned`` route, and replay the held-out
test split with the real routing engine (``policy evaluate``): the lambda curve's AIQ beside
random, the best mix of single models, the best rule policy and the oracle, and the points where
lambda is fitted on the train split (out-of-fold predictions) for a cost or quality target. Each
data set also gets the acceptance check of issue 17: every point of the lambda curve on or above the
single-model mix at its cost, within one test row's score (``mix_tolerance``); points under it are
printed.

"Rule policies" are every configuration the rule-based tools reach on the same rows: the
two-model policy's prompt-length threshold swept over 0-500 tokens, the example policy's
``auto`` (task classifier) and ``cheap`` routes, and always-X for each single model; their AIQ is
that of the upper hull of all those points.

    python bench/learned_routing.py [--data ../shared/data/routing] [--only mmlu,gsm8k] [--json FILE]

Takes two to three minutes on a shared 2-core machine (most of it MMLU).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import yaml

from mm_litellm import load_policy
from mm_litellm.evaluation import EvalConfig, Evaluation, load_dataset, load_eval_config
from mm_litellm.evaluation.baselines import check_above_single_mix
from mm_litellm.evaluation.calibrate import Target, calibrate_knob
from mm_litellm.evaluation.knobs import policy_from_document, read_document
from mm_litellm.evaluation.metrics import aiq
from mm_litellm.learned.evaluate import auto_values
from mm_litellm.learned.train import TrainOptions, train_router

ROOT = Path(__file__).resolve().parents[1]
TWO = {"gpt-4": "gpt-4-1106-preview", "mixtral": "mistralai/Mixtral-8x7B-Instruct-v0.1"}
SETS: dict[str, dict[str, Any]] = {
    "mmlu": {"file": "routellm_mmlu_gpt4_vs_mixtral.jsonl.gz", "completion": 1, "resplit": False},
    "gsm8k": {"file": "routellm_gsm8k_gpt4_vs_mixtral.jsonl.gz", "completion": None, "resplit": True},
    "mt-bench": {"file": "routellm_mtbench_judged.jsonl.gz", "completion": None, "resplit": False},
    "arena-bench": {"file": "arena_bench_v1_15models_judged.jsonl.gz", "completion": None, "resplit": False},
}
LENGTHS = [0, 20, 40, 60, 80, 100, 120, 160, 200, 300, 500, 100000]


def mix_tolerance(rows: int) -> float:
    """How far under the single-model mix a curve point may lie: one row's score (1/rows).

    The mix is an in-sample reference: it knows each model's mean quality on the test rows
    themselves, while the router was fitted on the train split. A point within one row's score of
    it would be on or above it had one more test row been answered right.
    """
    return 1.0 / rows


def learned_policy(models: dict[str, str], artifact: Path, lam: float) -> str:
    body = {
        "version": 1,
        "models": {
            m: {
                "litellm_params": {"model": f"openai/{d}"},
                "pricing": {"input_per_mtok": 0, "output_per_mtok": 0},
            }
            for m, d in models.items()
        },
        "routes": {
            "smart": {
                "strategy": "learned",
                "candidates": list(models),
                "learned": {"artifact": str(artifact), "lambda": lam},
            }
        },
        "default_route": "smart",
    }
    return yaml.safe_dump(body, sort_keys=False)


def rule_points(
    name: str, spec: dict[str, Any], rows: list[Any], data: Path
) -> list[tuple[float, float, str]]:
    """(cost per 1k, quality, what) of every rule-based configuration on the test split."""
    points: list[tuple[float, float, str]] = []
    if name == "arena-bench":
        policy = load_policy(ROOT / "config" / "policy.yaml")
        config = load_eval_config(ROOT / "config" / "evaluation" / "arena_bench.yaml")
        ev = Evaluation(rows, policy, config, data_source=str(data))
        for route in ("auto", "cheap", "best", "balanced"):
            try:
                res = ev.run(policy, route).result
            except Exception as exc:
                print(f"  ({route}: {exc})", file=sys.stderr)
                continue
            points.append((res.cost_per_1k, res.quality, f"example '{route}'"))
        for model, p in ev.baselines.singles.items():
            points.append((p.cost_per_1k, p.quality, f"always {model}"))
        return points
    path = ROOT / "config" / "evaluation" / "gpt4_mixtral_policy.yaml"
    policy = load_policy(path)
    config = EvalConfig(default_completion_tokens=spec["completion"])
    ev = Evaluation(rows, policy, config, resplit=spec["resplit"], data_source=str(data))
    curve = ev.curve(
        read_document(path), str(path), "routes.auto.rules[long-prompt].when.input_tokens.gt", LENGTHS
    )
    points += [(p["cost_per_1k"], p["quality"], f"length > {p['value']}") for p in curve["points"]]
    example = load_policy(ROOT / "config" / "policy.yaml")
    routellm = load_eval_config(ROOT / "config" / "evaluation" / "routellm.yaml").model_copy(
        update={"default_completion_tokens": spec["completion"]}
    )
    ev2 = Evaluation(rows, example, routellm, resplit=spec["resplit"], data_source=str(data))
    for route in ("auto", "cheap"):
        res = ev2.run(example, route).result
        points.append((res.cost_per_1k, res.quality, f"example '{route}'"))
    b = ev.baselines
    points += [
        (b.cheapest.cost_per_1k, b.cheapest.quality, "always cheapest"),
        (b.strongest.cost_per_1k, b.strongest.quality, "always strongest"),
    ]
    return points


def run(name: str, data_dir: Path, work: Path) -> dict[str, Any]:
    spec = SETS[name]
    data = data_dir / spec["file"]
    rows = load_dataset(data)
    started = time.perf_counter()
    if name == "arena-bench":
        config = load_eval_config(ROOT / "config" / "evaluation" / "arena_bench.yaml")
        models = dict(config.models)
    else:
        models = dict(TWO)
    options = TrainOptions(
        mapping=models, resplit=spec["resplit"], default_completion_tokens=spec["completion"], name=name
    )
    result = train_router(str(data), work / name, options)
    trained = time.perf_counter() - started
    policy_path = work / f"{name}.yaml"
    policy_path.write_text(learned_policy(models, result.path, 0.1), encoding="utf-8")
    policy = load_policy(policy_path)
    config = EvalConfig(
        models={m: m for m in models} if name != "arena-bench" else models,
        default_completion_tokens=spec["completion"],
    )
    config = config.model_copy(update={"models": models})
    test = Evaluation(rows, policy, config, resplit=spec["resplit"], data_source=str(data))
    train = Evaluation(rows, policy, config, split="train", resplit=spec["resplit"], data_source=str(data))
    knob = "routes.smart.learned.lambda"
    document = read_document(policy_path)
    curve = test.curve(document, str(policy_path), knob, auto_values(test, policy, knob))
    m = curve["metrics"]
    b = test.baselines
    tolerance = mix_tolerance(len(test.table))
    mix = check_above_single_mix([(p.cost_per_1k, p.quality) for p in curve["_points"]], b, tolerance)
    cw, cs = b.cheapest.cost_per_1k, b.strongest.cost_per_1k
    rules = rule_points(name, spec, rows, data)
    fitted = {}
    for label, target in (
        ("cost <= 45%", Target("cost", 0.45)),
        ("cost <= 50%", Target("cost", 0.5)),
        ("quality >= 95%", Target("quality", 0.95)),
    ):
        doc, fit = calibrate_knob(
            train, document, str(policy_path), knob, auto_values(train, policy, knob), target
        )
        res = test.run(policy_from_document(doc, "fitted", base_dir=work)).result
        fitted[label] = {
            "lambda": fit["value"],
            "quality": res.quality,
            "quality_vs_strongest": res.quality / b.strongest.quality,
            "cost_per_1k": res.cost_per_1k,
            "cost_vs_strongest": res.cost_per_1k / cs,
        }
    return {
        "rows_test": len(test.table),
        "rows_train": len(train.table),
        "train_seconds": round(trained, 1),
        "learner": result.report["learner"].get("C"),
        "aiq_learned": m["aiq"],
        "aiq_random": m["aiq_random"],
        "aiq_single_models": m["aiq_single_models"],
        "aiq_best_rules": aiq([(c, q) for c, q, _ in rules], cw, cs),
        "aiq_oracle": m["aiq_oracle"],
        "above_single_mix": {
            "ok": mix.ok,
            "tolerance": tolerance,
            "points": len(mix.gaps),
            "skipped_below_cheapest_model": mix.skipped,
            "worst_gap": mix.worst,
            "below": [{"cost_per_1k": c, "quality": q, "mix_quality": mq} for c, q, mq, _ in mix.below],
        },
        "rule_points": [{"what": w, "cost_per_1k": c, "quality": q} for c, q, w in rules],
        "fitted_on_train": fitted,
        "strongest": b.strongest.as_dict(),
        "cheapest": b.cheapest.as_dict(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "routing"))
    parser.add_argument("--only", help="comma-separated: " + ", ".join(SETS))
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    data_dir = Path(args.data)
    if not data_dir.is_dir():
        sys.exit(f"no data directory {data_dir} (pass --data DIR)")
    names = args.only.split(",") if args.only else list(SETS)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            r = out[name] = run(name, data_dir, Path(tmp))
            print(
                f"{name}: {r['rows_test']} test rows; AIQ learned {r['aiq_learned']:.4f}, random "
                f"{r['aiq_random']:.4f}, single-model mix {r['aiq_single_models']:.4f}, best rule policies "
                f"{r['aiq_best_rules']:.4f}, oracle {r['aiq_oracle']:.4f} (trained in {r['train_seconds']} s)"
            )
            x = r["above_single_mix"]
            print(
                f"  curve on or above the single-model mix (tolerance {x['tolerance']:.4f}): "
                f"{'yes' if x['ok'] else 'NO'}, {x['points']} points, worst gap {x['worst_gap']:+.4f}"
                + (f", {len(x['below'])} below" if x["below"] else "")
                + (
                    f", {x['skipped_below_cheapest_model']} cheaper than every model"
                    if x["skipped_below_cheapest_model"]
                    else ""
                )
            )
            for f in x["below"]:
                print(
                    f"    below: ${f['cost_per_1k']:.4f} per 1k: quality {f['quality']:.4f} "
                    f"< mix {f['mix_quality']:.4f}"
                )
            for label, f in r["fitted_on_train"].items():
                print(
                    f"  lambda fitted on train for {label}: {f['lambda']:g} -> quality {f['quality']:.4f} "
                    f"({f['quality_vs_strongest'] * 100:.1f}% of always-strongest) at "
                    f"${f['cost_per_1k']:.4f} per 1k ({f['cost_vs_strongest'] * 100:.1f}% of its cost)"
                )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
