"""Ranking: a judge model's rubric scores, or the local heuristic; all scores returned."""

from __future__ import annotations

import json

import mm_litellm
from mm_litellm import decision_of
from mm_litellm.ensemble.base import Answer
from mm_litellm.ensemble.ranking import heuristic_scores, parse_judge
from tests.ensemble.conftest import ENSEMBLE_POLICY

Q = [{"role": "user", "content": "Explain how to extract a price from HTML"}]


def test_judge_scores_pick_the_best_answer(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY)
    mm_mock.script("mini", "Use a regex.")
    mm_mock.script("flash", "Parse the DOM, find the price element, read its text.")
    mm_mock.script("haiku", "Guess.")
    judge = {
        "scores": [
            {"answer": 1, "coherence": 6, "accuracy": 5},
            {"answer": 2, "coherence": 9, "accuracy": 8},
            {"answer": 3, "coherence": 2, "accuracy": 1},
        ]
    }
    mm_mock.script("big", "```json\n" + json.dumps(judge) + "\n```")
    response = mm_litellm.completion(model="ensemble/rank", messages=Q)
    details = decision_of(response)["ensemble"]
    assert response.choices[0].message.content == "Parse the DOM, find the price element, read its text."
    assert details["scores"] == {
        "mini": {"coherence": 0.6, "accuracy": 0.5, "total": 0.55},
        "flash": {"coherence": 0.9, "accuracy": 0.8, "total": 0.85},
        "haiku": {"coherence": 0.2, "accuracy": 0.1, "total": 0.15},
    }
    assert (details["ranking"], details["confidence"], details["scorer"]) == (
        ["flash", "mini", "haiku"],
        0.85,
        "judge",
    )
    prompt = mm_mock.calls_for("big")[0].kwargs["messages"][1]["content"]
    assert "Answer 2:\nParse the DOM" in prompt and "- coherence:" in prompt and "- accuracy:" in prompt


def test_unreadable_judge_falls_back_to_the_heuristic(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY)
    mm_mock.script("mini", "a")
    mm_mock.script("flash", "b")
    mm_mock.script("haiku", "c")
    mm_mock.script("big", "They are all fine.")
    details = decision_of(mm_litellm.completion(model="ensemble/rank", messages=Q))["ensemble"]
    assert details["scorer"] == "heuristic (judge failed)"
    assert details["judge_error"] == "no JSON value found in the answer"
    assert set(details["scores"]) == {"mini", "flash", "haiku"}


def test_local_heuristic_prefers_the_complete_answer(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY)
    mm_mock.script("mini", "Short.")
    mm_mock.script(
        "flash", "Load the page, parse it with an HTML parser, select the price node and read its text."
    )
    response = mm_litellm.completion(model="ensemble/rank-local", messages=Q)
    details = decision_of(response)["ensemble"]
    assert details["chosen_member"] == "flash"
    assert details["scores"]["flash"]["completeness"] == 1.0
    assert details["scores"]["mini"]["completeness"] < 0.1


def test_parse_judge_refuses_incomplete_scores() -> None:
    import pytest

    with pytest.raises(ValueError, match=r"no score for answer\(s\) 2"):
        parse_judge('{"scores": [{"answer": 1, "accuracy": 5}]}', 2, ("accuracy",))
    with pytest.raises(ValueError, match="answer 1: missing or non-numeric criterion"):
        parse_judge('[{"answer": 1, "accuracy": "good"}]', 1, ("accuracy",))


def test_heuristic_scores_every_answer_on_every_criterion() -> None:
    answers = [
        Answer("a", "m", text="Paris is the capital of France."),
        Answer("b", "m", text="I think it might be Lyon, not sure."),
    ]
    scores = heuristic_scores(answers, ("coherence", "accuracy", "completeness"))
    assert [set(s) for s in scores] == [{"coherence", "accuracy", "completeness"}] * 2
    assert scores[0]["accuracy"] > scores[1]["accuracy"]
