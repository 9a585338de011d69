"""``ensemble/<name>`` through every entry point: mm_litellm, plain LiteLLM after registration,
a ``litellm.Router``, routes, streaming; and what LiteLLM's callbacks see (cost counted once)."""

from __future__ import annotations

import asyncio

import litellm
import pytest
from litellm.integrations.custom_logger import CustomLogger

import mm_litellm
from mm_litellm import ConfigurationError, decision_of, parse_policy
from tests.ensemble.conftest import ENSEMBLE_POLICY

Q = [{"role": "user", "content": "What is 6 * 7?"}]


def script_42(mock) -> None:
    mock.script("mini", "42", prompt_tokens=10, completion_tokens=5)
    mock.script("flash", "#### 42", prompt_tokens=10, completion_tokens=5)
    mock.script("haiku", "41", prompt_tokens=10, completion_tokens=5)


class Events(CustomLogger):
    """Records every success event LiteLLM sends (outer ensemble call and member calls)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict] = []

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time) -> None:  # type: ignore[no-untyped-def]
        meta = (kwargs.get("litellm_params") or {}).get("metadata") or {}
        self.events.append(
            {
                "model": kwargs.get("model"),
                "call_id": kwargs.get("litellm_call_id"),
                "cost": kwargs.get("response_cost"),
                "mm": meta.get("mm_litellm") or {},
            }
        )

    def log_success_event(self, kwargs, response_obj, start_time, end_time) -> None:  # type: ignore[no-untyped-def]
        asyncio.run(self.async_log_success_event(kwargs, response_obj, start_time, end_time))


async def wait_for(events: Events, count: int) -> None:
    for _ in range(100):
        if len(events.events) >= count:
            return
        await asyncio.sleep(0.02)


async def test_route_rule_uses_an_ensemble_and_callbacks_count_money_once(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY)
    script_42(mm_mock)
    events = Events()
    litellm.callbacks = [events]
    response = await mm_litellm.acompletion(model="auto", messages=Q, metadata={"hard": True})
    trace = decision_of(response)
    assert (trace["route"], trace["rule"], trace["model"]) == ("auto", "hard", "ensemble/vote")
    assert trace["ensemble"]["winner"] == "42"
    await wait_for(events, 4)
    outer = [e for e in events.events if "parent_id" not in e["mm"]]
    members = [e for e in events.events if "parent_id" in e["mm"]]
    assert len(outer) == 1 and len(members) == 3
    assert {m["mm"]["parent_id"] for m in members} == {outer[0]["call_id"]}
    assert {m["mm"]["ensemble"] for m in members} == {"vote"}
    assert sorted(m["mm"]["ensemble_member"] for m in members) == ["flash", "haiku", "mini"]
    assert outer[0]["cost"] == pytest.approx(sum(m["cost"] for m in members))
    assert outer[0]["cost"] == pytest.approx(response._hidden_params["response_cost"])


def test_plain_litellm_completion_after_registration(mm_mock) -> None:
    script_42(mm_mock)
    mm_litellm.register_ensembles(parse_policy(ENSEMBLE_POLICY))  # no active policy: this one serves
    response = litellm.completion(model="ensemble/vote", messages=Q)
    assert response.choices[0].message.content == "42"
    assert response.model == "ensemble/vote"
    assert response._hidden_params["mm_litellm"]["ensemble"]["votes"] == {"42": 2.0, "41": 1.0}
    assert response._hidden_params["response_cost"] == pytest.approx(
        sum(c["cost"] for c in response._hidden_params["mm_litellm"]["ensemble"]["calls"])
    )


async def test_inside_a_litellm_router(mm_mock) -> None:
    script_42(mm_mock)
    mm_litellm.register_ensembles(parse_policy(ENSEMBLE_POLICY))
    router = litellm.Router(
        model_list=[{"model_name": "careful", "litellm_params": {"model": "ensemble/vote"}}]
    )
    response = await router.acompletion(model="careful", messages=Q)
    assert response.choices[0].message.content == "42"
    assert response._hidden_params["mm_litellm"]["ensemble"]["confidence"] == pytest.approx(2 / 3, abs=1e-5)
    assert response._hidden_params["response_cost"] > 0


def test_unknown_ensemble_and_missing_policy_are_clear(mm_mock) -> None:
    mm_litellm.register_ensembles()
    with pytest.raises(litellm.APIConnectionError, match="'ensemble/vote': no policy is active"):
        litellm.completion(model="ensemble/vote", messages=Q)
    mm_litellm.register_ensembles(parse_policy(ENSEMBLE_POLICY))
    with pytest.raises(
        litellm.APIConnectionError,
        match="unknown ensemble 'ensemble/nope' in policy <string>; known: ensemble/fuse, ",
    ):
        litellm.completion(model="ensemble/nope", messages=Q)
    assert issubclass(ConfigurationError, mm_litellm.MMLiteLLMError)


def test_sync_stream_yields_the_answer_with_summed_cost(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY)
    mm_mock.script(
        "mini", "The answer is 42 because six sevens are forty-two.", prompt_tokens=10, completion_tokens=5
    )
    mm_mock.script("flash", "42", prompt_tokens=10, completion_tokens=5)
    mm_mock.script("haiku", "41", prompt_tokens=10, completion_tokens=5)
    chunks = list(mm_litellm.completion(model="ensemble/vote", messages=Q, stream=True))
    assert len(chunks) > 1
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == (
        "The answer is 42 because six sevens are forty-two."
    )


async def test_async_stream_and_its_logged_cost(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY)
    script_42(mm_mock)
    events = Events()
    litellm.callbacks = [events]
    stream = await mm_litellm.acompletion(model="ensemble/vote", messages=Q, stream=True)
    assert "".join([c.choices[0].delta.content or "" async for c in stream]) == "42"
    await wait_for(events, 4)
    outer = [e for e in events.events if "parent_id" not in e["mm"]]
    members = [e for e in events.events if "parent_id" in e["mm"]]
    assert len(outer) == 1 and outer[0]["cost"] == pytest.approx(sum(m["cost"] for m in members))


ROUTE_MEMBER_POLICY = (
    ENSEMBLE_POLICY
    + """
  routed:
    strategy: voting
    members: [auto, big]
    normalise: number
    reply: value
