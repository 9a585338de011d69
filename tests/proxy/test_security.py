"""Hostile callers against the real proxy (``mm-litellm proxy`` over a FakeUpstream, one per module).

Each test is named in docs/proxy.md "Security model": who reaches what, what a key may send,
what answers look like for bad input, and what never leaks.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

HI = [{"role": "user", "content": "hi"}]


def call(proxy: Any, key: str | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.request(method, proxy.url + path, headers=headers, timeout=30, **kwargs)


def chat(proxy: Any, key: str, body: Any, path: str = "/v1/chat/completions") -> httpx.Response:
    """POST ``body`` as raw JSON (any JSON value, not only an object)."""
    return httpx.post(
        proxy.url + path,
        content=json.dumps(body).encode(),
        timeout=30,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    return body["error"]  # type: ignore[no-any-return]


# --- 1. deny by default ------------------------------------------------------------------------

ADMIN_ROUTES = [
    ("GET", "/health"),
    ("GET", "/model/info"),
    ("GET", "/v1/model/info"),
    ("GET", "/v2/model/info"),
    ("GET", "/settings"),
    ("GET", "/routes"),
    ("GET", "/debug/asyncio-tasks"),
    ("POST", "/key/generate"),
    ("POST", "/user/new"),
    ("POST", "/model/new"),
    ("GET", "/key/list"),
    ("GET", "/global/spend/models"),
    ("POST", "/team/new"),
    ("GET", "/v1/responses/resp_123"),
    ("POST", "/v1/messages/count_tokens"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_user_key_is_refused_on_admin_routes(proxy: Any, method: str, path: str) -> None:
    before = len(proxy.upstream.requests)
    response = call(proxy, proxy.keys["alice"], method, path, json={} if method == "POST" else None)
    assert response.status_code == 403, (path, response.status_code, response.text[:300])
    error = error_of(response)
    assert path.split("?")[0] in error["message"] and "master key" in error["message"]
    assert error["type"] == "permission_error"
    assert len(proxy.upstream.requests) == before  # /health fans out upstream for the master key only


def test_master_key_still_reaches_admin_routes(proxy: Any) -> None:
    assert call(proxy, proxy.master_key, "GET", "/routes").status_code == 200
    info = call(proxy, proxy.master_key, "GET", "/v1/model/info")
    assert info.status_code == 200 and info.json()["data"]


def test_probes_stay_open_without_a_key(proxy: Any) -> None:
    for path in ("/health/liveliness", "/health/liveness", "/health/readiness"):
        assert call(proxy, None, "GET", path).status_code == 200, path


def test_user_key_reaches_model_routes(proxy: Any) -> None:
    key = proxy.keys["alice"]
    assert call(proxy, key, "GET", "/v1/models").status_code == 200
    ok = chat(proxy, key, {"model": "small", "messages": HI})
    assert ok.status_code == 200, ok.text
    emb = call(proxy, key, "POST", "/v1/embeddings", json={"model": "small", "input": "hi"})
    assert emb.status_code == 200, emb.text


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def test_every_proxy_route_is_model_serving_or_refused(proxy: Any) -> None:
    """Every route of this LiteLLM's app: a user route, or 403 for a user key (new routes fail closed)."""
    from mm_litellm.proxy import routes

    table = routes.proxy_app_routes(load_lazy=False)  # the routes the running proxy has registered
    assert len(table) > 100
    public = {(r.path, m) for r in table if not r.authenticated for m in r.methods}
    refused: list[str] = []
    allowed_seen: set[str] = set()
    for route in table:
        method = next((m for m in sorted(route.methods) if m != "HEAD"), "GET")
        if not route.authenticated or (route.path, method) in public:  # LiteLLM's public pages: pinned below
            continue
        path = _concrete(route.path)
        if routes.user_may_call(method, path):
            allowed_seen.add(route.path)
            continue
        response = call(proxy, proxy.keys["alice"], method, path, json={} if method != "GET" else None)
        if response.status_code != 403:
            refused.append(f"{method} {route.path}: {response.status_code}")
    assert not refused, "user key not refused on:\n" + "\n".join(refused)
    assert {"/v1/chat/completions", "/v1/embeddings", "/v1/responses"} <= allowed_seen


# --- 5. bad input: a 4xx naming the field --------------------------------------------------------

