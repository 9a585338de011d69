"""The ``ensembles:`` policy section: shapes, defaults and cross-references."""

from __future__ import annotations

import pytest

from mm_litellm import PolicyError, parse_policy
from tests.ensemble.conftest import ENSEMBLE_POLICY

MODELS = """
models:
  a: {litellm_params: {model: openai/gpt-4o-mini}}
  b: {litellm_params: {model: openai/gpt-4o}}
"""


def issues(text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        parse_policy(text)
    return [f"{i.path}: {i.message}" for i in info.value.issues]


def test_example_policy_parses_with_defaults() -> None:
    policy = parse_policy(ENSEMBLE_POLICY)
    vote = policy.ensembles["vote"]
    assert (vote.strategy, vote.min_agreement, vote.timeout, vote.required) == ("voting", 0.67, 2, 2)
    assert [label for label, _ in vote.labelled_members()] == ["mini", "flash", "haiku"]
    assert policy.ensembles["vote2"].members[1].weight == 2
    assert policy.ensembles["synth"].weights.confidence == 0.5


def test_repeated_member_gets_a_numbered_label() -> None:
    policy = parse_policy(MODELS + "ensembles:\n  self: {strategy: voting, members: [a, a, b]}\n")
    assert [label for label, _ in policy.ensembles["self"].labelled_members()] == ["a", "a#2", "b"]


def test_unknown_member_judge_and_route_target_are_reported() -> None:
    text = (
        MODELS
        + """
routes:
  r: {default: ensemble/nope}
ensembles:
  e: {strategy: ranking, members: [a, ghost], scorer: judge, judge: phantom}
"""
    )
    assert issues(text) == [
        "routes.r.default: unknown ensemble 'ensemble/nope'; known: ensemble/e",
        "ensembles.e.judge: unknown model or route 'phantom'; known: a, b, r",
        "ensembles.e.members[1].model: unknown model or route 'ghost'; known: a, b, r",
    ]


def test_route_may_use_an_ensemble() -> None:
    policy = parse_policy(
        MODELS
        + """
routes:
  r: {rules: [{name: hard, when: {metadata.hard: true}, use: ensemble/e}], default: a}
ensembles:
  e: {strategy: voting, members: [a, b]}
"""
    )
    assert policy.routes["r"].rules[0].use == "ensemble/e"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{strategy: voting, members: [a, b], quorum: 3}", "quorum 3 is more than the 2 members"),
        (
            "{strategy: voting, members: [a, b], on_disagreement: escalate}",
            "on_disagreement 'escalate' needs 'escalate_to'",
        ),
        ("{strategy: voting, members: [a, b], normalise: roman}", "unknown normaliser 'roman'"),
        ("{strategy: ranking, members: [a], scorer: judge}", "scorer 'judge' needs 'judge'"),
        ("{strategy: synthesis, members: [a], mode: aggregator}", "mode 'aggregator' needs 'aggregator'"),
        ("{strategy: voting, members: []}", "at least 1 item"),
        ("{strategy: guessing, members: [a]}", "does not match any of the expected tags"),
        ("{strategy: fusion, members: [a], min_agreement: 0.5}", "unknown key 'min_agreement'"),
    ],
)
def test_shape_errors(body: str, message: str) -> None:
    found = issues(MODELS + f"ensembles:\n  e: {body}\n")
    assert len(found) == 1 and message in found[0], found


def test_ensemble_prefix_is_reserved_and_members_cannot_be_ensembles() -> None:
    text = """
models:
  ensemble/x: {litellm_params: {model: openai/gpt-4o-mini}}
  a: {litellm_params: {model: openai/gpt-4o-mini}}
ensembles:
  e: {strategy: voting, members: [a, ensemble/e]}
"""
    assert issues(text) == [
        "models.ensemble/x: names starting with 'ensemble/' are reserved for ensembles",
        "ensembles.e.members[1].model: 'ensemble/e': an ensemble cannot call another ensemble",
    ]
