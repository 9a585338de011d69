"""Custom auth and the pre-call decision on LiteLLM's request dict (no proxy process)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from mm_litellm.proxy.auth import user_api_key_auth
from mm_litellm.proxy.headers import decision_headers
from mm_litellm.proxy.identity import identity_of
from mm_litellm.proxy.keys import hash_key, new_key
from mm_litellm.proxy.precall import RequestRefused, prepare_request

ALICE, BOB = new_key(), new_key()

POLICY = f"""
version: 1
models:
  small: {{litellm_params: {{model: openai/gpt-4o-mini}}, tier: basic}}
  big: {{litellm_params: {{model: openai/gpt-4o}}, tier: advanced}}
routes:
  auto:
    rules:
      - {{name: bob, when: {{user: bob}}, use: big}}
      - {{name: cheap, when: {{budget_mode: true}}, use: small}}
      - {{name: vip, when: {{priority: high}}, use: big}}
    default: small
    fallbacks: [big]
  strict:
    rules: [{{name: vip, when: {{priority: high}}, use: big}}]
proxy:
  keys:
    alice: {{hash: "{hash_key(ALICE)}", user: alice, team: support, tags: [web], limits: {{rpm: 5}}}}
  keys_file: keys.yaml
"""


@pytest.fixture
def policy(tmp_path: Path, mm_policy: Any) -> None:
    (tmp_path / "keys.yaml").write_text(
        f"keys:\n  bob: {{hash: '{hash_key(BOB)}', user: bob, models: [strict]}}\n"
    )
    (tmp_path / "policy.yaml").write_text(POLICY)
    mm_policy(tmp_path / "policy.yaml")


def http_request(
    method: str = "POST", path: str = "/v1/chat/completions", body: Any = None, client: str = "10.0.0.1"
) -> Any:
    """The Starlette request LiteLLM hands the custom auth, with the body LiteLLM parsed and cached."""
    from starlette.requests import Request

    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]} if body is None else body
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "client": (client, 1234),
        "parsed_body": (tuple(body), body),
    }
    return Request(scope)


def request(model: str = "auto", **metadata: Any) -> dict[str, Any]:
    """A request dict as LiteLLM's proxy hands it to the hook: body metadata copied to requester_metadata."""
    body_meta = dict(metadata)
    return {
        "model": model,
        "messages": [{"role": "user", "content": "hi"}],
        "metadata": {**body_meta, "requester_metadata": dict(body_meta)},
    }


async def test_auth_returns_the_declared_owner(policy: None) -> None:
    auth = await user_api_key_auth(http_request(), ALICE)
    assert (auth.user_id, auth.team_id, auth.key_alias, auth.rpm_limit) == ("alice", "support", "alice", 5)
    assert ALICE not in repr(auth.model_dump())  # only the hash is kept
    who = identity_of(auth)
    assert who.as_dict() == {
        "key": "alice",
        "user": "alice",
        "team": "support",
        "tags": ["web"],
        "limits": {"rpm": 5},
        "source": "mm_litellm",
        "end_user": None,
    }
    assert identity_of(await user_api_key_auth(http_request(), BOB)).user == "bob"  # from the keys file


async def test_auth_refuses_unknown_and_malformed_keys_with_401(policy: None) -> None:
    from litellm.proxy._types import ProxyException

    for token in (new_key(), "", "two words", "x" * 1000):
        with pytest.raises(ProxyException) as info:
            await user_api_key_auth(http_request(), token)
        assert info.value.code == "401"


async def test_master_key_is_the_operator(policy: None, monkeypatch: pytest.MonkeyPatch) -> None:
    master = new_key("sk-master-")
    monkeypatch.setenv("LITELLM_MASTER_KEY", master)
    auth = await user_api_key_auth(http_request(), master)
    assert auth.user_role.value == "proxy_admin"
    assert identity_of(auth).source == "master"


def test_litellm_virtual_key_identity_is_used_as_is() -> None:
    from litellm.proxy._types import UserAPIKeyAuth

    auth = UserAPIKeyAuth(
        api_key="sk-litellm-virtual",
        key_alias="ci-bot",
        user_id="u1",
        team_id="t1",
        metadata={"tags": ["batch"]},
        max_budget=3.0,
    )
    assert identity_of(auth).as_dict() == {
        "key": "ci-bot",
        "user": "u1",
        "team": "t1",
        "tags": ["batch"],
        "limits": {"max_budget_usd": 3.0},
        "source": "litellm",
        "end_user": None,
    }