BAD_BODIES = [
    ([{"model": "small"}], "body"),
    ("just a string", "body"),
    ({"model": "small", "messages": HI, "max_tokens": "ten"}, "max_tokens"),
    ({"model": "small", "messages": HI, "max_tokens": -5}, "max_tokens"),
    ({"model": "small", "messages": HI, "max_tokens": 0}, "max_tokens"),
    ({"model": "small", "messages": HI, "max_tokens": True}, "max_tokens"),
    ({"model": "small", "messages": HI, "max_completion_tokens": 1.5}, "max_completion_tokens"),
    ({"model": "small", "messages": HI, "n": 0}, "n"),
    ({"model": "small", "messages": HI, "n": "2"}, "n"),
    ({"model": "auto", "prompt_id": "summarise", "prompt_variables": ["x"]}, "prompt_variables"),
    ({"model": 42, "messages": HI}, "model"),
    ({"model": ["small"], "messages": HI}, "model"),
    ({"model": "auto\u0000", "messages": HI}, "model"),
    ({"model": "auto\r\nx-evil: 1", "messages": HI}, "model"),
    ({"model": "small", "messages": "hi"}, "messages"),
    ({"model": "small", "messages": HI, "metadata": ["x"]}, "metadata"),
]


@pytest.mark.parametrize(
    ("body", "field"), BAD_BODIES, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD_BODIES)]
)
def test_bad_request_gets_a_4xx_naming_the_field(proxy: Any, body: Any, field: str) -> None:
    before = len(proxy.upstream.requests)
    response = chat(proxy, proxy.keys["alice"], body)
    assert response.status_code == 400, (response.status_code, response.text[:300])
    error = error_of(response)
    assert error["param"] == field and f"'{field}'" in error["message"]
    assert error["type"] == "invalid_request_error"
    assert len(proxy.upstream.requests) == before


def test_bad_anthropic_messages_body_is_a_4xx(proxy: Any) -> None:
    response = chat(
        proxy,
        proxy.keys["alice"],
        {"model": "small", "max_tokens": "ten", "messages": HI},
        path="/v1/messages",
    )
    assert response.status_code == 400, response.text[:300]
    assert error_of(response)["param"] == "max_tokens"


OVERRIDES = [
    ("api_base", "http://127.0.0.1:9/v1"),
    ("base_url", "http://127.0.0.1:9/v1"),
    ("api_key", "sk-mine"),
    ("model_list", [{"model_name": "x", "litellm_params": {"model": "openai/x"}}]),
    ("fallbacks", [{"small": ["big"]}]),
    ("mock_response", "free answer"),
]


@pytest.mark.parametrize(("field", "value"), OVERRIDES, ids=[f for f, _ in OVERRIDES])
def test_user_key_may_not_override_deployment_settings(proxy: Any, field: str, value: Any) -> None:
    before = len(proxy.upstream.requests)
    response = chat(proxy, proxy.keys["alice"], {"model": "small", "messages": HI, field: value})
    assert response.status_code == 403, (response.status_code, response.text[:300])
    error = error_of(response)
    assert error["param"] == field and f"'{field}'" in error["message"]
    assert str(value) not in error["message"] or field == "fallbacks"  # never echo a secret
    assert len(proxy.upstream.requests) == before


def test_a_key_may_be_allowed_an_override_explicitly(proxy: Any) -> None:
    proxy.upstream.script("fake-small", reply="fallbacks allowed")
    response = chat(proxy, proxy.keys["bob"], {"model": "small", "messages": HI, "fallbacks": ["backup"]})
    assert response.status_code == 200, response.text[:300]


# --- 6. no leaks ---------------------------------------------------------------------------------


def test_upstream_url_never_reaches_a_user_key(proxy: Any) -> None:
    host = proxy.upstream.base_url.split("//", 1)[1].rstrip("/").split("/")[0]
    for stream in (False, True):
        response = chat(proxy, proxy.keys["alice"], {"model": "auto", "messages": HI, "stream": stream})
        assert response.status_code == 200
        leaked = {
            k: v for k, v in response.headers.items() if host in v or "api-base" in k or "api_base" in k
        }
        assert not leaked, leaked
        assert host not in response.text
        assert "sk-fake" not in response.text and not any("sk-fake" in v for v in response.headers.values())


def test_streamed_response_has_no_cost_header(proxy: Any) -> None:
    response = chat(proxy, proxy.keys["alice"], {"model": "auto", "messages": HI, "stream": True})
    assert response.status_code == 200 and "x-mm-model" in response.headers
    assert "x-mm-cost" not in response.headers, response.headers.get("x-mm-cost")


# --- 3. client errors do not cool a shared deployment down -----------------------------------------


