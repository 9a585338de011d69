"""A candidate predicted no better than another that costs no more on average is never chosen, at
any lambda: per prompt, the cost model's fractions of a cent between models of nearly one price
must not buy a worse model. A candidate worse on average but predicted better here stays."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mm_litellm.learned.decide import choose_lists, choose_many, dominated, dominated_lists, lambda_grid

# good-cheap is a hair dearer than junk on this prompt (its per-token price), cheaper on average
Q = np.array([[0.45, 0.05, 0.62], [0.45, 0.70, 0.62]])
C = np.array([[1.01e-4, 1.00e-4, 3.3e-4], [1.01e-4, 1.00e-4, 3.3e-4]])
MEANS = np.array([0.98e-4, 1.02e-4, 3.2e-4])  # good-cheap, junk, mid


def test_dominated_by_prediction_and_mean_cost() -> None:
    out = dominated(Q, MEANS)
    # row 2: junk is predicted best and costs less on average than mid: mid is out there
    assert out.tolist() == [[False, True, False], [False, False, True]]
    assert dominated_lists(Q[0].tolist(), MEANS.tolist()) == out[0].tolist()
    assert not dominated(Q, None).any() and dominated_lists([0.1, 0.2], None) == [False, False]


def test_equal_candidates_do_not_exclude_each_other() -> None:
    """Two policy models standing in for one recorded model: same prediction, same cost."""
    assert dominated_lists([0.5, 0.5, 0.2], [1.0, 1.0, 2.0]) == [False, False, True]


def test_a_huge_lambda_never_buys_the_dominated_model() -> None:
    for lam in (0.0, 0.1, 10.0, 1e13):
        many = choose_many(Q, C, lam, None, MEANS)
        assert many[0] != 1
        for r in range(2):
            best, key, _ = choose_lists(Q[r].tolist(), C[r].tolist(), lam, None, MEANS.tolist())
            assert best == many[r]
            assert math.isinf(key[1]) == (r == 0)
    assert choose_many(Q, C, 1e13, None, None)[0] == 1  # without the rule: the cheaper junk
    assert choose_many(Q, C, 1e13, None, MEANS)[1] == 1  # where junk is predicted best, it may win


def test_quality_target_leaves_dominated_out_too() -> None:
    pick = choose_many(Q, C, None, 0.5, MEANS)
    assert pick[0] == 0
    best, key, _ = choose_lists(Q[0].tolist(), C[0].tolist(), None, 0.5, MEANS.tolist())
    assert best == 0 and math.isinf(key[1])


def test_lambda_grid_has_no_switch_to_a_dominated_model() -> None:
    with_rule = lambda_grid(Q[:1], C[:1], 10, MEANS)
    without = lambda_grid(Q[:1], C[:1], 10)
    assert max(with_rule) < max(without)


def test_explain_names_a_dominated_candidate(trained: dict[str, Any]) -> None:
    from mm_litellm.learned.strategy import _note

    note = _note(1, 0, [0.45, 0.05], [1.01e-4, 1.0e-4], [0.0, -math.inf], [0.98e-4, 1.02e-4])
    assert "dominated" in note
