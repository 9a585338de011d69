"""Offline replay: quality and cost per 1k prompts of the example policy's cost_optimized route.

Data: ``../shared/data/routing/`` (recorded per-prompt outcomes of GPT-4-1106 and
Mixtral-8x7B on RouteLLM's MMLU and GSM8K sets; pinned prices in ``prices_pinned.json``).
No model is called: each prompt goes through the real routing engine (the example policy's
classifier section and its ``cheap`` route, a ``cost_optimized`` strategy), with the route's
candidates replaced by the two models the data has. The strategy picks the cheapest model
whose tier covers the request's tier, so the policy's threshold is the tier the cheap model is
declared at; the sweep declares Mixtral ``basic``, ``intermediate`` and ``advanced`` (GPT-4 is
``expert``), which gives one point of the cost-quality curve each. A second sweep uses the
classifier's ``tier_by_tokens`` knob: prompts at or above the median, 75th and 90th percentile
of the estimated input size count as ``advanced`` and go to GPT-4.

Compared with always-cheapest, always-strongest, random routing at the same cost (the
probability of sending a prompt to GPT-4 set so the expected cost equals the policy's; its
quality is the exact expectation), and the oracle (cheapest model that scores well).
Nothing is fitted to the data: the classifier's patterns are the defaults from seed 003.

    python bench/routing_quality.py [--data DIR] [--limit N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import yaml

from mm_litellm import parse_policy
from mm_litellm.routing.engine import RoutingEngine

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent.parent / "shared" / "data" / "routing"
CHEAP, STRONG = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
SETS = {"MMLU": "routellm_mmlu_gpt4_vs_mixtral.jsonl.gz", "GSM8K": "routellm_gsm8k_gpt4_vs_mixtral.jsonl.gz"}


@dataclass
class Point:
    name: str
    quality: float
    cost_per_1k: float
    strong_share: float


def row_cost(row: dict[str, Any], model: str, prices: dict[str, list[float]]) -> float:
    """USD of one prompt on ``model``: the recorded cost, else tokens times pinned prices."""
    outcome = row["outcomes"][model]
    if outcome.get("cost_usd") is not None:
        return float(outcome["cost_usd"])
    price_in, price_out = prices[model]
    completion = outcome.get("completion_tokens") or 1  # MMLU answers are one token
    return (row["prompt_tokens"] * price_in + completion * price_out) / 1e6


def example_policy(cheap_tier: str, prices: dict[str, list[float]]) -> str:
    """The example policy's classifier and ``cheap`` route, over the data's two models."""
    example = yaml.safe_load((ROOT / "config" / "policy.yaml").read_text(encoding="utf-8"))
    route = dict(example["routes"]["cheap"])
    route["candidates"] = ["mixtral", "gpt-4"]
    route.pop("rules", None)  # the vision rule: no images in these sets
    models = {
        "mixtral": {
            "litellm_params": {"model": "together_ai/" + CHEAP},
            "tier": cheap_tier,
            "pricing": {"input_per_mtok": prices[CHEAP][0], "output_per_mtok": prices[CHEAP][1]},
        },
        "gpt-4": {
            "litellm_params": {"model": "openai/" + STRONG},
            "tier": "expert",
            "pricing": {"input_per_mtok": prices[STRONG][0], "output_per_mtok": prices[STRONG][1]},
        },
    }
    return yaml.safe_dump(
        {
            "models": models,
            "classifier": example.get("classifier", {}),
            "routes": {"cheap": route},
        }
    )


def example_policy_with(tiers: dict[str, list[str]], prices: dict[str, list[float]]) -> str:
    """The example ``cheap`` route with the classifier's tier patterns replaced by ``tiers``."""
    data = yaml.safe_load(example_policy("advanced", prices))
    data["classifier"] = {**data.get("classifier", {}), "tiers": tiers}
    return yaml.safe_dump(data)


def example_policy_by_length(tokens: int, prices: dict[str, list[float]]) -> str:
    """Mixtral declared intermediate; prompts of ``tokens`` or more count as advanced (GPT-4)."""
    data = yaml.safe_load(example_policy("intermediate", prices))
    data["classifier"] = {**data.get("classifier", {}), "tier_by_tokens": {"advanced": tokens}}
    return yaml.safe_dump(data)


def select_patterns(
    rows: list[dict[str, Any]], prices: dict[str, list[float]], min_hits: int = 10
) -> list[str]:
    """Patterns (from the classifier's default lists) whose prompts gain more per extra dollar
    on GPT-4 than the average prompt does, measured on ``rows`` (the training split)."""
    import re

    from mm_litellm.policy.routing import DEFAULT_TASK_PATTERNS, DEFAULT_TIER_PATTERNS
    from mm_litellm.routing.classifier import Classifier

    window = Classifier().window
    texts = [window(r["prompt"]) for r in rows]
    gain = [
        float(r["outcomes"][STRONG]["score"] or 0) - float(r["outcomes"][CHEAP]["score"] or 0) for r in rows
    ]
    extra = [row_cost(r, STRONG, prices) - row_cost(r, CHEAP, prices) for r in rows]
    average = sum(gain) / max(sum(extra), 1e-12)
    candidates = dict.fromkeys(
        p for group in (DEFAULT_TASK_PATTERNS, DEFAULT_TIER_PATTERNS) for pats in group.values() for p in pats
    )
    chosen = []
    for pattern in candidates:
        rx = re.compile(pattern, re.IGNORECASE)
        hits = [i for i, t in enumerate(texts) if rx.search(t)]
        if (
            len(hits) >= min_hits
            and sum(gain[i] for i in hits) / max(sum(extra[i] for i in hits), 1e-12) > 1.5 * average
        ):
            chosen.append(pattern)
    return chosen


