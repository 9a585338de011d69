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
