"""`mm-litellm run --strategy cheapest|fallback --chain --max-cost` (seed 003's flags), offline."""

from __future__ import annotations

import json
import shlex

import pytest

from mm_litellm.cli.main import main
from tests.conftest import EXAMPLE_POLICY

SURE = (
    "Botanically a tomato is definitely a fruit: it develops from the flower's ovary and contains "
    "the seeds, although cooks treat it as a vegetable."
)


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["run", *args, "--policy", str(EXAMPLE_POLICY), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_cheapest_uses_the_policys_cost_optimized_route(capsys: pytest.CaptureFixture[str]) -> None:
    record = run_json(capsys, "What is the capital of France?", "--strategy", "cheapest", "--mock", "Paris")
    assert (record["strategy"], record["model_used"]) == ("cheapest", "groq-fast")
    assert record["metadata"]["decision"]["strategy"] == "cost_optimized"
    assert record["confidence"] == pytest.approx(0.5)  # seed 003: a 1-word answer is unsure
    with pytest.raises(SystemExit):  # an advanced request: every advanced model costs more than $0.004
        main(
            [
                "run",
                "Design a cache",
                "--policy",
                str(EXAMPLE_POLICY),
                "--strategy",
                "cheapest",
                "--mock",
                "--max-cost",
                "0.004",
            ]
        )
    assert "gemini-pro: estimated $0.005009 > max_cost $0.004" in capsys.readouterr().err


def test_fallback_escalates_along_a_chain(capsys: pytest.CaptureFixture[str]) -> None:
    record = run_json(
        capsys,
        "Is a tomato a fruit?",
        "--strategy",
        "fallback",
        "--chain",
        "gpt-4o-mini,gpt-4o",
        "--mock",
        "I am not sure, it might be a vegetable.",
    )
    esc = record["metadata"]["decision"]["escalation"]
    assert [h["model"] for h in esc["hops"]] == ["gpt-4o-mini", "gpt-4o"]
    assert esc["stopped"] == "chain exhausted"
    assert esc["hops"][1]["cost"] > esc["hops"][0]["cost"]  # each hop priced at its own model
    assert record["confidence"] == esc["hops"][esc["chosen_hop"]]["confidence"]
    sure = run_json(capsys, "Is a tomato a fruit?", "--strategy", "fallback", "--mock", SURE)
    assert [h["model"] for h in sure["metadata"]["decision"]["escalation"]["hops"]] == ["gpt-4o-mini"]
    capped = run_json(
        capsys,
        "Is a tomato a fruit?",
        "--strategy",
        "fallback",
        "--chain",
        "anthropic",
        "--max-cost",
        "0.0001",
        "--mock",
        "Maybe.",
    )
    assert capped["metadata"]["decision"]["escalation"]["stopped"].startswith("cost cap: spent $")


def test_strategy_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for args, message in [
        (["--strategy", "fallback", "--chain", "nope,gpt-4o"], "--chain 'nope,gpt-4o' is neither a chain"),
        (["--strategy", "cheapest", "--chain", "mixed"], "--chain applies to --strategy fallback"),
        (["--strategy", "cheapest", "--route", "auto"], "--strategy cheapest chooses the route itself"),
    ]:
        with pytest.raises(SystemExit):
            main(["run", "hi", "--policy", str(EXAMPLE_POLICY), "--mock", *args])
        assert message in capsys.readouterr().err


def documented_mock_runs(doc: str) -> list[list[str]]:
    """The ``mm-litellm run ... --mock`` lines of ``doc``'s snippets that run offline, as argv."""
    from tests.conftest import ROOT
    from tests.docs.snippets import snippets_of

    runs = []
    for snippet in snippets_of(ROOT / "docs" / doc):
        if snippet.skip is None:
            runs += [
                shlex.split(line, comments=True)[1:]
                for line in snippet.text.splitlines()
                if line.startswith("mm-litellm run ") and "--mock" in line
            ]
    return runs


def test_the_documented_mock_demos_do_what_routing_md_says(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/routing.md section 7: a plain question stays on the routed model; an unsure TEXT escalates."""
    runs = documented_mock_runs("routing.md")
    assert len(runs) == 3, runs
    hops = []
    for argv in runs:
        record = run_json(capsys, *argv[1:])
        escalation = record["metadata"]["decision"]["escalation"]
        hops.append(([h["model"] for h in escalation["hops"]], escalation["stopped"], record["model_used"]))
    assert hops == [
        (["gpt-4o-mini"], "confident", "gpt-4o-mini"),
        (["gpt-4o-mini"], "confident", "gpt-4o-mini"),
        (["gpt-4o-mini", "gpt-4o"], "chain exhausted", "gpt-4o"),
    ]


def test_the_default_mock_answer_is_confident_for_the_example_policy() -> None:
    """Without TEXT, --mock (run, batch, proxy) answers like a confident model: no route escalates on it."""
    from mm_litellm import load_policy
    from mm_litellm.cli import batch, proxy, run
    from mm_litellm.policy.routing import EscalationSettings
    from mm_litellm.routing.confidence import scorer_for

    assert run.MOCK_ANSWER is batch.MOCK_ANSWER is proxy.MOCK_REPLY
    for settings in (load_policy(EXAMPLE_POLICY).escalation, EscalationSettings()):
        verdict = scorer_for(settings).score(run.MOCK_ANSWER)
        assert verdict.score >= settings.min_confidence, verdict.reasons
