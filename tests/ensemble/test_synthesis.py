"""Synthesis: seed 003's weighted choice, and the aggregator (mixture-of-agents) mode."""

from __future__ import annotations

import mm_litellm
from mm_litellm import decision_of
from mm_litellm.ensemble import heuristics
from tests.ensemble.conftest import ENSEMBLE_POLICY

Q = [{"role": "user", "content": "Should I use microservices or a monolith?"}]
LONG = (
    "Start with a modular monolith: one deployable, clear module boundaries, a single database. "
    "Split out a service only when a module needs independent scaling or release cadence, and the team "
    "can operate distributed systems. This is clearly the established path for small teams."
)


def test_weighted_choice_scores_every_member(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY)
    mm_mock.script("mini", "I think maybe microservices, not sure.")
    mm_mock.script("big", LONG)
    response = mm_litellm.completion(model="ensemble/synth", messages=Q)
    details = decision_of(response)["ensemble"]
    assert response.choices[0].message.content == LONG
    big, mini = details["scores"]["big"], details["scores"]["mini"]
    assert (big["capability"], mini["capability"]) == (1.0, 0.0)  # expert vs basic tier
    assert big["completeness"] == 1.0
    assert big["score"] == round(0.5 * big["confidence"] + 0.3 * 1.0 + 0.2 * 1.0 + 0.1 * big["consensus"], 4)
    assert details["all_confidences"] == [mini["confidence"], big["confidence"]]
    assert details["confidence"] == big["confidence"] == heuristics.confidence(LONG)


def test_aggregator_writes_the_final_answer_from_the_panel(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY)
    mm_mock.script("mini", "Monolith first.")
    mm_mock.script("flash", "Microservices if the teams are large.")
    mm_mock.script(
        "big", "Start with a monolith; split when teams grow.", prompt_tokens=50, completion_tokens=9
    )
    response = mm_litellm.completion(model="ensemble/moa", messages=Q)
    details = decision_of(response)["ensemble"]
    assert response.choices[0].message.content == "Start with a monolith; split when teams grow."
    assert details["chosen_member"] == "aggregator"
    system = mm_mock.calls_for("big")[0].kwargs["messages"][0]["content"]
    assert "Response 1:\nMonolith first." in system and "Response 2:\nMicroservices" in system
    assert response.usage.prompt_tokens == 10 + 10 + 50