@pytest.mark.parametrize("fault", ["404", "400", "413", "422"])
def test_client_errors_do_not_cool_down_a_shared_deployment(proxy: Any, fault: str) -> None:
    sends = 2 if fault == "422" else 1  # LiteLLM sends a request that got a 422 again (drop_params)
    proxy.upstream.script("fake-backup", fault=fault, times=6 * sends)
    for _ in range(6):  # user A: requests the upstream refuses
        bad = chat(proxy, proxy.keys["alice"], {"model": "backup", "messages": HI})
        assert 400 <= bad.status_code < 500 and bad.status_code != 429, (bad.status_code, bad.text[:300])
    proxy.upstream.script("fake-backup", reply="still serving")
    good = chat(proxy, proxy.keys["bob"], {"model": "backup", "messages": HI})  # user B, right after
    assert good.status_code == 200, (good.status_code, good.text[:300])
    assert good.json()["choices"][0]["message"]["content"] == "still serving"


# LiteLLM's own pages that answer without any key (the custom auth never runs for them). Pinned, so a
# LiteLLM upgrade that adds one fails here and someone decides whether it may stay open.
LITELLM_PUBLIC_PATHS = frozenset(
    {
        "/",
        "/openapi.json",
        "/docs/oauth2-redirect",
        "/redoc",
        "/fallback/login",
        "/onboarding/get_token",
        "/onboarding/claim_token",
        "/get_logo_url",
        "/get_image",
        "/get_favicon",
        "/login",
        "/v2/login",
        "/v3/login",
        "/v3/login/exchange",
        "",
        "/public/model_hub",
        "/public/agent_hub",
        "/public/mcp_hub",
        "/public/skill_hub",
        "/public/model_hub/info",
        "/public/providers",
        "/public/providers/fields",
        "/public/complexity_router/scorer_defaults",
        "/public/complexity_router/fuse_presets",
        "/public/litellm_model_cost_map",
        "/public/litellm_blog_posts",
        "/public/autorouter_presets",
        "/public/endpoints",
        "/public/agents/fields",
        "/v1/traces",
        "/v1/logs",
        "/health/readiness",
        "/health/drain",
        "/health/liveness",
        "/health/liveliness",
        "/sso/cli/start",
        "/sso/cli/complete/{login_id}",
        "/sso/key/generate",
        "/sso/callback",
        "/sso/saml/login",
        "/sso/saml/metadata",
        "/sso/saml/callback",
        "/sso/cli/poll/{key_id}",
        "/sso/debug/login",
        "/sso/debug/callback",
        "/get/ui_theme_settings",
        "/get/ui_settings",
        "/moyai/connect/exchange",
        "/lens/internal/ingestion-credentials",
        "/lens/worker/claim",
        "/lens/worker/{lens_id}/{job_id}/progress",
        "/lens/worker/{lens_id}/{job_id}/reviews",
        "/lens/worker/{lens_id}/{job_id}/sample",
        "/lens/worker/{lens_id}/{job_id}/content",
        "/lens/worker/{lens_id}/{job_id}/model",
        "/lens/worker/{lens_id}/{job_id}/result",
        "/lens/worker/{lens_id}/{job_id}/heartbeat",
        "/liteadmin/slack/connect/{token}",
        "/robots.txt",
        "/litellm/.well-known/litellm-ui-config",
        "/.well-known/litellm-ui-config",
        "/.well-known/skills/index.json",
        "/.well-known/agent-skills/index.json",
        "/v1/skills/{skill_id}/archive",
        "/mcp/proxy",
        "/mcp",
        "/toolset/{toolset_name}/mcp",
        "/{mcp_server_name}/mcp",
        # feature routers LiteLLM loads on first use: OAuth/MCP discovery, and pass-through endpoints that
        # authenticate inside their handler (through LiteLLM's auth, so ours: see ADMIN_ROUTES)
        "/.well-known/jwks.json",
        "/.well-known/litellm-cli-auth",
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server/mcp",
        "/.well-known/oauth-authorization-server/mcp/{mcp_server_name}",
        "/.well-known/oauth-authorization-server/v1/mcp/oauth",
        "/.well-known/oauth-authorization-server/{mcp_server_name}",
        "/.well-known/oauth-authorization-server/{mcp_server_name}/mcp",
        "/.well-known/oauth-authorization-server/{root_path:path}/v1/mcp/oauth",
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource/mcp/{mcp_server_name}",
        "/.well-known/oauth-protected-resource/{mcp_server_name}/mcp",
        "/.well-known/openid-configuration",
        "/api/event_logging/batch",
        "/authorize",
        "/authorize/complete",
        "/authorize/flow",
        "/authorize/mcp-session",
        "/callback",
        "/claude-code/marketplace.json",
        "/claude_code_gateway/.well-known/oauth-authorization-server",
        "/claude_code_gateway/oauth/device_authorization",
        "/claude_code_gateway/oauth/revoke",
        "/claude_code_gateway/oauth/token",
        "/gemini/{endpoint:path}",
        "/langfuse/{endpoint:path}",
        "/oauth/client-metadata.json",
        "/openai/v1/realtime/calls",
        "/realtime/calls",
        "/register",
        "/revoke",
        "/token",
        "/v1/mcp/oauth/authorize",
        "/v1/mcp/oauth/protected-resource",
        "/v1/mcp/oauth/token",
        "/v1/mcp/registry.json",
        "/v1/mcp/server/oauth/{server_id}/authorize",
        "/v1/mcp/server/oauth/{server_id}/token",
        "/v1/realtime/calls",
        "/vertex_ai/discovery/{endpoint:path}",
        "/{mcp_server_name}/authorize",
        "/{mcp_server_name}/register",
        "/{mcp_server_name}/token",
    }
)


