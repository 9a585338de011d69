"""Verification: generator + validator, verdict and confidence parsed, one regeneration."""

from __future__ import annotations

import litellm
import pytest

import mm_litellm
from mm_litellm import decision_of
from mm_litellm.ensemble.verification import parse_verdict
from tests.ensemble.conftest import ENSEMBLE_POLICY

Q = [{"role": "user", "content": "Extract all prices"}]


def test_accepted_answer_carries_the_validators_confidence(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY)
    mm_mock.script("mini", "$10, $12")
    mm_mock.script("big", '{"verdict": "pass", "confidence": 0.9, "issues": ""}')
    response = mm_litellm.completion(model="ensemble/verify", messages=Q)
    details = decision_of(response)["ensemble"]
    assert response.choices[0].message.content == "$10, $12"
    assert (details["accepted"], details["confidence"]) == (True, 0.9)
    assert [c["role"] for c in details["calls"]] == ["generator", "validator"]
    assert "Generated output:\n$10, $12" in mm_mock.calls_for("big")[0].kwargs["messages"][1]["content"]


def test_rejection_regenerates_once_with_the_issues(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY)
    mm_mock.script("mini", "$10", times=1)
    mm_mock.script("mini", "$10, $12")
    mm_mock.script("big", "VERDICT: FAIL, confidence 80%. The $12 price is missing.", times=1)
    mm_mock.script("big", "Verdict: pass. Confidence: 0.7")
    response = mm_litellm.completion(model="ensemble/verify", messages=Q)
    details = decision_of(response)["ensemble"]
    assert response.choices[0].message.content == "$10, $12"
    assert [(r["verdict"], r["confidence"], r["accepted"]) for r in details["rounds"]] == [
        ("fail", 0.8, False),
        ("pass", 0.7, True),
    ]
    retry = mm_mock.calls_for("mini")[1].kwargs["messages"]
    assert retry[-2] == {"role": "assistant", "content": "$10"}
    assert "The $12 price is missing." in retry[-1]["content"]


def test_final_rejection_answers_with_low_confidence_or_fails(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY)
    mm_mock.script("mini", "$10")
    mm_mock.script("big", '{"verdict": "fail", "confidence": 0.9, "issues": "missing $12"}')
    details = decision_of(mm_litellm.completion(model="ensemble/verify", messages=Q))["ensemble"]
    assert (details["accepted"], details["confidence"], len(details["rounds"])) == (False, 0.1, 2)
    mm_policy(ENSEMBLE_POLICY.replace("    regenerate: true", "    on_reject: fail"))
    with pytest.raises(litellm.InternalServerError, match="the validator rejected the answer after 1 round"):
        mm_litellm.completion(model="ensemble/verify", messages=Q)


def test_generator_failure_is_reported(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY)
    mm_mock.script("mini", error="auth")
    with pytest.raises(
        litellm.ServiceUnavailableError, match="the generator 'mini' failed: AuthenticationError"
    ):
        mm_litellm.completion(model="ensemble/verify", messages=Q)


@pytest.mark.parametrize(
    ("reply", "passed", "confidence"),
    [
        ('{"verdict": "PASS", "confidence": 85}', True, 0.85),
        ("The output is incorrect: it omits a price.", False, 0.5),
        ("Looks correct and complete. confidence: 0.95", True, 0.95),
        ("I cannot tell.", None, 0.5),
    ],
)
def test_parse_verdict(reply: str, passed: bool | None, confidence: float) -> None:
    verdict = parse_verdict(reply)
    assert (verdict.passed, verdict.confidence) == (passed, confidence)
