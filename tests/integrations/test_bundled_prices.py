"""LiteLLM's bundled price file, read without importing LiteLLM, agrees with LiteLLM's own table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mm_litellm import load_policy, parse_policy
from mm_litellm.integrations.bundled_prices import BundledFacts, bundled_entry
from mm_litellm.integrations.prices import LiteLLMFacts
from mm_litellm.routing.engine import RoutingEngine
from tests.conftest import EXAMPLE_POLICY, ROOT, TEST_POLICY

EXTRA = """
  x-{i}:
    litellm_params: {{model: {model}}}
    tier: basic
"""
NAMES = [
    "openai/gpt-4.1",
    "anthropic/claude-3-5-haiku-20241022",
    "mistral/mistral-large-latest",
    "gemini/gemini-2.0-flash",
    "groq/llama-3.3-70b-versatile",
    "deepseek/deepseek-chat",
    "openai/no-such-model",
    "bedrock/anthropic.claude-3-haiku-20240307-v1:0",
    "azure/gpt-4o",
]


def test_every_example_model_and_common_names_price_as_litellm_prices_them() -> None:
    text = TEST_POLICY.replace(
        "aliases:", "".join(EXTRA.format(i=i, model=m) for i, m in enumerate(NAMES)) + "aliases:", 1
    )
    policies = [load_policy(EXAMPLE_POLICY), parse_policy(text)]
    for policy in policies:
        for name, spec in policy.models.items():
            assert BundledFacts().price(spec) == LiteLLMFacts().price(spec), name


def test_a_bare_name_of_another_provider_is_not_borrowed() -> None:
    assert bundled_entry("openai/gpt-4o-mini") is not None
    assert bundled_entry("mistral/gpt-4o-mini") is None  # gpt-4o-mini's entry is OpenAI's


def test_the_engine_prices_through_the_facts_it_is_given() -> None:
    engine = RoutingEngine(load_policy(EXAMPLE_POLICY), facts=BundledFacts())
    assert engine.catalog["gpt-4o"].input_per_mtok == pytest.approx(2.5)
    assert engine.catalog["local-llama"].price_source == "policy"


CHECK = """
import sys
from pathlib import Path
from mm_litellm.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    assert not exc.code, exc.code
assert "litellm" not in sys.modules, "LiteLLM was imported"
"""


@pytest.mark.parametrize(
    "args",
    [
        ["policy", "check", "config/policy.yaml"],
        ["policy", "test", "config/policy_tests.yaml"],
        ["route", "Design a cache and evaluate it", "--route", "cheap", "--explain"],
        ["route", "hello", "--json"],
        ["models"],
        ["models", "--json"],
    ],
)
def test_commands_that_call_no_provider_do_not_import_litellm(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK, *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_explain_with_a_policy_file_does_not_import_litellm() -> None:
    code = (
        "import sys, mm_litellm\n"
        "e = mm_litellm.explain('auto', prompt='hi', policy='config/policy.yaml')\n"
        "assert e.plan.target == 'gpt-4o-mini', e.plan\nassert 'litellm' not in sys.modules"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]


NEAR_THRESHOLD_POLICY = """
version: 1
models:
  small: {litellm_params: {model: openai/gpt-4o-mini}}
  big: {litellm_params: {model: openai/gpt-4o}}
routes:
  auto:
    rules:
      - {name: long, when: {input_tokens: {gt: 50}}, use: big}
    default: small
"""


def test_an_exact_count_near_a_threshold_does_not_import_litellm(tmp_path: Path) -> None:
    """explain counts the prompt exactly (it is near the rule's 50 tokens) from the bundled tokenizer."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(NEAR_THRESHOLD_POLICY)
    code = (
        "import sys, mm_litellm\n"
        f"e = mm_litellm.explain('auto', prompt='word ' * 40, policy={str(policy)!r})\n"
        "assert e.features['input_tokens_exact'] is True, e.features\n"
        "assert 'litellm' not in sys.modules, 'LiteLLM imported'\n"
        "import litellm\n"
        "exact = litellm.token_counter(model='gpt-4o', messages=[{'role': 'user', 'content': 'word ' * 40}])\n"
        "assert e.features['input_tokens'] == exact, (e.features['input_tokens'], exact)\n"
        "assert e.plan.target == ('big' if exact > 50 else 'small'), (exact, e.plan)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
