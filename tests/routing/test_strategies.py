"""cost_optimized, quality_optimized, speed_optimized and seed 004's filters."""

from __future__ import annotations

import time

import pytest

from mm_litellm import PolicyError, RoutingError, parse_policy
from mm_litellm.routing.engine import RoutingEngine
from mm_litellm.routing.latency import LATENCY, LatencyTracker

POLICY = """
models:
  cheap:  {litellm_params: {model: openai/m-cheap}, tier: basic, pricing: {input_per_mtok: 0.1, output_per_mtok: 0.4},
           context_window: 1000, latency_ms: 900}
  mid:    {litellm_params: {model: openai/m-mid}, tier: intermediate, pricing: {input_per_mtok: 1, output_per_mtok: 2},
           latency_ms: 300}
  strong: {litellm_params: {model: openai/m-strong}, tier: expert, quality: 0.95,
           pricing: {input_per_mtok: 10, output_per_mtok: 30}, latency_ms: 2000}
  mystery: {litellm_params: {model: openai/not-a-priced-model-xyz}, tier: advanced}
routes:
  thrifty: {strategy: cost_optimized}
  best: {strategy: quality_optimized, candidates: [cheap, mid, strong], require: {max_cost: 0.02}}
  fast: {strategy: speed_optimized, candidates: [cheap, mid, strong]}
  picky:
    strategy: cost_optimized
    require: {min_quality: 0.75, max_latency_ms: 1000}
  budget-1m: {strategy: quality_optimized, candidates: [cheap, mid, strong], require: {max_output_per_mtok: 5}}
  floor: {strategy: cost_optimized, candidates: [cheap, mid, strong], require: {min_tier: intermediate}}
  vision-first:
    strategy: cost_optimized
    candidates: [cheap, mid]
    rules: [{name: images, when: {has_images: true}, use: strong}]
"""


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def engine() -> RoutingEngine:
    return RoutingEngine(parse_policy(POLICY), latency=LatencyTracker())


def test_cost_optimized_picks_cheapest_model_covering_the_tier(engine: RoutingEngine) -> None:
    plan = engine.plan("thrifty", ask("What is the capital of France?"))
    assert (plan.target, plan.strategy, plan.features.tier) == ("cheap", "cost_optimized", "basic")
    assert plan.fallbacks == ("mid", "strong")  # next-best candidates become LiteLLM fallbacks
    assert plan.reason.startswith("route 'thrifty' cost_optimized: 'cheap' (basic, est. $0.000")
    assert {c.model: c.rejected for c in plan.candidates}["mystery"] == ("filtered",)  # no detail per request
    hard = engine.plan(
        "thrifty", ask("Design a sharded queue"), explain=True
    )  # advanced: only 'strong' covers it
    assert (hard.target, hard.features.tier) == ("strong", "advanced")
    rejected = {c.model: c.rejected for c in hard.candidates}
    assert rejected["cheap"] == ("tier basic below the needed advanced",)
    assert rejected["mystery"] == ("unpriced (cost_optimized needs a price: add pricing:)",)


def test_context_window_filter(engine: RoutingEngine) -> None:
    plan = engine.plan("thrifty", ask("what is " + "word " * 800), explain=True)  # ~1000 in + 500 out tokens
    assert plan.target == "mid"
    reasons = {c.model: c.rejected for c in plan.candidates}["cheap"]
    assert reasons[0].startswith("context window 1000 < ")


def test_quality_optimized_within_a_cost_cap(engine: RoutingEngine) -> None:
    assert engine.plan("best", ask("hi")).target == "strong"
    big = engine.plan("best", ask("hi"), {"max_tokens": 1000}, explain=True)  # strong: ~$0.03 > $0.02
    assert big.target == "mid"
    assert {c.model: c.rejected for c in big.candidates}["strong"][0].startswith("estimated $0.030")


def test_seed_004_price_cap_and_min_tier(engine: RoutingEngine) -> None:
    assert engine.plan("budget-1m", ask("hi")).target == "mid"  # strong's $30/Mtok output is over the cap
    assert engine.plan("floor", ask("hi")).target == "mid"


def test_speed_optimized_prefers_observed_latency_over_hints(engine: RoutingEngine) -> None:
    plan = engine.plan("fast", ask("hi"))
    assert plan.target == "mid"
    assert {c.model: c.latency_source for c in plan.candidates} == {
        "cheap": "hint",
        "mid": "hint",
        "strong": "hint",
    }
    engine.latency.observe("strong", 50)
    plan = engine.plan("fast", ask("hi"))
    assert plan.target == "strong"
    assert {c.model: c.latency_source for c in plan.candidates}["strong"] == "observed"


def test_no_candidate_left_is_a_routing_error_with_every_reason(engine: RoutingEngine) -> None:
    with pytest.raises(RoutingError) as info:
        engine.plan("picky", ask("hi"))
    message = str(info.value)
    assert "cheap: quality 0.6 < 0.75" in message
    assert "strong: latency 2000 ms > 1000 ms" in message
    assert "mystery: latency unknown, unpriced (cost_optimized needs a price: add pricing:)" in message


def test_rules_run_before_the_strategy(engine: RoutingEngine) -> None:
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:x"}}]}]
    assert engine.plan("vision-first", image).rule == "images"
    assert engine.plan("vision-first", ask("hi")).target == "cheap"


def test_prices_from_litellm_table() -> None:
    policy = parse_policy("""
models:
  mini: {litellm_params: {model: openai/gpt-4o-mini}, tier: intermediate}
  big: {litellm_params: {model: openai/gpt-4o}, tier: advanced}
routes:
  thrifty: {strategy: cost_optimized}
""")
    plan = RoutingEngine(policy).plan("thrifty", ask("hi"))
    mini = {c.model: c for c in plan.candidates}["mini"]
    assert plan.target == "mini"
    assert mini.est_cost == pytest.approx((plan.features.input_tokens * 0.15 + 500 * 0.6) / 1e6)


def test_policy_errors_for_strategy_fields() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(
            """
models: {a: {litellm_params: {model: openai/x}}}
chains: {c: [a, nope]}
routes:
  r: {candidates: [zzz], escalate: missing, default: a}
""",
            source="p.yaml",
        )
    assert str(info.value).splitlines() == [
        "p.yaml:3 chains.c[1]: unknown model 'nope'; known: a",
        "p.yaml:5 routes.r.candidates[0]: unknown model 'zzz'; known: a",
        "p.yaml:5 routes.r.escalate: unknown chain 'missing'; known: c",
        "p.yaml:5 routes.r.strategy: 'candidates' and 'require' apply to cost_optimized, quality_optimized and "
        "speed_optimized routes; set 'strategy' or remove them",
    ]


def test_latency_recorder_feeds_the_tracker_from_litellm_success_events(mm_policy, mm_mock) -> None:
    import mm_litellm

    LATENCY.reset()
    mm_policy(POLICY.replace("openai/m-mid}", "openai/m-mid, api_key: k}"))
    mm_mock.script("mid", "ok", delay=0.02)
    mm_litellm.completion(model="fast", messages=ask("hi"))
    tracker = mm_litellm.gateway.default_gateway().runtime.latency  # the policy's own recorder
    deadline = time.monotonic() + 5
    while tracker.get("mid") is None and time.monotonic() < deadline:
        time.sleep(0.02)
    observed = tracker.get("mid")
    assert observed is not None and observed >= 20