def test_every_route_including_lazy_features_is_classified() -> None:
    """All routes, with the feature routers LiteLLM loads on first use: user routes are model routes,
    the rest need a key the custom auth refuses (previous test) or are LiteLLM's pinned public pages."""
    from mm_litellm.proxy import routes

    table = routes.proxy_app_routes(load_lazy=True)
    unexpected_public = sorted({r.path for r in table if not r.authenticated} - LITELLM_PUBLIC_PATHS)
    assert not unexpected_public, f"routes without auth that nobody reviewed: {unexpected_public}"
    user_routes = sorted(
        {
            (m, r.path)
            for r in table
            for m in r.methods
            if r.authenticated and routes.user_may_call(m, _concrete(r.path))
        }
    )
    assert {path for _, path in user_routes} <= {path for _, path in routes.USER_ROUTES} | {
        p.replace("{model}", "{model:path}") for _, p in routes.USER_ROUTES
    }, user_routes


# --- 2. strangers cost nothing ------------------------------------------------------------------------


def test_strangers_are_refused_before_litellm_and_slowed(proxy: Any) -> None:
    """Random tokens from one address: 401 without any hashing, then 429 with retry-after; the
    users' keys keep working meanwhile (the throttle never slows a key it has verified)."""
    import secrets

    transport = httpx.HTTPTransport(local_address="127.0.0.9")  # its own address: other tests keep theirs
    codes = []
    with httpx.Client(base_url=proxy.url, transport=transport, timeout=30) as stranger:
        for _ in range(15):
            token = f"sk-mm.nobody{secrets.token_hex(3)}.{secrets.token_urlsafe(32)}"
            r = stranger.post(
                "/v1/chat/completions",
                json={"model": "small", "messages": HI},
                headers={"Authorization": f"Bearer {token}"},
            )
            codes.append(r.status_code)
        assert error_of(r)["param"] == "api_key"
        assert int(r.headers["retry-after"]) >= 1
        ok = stranger.post(
            "/v1/chat/completions",
            json={"model": "small", "messages": HI},
            headers={"Authorization": f"Bearer {proxy.keys['alice']}"},
        )
    assert codes[:10] == [401] * 10 and set(codes[10:]) == {429}, codes
    assert ok.status_code == 200, ok.text[:200]  # same address, a verified key


@pytest.mark.parametrize("fault", ["413", "422"])
def test_an_upstream_413_or_422_is_an_error_not_an_empty_200(proxy: Any, fault: str) -> None:
    sends = 2 if fault == "422" else 1  # LiteLLM sends a request that got a 422 again (drop_params)
    proxy.upstream.script("fake-backup", fault=fault, times=sends)
    bad = chat(proxy, proxy.keys["alice"], {"model": "backup", "messages": HI})
    assert bad.status_code == int(fault), (bad.status_code, bad.text[:300])
    assert bad.json()["error"]["message"], bad.text[:300]  # LiteLLM 1.106 answered a 422 with 200 "null"


def test_behind_a_trusted_reverse_proxy_each_forwarded_client_is_throttled_alone(proxy: Any) -> None:
    """uvicorn trusts X-Forwarded-For from FORWARDED_ALLOW_IPS (127.0.0.1 by default, the test's
    address): one forwarded client's failed guesses throttle that client, not the others behind it."""

    def guess(forwarded_for: str) -> int:
        response = httpx.post(
            proxy.url + "/v1/chat/completions",
            json={"model": "auto", "messages": HI},
            headers={
                "Authorization": f"Bearer sk-mm.nobody.{secrets.token_urlsafe(12)}",
                "X-Forwarded-For": forwarded_for,
            },
            timeout=30,
        )
        return response.status_code

    # sk-mm.<id>.<secret> with an id no key has: refused without any scrypt check, so only the
    # per-address throttle (not the process-wide scrypt bucket) can answer 429
    attacker = [guess("203.0.113.7") for _ in range(16)]
    assert attacker[0] == 401 and attacker[-1] == 429, attacker
    assert guess("203.0.113.8") == 401, "another client behind the same reverse proxy is not throttled"
