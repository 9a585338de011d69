"""With more than two models, a policy is also shown beside the best single model and the best mix."""

from __future__ import annotations

from collections import Counter

import pytest

from mm_litellm.evaluation.baselines import compute_baselines
from mm_litellm.evaluation.dataset import Outcome, OutcomeRow
from mm_litellm.evaluation.table import OutcomeTable


def table() -> OutcomeTable:
    # cheap: q 0.2 @ $1/1k, mid: q 0.8 @ $2/1k, strong: q 0.9 @ $10/1k (per request: /1000)
    scores = {"cheap": [0.2] * 10, "mid": [0.8] * 10, "strong": [0.9] * 10}
    costs = {"cheap": [0.001] * 10, "mid": [0.002] * 10, "strong": [0.010] * 10}
    rows = [OutcomeRow(id=str(i), prompt="p", outcomes={m: Outcome(0.0) for m in scores}) for i in range(10)]
    return OutcomeTable(rows, {m: m for m in scores}, scores, costs, dropped=Counter())


def test_best_single_and_mix_at_a_cost() -> None:
    b = compute_baselines(table())
    assert set(b.singles) == {"cheap", "mid", "strong"}
    assert b.best_single_at(0.5) is None
    assert b.best_single_at(2.0).detail == "mid"  # type: ignore[union-attr]
    assert b.best_single_at(9.9).quality == pytest.approx(0.8)  # type: ignore[union-attr]
    assert b.random_at(2.0).quality == pytest.approx(0.2 + (1 / 9) * 0.7)  # the weak reference
    mix = b.single_mix_at(6.0)
    assert mix is not None and mix.quality == pytest.approx(0.85) and "mid 50% + strong 50%" in mix.detail
    assert b.single_mix_at(20.0).quality == pytest.approx(0.9)  # type: ignore[union-attr]
    matched = b.matched(2.0)
    assert matched["best_single_within_cost"]["detail"] == "mid"
    assert matched["single_mix_matched_cost"]["quality"] == pytest.approx(0.8)
    assert "single_models" in b.as_dict()


def test_a_curve_is_checked_against_the_mix_point_by_point() -> None:
    from mm_litellm.evaluation.baselines import check_above_single_mix

    b = compute_baselines(table())
    # the mix at $6: 0.85 (mid and strong half and half); at $1.5: 0.5; under $1 there is no mix
    points = [(6.0, 0.84), (1.5, 0.5), (20.0, 0.95), (0.5, 0.1)]
    check = check_above_single_mix(points, b, tolerance=0.02)
    assert check.ok and check.skipped == 1 and check.worst == pytest.approx(-0.01)
    strict = check_above_single_mix(points, b, tolerance=0.005)
    assert not strict.ok and strict.below == [(6.0, 0.84, pytest.approx(0.85), pytest.approx(-0.01))]


def test_duplicate_ids_are_counted_and_dedupe_keeps_the_first(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from mm_litellm.evaluation.dataset import load_dataset
    from mm_litellm.evaluation.errors import EvaluationError

    path = tmp_path / "dup.jsonl"
    path.write_text(
        '{"id": "a", "prompt": "first", "outcomes": {"m": {"score": 1}}}\n'
        '{"id": "a", "prompt": "second", "outcomes": {"m": {"score": 0}}}\n'
        '{"id": "b", "prompt": "p", "outcomes": {"m": {"score": 1}}}\n'
    )
    with pytest.raises(EvaluationError, match=r"(?s)duplicate id 'a' \(first on line 1\).*--dedupe"):
        load_dataset(path)
    rows = load_dataset(path, dedupe=True)
    assert [r.prompt for r in rows] == ["first", "p"] and rows.duplicates == 1


def test_rows_a_route_cannot_serve_are_counted_not_fatal(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from mm_litellm import parse_policy
    from mm_litellm.evaluation import EvalConfig, Evaluation
    from mm_litellm.evaluation.errors import EvaluationError

    policy = parse_policy(
        """
version: 1
models:
  weak: {litellm_params: {model: openai/w}, tier: basic, pricing: {input_per_mtok: 1, output_per_mtok: 1}}
  strong: {litellm_params: {model: openai/s}, tier: expert, pricing: {input_per_mtok: 9, output_per_mtok: 9}}
routes:
  auto:
    rules: [{name: vip, when: {metadata.vip: true}, use: strong}]
    strategy: cost_optimized
    candidates: [weak]
    require: {min_tier: expert}
"""
    )
    rows = [
        {
            "id": str(i),
            "prompt": "p",
            "metadata": {"vip": i % 2 == 0},
            "outcomes": {"w": {"score": 0.5, "cost_usd": 0.001}, "s": {"score": 1, "cost_usd": 0.01}},
        }
        for i in range(10)
    ]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = EvalConfig(models={"weak": "w", "strong": "s"})
    report = Evaluation.from_file(data, policy, config, split="all").report(policy, "auto")
    assert report["result"]["share"]["(failed)"] == 0.5
    assert report["result"]["quality"] == pytest.approx(0.5)
    assert any("5 row(s) the route cannot serve" in n for n in report["notes"])
    strict = config.model_copy(update={"strict": True})
    with pytest.raises(EvaluationError, match="cannot serve"):
        Evaluation.from_file(data, policy, strict, split="all").report(policy, "auto")
