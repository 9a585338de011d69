"""mm_litellm.run / arun and the seed 003 conveniences, over mocked LiteLLM calls."""

from __future__ import annotations

import json

import litellm
import pytest

import mm_litellm
from mm_litellm import ConfigurationError, RunResult
from mm_litellm.api import build_call
from tests.conftest import TEST_POLICY

CHEAP_POLICY = TEST_POLICY.replace(
    "default_route: auto",
    "  cheap:\n    rules: []\n    default: wide\ndefault_route: auto",
)


def test_run_auto_uses_the_default_route_and_fills_seed_003_fields(mm_policy, mm_mock) -> None:
    mm_policy(TEST_POLICY)
    mm_mock.script("small", "Paris", prompt_tokens=12, completion_tokens=1)
    result = mm_litellm.run("Capital of France?")
    assert isinstance(result, RunResult)
    assert (result.text, result.model_used, result.strategy) == ("Paris", "small", "auto")
    assert (result.input_tokens, result.output_tokens) == (12, 1)
    assert result.cost == pytest.approx(12 * 0.15e-6 + 1 * 0.6e-6)
    assert result.latency_s == result.latency > 0
    assert result.decision["route"] == "auto" and result.decision["model"] == "small"
    record = json.loads(result.to_json())
    assert list(record) == [
        "response",
        "model_used",
        "cost",
        "latency",
        "confidence",
        "input_tokens",
        "output_tokens",
        "strategy",
        "ensemble_models",
        "metadata",
        "timestamp",
    ]
    assert record["metadata"]["decision"]["served_model"] == "small"
    assert record["metadata"]["litellm_model"] == "openai/gpt-4o-mini"
    with pytest.raises(AttributeError):
        result.cost = 0  # type: ignore[misc]


def test_priority_task_and_max_cost_travel_in_metadata_where_rules_read_them(mm_policy, mm_mock) -> None:
    mm_policy(TEST_POLICY)
    mm_mock.script("claude", "vip answer")
    result = mm_litellm.run("hi", priority="high", task_type="code", metadata={"team": "a"})
    assert result.model_used == "claude" and result.decision["rule"] == "vip"
    meta = mm_mock.calls[0].kwargs["metadata"]
    assert (meta["priority"], meta["task"], meta["team"]) == ("high", "code", "a")
    # max_cost: where escalation (metadata.max_cost) and the budget check (its mm_litellm context) read it
    meta = build_call("hi", max_cost=0.01)["metadata"]
    assert (meta["max_cost"], meta["mm_litellm"]["max_cost"]) == (0.01, 0.01)