async def test_forged_body_identity_is_replaced(policy: None) -> None:
    auth = await user_api_key_auth(http_request(), ALICE)
    data = request(user="bob", team="research", mm_litellm={"identity": {"user": "bob", "key": "bob"}})
    data["user"] = "bob"
    await prepare_request(auth, data, "acompletion")
    ctx = data["metadata"]["mm_litellm"]
    assert ctx["identity"]["user"] == "alice" and ctx["identity"]["key"] == "alice"
    assert (ctx["rule"], data["model"]) == (None, "small")  # the 'user: bob' rule did not fire


async def test_route_rewrites_model_and_sets_fallbacks(policy: None) -> None:
    auth = await user_api_key_auth(http_request(), ALICE)
    data = await prepare_request(auth, request(priority="high"), "acompletion")
    assert data["model"] == "big"
    assert "fallbacks" not in data  # the route fallbacks minus the target itself: none left
    data = await prepare_request(auth, request(), "acompletion")
    assert data["model"] == "small" and data["fallbacks"] == [{"small": ["big"]}]
    ctx = data["metadata"]["mm_litellm"]
    assert {k: ctx[k] for k in ("requested_model", "route", "rule", "model")} == {
        "requested_model": "auto",
        "route": "auto",
        "rule": None,
        "model": "small",
    }


async def test_body_may_only_narrow(policy: None) -> None:
    auth = await user_api_key_auth(http_request(), ALICE)
    data = await prepare_request(auth, request(budget_mode=True), "acompletion")
    assert data["metadata"]["mm_litellm"]["budget_mode"] is True
    assert data["model"] == "small"
    data = await prepare_request(auth, request(budget_mode="yes please"), "acompletion")
    assert "budget_mode" not in data["metadata"]["mm_litellm"]


async def test_routing_error_and_model_allowlist_refuse(policy: None) -> None:
    alice, bob = await user_api_key_auth(http_request(), ALICE), await user_api_key_auth(http_request(), BOB)
    with pytest.raises(RequestRefused) as info:
        await prepare_request(alice, request("strict"), "acompletion")
    assert info.value.status == 400 and "no rule matched" in info.value.message
    with pytest.raises(RequestRefused) as info:
        await prepare_request(bob, request("auto"), "acompletion")
    assert info.value.status == 403 and "may not use model 'auto'" in info.value.message


async def test_unrouted_calls_keep_their_model_but_carry_identity(policy: None) -> None:
    auth = await user_api_key_auth(http_request(), ALICE)
    data = await prepare_request(auth, request("openai/some-other-model"), "acompletion")
    assert data["model"] == "openai/some-other-model" and "fallbacks" not in data
    data = await prepare_request(auth, {"model": "small", "input": "x"}, "aembedding")
    assert data["model"] == "small" and data["metadata"]["mm_litellm"]["identity"]["user"] == "alice"


def test_headers_from_context_and_response() -> None:
    class Response:
        _hidden_params: ClassVar[dict[str, Any]] = {
            "response_cost": 0.00012,
            "model_id": "big#0",
            "additional_headers": {"x-litellm-attempted-fallbacks": 1},
        }

    data = {
        "model": "small",
        "metadata": {
            "mm_litellm": {
                "identity": {},
                "requested_model": "auto",
                "route": "auto",
                "rule": "vip",
                "model": "small",
            }
        },
    }
    headers = decision_headers(data, Response())
    assert headers is not None and json.loads(headers.pop("x-mm-decision")) == {
        "requested_model": "auto",
        "route": "auto",
        "rule": "vip",
        "strategy": None,
        "model": "small",
        "fallbacks": [],
        "reason": None,
        "task": None,
        "tier": None,
        "served_model": "big",
        "attempted_fallbacks": 1,
    }
    assert headers == {
        "x-mm-route": "auto",
        "x-mm-rule": "vip",
        "x-mm-model": "big",
        "x-mm-cost": "0.00012",
        "x-mm-fallbacks": "1",
    }
    headers = decision_headers(data, None)
    assert headers is not None and json.loads(headers.pop("x-mm-decision"))["served_model"] == "small"
    assert headers == {"x-mm-route": "auto", "x-mm-rule": "vip", "x-mm-model": "small"}
    assert decision_headers({"metadata": {"mm_litellm": {"route": "forged"}}}, None) is None


