"""Exact token counts only near a threshold; large routes indexed by their equality facts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mm_litellm import parse_policy
from mm_litellm.routing.engine import RoutingEngine
from tests.conftest import TEST_POLICY

LONG = TEST_POLICY.replace(
    "      - {name: vip,",
    "      - {name: long, when: {input_tokens: {gt: 1000}}, use: wide}\n      - {name: vip,",
)


class CountingCounter:
    def __init__(self, answer: int) -> None:
        self.answer = answer
        self.calls = 0

    def __call__(self, messages: Sequence[Any]) -> int:
        self.calls += 1
        return self.answer


def user(chars: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": "x" * chars}]


def test_exact_count_only_near_a_rule_threshold() -> None:
    counter = CountingCounter(answer=1200)
    engine = RoutingEngine(parse_policy(LONG), counter=counter)
    assert engine.thresholds == (1000,)
    far = engine.plan("auto", user(400))  # ~104 tokens: far from 1000, estimate kept
    assert (far.features.input_tokens, far.features.input_tokens_exact, counter.calls) == (104, False, 0)
    close = engine.plan("auto", user(3900))  # ~979 tokens estimated: within 15% of 1000
    assert (close.features.input_tokens, close.features.input_tokens_exact, counter.calls) == (1200, True, 1)
    assert close.rule == "long"  # the exact count decided, not the estimate


def test_litellm_token_counter_is_the_default_counter() -> None:
    engine = RoutingEngine(parse_policy(LONG))
    plan = engine.plan("auto", [{"role": "user", "content": "hello world " * 330}])
    assert plan.features.input_tokens_exact
    import litellm

    assert plan.features.input_tokens == litellm.token_counter(
        model="gpt-4o", messages=[{"role": "user", "content": "hello world " * 330}]
    )


def many_rules(n: int) -> str:
    rules = "\n".join(
        f"      - {{name: c{i}, when: {{metadata.customer: cust{i}, priority: high}}, use: {'big' if i % 2 else 'claude'}}}"
        for i in range(n)
    )
    return f"""
models:
  small: {{litellm_params: {{model: openai/gpt-4o-mini}}}}
  big: {{litellm_params: {{model: openai/gpt-4o}}}}
  claude: {{litellm_params: {{model: anthropic/claude-sonnet-4-5}}}}
routes:
  auto:
    rules:
      - {{name: first, when: {{metadata.customer: cust7}}, use: small}}
{rules}
      - {{name: catch-images, when: {{has_images: true}}, use: big}}
      - {{name: task-code, when: {{task: code, metadata.customer: cust3}}, use: small}}
    default: small
"""


def test_index_keeps_first_match_semantics() -> None:
    engine = RoutingEngine(parse_policy(many_rules(200)))
    route = engine._routes["auto"]
    assert [sorted(table)[:2] for _get, table in route.index] == [["cust0", "cust1"], [True]]
    assert route.unindexed == ()  # task-code is indexed by its customer (task is classified lazily)
    meta = lambda **m: {"metadata": m}  # noqa: E731
    hello = [{"role": "user", "content": "hello"}]
    assert engine.plan("auto", hello, meta(customer="cust7", priority="high")).rule == "first"
    assert engine.plan("auto", hello, meta(customer="cust8", priority="high")).rule == "c8"
    assert engine.plan("auto", hello, meta(customer="cust8", priority="low")).rule is None
    assert engine.plan("auto", hello, meta(customer=["unhashable"])).rule is None
    code = [{"role": "user", "content": "fix my python code"}]
    assert engine.plan("auto", code, meta(customer="cust3")).rule == "task-code"
    # explain walks every rule in order and agrees with the indexed path
    for m in (meta(customer="cust8", priority="high"), meta(customer="cust3")):
        assert engine.plan("auto", code, m, explain=True).rule == engine.plan("auto", code, m).rule
