"""The routing engine: aliases, declared models, first-match rules, defaults, nested routes."""

from __future__ import annotations

import pytest

from mm_litellm import RoutingError, parse_policy
from mm_litellm.routing.engine import RoutingEngine
from tests.conftest import TEST_POLICY

USER = [{"role": "user", "content": "hello"}]


def with_routes(extra: str) -> str:
    """TEST_POLICY with more routes appended to its routes section."""
    return TEST_POLICY.replace("default_route: auto\n", "") + extra


@pytest.fixture
def engine() -> RoutingEngine:
    return RoutingEngine(parse_policy(TEST_POLICY))


def test_handles_only_policy_names(engine: RoutingEngine) -> None:
    assert engine.handles("auto") and engine.handles("gpt-4") and engine.handles("small")
    assert not engine.handles("openai/gpt-4o-mini")
    assert not engine.handles("gpt-4o")


def test_declared_model_and_alias(engine: RoutingEngine) -> None:
    plan = engine.plan("small", USER)
    assert (plan.target, plan.route, plan.rule) == ("small", None, None)
    plan = engine.plan("gpt-4", USER)
    assert plan.target == "big"
    assert plan.reason == "legacy alias 'gpt-4' -> 'big'; model 'big' declared in the policy"


def test_first_matching_rule_wins(engine: RoutingEngine) -> None:
    image = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is it"},
                {"type": "image_url", "image_url": {"url": "data:x"}},
            ],
        }
    ]
    plan = engine.plan("auto", image, {"metadata": {"priority": "high"}})
    assert (plan.target, plan.rule) == ("big", "vision")
    plan = engine.plan("auto", USER, {"metadata": {"priority": "high"}})
    assert (plan.target, plan.rule, plan.fallbacks) == ("claude", "vip", ())  # the target leaves the chain
    assert plan.reason == "route 'auto' rule 'vip' matched"


def test_default_and_route_fallbacks(engine: RoutingEngine) -> None:
    plan = engine.plan("auto", USER)
    assert (plan.target, plan.rule, plan.fallbacks) == ("small", None, ("claude",))
    assert plan.trace() == {
        "requested_model": "auto",
        "route": "auto",
        "rule": None,
        "model": "small",
        "fallbacks": ["claude"],
        "reason": "route 'auto': no rule matched, default",
    }


def test_nested_routes_rule_fallbacks_and_explain() -> None:
    policy = parse_policy(
        with_routes("""
  front:
    rules:
      - {name: to-auto, when: {metadata.team: x}, use: auto}
      - {name: wide, when: {input_tokens: {gt: 1000}}, use: wide, fallbacks: [big]}
    default: gpt-4
""")
    )
    engine = RoutingEngine(policy)
    plan = engine.plan("front", USER, {"metadata": {"team": "x"}})
    assert (plan.target, plan.route, plan.rule) == ("small", "front > auto", None)
    long = [{"role": "user", "content": "word " * 2000}]
    plan = engine.plan("front", long, explain=True)
    assert (plan.target, plan.fallbacks) == ("wide", ("big",))
    assert [(t.rule, t.matched) for t in plan.trials] == [("to-auto", False), ("wide", True)]
    assert plan.trials[1].checks == ("input_tokens=2504 > 1000 -> yes",)
    plan = engine.plan("front", USER)
    assert plan.target == "big"  # the default goes through the legacy alias


def test_no_match_and_no_default_is_a_routing_error() -> None:
    engine = RoutingEngine(
        parse_policy(with_routes("  strict:\n    rules: [{name: r, when: {user: x}, use: small}]\n"))
    )
    with pytest.raises(RoutingError) as info:
        engine.plan("strict", USER)
    assert str(info.value) == "route 'strict': no rule matched this request and the route has no 'default'"
    assert info.value.route == "strict"