def test_system_prompt_and_messages(mm_policy, mm_mock) -> None:
    mm_policy(TEST_POLICY)
    mm_mock.script("small", "ok")
    mm_litellm.run("hi", system="be brief")
    assert mm_mock.calls[0].kwargs["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]
    msgs = [{"role": "user", "content": "from messages"}]
    mm_litellm.run(messages=msgs)
    assert mm_mock.calls[1].kwargs["messages"] == msgs
    with pytest.raises(ValueError, match="either a prompt or messages"):
        mm_litellm.run("a", messages=msgs)


async def test_arun_is_the_async_twin(mm_policy, mm_mock) -> None:
    mm_policy(TEST_POLICY)
    mm_mock.script("small", "async hi")
    result = await mm_litellm.arun("hi")
    assert (result.text, result.model_used) == ("async hi", "small")


def test_cheapest_uses_the_cheap_route(mm_policy, mm_mock) -> None:
    mm_policy(CHEAP_POLICY)
    mm_mock.script("wide", "cheap answer")
    result = mm_litellm.run("hi", strategy="cheapest")
    assert (result.model_used, result.strategy, result.decision["route"]) == ("wide", "cheapest", "cheap")
    assert mm_litellm.route_to_model("hi") == "wide"


def test_cheapest_without_a_cheap_route_says_what_is_needed(mm_policy) -> None:
    mm_policy(TEST_POLICY)
    with pytest.raises(ConfigurationError, match=r"needs a route named 'cheap' or 'cheapest'.*routes: auto"):
        mm_litellm.run("hi", strategy="cheapest")


def test_fallback_chain_becomes_per_request_router_fallbacks(mm_policy, mm_mock) -> None:
    mm_policy(TEST_POLICY)
    mm_mock.script("big", error="rate_limit")
    mm_mock.script("wide", "from wide")
    result = mm_litellm.run_with_fallback("hi", ["gpt-4", "wide"])  # an alias resolves to its model
    assert (result.text, result.model_used, result.strategy) == ("from wide", "wide", "fallback")
    assert result.decision["attempted_fallbacks"] == 1
    assert [c.model_group for c in mm_mock.calls] == ["big", "wide"]
    assert build_call("hi", strategy="fallback", chain="small, claude")["fallbacks"] == [
        {"small": ["claude"]}
    ]


def test_fallback_chain_refuses_non_models(mm_policy) -> None:
    mm_policy(TEST_POLICY)
    with pytest.raises(ConfigurationError, match="not models: auto"):
        mm_litellm.run("hi", strategy="fallback", chain=["small", "auto"])


def test_fallback_without_policy_uses_litellms_own_fallbacks(fake_upstream) -> None:
    fake_upstream.script("first", fault="500")
    fake_upstream.script("second", reply="from second")
    chain = ["openai/first", "openai/second"]
    assert build_call("hi", strategy="fallback", chain=chain)["fallbacks"] == ["openai/second"]
    result = mm_litellm.run(
        "hi",
        strategy="fallback",
        chain=chain,
        api_base=fake_upstream.base_url,
        api_key="sk-fake",
        max_retries=0,
    )
    assert result.text == "from second"
    assert result.decision == {}
    assert fake_upstream.stats()["per_model"] == {"first": 1, "second": 1}


def test_ensemble_strategy_targets_ensemble_names(mm_policy) -> None:
    mm_policy(TEST_POLICY)
    assert build_call("hi", strategy="ensemble", model="vote")["model"] == "ensemble/vote"
    assert build_call("hi", strategy="ensemble", model="ensemble/vote")["model"] == "ensemble/vote"
    with pytest.raises(ConfigurationError, match="ensembles: section"):
        build_call("hi", strategy="ensemble")


def test_unknown_strategy_lists_the_allowed_ones() -> None:
    with pytest.raises(
        ValueError, match="unknown strategy 'smart'; allowed: auto, cheapest, fallback, ensemble"
    ):
        build_call("hi", strategy="smart", model="x")


def test_auto_without_policy_needs_a_model() -> None:
    with pytest.raises(ConfigurationError, match="needs model="):
        mm_litellm.run("hi")


def test_provider_errors_propagate(mm_policy, mm_mock) -> None:
    mm_policy(TEST_POLICY)
    mm_mock.script("small", error="auth")
    mm_mock.script("claude", error="auth")
    with pytest.raises(litellm.AuthenticationError):
        mm_litellm.run("hi")


def test_result_reads_ensemble_and_escalation_details_from_the_trace() -> None:
    from mm_litellm.api import result_from_response
    from mm_litellm.testing.mocks import model_response

    response = model_response("42", model="ensemble/vote", prompt_tokens=30, completion_tokens=3)
    response._hidden_params["mm_litellm"] = {
        "served_model": "ensemble/vote",
        "ensemble": {
            "name": "vote",
            "confidence": 0.67,
            "members": ["small", "big", "claude"],
            "all_confidences": [0.6, 0.65, 0.85],
        },
    }
    result = result_from_response(response, strategy="ensemble", latency=0.2)
    assert (result.confidence, result.ensemble_models) == (0.67, ("small", "big", "claude"))
    assert result.to_dict()["metadata"]["ensemble_size"] == 3
    assert result.to_dict()["metadata"]["all_confidences"] == [0.6, 0.65, 0.85]

    response = model_response("sure", model="big")
    response._hidden_params["mm_litellm"] = {
        "escalation": {
            "chosen_hop": 1,
            "hops": [{"model": "small", "confidence": 0.3}, {"model": "big", "confidence": 0.9}],
        }
    }
    assert result_from_response(response, strategy="auto", latency=0.1).confidence == 0.9


ENSEMBLES = """
version: 1
models:
  mini: {litellm_params: {model: openai/gpt-4o-mini, api_key: sk-test}}
  flash: {litellm_params: {model: gemini/gemini-2.5-flash, api_key: sk-test}}
  haiku: {litellm_params: {model: anthropic/claude-haiku-4-5, api_key: sk-test}}
router: {num_retries: 0}
routes:
  auto: {default: mini}
default_route: auto
ensembles:
  duo: {strategy: voting, members: [mini, flash], normalise: number}
  trio: {strategy: voting, members: [mini, flash, haiku], normalise: number}
"""


def test_run_ensemble_returns_members_confidence_and_summed_cost(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLES)
    mm_mock.script("mini", "42", prompt_tokens=10, completion_tokens=5)
    mm_mock.script("flash", "#### 42", prompt_tokens=10, completion_tokens=5)
    mm_mock.script("haiku", "41", prompt_tokens=10, completion_tokens=5)
    result = mm_litellm.run_ensemble("What is 6 * 7?", "trio")
    assert (result.text, result.strategy, result.model_used) == ("42", "ensemble", "ensemble/trio")
    assert result.ensemble_models == ("mini", "flash", "haiku")
    assert result.confidence == pytest.approx(2 / 3, abs=1e-3)
    member_costs = [
        sum(litellm.cost_per_token(model=m, prompt_tokens=10, completion_tokens=5))
        for m in ("gpt-4o-mini", "gemini/gemini-2.5-flash", "claude-haiku-4-5")
    ]
    assert result.cost == pytest.approx(sum(member_costs))
    assert (result.input_tokens, result.output_tokens) == (30, 15)
    record = result.to_dict()
    assert record["ensemble_models"] == ["mini", "flash", "haiku"]
    assert (record["metadata"]["ensemble"], record["metadata"]["ensemble_size"]) == ("trio", 3)


def test_ensemble_size_picks_the_ensemble_with_that_many_members(mm_policy) -> None:
    mm_policy(ENSEMBLES)
    assert build_call("hi", strategy="ensemble", ensemble_size=3)["model"] == "ensemble/trio"
    assert build_call("hi", strategy="ensemble")["model"] == "ensemble/duo"
    with pytest.raises(
        ConfigurationError, match=r"no ensemble in the policy has 5 members; .*duo \(2\), trio \(3\)"
    ):
        build_call("hi", strategy="ensemble", ensemble_size=5)
    with pytest.raises(ConfigurationError, match=r"ensemble 'duo' has 2 members, not 3"):
        build_call("hi", strategy="ensemble", model="duo", ensemble_size=3)


def test_a_batch_mixes_ensembles_and_single_models(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLES)
    mm_mock.script("mini", "42")
    mm_mock.script("flash", "42")
    report = mm_litellm.batch(["single", {"prompt": "vote", "strategy": "ensemble", "model": "duo"}])
    assert report.metrics.per_model == {"mini": 1, "ensemble/duo": 1}
    assert [r.ensemble_models for r in report.results if r] == [(), ("mini", "flash")]


def test_fallback_along_a_named_chain_escalates_unsure_answers(mm_policy, mm_mock) -> None:
    from tests.conftest import EXAMPLE_POLICY

    mm_policy(EXAMPLE_POLICY)  # route 'careful' escalates along the 'mixed' chain
    mm_mock.script("gpt-4o-mini", "I'm not sure, I don't know.")
    mm_mock.script(
        "claude-haiku",
        "Photosynthesis converts light, water and carbon dioxide into glucose and oxygen in the "
        "chloroplasts; the light reactions make ATP and NADPH, which the Calvin cycle then uses.",
    )
    result = mm_litellm.run_with_fallback("Explain photosynthesis.", "mixed")
    assert result.decision["route"] == "careful"
    assert result.model_used == "claude-haiku" and result.text.startswith("Photosynthesis")
    hops = result.decision["escalation"]["hops"]
    assert [h["model"] for h in hops] == ["gpt-4o-mini", "claude-haiku"]
    assert result.confidence == hops[1]["confidence"] and result.confidence > hops[0]["confidence"]
    assert build_call("x", strategy="fallback")["model"] == "careful"  # no chain: the 'mixed' escalation
    assert build_call("x", strategy="fallback", chain="gpt-4o-mini,gpt-4o")["fallbacks"] == [
        {"gpt-4o-mini": ["gpt-4o"]}
    ]


def test_cheapest_on_the_example_policy_uses_its_cost_optimized_route(mm_policy, mm_mock) -> None:
    from tests.conftest import EXAMPLE_POLICY

    mm_policy(EXAMPLE_POLICY)
    mm_mock.script("*", "4")
    chosen = mm_litellm.route_to_model("What is 2+2?")
    result = mm_litellm.run("What is 2+2?", strategy="cheapest")
    assert result.decision["route"] == "cheap" and result.model_used == chosen


def test_fallback_means_the_same_in_the_api_as_in_the_cli(mm_policy, mm_mock) -> None:
    """strategy='fallback' with a chain: an unsure answer escalates along it (not only errors)."""
    mm_policy(TEST_POLICY)
    mm_mock.script("small", "I am not sure, maybe Lyon?")  # a hedged answer looks unsure
    mm_mock.script("claude", "Paris is the capital of France.")
    result = mm_litellm.run("What is the capital of France?", strategy="fallback", chain=["small", "claude"])
    assert (result.text, result.model_used) == ("Paris is the capital of France.", "claude")
    assert [h["model"] for h in result.decision["escalation"]["hops"]] == ["small", "claude"]
    from mm_litellm.routing.presets import with_preset

    policy = mm_litellm.gateway.default_gateway().policy
    cli_policy, route = with_preset(policy, "fallback", "small,claude")
    assert route is not None
    cli_route = cli_policy.routes[route]
    assert (cli_route.default, cli_policy.chains[cli_route.escalate], cli_route.fallbacks) == (
        "small",
        ("small", "claude"),
        ("claude",),
    )


def test_batch_defaults_params_apply_to_every_request(mm_policy, mm_mock) -> None:
    mm_policy(TEST_POLICY)
    mm_mock.script("*", "ok")
    report = mm_litellm.batch(
        ["a", {"prompt": "b", "params": {"temperature": 0.9}}],
        defaults={"params": {"temperature": 0.1, "max_tokens": 7}},
    )
    assert all(item.ok for item in report.items)
    sent = {c.kwargs["messages"][-1]["content"]: c.kwargs for c in mm_mock.calls}
    assert (sent["a"]["temperature"], sent["a"]["max_tokens"]) == (0.1, 7)
    assert (sent["b"]["temperature"], sent["b"]["max_tokens"]) == (0.9, 7)  # the row's own params win
