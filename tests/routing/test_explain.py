"""Explain / dry-run: mm_litellm.explain, `mm-litellm route --explain`, `mm-litellm policy test`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mm_litellm
from mm_litellm.cli.main import main
from tests.conftest import EXAMPLE_POLICY, ROOT

ASK = [{"role": "user", "content": "Explain why the sky is blue"}]


def test_explain_lists_features_every_rule_and_the_plan() -> None:
    e = mm_litellm.explain("auto", ASK, policy=EXAMPLE_POLICY, metadata={"budget_mode": True})
    assert isinstance(e, mm_litellm.Explanation) and e.kind == "route"
    assert (e.features["task"], e.features["tier"], e.features["budget_mode"]) == (
        "reasoning",
        "advanced",
        True,
    )
    assert e.classifier["task_matches"] == {"reasoning": "Explain"}
    assert [(t.rule, t.matched) for t in e.trials] == [
        ("vision", False),
        ("web-search", False),
        ("huge-context", False),
        ("long-context", False),
        ("high-priority", False),
        ("reasoning-budget", True),
    ]
    assert e.trials[-1].checks == (
        "task='reasoning' == 'reasoning' -> yes",
        "budget_mode=True == True -> yes",
    )
    assert e.plan is not None and e.plan.target == "gemini-flash"
    assert list(e.costs) == ["gemini-flash", "claude-haiku"]
    assert e.costs["gemini-flash"] == pytest.approx((e.features["input_tokens"] * 0.30 + 500 * 2.50) / 1e6)
    text = e.render()
    assert (
        "[x] auto/reasoning-budget: task='reasoning' == 'reasoning' -> yes; budget_mode=True == True -> yes"
        in text
    )
    assert "decision: gemini-flash  (route 'auto' rule 'reasoning-budget' matched)" in text
    json.dumps(e.to_dict(), default=str)


def test_explain_strategy_candidates_and_escalation() -> None:
    e = mm_litellm.explain("cheap", prompt="Design a cache and evaluate it", policy=EXAMPLE_POLICY)
    kept = {c.model: c.kept for c in e.candidates}
    assert kept["gemini-pro"] and not kept["groq-fast"]
    assert e.plan.target == "gemini-pro" and e.plan.strategy == "cost_optimized"
    assert "filtered: tier basic below the needed advanced" in e.render()
    careful = mm_litellm.explain("careful", prompt="hi", policy=EXAMPLE_POLICY)
    assert careful.plan.escalation == ("claude-haiku", "claude-sonnet", "gpt-4o", "claude-opus")
    assert list(careful.costs)[1:] == ["claude-haiku", "claude-sonnet", "gpt-4o", "claude-opus"]
    assert (
        "escalation (on unsure answers): claude-haiku, claude-sonnet, gpt-4o, claude-opus" in careful.render()
    )


def test_explain_estimates_an_ensemble_as_the_sum_of_its_members() -> None:
    e = mm_litellm.explain("auto", prompt="hi", policy=EXAMPLE_POLICY, metadata={"critical": True})
    assert e.plan.target == "ensemble/panel"
    tokens = e.features["input_tokens"]
    # panel = claude-haiku + gpt-4o-mini + claude-sonnet, at LiteLLM's prices
    expected = sum(p * tokens + q * 500 for p, q in ((1.0, 5.0), (0.15, 0.6), (3.0, 15.0))) / 1e6
    assert e.costs["ensemble/panel"] == pytest.approx(expected)


def test_explain_passthrough_and_active_policy(mm_policy) -> None:
    assert mm_litellm.explain("openai/gpt-4o", prompt="hi").kind == "passthrough"  # no policy active
    mm_policy(EXAMPLE_POLICY)
    e = mm_litellm.explain("openai/gpt-4o", prompt="hi")
    assert e.kind == "passthrough" and "passed straight through" in e.render()
    assert mm_litellm.explain("gpt-4", prompt="hi").plan.target == "gpt-4o"


def test_cli_route_and_explain(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", "Classify this email as spam or not", "--policy", str(EXAMPLE_POLICY)]) == 0
    assert capsys.readouterr().out.strip() == "groq-fast  (route 'auto' rule 'classification' matched)"
    assert main(["explain", "hi", "--policy", str(EXAMPLE_POLICY), "--meta", "priority=high"]) == 0
    out = capsys.readouterr().out
    assert "caller:   priority=high" in out and "[x] auto/high-priority" in out
    assert main(["route", "hi", "--route", "fast", "--policy", str(EXAMPLE_POLICY), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["plan"]["model"] == "groq-fast" and data["candidates"][0]["latency_source"] == "hint"
    assert main(["route", "look", "--images", "1", "--policy", str(EXAMPLE_POLICY)]) == 0
    assert capsys.readouterr().out.startswith("gpt-4o  (route 'auto' rule 'vision' matched)")


def test_policy_test_passes_for_the_shipped_cases(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "test", str(ROOT / "config" / "policy_tests.yaml")]) == 0
    assert capsys.readouterr().out.strip().startswith("19 passed, 0 failed")


def test_policy_test_reports_a_diff_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(f"""
policy: {EXAMPLE_POLICY}
cases:
  - {{name: wrong, prompt: "What is the capital of France?", expect: {{model: gpt-4o, rule: vision}}}}
  - {{name: right, prompt: "What is the capital of France?", expect: {{model: gpt-4o-mini}}}}
  - {{name: error, model: nope-route, prompt: hi, expect: {{model: x}}}}
""")
    assert main(["policy", "test", str(cases)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "FAIL wrong",
        "     model: expected 'gpt-4o', got 'gpt-4o-mini'",
        "     rule: expected 'vision', got None",
        "     why: route 'auto': no rule matched, default",
        "FAIL error",
        "     model: expected 'x', got 'nope-route'",
        "     why: not named by the policy: passed through",
        f"1 passed, 2 failed ({cases} against {EXAMPLE_POLICY})",
    ]
    bad = tmp_path / "bad.yaml"
    bad.write_text("cases:\n  - {name: x, expect: {model: a}}\n")
    assert main(["policy", "test", str(bad)]) == 1
    assert capsys.readouterr().out.splitlines()[0] == f"{bad} cases.0: give either 'prompt' or 'messages'"
