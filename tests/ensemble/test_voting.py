"""Voting through ``mm_litellm.completion``: scripted members, real LiteLLM pipeline and costs."""

from __future__ import annotations

import litellm
import pytest

import mm_litellm
from mm_litellm import decision_of
from tests.ensemble.conftest import ENSEMBLE_POLICY

Q = [{"role": "user", "content": "What is 6 * 7?"}]


def script(mock, **answers: str) -> None:
    for model, text in answers.items():
        mock.script(model, text, prompt_tokens=10, completion_tokens=5)


def test_majority_wins_with_votes_and_confidence(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY)
    script(mm_mock, mini="The answer is 42.", flash="#### 42", haiku="I get 41")
    response = mm_litellm.completion(model="ensemble/vote", messages=Q)
    assert response.choices[0].message.content == "The answer is 42."
    details = decision_of(response)["ensemble"]
    assert details["votes"] == {"42": 2.0, "41": 1.0}
    assert details["voters"] == {"42": ["mini", "flash"], "41": ["haiku"]}
    assert (details["winner"], details["resolution"], details["confidence"]) == ("42", "majority", 0.666667)
    assert details["answers"] == {"mini": "The answer is 42.", "flash": "#### 42", "haiku": "I get 41"}


def test_cost_and_usage_are_the_sums_of_litellms_member_costs(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY)
    mm_mock.script("mini", "42", prompt_tokens=100, completion_tokens=20)
    mm_mock.script("flash", "42", prompt_tokens=200, completion_tokens=30)
    mm_mock.script("haiku", "42", prompt_tokens=300, completion_tokens=40)
    response = mm_litellm.completion(model="ensemble/vote", messages=Q)
    expected = 0.0
    for model, (p, c) in {
        "gpt-4o-mini": (100, 20),
        "gemini/gemini-2.5-flash": (200, 30),
        "anthropic/claude-haiku-4-5": (300, 40),
    }.items():
        expected += sum(litellm.cost_per_token(model=model, prompt_tokens=p, completion_tokens=c))
    calls = decision_of(response)["ensemble"]["calls"]
    assert [c["cost"] for c in calls] == pytest.approx(
        [
            sum(litellm.cost_per_token(model="gpt-4o-mini", prompt_tokens=100, completion_tokens=20)),
            sum(
                litellm.cost_per_token(
                    model="gemini/gemini-2.5-flash", prompt_tokens=200, completion_tokens=30
                )
            ),
            sum(
                litellm.cost_per_token(
                    model="anthropic/claude-haiku-4-5", prompt_tokens=300, completion_tokens=40
                )
            ),
        ]
    )
    assert response._hidden_params["response_cost"] == pytest.approx(expected)
    assert expected > 0
    assert (response.usage.prompt_tokens, response.usage.completion_tokens, response.usage.total_tokens) == (
        600,
        90,
        690,
    )


def test_disagreement_fails_clearly_listing_the_votes(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY)
    script(mm_mock, mini="41", flash="42", haiku="no idea")
    with pytest.raises(litellm.BadRequestError) as info:
        mm_litellm.completion(model="ensemble/vote", messages=Q)
    assert (
        "ensemble 'vote': tie between '41', '42'; votes: '41': mini; '42': flash; no readable answer: haiku"
    ) in str(info.value)


def test_below_min_agreement_is_a_disagreement(mm_policy, mm_mock) -> None:
    mm_policy(
        ENSEMBLE_POLICY.replace(
            "    normalise: number\n    timeout: 2",
            "    normalise: number\n    timeout: 2\n    min_agreement: 0.9",
        )
    )
    script(mm_mock, mini="42", flash="42", haiku="41")
    with pytest.raises(litellm.BadRequestError, match="the leading answer has 67% of the votes, 90% needed"):
        mm_litellm.completion(model="ensemble/vote", messages=Q)


def test_tie_is_broken_by_member_weight(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY)
    script(mm_mock, mini="The answer is (A)", flash="(B)")
    response = mm_litellm.completion(model="ensemble/vote2", messages=Q)
    details = decision_of(response)["ensemble"]
    # flash weighs 2: not a tie in weight, but 2/3 < 0.67 is not reached either -> plurality by weight
    assert response.choices[0].message.content == "(B)"
    assert (details["winner"], details["votes"]) == ("B", {"B": 2.0, "A": 1.0})


def test_equal_weight_tie_goes_to_the_heavier_member(mm_policy, mm_mock) -> None:
    policy = ENSEMBLE_POLICY.replace(
        "members: [mini, {model: flash, weight: 2}]",
        "members: [{model: mini, weight: 2}, flash, haiku]\n    quorum: 3",
    )
    policy = policy.replace("    quorum: 2\n    on_disagreement: weight", "    on_disagreement: weight")
    mm_policy(policy)
    script(mm_mock, mini="A", flash="B", haiku="B")
    response = mm_litellm.completion(model="ensemble/vote2", messages=Q)
    details = decision_of(response)["ensemble"]
    assert (details["tie"], details["winner"], details["resolution"]) == (True, "A", "weight")
    assert details["confidence"] == 0.5


def test_disagreement_escalates_to_the_named_model(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY)
    script(mm_mock, mini="41", flash="42", big="Carefully: 6 * 7 = 42")
    response = mm_litellm.completion(model="ensemble/vote-esc", messages=Q)
    details = decision_of(response)["ensemble"]
    assert response.choices[0].message.content == "Carefully: 6 * 7 = 42"
    assert (details["resolution"], details["escalated_to"], details["winner"]) == ("escalated", "big", "42")
    assert details["confidence"] == pytest.approx(2 / 3, abs=1e-5)
    assert [c["role"] for c in details["calls"]] == ["member", "member", "escalation"]
    assert len(mm_mock.calls_for("big")) == 1


async def test_member_timeout_is_recorded_and_quorum_holds(mm_policy, mm_mock) -> None:
    mm_policy(
        ENSEMBLE_POLICY.replace(
            "members: [mini, flash, haiku]\n    normalise: number\n    timeout: 2",
            "members: [mini, flash, haiku]\n    normalise: number\n    timeout: 0.3",
        )
    )
    script(mm_mock, mini="42", flash="42")
    mm_mock.script("haiku", "42", delay=2)
    response = await mm_litellm.acompletion(model="ensemble/vote", messages=Q)
    details = decision_of(response)["ensemble"]
    assert details["failures"] == {"haiku": {"error_class": "Timeout", "error": "no answer within 0.3s"}}
    assert details["confidence"] == 1.0
    assert details["calls"][2]["latency"] < 1.0


async def test_quorum_lost_lists_every_member_and_why(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY)
    script(mm_mock, mini="42")
    mm_mock.script("flash", error="rate_limit")
    mm_mock.script("haiku", error="internal")
    with pytest.raises(litellm.ServiceUnavailableError) as info:
        await mm_litellm.acompletion(model="ensemble/vote", messages=Q)
    message = str(info.value)
    assert (
        "ensemble 'vote': quorum lost: 1 of 3 members gave a usable answer, 2 needed; mini (mini): answered; "
        "flash (flash): RateLimitError: litellm.RateLimitError: mocked rate_limit error for " in message
    )
    assert "haiku (haiku): InternalServerError: litellm.InternalServerError: mocked internal error" in message
    # members are not retried as a whole ensemble: one call each
    assert [c.model_group for c in mm_mock.calls] == ["mini", "flash", "haiku"]
