"""Ensembles replayed from recorded member answers through the ensemble package's own strategies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mm_litellm.evaluation.config import EvalConfig
from mm_litellm.evaluation.dataset import load_dataset
from mm_litellm.evaluation.errors import EvaluationError
from mm_litellm.evaluation.session import Evaluation
from mm_litellm.policy import parse_policy

POLICY = """
version: 1
models:
  a: {litellm_params: {model: openai/a}}
  b: {litellm_params: {model: openai/b}}
  c: {litellm_params: {model: openai/c}}
ensembles:
  vote: {strategy: voting, members: [a, b, c], normalise: number}
  judged: {strategy: ranking, scorer: judge, judge: c, members: [a, b]}
routes:
  auto:
    rules:
      - {name: vote, when: {metadata.kind: math}, use: ensemble/vote}
    default: a
    fallbacks: [c]
default_route: auto
"""


def rows() -> list[dict]:
    def row(i: int, answers: tuple[str, str, str]) -> dict:
        return {
            "id": f"r{i}",
            "prompt": "What is 6 x 7?",
            "metadata": {"kind": "math"},
            "outcomes": {
                m: {"score": 1.0 if ans == "42" else 0.0, "cost_usd": cost, "answer": f"The answer is {ans}."}
                for m, ans, cost in zip("abc", answers, (0.001, 0.002, 0.01), strict=True)
            },
        }

    # 6 rows where two of three agree on the right answer (a is wrong in two of them),
    # 4 rows where all three disagree: no agreement -> the route's fallback c answers
    agree = [row(i, ("42", "42", "41")) for i in range(4)] + [
        row(4 + i, ("40", "42", "42")) for i in range(2)
    ]
    split = [row(6 + i, ("40", "41", "42")) for i in range(4)]
    return agree + split


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "votes.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows()))
    return path


def test_voting_ensemble_is_replayed_with_its_real_rules(data: Path) -> None:
    policy = parse_policy(POLICY)
    ev = Evaluation(load_dataset(data), policy, EvalConfig(), split="all")
    outcome = ev.run(policy)
    assert outcome.replayed == {
        "ensembles": {
            "rows": 10,
            "ensemble_failed": 4,
            "served_by_fallback": 4,
            "member_calls_without_recorded_answer": 0,
        }
    }
    # majority rows answer with a voting member (right); split rows fall back to c (right)
    assert outcome.result.quality == 1.0
    members = 0.001 + 0.002 + 0.01
    expected = (6 * members + 4 * (members + 0.01)) / 10 * 1000
    assert outcome.result.cost_per_1k == pytest.approx(expected)
    assert outcome.result.share == {"a": 0.4, "c": 0.4, "b": 0.2}


def test_an_ensemble_recorded_as_a_whole_can_be_mapped(data: Path) -> None:
    policy = parse_policy(POLICY.replace("use: ensemble/vote", "use: ensemble/judged"))
    with pytest.raises(
        EvaluationError, match=r"ensemble 'judged' \(ranking\) cannot be replayed .* --map ensemble/judged="
    ):
        Evaluation(load_dataset(data), policy, EvalConfig(), split="all").run(policy)
    mapped = Evaluation(load_dataset(data), policy, EvalConfig(models={"ensemble/judged": "c"}), split="all")
    assert mapped.run(policy).result.share == {"ensemble/judged": 1.0}


ESCALATING = """
version: 1
models:
  a: {litellm_params: {model: openai/a}}
  b: {litellm_params: {model: openai/b}}
  c: {litellm_params: {model: openai/c}}
chains:
  up: [a, b, c]
escalation: {min_confidence: 0.6, short_answer_words: 0}
routes:
  careful: {default: a, escalate: up}
default_route: careful
"""


def test_escalation_replays_the_policy_chain_with_its_own_scorer(tmp_path: Path) -> None:
    sure, unsure = "The answer is 42, definitely.", "I am not sure, it might be 41."
    data = tmp_path / "esc.jsonl"
    lines = []
    for i, (first, second) in enumerate([(sure, sure)] * 3 + [(unsure, sure)] * 2 + [(unsure, unsure)]):
        lines.append(
            {
                "id": f"e{i}",
                "prompt": "q",
                "outcomes": {
                    "a": {"score": 1.0 if first is sure else 0.0, "cost_usd": 0.001, "answer": first},
                    "b": {"score": 1.0 if second is sure else 0.0, "cost_usd": 0.002, "answer": second},
                    "c": {"score": 1.0, "cost_usd": 0.010, "answer": sure},
                },
            }
        )
    data.write_text("".join(json.dumps(r) + "\n" for r in lines))
    policy = parse_policy(ESCALATING)
    outcome = Evaluation(
        load_dataset(data), policy, EvalConfig(models={"a": "a", "b": "b", "c": "c"}), split="all"
    ).run(policy)
    assert outcome.result.share == {"a": 0.5, "b": pytest.approx(1 / 3), "c": pytest.approx(1 / 6)}
    assert outcome.result.quality == 1.0
    expected = (3 * 0.001 + 2 * 0.003 + 0.013) / 6 * 1000
    assert outcome.result.cost_per_1k == pytest.approx(expected)
    assert outcome.replayed is not None and outcome.replayed["escalation"]["hops"] == 4
