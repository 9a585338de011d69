"""Majority voting replayed on recorded GSM8K answers: accuracy and cost beside each single model.

Data: ``/work/shared/data/routing/routellm_gsm8k_gpt4_vs_mixtral.jsonl.gz`` (RouteLLM's GSM8K
test set, 1,319 problems, each with GPT-4-1106 and Mixtral-8x7B's final ``answer`` and 0/1
``score``). Costs: prompt and completion tokens at ``prices_pinned.json`` (USD per 1M tokens).

The replay runs mm_litellm's real ``voting`` strategy (``run_ensemble`` with the recorded
answers as the members' replies), so normalisation, weights, ties and confidence are the
product's. A voted value is scored correct only if every member that gave it is recorded as
correct (29 rows give the same final number from both models with different recorded scores).
Only two models are recorded, so a "majority" is agreement of both; what voting
buys here is a confidence signal (1.0 when they agree, 0.5 when they do not) and, with
``on_disagreement: fail``, a selective answerer. Caveats: RouteLLM flags some rows as possibly
contaminated; the models are 2023 vintage; prices are pinned, not live.

    python bench/ensemble_quality.py [--data DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
from pathlib import Path
from typing import Any

from mm_litellm.ensemble import Reply, run_ensemble
from mm_litellm.errors import EnsembleError
from mm_litellm.policy.ensembles import VotingEnsemble

DATA = Path("/work/shared/data/routing")
GPT4, MIXTRAL = "gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"


def load(data: Path) -> tuple[list[dict[str, Any]], dict[str, tuple[float, float]]]:
    with gzip.open(data / "routellm_gsm8k_gpt4_vs_mixtral.jsonl.gz", "rt") as lines:
        rows = [json.loads(line) for line in lines]
    prices = json.loads((data / "prices_pinned.json").read_text())["per_million_tokens_usd"]
    return rows, {m: (p[0], p[1]) for m, p in prices.items()}


def call_cost(row: dict[str, Any], model: str, prices: dict[str, tuple[float, float]]) -> float:
    outcome = row["outcomes"][model]
    if outcome.get("cost_usd") is not None:
        return float(outcome["cost_usd"])
    inp, out = prices[model]
    return (row["prompt_tokens"] * inp + (outcome.get("completion_tokens") or 0) * out) / 1e6


async def replay(
    rows: list[dict[str, Any]], spec: VotingEnsemble, prices: dict[str, tuple[float, float]]
) -> dict[str, Any]:
    """Run the voting strategy on every row; correct = the chosen answer is a member's correct answer."""
    answered = correct = 0
    cost = 0.0
    by_confidence: dict[float, list[int]] = {}
    for row in rows:

        async def call(
            model: str, _messages: Any, _timeout: float, _label: str, row: dict[str, Any] = row
        ) -> Reply:
            outcome = row["outcomes"][model]
            return Reply(
                text=str(outcome.get("answer") or ""),
                prompt_tokens=row["prompt_tokens"],
                completion_tokens=outcome.get("completion_tokens") or 0,
                cost=call_cost(row, model, prices),
                model=model,
            )

        try:
            result = await run_ensemble(
                "gsm8k-vote", spec, [{"role": "user", "content": row["prompt"]}], call
            )
        except EnsembleError:
            cost += sum(call_cost(row, m.model, prices) for m in spec.members)
            continue
        cost += result.cost or 0.0
        answered += 1
        # conservative: the voted value counts as correct only if every member that gave it is scored
        # correct (in 29 rows the two models give the same final number but different recorded scores)
        voters = result.outcome.details["voters"][result.outcome.details["winner"]]
        models = {a.label: a.model for a in result.answers}
        ok = int(all(row["outcomes"][models[v]]["score"] == 1.0 for v in voters))
        correct += ok
        by_confidence.setdefault(round(result.outcome.confidence, 2), []).append(ok)
    return {"answered": answered, "correct": correct, "cost": cost, "by_confidence": by_confidence}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    rows, prices = load(args.data)
    n = len(rows)
    print(f"GSM8K, {n} problems; cost in USD per 1k prompts at pinned prices\n")
    print(f"{'policy':<52} {'accuracy':>9} {'answered':>9} {'$/1k':>8}")
    for label, model in (("always Mixtral-8x7B", MIXTRAL), ("always GPT-4-1106", GPT4)):
        acc = sum(r["outcomes"][model]["score"] == 1.0 for r in rows) / n
        cost = sum(call_cost(r, model, prices) for r in rows) / n * 1000
        print(f"{label:<52} {acc:9.3f} {1.0:9.3f} {cost:8.3f}")
    variants = {
        "vote [Mixtral, GPT-4 w=2], tie -> weight": VotingEnsemble(
            strategy="voting",
            members=[{"model": MIXTRAL}, {"model": GPT4, "weight": 2}],
            normalise="number",
            on_disagreement="weight",
            quorum=1,
        ),
        "vote [GPT-4, Mixtral] equal weights, tie -> weight": VotingEnsemble(
            strategy="voting", members=[GPT4, MIXTRAL], normalise="number", on_disagreement="weight", quorum=1
        ),
        "vote [Mixtral, GPT-4], disagreement -> fail": VotingEnsemble(
            strategy="voting", members=[MIXTRAL, GPT4], normalise="number", on_disagreement="fail", quorum=1
        ),
    }
    calibration = None
    for label, spec in variants.items():
        stats = asyncio.run(replay(rows, spec, prices))
        answered = stats["answered"]
        acc_all = stats["correct"] / n
        print(f"{label:<52} {acc_all:9.3f} {answered / n:9.3f} {stats['cost'] / n * 1000:8.3f}")
        if "fail" in label:
            print(
                f"{'  accuracy on the answered (agreeing) problems':<52} {stats['correct'] / answered:9.3f}"
            )
        calibration = calibration or stats["by_confidence"]
    print("\nconfidence of the first vote variant (winner's share of the weighted votes):")
    for conf, oks in sorted((calibration or {}).items()):
        print(
            f"  confidence {conf:.2f}: {len(oks):5d} problems ({len(oks) / n:.1%}), "
            f"accuracy {sum(oks) / len(oks):.3f}"
        )


if __name__ == "__main__":
    main()
