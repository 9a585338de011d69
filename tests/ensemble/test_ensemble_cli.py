"""``mm-litellm run --ensemble NAME``: seed 003's JSON fields for an ensemble answer."""

from __future__ import annotations

import json

import pytest

from mm_litellm.cli.main import main
from tests.conftest import EXAMPLE_POLICY


def test_run_ensemble_json_carries_members_and_confidences(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "run",
                "What is 3+4?",
                "--policy",
                str(EXAMPLE_POLICY),
                "--ensemble",
                "math-vote",
                "--mock",
                "The answer is 7.",
                "--json",
            ]
        )
        == 0
    )
    record = json.loads(capsys.readouterr().out)
    assert (record["response"], record["strategy"], record["confidence"]) == (
        "The answer is 7.",
        "ensemble",
        1.0,
    )
    assert record["ensemble_models"] == ["gpt-4o-mini", "claude-haiku", "gemini-flash"]
    assert record["metadata"]["ensemble_size"] == 3
    assert len(record["metadata"]["all_confidences"]) == 3
    assert record["metadata"]["ensemble"]["votes"] == {"7": 3.5}
    assert record["cost"] == pytest.approx(sum(c["cost"] for c in record["metadata"]["ensemble"]["calls"]))


def test_run_unknown_ensemble_fails_listing_known(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "hi", "--policy", str(EXAMPLE_POLICY), "--ensemble", "nope"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("mm-litellm: unknown ensemble 'nope'; known: extract-vote, math-vote, best-answer")


def test_ensemble_size_asks_only_the_first_members(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "run",
        "Monolith?",
        "--policy",
        str(EXAMPLE_POLICY),
        "--ensemble",
        "panel",
        "--mock",
        "Monolith first.",
    ]
    assert main([*args, "--ensemble-size", "2", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["ensemble_models"] == ["claude-haiku", "gpt-4o-mini"]
    assert record["metadata"]["ensemble_size"] == 2
    with pytest.raises(SystemExit):
        main([*args, "--ensemble-size", "4"])
    assert "ensemble 'panel' has 3 members; a size must be 1 to 3" in capsys.readouterr().err


def test_resized_keeps_the_policy_valid() -> None:
    from mm_litellm import load_policy
    from mm_litellm.policy.ensembles import resized

    policy = load_policy(EXAMPLE_POLICY)
    smaller = resized(policy, "product-fields", 1)
    assert [m.model for m in smaller.ensembles["product-fields"].members] == ["gpt-4o-mini"]
    assert smaller.ensembles["product-fields"].quorum == 1
    assert len(policy.ensembles["product-fields"].members) == 3  # the original is unchanged
    assert smaller.source == policy.source
    with pytest.raises(ValueError, match="has no members list"):
        resized(policy, "checked-extraction", 1)


def test_run_ensemble_mock_without_text_answers_what_the_normaliser_reads(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`mm-litellm run --ensemble math-vote --mock` (the docs' demo) votes instead of failing."""
    assert (
        main(["run", "--ensemble", "math-vote", "What is 6 x 7?", "--mock", "--policy", str(EXAMPLE_POLICY)])
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("answer:  42") and "confidence 1.00" in out
