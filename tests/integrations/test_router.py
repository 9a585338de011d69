"""The policy -> litellm.Router translation."""

from __future__ import annotations

import pytest

from mm_litellm import parse_policy
from mm_litellm.integrations.router import build_router, model_list, router_settings, secret_refs

POLICY = """
models:
  pool:
    deployments:
      - {litellm_params: {model: openai/gpt-4o-mini, api_key: os.environ/KEY_A}, rpm: 10}
      - {litellm_params: {model: azure/gpt-4o-mini, api_key: os.environ/KEY_B, api_base: "http://x"}, tpm: 99}
    tier: basic
    context_window: 64000
  local:
    litellm_params: {model: openai/llama, api_base: "http://localhost:1/v1", api_key: none}
    pricing: {input_per_mtok: 0.5, output_per_mtok: 1.5}
router:
  num_retries: 1
  timeout: 30
  allowed_fails: 2
  cooldown_time: 5
  fallbacks: {pool: [local]}
  context_window_fallbacks: {local: [pool]}
  content_policy_fallbacks: {pool: [local]}
  default_fallbacks: [local]
  retry_policy: {RateLimitErrorRetries: 3}
"""


def test_model_list_groups_deployments_under_the_alias() -> None:
    entries = model_list(parse_policy(POLICY))
    assert [e["model_name"] for e in entries] == ["pool", "pool", "local"]
    assert entries[0]["litellm_params"] == {
        "model": "openai/gpt-4o-mini",
        "api_key": "os.environ/KEY_A",
        "rpm": 10,
    }
    assert entries[1]["litellm_params"]["tpm"] == 99
    info = dict(entries[0]["model_info"])
    assert info.pop("id").startswith("pool#0@")  # a digest of its context window (see below)
    assert info == {"mm_alias": "pool", "mm_tier": "basic", "max_input_tokens": 64000}
    assert entries[2]["model_info"]["input_cost_per_token"] == 0.5e-6
    assert entries[2]["model_info"]["output_cost_per_token"] == 1.5e-6
    assert entries[2]["model_info"]["cache_read_input_token_cost"] == 0.5e-6
    assert not any("cost" in k for e in entries for k in e["litellm_params"])


def test_policy_prices_the_call_without_registering_them_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prices in litellm_params make LiteLLM re-register them and rebuild its cost-map index on
    every request (~10% of a proxy's CPU); in model_info the Router registers them once."""
    import litellm

    router = build_router(parse_policy(POLICY))
    calls: list[object] = []
    real = litellm.register_model
    monkeypatch.setattr(litellm, "register_model", lambda *a, **k: (calls.append(a), real(*a, **k))[1])
    r = router.completion(model="local", messages=[{"role": "user", "content": "hi"}], mock_response="hello")
    assert calls == []
    usage = r.usage
    assert r._hidden_params["response_cost"] == pytest.approx(
        usage.prompt_tokens * 0.5e-6 + usage.completion_tokens * 1.5e-6
    )


def test_router_settings_are_litellms_shapes() -> None:
    assert router_settings(parse_policy(POLICY)) == {
        "num_retries": 1,
        "retry_after": 0,
        "routing_strategy": "simple-shuffle",
        "timeout": 30,
        "allowed_fails": 2,
        "cooldown_time": 5,
        "fallbacks": [{"pool": ["local"]}],
        "context_window_fallbacks": [{"local": ["pool"]}],
        "content_policy_fallbacks": [{"pool": ["local"]}],
        "default_fallbacks": ["local"],
        "retry_policy": {"RateLimitErrorRetries": 3},
        # an upstream 400/404 is the request's fault: it never cools a deployment down (issue 16)
        "allowed_fails_policy": {
            "BadRequestErrorAllowedFails": 1_000_000_000,
            "NotFoundErrorAllowedFails": 1_000_000_000,
        },
    }


def test_build_router_accepts_the_translation() -> None:
    router = build_router(parse_policy(POLICY))
    assert sorted(router.model_names) == ["local", "pool"]
    assert router.num_retries == 1
    assert len(router.get_model_list(model_name="pool")) == 2


def test_secret_refs() -> None:
    policy = parse_policy(POLICY)
    assert secret_refs(policy.models["pool"]) == ("KEY_A", "KEY_B")
    assert secret_refs(policy.models["local"]) == ()


def _priced(input_per_mtok: float, extra_params: str = "") -> str:
    return f"""
models:
  small:
    litellm_params: {{model: openai/gpt-4o-mini, api_key: test{extra_params}}}
    pricing: {{input_per_mtok: {input_per_mtok}, output_per_mtok: {input_per_mtok}}}
routes:
  auto: {{default: small}}
"""


def test_two_routers_giving_one_alias_different_prices_each_price_their_own_calls() -> None:
    """LiteLLM keeps deployment prices process-wide by deployment id: the ids must differ."""
    dear, cheap = build_router(parse_policy(_priced(1000))), build_router(parse_policy(_priced(1)))
    ask = [{"role": "user", "content": "hi"}]
    a = dear.completion(model="small", messages=ask, mock_response="hello")
    b = cheap.completion(model="small", messages=ask, mock_response="hello")
    assert a._hidden_params["response_cost"] == pytest.approx(a.usage.total_tokens * 1000e-6)
    assert b._hidden_params["response_cost"] == pytest.approx(b.usage.total_tokens * 1e-6)
    same = model_list(parse_policy(_priced(1000)))[0]["model_info"]["id"]
    assert same == model_list(parse_policy(_priced(1000)))[0]["model_info"]["id"]  # stable across builds


def test_the_policy_price_wins_over_one_in_litellm_params() -> None:
    own = ", input_cost_per_token: 0.005, output_cost_per_token: 0.005"
    router = build_router(parse_policy(_priced(1000, own)))
    r = router.completion(model="small", messages=[{"role": "user", "content": "hi"}], mock_response="hello")
    assert r._hidden_params["response_cost"] == pytest.approx(r.usage.total_tokens * 1000e-6)