"""
)


def test_a_route_member_is_decided_by_the_routing_engine(mm_policy, mm_mock) -> None:
    mm_policy(ROUTE_MEMBER_POLICY)
    mm_mock.script("mini", "It is 42.")
    mm_mock.script("big", "#### 42")
    response = mm_litellm.completion(model="ensemble/routed", messages=Q)
    assert response.choices[0].message.content == "42"  # reply: value
    calls = decision_of(response)["ensemble"]["calls"]
    assert [(c["member"], c["model"], c["served_by"]) for c in calls] == [
        ("auto", "auto", "mini"),
        ("big", "big", "big"),
    ]
    routed = mm_mock.calls_for("mini")[0].kwargs["metadata"]["mm_litellm"]
    assert (routed["route"], routed["rule"], routed["requested_model"]) == ("auto", None, "auto")


def test_a_member_missing_its_secret_fails_clearly(mm_policy, monkeypatch) -> None:
    mm_policy(ENSEMBLE_POLICY)
    for name in ("TEST_OPENAI_KEY", "TEST_GEMINI_KEY", "TEST_ANTHROPIC_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(litellm.ServiceUnavailableError) as info:
        mm_litellm.completion(model="ensemble/vote", messages=Q)
    assert (
        "mini (mini): MissingSecretError: model 'mini' needs the environment variable TEST_OPENAI_KEY "
        "(from 'os.environ/TEST_OPENAI_KEY' in its litellm_params), and it is not set"
    ) in str(info.value)


def test_a_failing_ensemble_falls_back_along_the_route(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY.replace("use: ensemble/vote}", "use: ensemble/vote, fallbacks: [big]}"))
    mm_mock.script("mini", error="rate_limit")
    mm_mock.script("flash", error="rate_limit")
    mm_mock.script("haiku", "42")
    mm_mock.script("big", "42 (from the fallback)")
    response = mm_litellm.completion(model="auto", messages=Q, metadata={"hard": True})
    assert response.choices[0].message.content == "42 (from the fallback)"
    trace = decision_of(response)
    assert (trace["model"], trace["served_model"], trace["attempted_fallbacks"]) == (
        "ensemble/vote",
        "big",
        1,
    )
    # the ensemble was not retried as a whole: each member was called once (members run
    # concurrently, so in any order), then the fallback
    groups = [c.model_group for c in mm_mock.calls]
    assert sorted(groups[:3]) == ["flash", "haiku", "mini"] and groups[3:] == ["big"]


def test_member_metadata_keeps_identity_but_not_the_proxy_key(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY)
    script_42(mm_mock)
    identity = {"user": "ana", "team": "search"}
    mm_litellm.completion(
        model="ensemble/vote",
        messages=Q,
        metadata={"mm_litellm": {"identity": identity}, "tags": ["t1"], "user_api_key_hash": "abc"},
    )
    for call in mm_mock.calls:
        meta = call.kwargs["metadata"]
        assert meta["mm_litellm"]["identity"] == identity and meta["tags"] == ["t1"]
        assert "user_api_key_hash" not in meta


def test_mock_response_on_an_ensemble_runs_its_members_with_the_mock(mm_policy) -> None:
    """One mock meaning: mock_response= on ensemble/<name> is what each member answers."""
    mm_policy(ENSEMBLE_POLICY)
    response = mm_litellm.completion(model="ensemble/vote", messages=Q, mock_response="42")
    trace = decision_of(response)
    assert trace is not None and trace["ensemble"]["winner"] == "42"
    assert set(trace["ensemble"]["answers"].values()) == {"42"}
    member_costs = [c["cost"] for c in trace["ensemble"]["calls"]]
    assert len(member_costs) == len(trace["ensemble"]["members"]) >= 2
    assert response._hidden_params["response_cost"] == pytest.approx(sum(member_costs))
