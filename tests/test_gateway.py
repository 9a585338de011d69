"""mm_litellm.completion / acompletion: routing through the policy's litellm.Router."""

from __future__ import annotations

import litellm
import pytest
import structlog

import mm_litellm
from mm_litellm import MissingSecretError, decision_of
from tests.conftest import TEST_POLICY

USER = [{"role": "user", "content": "hello"}]


def test_route_default_serves_the_cheap_model(mm_policy, mm_mock) -> None:
    mm_policy(TEST_POLICY)
    mm_mock.script("small", "hi there", prompt_tokens=12, completion_tokens=3)
    response = mm_litellm.completion(model="auto", messages=USER)
    assert isinstance(response, litellm.ModelResponse)
    assert response.choices[0].message.content == "hi there"
    assert decision_of(response) == {
        "requested_model": "auto",
        "route": "auto",
        "rule": None,
        "strategy": None,
        "model": "small",
        "fallbacks": ["claude"],
        "reason": "route 'auto': no rule matched, default",
        "task": "general",
        "tier": "basic",
        "served_model": "small",
        "attempted_fallbacks": 0,
    }
    # the cost is LiteLLM's, from the exact usage: 12 * 0.15/1M + 3 * 0.6/1M
    assert response._hidden_params["response_cost"] == pytest.approx(12 * 0.15e-6 + 3 * 0.6e-6)
    assert [c.model for c in mm_mock.calls] == ["openai/gpt-4o-mini"]
    context = mm_mock.calls[0].kwargs["metadata"]["mm_litellm"]
    assert context.pop("runtime") == mm_litellm.gateway.default_gateway().runtime.id  # the admitting policy
    assert context == {
        "requested_model": "auto",
        "route": "auto",
        "rule": None,
        "task": "general",
        "tier": "basic",
        "model": "small",
        "fallbacks": ["claude"],
        "reason": "route 'auto': no rule matched, default",
    }


def test_rate_limit_falls_back_along_the_route(mm_policy, mm_mock) -> None:
    mm_policy(TEST_POLICY)
    mm_mock.script("small", error="rate_limit")
    mm_mock.script("claude", "from claude")
    response = mm_litellm.completion(model="auto", messages=USER)
    assert response.choices[0].message.content == "from claude"
    trace = decision_of(response)
    assert (trace["model"], trace["served_model"], trace["attempted_fallbacks"]) == ("small", "claude", 1)
    assert [c.model_group for c in mm_mock.calls] == ["small", "claude"]


def test_context_window_error_uses_context_window_fallbacks(mm_policy, mm_mock) -> None:
    mm_policy(TEST_POLICY)
    mm_mock.script("small", error="context_window")
    mm_mock.script("wide", "long answer")
    response = mm_litellm.completion(model="small", messages=USER)
    assert response.choices[0].message.content == "long answer"
    assert decision_of(response)["served_model"] == "wide"


def test_all_fallbacks_failing_raises_litellms_error(mm_policy, mm_mock) -> None:
    mm_policy(TEST_POLICY)
    mm_mock.script("small", error="rate_limit")
    mm_mock.script("claude", error="rate_limit")
    with pytest.raises(litellm.RateLimitError):
        mm_litellm.completion(model="auto", messages=USER)


def test_caller_fallbacks_win_over_the_route(mm_policy, mm_mock) -> None:
    mm_policy(TEST_POLICY)
    mm_mock.script("small", error="rate_limit")
    mm_mock.script("big", "from big")
    response = mm_litellm.completion(model="auto", messages=USER, fallbacks=[{"small": ["big"]}])
    assert decision_of(response)["served_model"] == "big"


async def test_acompletion_routes_by_metadata(mm_policy, mm_mock) -> None:
    mm_policy(TEST_POLICY)
    mm_mock.script("claude", "vip answer")
    response = await mm_litellm.acompletion(model="auto", messages=USER, metadata={"priority": "high"})
    assert response.choices[0].message.content == "vip answer"
    assert decision_of(response)["rule"] == "vip"