async def test_a_policy_that_does_not_load_refuses_with_500(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from litellm.proxy._types import ProxyException

    from mm_litellm import runtime

    bad = tmp_path / "bad.yaml"
    bad.write_text("routes: {auto: {default: nowhere}}\n")
    monkeypatch.setenv("MM_LITELLM_POLICY", str(bad))
    runtime.reset()
    with pytest.raises(RequestRefused) as info:
        await prepare_request(None, request(), "acompletion")
    assert info.value.status == 500 and "unknown model or route 'nowhere'" in info.value.message
    with pytest.raises(ProxyException) as exc:
        await user_api_key_auth(http_request(), ALICE)
    assert exc.value.code == "500"


async def test_keys_file_named_by_the_environment(
    policy: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = new_key()
    path = tmp_path / "more-keys.yaml"
    path.write_text(f"keys:\n  ops: {{hash: '{hash_key(extra)}', user: ops, team: platform}}\n")
    monkeypatch.setenv("MM_LITELLM_KEYS", str(path))
    assert identity_of(await user_api_key_auth(http_request(), extra)).as_dict()["team"] == "platform"
    assert (
        identity_of(await user_api_key_auth(http_request(), ALICE)).user == "alice"
    )  # the policy's keys still work


async def test_auth_refuses_admin_routes_and_bad_bodies_for_user_keys(policy: None) -> None:
    from litellm.proxy._types import ProxyException

    with pytest.raises(ProxyException) as info:
        await user_api_key_auth(http_request("GET", "/settings"), ALICE)
    assert info.value.code == "403" and "GET /settings" in info.value.message
    with pytest.raises(ProxyException) as info:
        await user_api_key_auth(http_request(body={"model": "auto", "max_tokens": "ten"}), ALICE)
    assert (info.value.code, info.value.param) == ("400", "max_tokens")
    with pytest.raises(ProxyException) as info:
        await user_api_key_auth(http_request(body={"model": "auto", "api_key": "sk-x"}), ALICE)
    assert (info.value.code, info.value.param) == ("403", "api_key")
    assert (await user_api_key_auth(http_request("GET", "/v1/models"), ALICE)).user_id == "alice"


async def test_repeated_failures_from_one_address_are_throttled(
    policy: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from litellm.proxy._types import ProxyException

    from mm_litellm.proxy import auth
    from mm_litellm.proxy.throttle import FailureThrottle

    monkeypatch.setattr(auth, "throttle", FailureThrottle(burst=2, rate=0.01))
    codes = []
    for _ in range(4):
        with pytest.raises(ProxyException) as info:
            await user_api_key_auth(http_request(), new_key())
        codes.append(info.value.code)
    assert codes == ["401", "401", "429", "429"]
    assert (await user_api_key_auth(http_request(), ALICE)).user_id == "alice"  # a known key is not slowed


async def test_scrypt_guesses_are_bounded_across_addresses(
    policy: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from litellm.proxy._types import ProxyException

    from mm_litellm.policy.proxy import KeySpec
    from mm_litellm.proxy import auth
    from mm_litellm.proxy.keys import KeyStore
    from mm_litellm.proxy.throttle import FailureThrottle

    carol = new_key(key_id="carol")
    store = KeyStore({"carol": KeySpec(hash=hash_key(carol, "scrypt"), user="carol")})
    monkeypatch.setattr(auth, "key_store", lambda: store)
    monkeypatch.setattr(auth, "throttle", FailureThrottle(burst=2, rate=0.01))
    codes = []
    for i in range(4):  # a new address each time: only the process-wide scrypt bucket can stop them
        with pytest.raises(ProxyException) as info:
            await user_api_key_auth(http_request(client=f"10.9.0.{i}"), "sk-mm.carol.wrong-guess")
        codes.append(info.value.code)
    assert codes == ["401", "401", "429", "429"]
    with pytest.raises(ProxyException) as info:  # an unknown id never reaches scrypt, nor a bucket
        await user_api_key_auth(http_request(client="10.9.1.1"), "sk-mm.nobody.guess")
    assert info.value.code == "401"
