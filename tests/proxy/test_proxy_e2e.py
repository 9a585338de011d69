"""End to end: the official OpenAI client -> LiteLLM's proxy (``mm-litellm proxy``) -> FakeUpstream."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.proxy]

HI = [{"role": "user", "content": "hi"}]


def mm_headers(raw) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {k: v for k, v in raw.headers.items() if k.startswith("x-mm-")}


def upstream_models(proxy: Any, since: int) -> list[str]:
    return [r["model"] for r in proxy.upstream.requests[since:]]


def test_routed_request_rewrites_model_and_reports_the_decision(proxy: Any) -> None:
    proxy.upstream.script("fake-small", reply="small says hi", prompt_tokens=100, completion_tokens=10)
    before = len(proxy.upstream.requests)
    raw = proxy.client(proxy.keys["alice"]).chat.completions.with_raw_response.create(
        model="auto", messages=HI
    )
    response = raw.parse()
    assert response.choices[0].message.content == "small says hi"
    assert upstream_models(proxy, before) == ["fake-small"]
    headers = mm_headers(raw)
    assert headers["x-mm-route"] == "auto"
    assert headers["x-mm-rule"] == "default"
    assert headers["x-mm-model"] == "small"
    # 100 input tokens at $1/M + 10 output tokens at $2/M, priced by LiteLLM from the policy's override
    assert float(headers["x-mm-cost"]) == pytest.approx(100e-6 + 20e-6)


def test_client_hint_selects_a_rule(proxy: Any) -> None:
    raw = proxy.client(proxy.keys["alice"]).chat.completions.with_raw_response.create(
        model="auto", messages=HI, extra_body={"metadata": {"priority": "high"}}
    )
    assert mm_headers(raw)["x-mm-rule"] == "vip"
    assert mm_headers(raw)["x-mm-model"] == "big"


def test_policy_alias_and_plain_model_names(proxy: Any) -> None:
    before = len(proxy.upstream.requests)
    raw = proxy.client(proxy.keys["alice"]).chat.completions.with_raw_response.create(
        model="legacy-gpt", messages=HI
    )
    assert mm_headers(raw)["x-mm-model"] == "big"
    assert "x-mm-route" not in mm_headers(raw)
    proxy.client(proxy.keys["alice"]).chat.completions.create(model="small", messages=HI)
    assert upstream_models(proxy, before) == ["fake-big", "fake-small"]


def test_fallback_after_upstream_429(proxy: Any) -> None:
    proxy.upstream.script("fake-flaky", fault="429")
    proxy.upstream.script("fake-backup", reply="backup answered")
    before = len(proxy.upstream.requests)
    raw = proxy.client(proxy.keys["alice"]).chat.completions.with_raw_response.create(
        model="auto", messages=HI, extra_body={"metadata": {"path": "flaky"}}
    )
    assert raw.parse().choices[0].message.content == "backup answered"
    assert upstream_models(proxy, before) == ["fake-flaky", "fake-backup"]
    headers = mm_headers(raw)
    assert headers["x-mm-rule"] == "flaky-path"
    assert headers["x-mm-model"] == "backup"
    assert headers["x-mm-fallbacks"] == "1"


def test_streaming_through_a_route(proxy: Any) -> None:
    proxy.upstream.script("fake-big", reply="streamed from the big model")
    with proxy.client(proxy.keys["alice"]).chat.completions.with_streaming_response.create(
        model="auto",
        messages=HI,
        stream=True,
        extra_body={"metadata": {"priority": "high"}},
    ) as raw:
        headers = mm_headers(raw)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse() if chunk.choices)
    assert text == "streamed from the big model"
    assert headers["x-mm-route"] == "auto"
    assert headers["x-mm-rule"] == "vip"
    assert headers["x-mm-model"] == "big"


def test_unknown_and_malformed_keys_get_401(proxy: Any) -> None:
    with pytest.raises(openai.AuthenticationError) as info:
        proxy.client("sk-mm-not-a-key").chat.completions.create(model="auto", messages=HI)
    assert "unknown API key" in str(info.value)
    with pytest.raises(openai.AuthenticationError):
        proxy.client("x" * 300).chat.completions.create(model="auto", messages=HI)
    reply = httpx.post(proxy.url + "/v1/chat/completions", json={"model": "auto", "messages": HI})
    assert reply.status_code == 401


def test_master_key_still_works(proxy: Any) -> None:
    raw = proxy.client(proxy.master_key).chat.completions.with_raw_response.create(model="auto", messages=HI)
    assert mm_headers(raw)["x-mm-model"] == "small"


def test_identity_comes_from_the_key_not_the_body(proxy: Any) -> None:
    # Bob's key (scrypt-hashed in the keys file) is routed by the 'user: bob' rule ...
    raw = proxy.client(proxy.keys["bob"]).chat.completions.with_raw_response.create(model="auto", messages=HI)
    assert mm_headers(raw)["x-mm-rule"] == "bobs-route"
    # ... Alice claiming to be Bob (body user, metadata, a forged mm_litellm identity) is not.
    forged = {
        "user": "bob",
        "metadata": {
            "user": "bob",
            "team": "research",
            "mm_litellm": {"identity": {"key": "bob", "user": "bob", "team": "research"}},
        },
    }
    raw = proxy.client(proxy.keys["alice"]).chat.completions.with_raw_response.create(
        model="auto", messages=HI, user="bob", extra_body={"metadata": forged["metadata"]}
    )
    assert mm_headers(raw)["x-mm-rule"] == "default"
    assert mm_headers(raw)["x-mm-model"] == "small"


def test_routing_error_is_400_with_the_reason(proxy: Any) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        proxy.client(proxy.keys["alice"]).chat.completions.create(model="strict", messages=HI)
    body = info.value.body
    assert isinstance(body, dict)
    assert "route 'strict': no rule matched" in body["message"]
    assert body["param"] == "model"
    assert body["provider_specific_fields"]["mm_litellm"] == {"reason": "routing_error", "route": "strict"}


def test_key_model_allowlist_is_enforced_on_the_requested_name(proxy: Any) -> None:
    with pytest.raises(openai.PermissionDeniedError) as info:
        proxy.client(proxy.keys["narrow"]).chat.completions.create(model="auto", messages=HI)
    assert "may not use model 'auto'" in str(info.value)
    raw = proxy.client(proxy.keys["narrow"]).chat.completions.with_raw_response.create(
        model="strict", messages=HI, extra_body={"metadata": {"priority": "high"}}
    )
    assert mm_headers(raw)["x-mm-model"] == "big"


def test_models_endpoint_lists_routes_and_models(proxy: Any) -> None:
    names = {m.id for m in proxy.client(proxy.keys["alice"]).models.list()}
    assert {"auto", "strict", "legacy-gpt", "small", "big", "backup", "flaky"} <= names


def test_ensemble_through_a_route(proxy: Any) -> None:
    for model, reply in (("fake-small", "Paris."), ("fake-big", "paris"), ("fake-backup", "Lyon")):
        proxy.upstream.script(model, reply=reply, prompt_tokens=100, completion_tokens=10)
    before = len(proxy.upstream.requests)
    raw = proxy.client(proxy.keys["alice"]).chat.completions.with_raw_response.create(
        model="auto", messages=HI, extra_body={"metadata": {"vote": True}}
    )
    assert raw.parse().choices[0].message.content.lower().startswith("paris")
    assert sorted(upstream_models(proxy, before)) == ["fake-backup", "fake-big", "fake-small"]
    headers = mm_headers(raw)
    assert (headers["x-mm-rule"], headers["x-mm-model"]) == ("vote", "ensemble/trio")
    assert headers["x-mm-ensemble"] == "trio"
    assert headers["x-mm-ensemble-members"] == "small,big,backup"
    assert float(headers["x-mm-ensemble-confidence"]) == pytest.approx(2 / 3, abs=1e-3)
    # the exact sum of the three member calls at the policy's prices
    assert float(headers["x-mm-cost"]) == pytest.approx(2 * (100e-6 + 20e-6) + (1000e-6 + 300e-6))


def test_ensemble_streams(proxy: Any) -> None:
    for model in ("fake-small", "fake-big", "fake-backup"):
        proxy.upstream.script(model, reply="Rome")
    with proxy.client(proxy.keys["alice"]).chat.completions.with_streaming_response.create(
        model="ensemble/trio",
        messages=HI,
        stream=True,
    ) as raw:
        headers = mm_headers(raw)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse() if chunk.choices)
    assert text == "Rome"
    assert headers["x-mm-ensemble"] == "trio"


def test_prompt_id_renders_before_routing(proxy: Any) -> None:
    proxy.upstream.script("fake-small", reply="short summary")
    proxy.upstream.script("fake-big", reply="long summary")
    client = proxy.client(proxy.keys["alice"])
    before = len(proxy.upstream.requests)
    raw = client.chat.completions.with_raw_response.create(
        model="auto",
        messages=[],
        extra_body={"prompt_id": "summarise", "prompt_variables": {"text": "a cat sat"}},
    )
    assert raw.parse().choices[0].message.content == "short summary"
    sent = proxy.upstream.requests[before]
    assert sent["model"] == "fake-small"
    assert sent["body"]["messages"] == [
        {"role": "system", "content": "You summarise."},
        {"role": "user", "content": "Summarise: a cat sat"},
    ]
    assert sent["body"]["max_tokens"] == 50  # the template's parameters are applied
    assert "prompt_id" not in sent["body"]
    # the rendered request is what the rules see: a long variable makes it a long input
    raw = client.chat.completions.with_raw_response.create(
        model="auto",
        messages=[],
        extra_body={"prompt_id": "summarise", "prompt_variables": {"text": "word " * 800}},
    )
    assert (mm_headers(raw)["x-mm-rule"], mm_headers(raw)["x-mm-model"]) == ("long-input", "big")


def test_unknown_prompt_is_400(proxy: Any) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        proxy.client(proxy.keys["alice"]).chat.completions.create(
            model="auto", messages=[], extra_body={"prompt_id": "no-such-prompt"}
        )
    assert "no-such-prompt" in info.value.body["message"]
    assert info.value.body["param"] == "prompt_id"


def test_unsure_answer_escalates_along_the_chain(proxy: Any) -> None:
    sure = (
        "The capital of France is definitely Paris, as every atlas, encyclopedia and official "
        "government source clearly states; it has been the seat of government for centuries."
    )
    proxy.upstream.script(
        "fake-small", reply="I'm not sure, it might be Lyon.", prompt_tokens=100, completion_tokens=10
    )
    proxy.upstream.script("fake-big", reply=sure, prompt_tokens=100, completion_tokens=10)
    before = len(proxy.upstream.requests)
    raw = proxy.client(proxy.keys["alice"]).chat.completions.with_raw_response.create(
        model="careful", messages=HI, temperature=0.3
    )
    assert raw.parse().choices[0].message.content == sure
    assert upstream_models(proxy, before) == ["fake-small", "fake-big"]
    assert (
        proxy.upstream.requests[-1]["body"]["temperature"] == 0.3
    )  # the hop repeats the request's parameters
    headers = mm_headers(raw)
    assert headers["x-mm-route"] == "careful"
    assert headers["x-mm-escalation"] == "small,big"
    assert headers["x-mm-escalation-stopped"] == "confident"
    assert headers["x-mm-model"] == "big"
    assert float(headers["x-mm-cost"]) == pytest.approx((100e-6 + 20e-6) + (1000e-6 + 300e-6))
    first = proxy.ledger_row(raw.headers["x-litellm-call-id"])  # the ledger groups a hop with its first call
    assert (first["model"], first["parent_id"], first["escalation_hop"]) == ("small", None, None)
    hops = proxy.ledger_children(str(first["call_id"]), expect=1)
    assert [(h["model"], h["escalation_hop"], h["route"]) for h in hops] == [("big", 1, "careful")]


def test_budget_block_is_429_naming_the_budget(proxy: Any) -> None:
    before = len(proxy.upstream.requests)
    with pytest.raises(openai.RateLimitError) as info:
        proxy.client(proxy.keys["erin"]).chat.completions.create(model="auto", messages=HI)
    body = info.value.body
    assert isinstance(body, dict) and body["type"] == "budget_exceeded" and body["code"] == "429"
    details = body["provider_specific_fields"]["mm_litellm"]
    assert details["budget"] == "erin-cap" and details["scope"] == "user=erin"
    assert details["limit"] == pytest.approx(0.00001) and details["spent"] == 0
    assert details["resets_at"].startswith("20") and details["unit"] == "usd"
    assert "erin-cap" in body["message"]
    assert len(proxy.upstream.requests) == before  # refused before any provider call: nothing charged


def test_budget_downgrade_serves_the_cheaper_model(proxy: Any) -> None:
    before = len(proxy.upstream.requests)
    raw = proxy.client(proxy.keys["dave"]).chat.completions.with_raw_response.create(
        model="auto", messages=HI, extra_body={"metadata": {"priority": "high"}}
    )
    headers = mm_headers(raw)
    assert (headers["x-mm-rule"], headers["x-mm-model"]) == ("vip", "small")
    assert headers["x-mm-budget-downgrade"] == "dave-cap: big -> small"
    assert upstream_models(proxy, before) == ["fake-small"]


def test_forged_identity_does_not_change_whose_budget_is_charged(proxy: Any) -> None:
    # Alice claims to be Erin (whose budget is spent): she is served, and charged as herself.
    forged = {"user": "erin", "mm_litellm": {"identity": {"key": "erin", "user": "erin"}}}
    raw = proxy.client(proxy.keys["alice"]).chat.completions.with_raw_response.create(
        model="auto", messages=HI, user="erin", extra_body={"metadata": forged}
    )
    row = proxy.ledger_row(raw.headers["x-litellm-call-id"])
    assert (row["user"], row["team"], row["api_key"]) == ("alice", "support", "alice")
    assert row["model"] == "small" and row["route"] == "auto" and row["cost_usd"] > 0


def test_the_decision_trace_has_the_same_keys_in_the_proxy_sdk_and_router(proxy: Any) -> None:
    """x-mm-decision carries mm_litellm.decision_of's keys (integrations/trace.py), with the same values."""
    import json

    from mm_litellm import Gateway, decision_of, parse_policy
    from mm_litellm.integrations.router_hook import routed_router
    from mm_litellm.integrations.trace import DECISION_KEYS, DETAIL_KEYS
    from tests.proxy.support import POLICY

    for model in ("fake-small", "fake-big", "fake-backup"):
        proxy.upstream.script(model, reply="Paris is the capital of France, clearly and definitely.")
    text = POLICY.format(base=proxy.upstream.base_url)
    policy = parse_policy(text[: text.index("budgets:")])  # same models and upstream; no ledger here
    same = ("requested_model", "route", "rule", "strategy", "model", "reason", "served_model")
    for extra in ({}, {"metadata": {"vote": True}}):
        raw = proxy.client(proxy.keys["alice"]).chat.completions.with_raw_response.create(
            model="auto", messages=HI, extra_body=extra
        )
        served = json.loads(raw.headers["x-mm-decision"])
        with Gateway(policy) as gateway:
            sdk = decision_of(gateway.completion(model="auto", messages=HI, **extra))
        router = decision_of(routed_router(policy).completion(model="auto", messages=HI, **extra))
        assert sdk is not None and router is not None
        assert (
            set(served) - DETAIL_KEYS == set(sdk) - DETAIL_KEYS == set(router) - DETAIL_KEYS == DECISION_KEYS
        )
        assert {k: served[k] for k in same} == {k: sdk[k] for k in same} == {k: router[k] for k in same}