def test_streaming_returns_litellms_wrapper_with_the_decision(mm_policy, mm_mock) -> None:
    mm_policy(TEST_POLICY)
    mm_mock.script("small", "one two three")
    stream = mm_litellm.completion(model="auto", messages=USER, stream=True)
    assert isinstance(stream, litellm.CustomStreamWrapper)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream) == "one two three"
    assert decision_of(stream)["model"] == "small"


async def test_async_streaming(mm_policy, mm_mock) -> None:
    mm_policy(TEST_POLICY)
    mm_mock.script("small", "a b")
    stream = await mm_litellm.acompletion(model="auto", messages=USER, stream=True)
    assert "".join([c.choices[0].delta.content or "" async for c in stream]) == "a b"


def test_missing_secret_names_variable_and_model(mm_policy, monkeypatch) -> None:
    mm_policy(TEST_POLICY)
    monkeypatch.delenv("TEST_OPENAI_KEY", raising=False)
    with pytest.raises(MissingSecretError) as info:
        mm_litellm.completion(model="auto", messages=USER)
    assert str(info.value) == (
        "model 'small' needs the environment variable TEST_OPENAI_KEY (from 'os.environ/TEST_OPENAI_KEY' "
        "in its litellm_params), and it is not set"
    )
    assert (info.value.model, info.value.variable) == ("small", "TEST_OPENAI_KEY")


def test_secret_present_is_resolved_by_litellm_and_never_shown(mm_policy, monkeypatch) -> None:
    mm_policy(TEST_POLICY)
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-test-VERYSECRET")
    with structlog.testing.capture_logs() as logs:
        response = mm_litellm.completion(model="auto", messages=USER, mock_response="ok")
    assert response.choices[0].message.content == "ok"
    assert "VERYSECRET" not in repr(decision_of(response)) and "VERYSECRET" not in repr(logs)
    assert logs == [{"event": "route.decided", "log_level": "info", **decision_of(response)}]


def test_unnamed_model_passes_straight_through(mm_policy, mm_mock) -> None:
    mm_policy(TEST_POLICY)
    mm_mock.script("openai/gpt-4.1-nano", "direct")
    response = mm_litellm.completion(model="openai/gpt-4.1-nano", messages=USER)
    assert response.choices[0].message.content == "direct"
    assert decision_of(response) is None
    assert mm_mock.calls[0].model_group is None  # not through the Router


def test_policy_from_environment(monkeypatch, policy_file, mm_mock) -> None:
    from mm_litellm import runtime

    monkeypatch.setenv("MM_LITELLM_POLICY", str(policy_file()))
    runtime.reset()
    mm_mock.script("small", "env policy")
    assert mm_litellm.completion(model="auto", messages=USER).choices[0].message.content == "env policy"


def test_configure_none_is_pass_through(mm_mock) -> None:
    mm_litellm.configure(None)
    mm_mock.script("*", "plain")
    # 'auto' is just a model name now, and LiteLLM says what it says of any unknown provider
    with pytest.raises(litellm.BadRequestError, match="LLM Provider NOT provided"):
        mm_litellm.completion(model="auto", messages=USER)
    assert mm_mock.calls[0].model == "auto"


def test_pricing_override_is_what_litellm_charges(mm_mock) -> None:
    mm_litellm.configure(
        mm_litellm.parse_policy("""
models:
  local:
    litellm_params: {model: openai/llama3-local, api_base: "http://127.0.0.1:9/v1", api_key: x}
    pricing: {input_per_mtok: 1.0, output_per_mtok: 2.0}
""")
    )
    mm_mock.script("local", "cheap", prompt_tokens=1000, completion_tokens=500)
    response = mm_litellm.completion(model="local", messages=USER)
    assert response._hidden_params["response_cost"] == pytest.approx(1000 * 1e-6 + 500 * 2e-6)