def evaluate(
    rows: list[dict[str, Any]], prices: dict[str, list[float]], fitted: str | None = None
) -> list[Point]:
    n = len(rows)
    cost = {m: [row_cost(r, m, prices) for r in rows] for m in (CHEAP, STRONG)}
    score = {m: [float(r["outcomes"][m]["score"] or 0.0) for r in rows] for m in (CHEAP, STRONG)}
    q_c, q_s = sum(score[CHEAP]) / n, sum(score[STRONG]) / n
    c_c, c_s = sum(cost[CHEAP]) / n * 1000, sum(cost[STRONG]) / n * 1000
    points = [
        Point("always-cheapest (Mixtral)", q_c, c_c, 0.0),
        Point("always-strongest (GPT-4)", q_s, c_s, 1.0),
    ]
    oracle_q = oracle_c = 0.0
    for i in range(n):
        pick = CHEAP if score[CHEAP][i] >= score[STRONG][i] else STRONG
        oracle_q += score[pick][i]
        oracle_c += cost[pick][i]
    points.append(
        Point("oracle (cheapest model that scores best)", oracle_q / n, oracle_c / n * 1000, float("nan"))
    )
    variants = [
        (f"policy 'cheap', Mixtral declared {t}", example_policy(t, prices))
        for t in ("basic", "intermediate", "advanced")
    ]
    estimates = sorted(len(r["prompt"]) // 4 + 4 for r in rows)  # the engine's own token estimate
    for q in (0.5, 0.75, 0.9):
        t = estimates[int(q * (len(estimates) - 1))]
        variants.append(
            (f"policy 'cheap', tier_by_tokens advanced >= {t}", example_policy_by_length(t, prices))
        )
    if fitted is not None:
        variants.append(("policy 'cheap', train-split tier patterns", fitted))
    for label, text in variants:
        engine = RoutingEngine(parse_policy(text))
        q = c = strong = 0.0
        for i, row in enumerate(rows):
            target = engine.plan("cheap", [{"role": "user", "content": row["prompt"]}]).target
            model = STRONG if target == "gpt-4" else CHEAP
            strong += model == STRONG
            q += score[model][i]
            c += cost[model][i]
        policy = Point(label, q / n, c / n * 1000, strong / n)
        p = 0.0 if c_s == c_c else min(1.0, max(0.0, (policy.cost_per_1k - c_c) / (c_s - c_c)))
        points.append(policy)
        points.append(
            Point(
                f"  random at matched cost (p={p:.3f})", (1 - p) * q_c + p * q_s, (1 - p) * c_c + p * c_s, p
            )
        )
    return points


def show(points: list[Point]) -> None:
    print(f"{'router':<48} {'quality':>8} {'$/1k':>9} {'to GPT-4':>9}")
    for p in points:
        share = "" if p.strong_share != p.strong_share else f"{p.strong_share:>8.1%}"
        print(f"{p.name:<48} {p.quality:>8.3f} {p.cost_per_1k:>9.3f} {share:>9}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DATA, help=f"data directory (default {DATA})")
    parser.add_argument("--limit", type=int, help="use only the first N prompts of each set (quick runs)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/held-out split (default 0)")
    args = parser.parse_args()
    prices = json.loads((args.data / "prices_pinned.json").read_text())["per_million_tokens_usd"]
    for name, filename in SETS.items():
        with gzip.open(args.data / filename, "rt", encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh]
        rows = [
            r for r in rows if all(r["outcomes"].get(m, {}).get("score") is not None for m in (CHEAP, STRONG))
        ]
        if args.limit:
            rows = rows[: args.limit]
        print(f"\n{name}: {len(rows)} prompts ({filename}); quality = mean score, cost = USD per 1k prompts")
        show(evaluate(rows, prices))
        rng = random.Random(args.seed)
        order = list(range(len(rows)))
        rng.shuffle(order)
        train = [rows[i] for i in order[: len(rows) // 2]]
        test = [rows[i] for i in order[len(rows) // 2 :]]
        patterns = select_patterns(train, prices)
        print(
            f"\n{name}, held-out half ({len(test)} prompts, split seed {args.seed}): "
            "tier patterns chosen on the other half from the classifier's default lists: "
            f"{patterns or 'none'}"
        )
        fitted = (
            example_policy_with({"expert": patterns, "advanced": [], "intermediate": [], "basic": []}, prices)
            if patterns
            else None
        )
        show(evaluate(test, prices, fitted))
    print(
        "\nCaveats: RouteLLM sets are flagged routellm_contaminated where applicable; "
        "GPT-4 and Mixtral are 2023-24 models; prices are pinned list prices (prices_pinned.json). "
        "The tier patterns are seed 003's defaults, not fitted to these sets."
    )


if __name__ == "__main__":
    main()
