"""MockLLM: scripted replies per model through LiteLLM's own mock_response."""

from __future__ import annotations

import time

import litellm
import pytest

from mm_litellm.testing import ERRORS, MockLLM, UnscriptedModelError

USER = [{"role": "user", "content": "hi"}]


def test_text_usage_and_cost_run_through_litellm() -> None:
    mock = MockLLM().script("gpt-4o-mini", "Paris", prompt_tokens=100, completion_tokens=10)
    with mock.installed():
        response = litellm.completion(model="openai/gpt-4o-mini", messages=USER)
    assert response.choices[0].message.content == "Paris"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (100, 10)
    assert response._hidden_params["response_cost"] == pytest.approx(100 * 0.15e-6 + 10 * 0.6e-6)
    assert len(mock.calls_for("gpt-4o-mini")) == 1


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_each_error_raises_litellms_class(name: str) -> None:
    mock = MockLLM().script("*", error=name)
    with mock.installed(), pytest.raises(getattr(litellm, ERRORS[name][0])) as info:
        litellm.completion(model="openai/gpt-4o-mini", messages=USER)
    assert "mocked" in str(info.value)


def test_times_then_standing_reply_and_strictness() -> None:
    mock = MockLLM().script("m", "later").script("m", error="rate_limit", times=1)
    with mock.installed():
        with pytest.raises(litellm.RateLimitError):
            litellm.completion(model="openai/m", messages=USER)
        assert litellm.completion(model="openai/m", messages=USER).choices[0].message.content == "later"
        with pytest.raises(UnscriptedModelError, match="no scripted response for model 'openai/other'"):
            litellm.completion(model="openai/other", messages=USER)
    with pytest.raises(ValueError, match="unknown error 'oops'; allowed: rate_limit"):
        MockLLM().script("m", error="oops")


async def test_delay_does_not_block_the_event_loop() -> None:
    import asyncio

    mock = MockLLM().script("*", "slow", delay=0.2)
    with mock.installed():
        started = time.perf_counter()
        results = await asyncio.gather(
            *[litellm.acompletion(model="openai/gpt-4o-mini", messages=USER) for _ in range(5)]
        )
        elapsed = time.perf_counter() - started
    assert [r.choices[0].message.content for r in results] == ["slow"] * 5
    assert elapsed < 5 * 0.2  # concurrent, not one after the other


def test_uninstall_restores_litellm() -> None:
    original = litellm.completion
    with MockLLM().installed():
        assert litellm.completion is not original
    assert litellm.completion is original


def test_streaming_mock_counts_real_tokens() -> None:
    mock = MockLLM().script("*", "one two three")
    with mock.installed():
        stream = litellm.completion(
            model="openai/gpt-4o-mini", messages=USER, stream=True, stream_options={"include_usage": True}
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "one two three"


def test_pytest_fixtures_are_registered(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.has_plugin("mm_litellm")


def test_router_retries_under_a_mock_happen_without_backoff_sleeps() -> None:
    """A scripted error is retried as with a real provider, but LiteLLM's backoff is not slept."""
    router = litellm.Router(
        model_list=[{"model_name": "m", "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "k"}}],
        num_retries=2,
    )
    mock = MockLLM().script("m", "ok").script("m", error="rate_limit", times=2)
    original = getattr(litellm, "calculate_retry_after", None)
    with mock.installed():
        if original is not None:  # LiteLLM 1.106's Python Router computes its backoff here
            assert litellm.calculate_retry_after(remaining_retries=1, max_retries=2, min_timeout=0) == 0
        response = router.completion(model="m", messages=USER)
    assert response.choices[0].message.content == "ok"
    assert len(mock.calls_for("m")) == 3  # two rate-limited attempts, then the answer
    assert getattr(litellm, "calculate_retry_after", None) is original  # restored


def test_retry_sleep_true_keeps_litellms_backoff() -> None:
    original = getattr(litellm, "calculate_retry_after", None)
    with MockLLM(retry_sleep=True).installed():
        assert getattr(litellm, "calculate_retry_after", None) is original
