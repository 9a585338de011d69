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
