"""The decision trace has one key set in every door (integrations/trace.py owns it).

The same requests go through ``mm_litellm.completion``, a routed ``litellm.Router``, plain
``litellm.acompletion`` (an ensemble by name) and the proxy's header builder; every trace has
exactly :data:`DECISION_KEYS` plus the detail keys that apply. ``tests/proxy/test_proxy_e2e.py``
checks the real proxy's ``x-mm-decision`` header against the SDK and the Router.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import litellm
import pytest

import mm_litellm
from mm_litellm import decision_of, parse_policy
from mm_litellm.integrations.router_hook import routed_router
from mm_litellm.integrations.trace import DECISION_KEYS, DETAIL_KEYS, DecisionTrace
from mm_litellm.proxy.headers import DECISION_HEADER, decision_headers
from mm_litellm.request import prepare
from mm_litellm.runtime import Runtime
from tests.ensemble.conftest import ENSEMBLE_POLICY

Q = [{"role": "user", "content": "What is 6 * 7?"}]

REQUESTS: dict[str, dict[str, Any]] = {
    "route default": {"model": "auto"},
    "route rule to an ensemble": {"model": "auto", "metadata": {"hard": True}},
    "policy model": {"model": "big"},
    "ensemble by name": {"model": "ensemble/vote"},
}


def test_the_typed_dict_and_the_key_sets_agree() -> None:
    assert set(DecisionTrace.__annotations__) == DECISION_KEYS | DETAIL_KEYS
    assert not DECISION_KEYS & DETAIL_KEYS


def script(mock: Any) -> None:
    for model in ("mini", "flash", "haiku", "big"):
        mock.script(model, "The answer is 42.", prompt_tokens=10, completion_tokens=5)


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_sdk_router_and_proxy_headers_report_the_same_keys(name: str, mm_policy, mm_mock) -> None:  # type: ignore[no-untyped-def]
    policy = parse_policy(ENSEMBLE_POLICY)
    mm_policy(policy)
    script(mm_mock)
    request = REQUESTS[name]
    sdk = decision_of(mm_litellm.completion(messages=Q, **request))
    router = decision_of(routed_router(policy).completion(messages=Q, **request))

    rt = Runtime(policy)  # the proxy's pre-call hook prepares the body like this, then LiteLLM answers
    body: dict[str, Any] = {"messages": Q, **json.loads(json.dumps(request))}
    prepare(rt, body, body["model"], Q)
    answered = mm_litellm.completion(messages=Q, **request)
    headers = decision_headers(body, answered)
    assert headers is not None
    proxy = json.loads(headers[DECISION_HEADER])

    assert sdk is not None and router is not None
    for trace in (sdk, router):
        assert set(trace) - DETAIL_KEYS == DECISION_KEYS
    assert set(proxy) - DETAIL_KEYS == DECISION_KEYS
    same = ("requested_model", "route", "rule", "strategy", "model", "reason", "task", "tier", "served_model")
    assert {k: sdk[k] for k in same} == {k: router[k] for k in same} == {k: proxy[k] for k in same}
    assert ("ensemble" in sdk) == ("ensemble" in router) == sdk["model"].startswith("ensemble/")


async def test_an_ensemble_through_plain_litellm_has_the_keys_too(mm_mock) -> None:  # type: ignore[no-untyped-def]
    script(mm_mock)
    mm_litellm.register_ensembles(parse_policy(ENSEMBLE_POLICY))
    trace = decision_of(await litellm.acompletion(model="ensemble/vote", messages=Q))
    assert trace is not None and set(trace) == DECISION_KEYS | {"ensemble"}
    assert (trace["requested_model"], trace["model"], trace["served_model"]) == ("ensemble/vote",) * 3
    assert trace["reason"] == "ensemble 'vote' asked by name"


def test_a_router_trace_keeps_the_ensemble_details() -> None:
    router = routed_router(parse_policy(ENSEMBLE_POLICY))
    response = asyncio.run(router.acompletion(model="ensemble/vote", messages=Q, mock_response="42"))
    trace = decision_of(response)
    assert (
        trace is not None
        and trace["ensemble"]["winner"] == "42"
        and trace["requested_model"] == "ensemble/vote"
    )
