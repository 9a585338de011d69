"""Who pays, in the proxy's pre-call path with a real Router and ledger (no proxy process).

The authenticated key decides; the body can only narrow (issue 15: identity only from
authentication, every documented key limit enforced).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from mm_litellm import runtime
from mm_litellm.proxy.auth import user_api_key_auth
from mm_litellm.proxy.keys import hash_key, new_key
from mm_litellm.proxy.precall import RequestRefused, prepare_request

ANON, CAPPED, VICTIM = new_key(), new_key(), new_key()

POLICY = f"""
version: 1
database: {{url: "sqlite:///{{db}}"}}
models:
  small:
    litellm_params: {{model: openai/gpt-4o-mini, api_key: sk-test}}
    pricing: {{input_per_mtok: 1, output_per_mtok: 1}}
router: {{num_retries: 0}}
routes:
  auto: {{default: small}}
budgets:
  limits:
    - {{name: victim-cap, scope: user, match: [victim], window: daily, limit_usd: 0.05}}
    - {{name: research-cap, scope: team, match: [research], window: daily, limit_usd: 0.05}}
    - {{name: by-tag, scope: tag, match: [litellm, web], window: daily, limit_usd: 0.05}}
    - {{name: end-users, scope: end_user, window: daily, limit_usd: 0.05}}
proxy:
  keys:
    anon: {{hash: "{hash_key(ANON)}"}}
    capped: {{hash: "{hash_key(CAPPED)}", user: carol, limits: {{max_budget_usd: 0.00004}}}}
    victim: {{hash: "{hash_key(VICTIM)}", user: victim}}
"""

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
def ledger(tmp_path: Path, mm_policy: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MM_LITELLM_DATABASE_URL", raising=False)
    db = tmp_path / "ledger.db"
    (tmp_path / "policy.yaml").write_text(POLICY.replace("{db}", str(db)), encoding="utf-8")
    mm_policy(tmp_path / "policy.yaml")
    return db


def _http(body: dict[str, Any], path: str = "/v1/chat/completions") -> Any:
    """The Starlette request LiteLLM hands the custom auth (body parsed and cached, as LiteLLM does)."""
    from starlette.requests import Request

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "client": ("10.0.0.1", 1234),
        "parsed_body": (tuple(body), body),
    }
    return Request(scope)


async def _call(key: str, **body: Any) -> dict[str, Any]:
    """One request through the custom auth, the pre-call hook and the policy's Router."""
    data = {"model": "auto", "messages": MESSAGES, "max_tokens": 20, **body}
    auth = await user_api_key_auth(_http(data), key)
    data = await prepare_request(auth, data, "acompletion")
    rt = runtime.current()
    assert rt is not None
    await rt.router.acompletion(**data, mock_response="hi")  # LiteLLM reports 10 + 20 tokens: $0.00003
    from mm_litellm.integrations.callbacks_drain import drain_callbacks

    await drain_callbacks()  # LiteLLM's success callback runs on this loop's logging worker
    assert rt.budget is not None and rt.budget.flush(10)
    return data


def _rows(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as c:
        return list(c.execute("SELECT api_key, user, team, tags, end_user FROM mm_ledger ORDER BY id"))


def _spent(db: Path) -> dict[str, float]:
    with sqlite3.connect(db) as c:
        return dict(c.execute("SELECT budget, SUM(spent_usd) FROM mm_budget_counter GROUP BY budget"))


async def test_a_key_without_a_user_is_charged_as_its_key_not_as_the_body_user(ledger: Path) -> None:
    data = await _call(ANON, user="victim", metadata={"team": "research", "tags": ["web"]})
    ctx = data["metadata"]["mm_litellm"]
    assert ctx["identity"]["user"] is None and ctx["identity"]["end_user"] == "victim"
    assert _rows(ledger) == [("anon", None, None, "", "victim")]  # the body's user: its own column only
    assert _spent(ledger).get("victim-cap", 0.0) == 0.0
    assert _spent(ledger).get("research-cap", 0.0) == 0.0
    assert _spent(ledger).get("by-tag", 0.0) == 0.0  # LiteLLM's own request tags select nothing
    with sqlite3.connect(ledger) as c:  # end users are budgeted under their key's namespace only
        assert [
            k for (k,) in c.execute("SELECT scope_key FROM mm_budget_counter WHERE budget = 'end-users'")
        ] == ["anon/victim"]
    await _call(VICTIM)
    assert _spent(ledger)["victim-cap"] > 0  # the real victim is charged for its own call only


async def test_a_keys_own_spend_cap_is_enforced(ledger: Path) -> None:
    await _call(CAPPED)  # estimate (~$0.00003) under the $0.00004 cap: served, $0.00003 spent
    with pytest.raises(RequestRefused) as refused:
        await _call(CAPPED)
    assert refused.value.status == 429
    assert refused.value.details["budget"] == "key-cap:capped"
    assert [r[0] for r in _rows(ledger)] == ["capped"]


def test_a_key_cap_without_budgets_is_refused_at_load() -> None:
    from mm_litellm import parse_policy
    from mm_litellm.errors import PolicyError

    text = POLICY.split("budgets:")[0] + "proxy:\n  keys:\n" + POLICY.split("  keys:\n")[1]
    with pytest.raises(PolicyError, match=r"proxy\.keys\.capped\.limits\.max_budget_usd: a key's spend cap"):
        parse_policy(text.replace("{db}", "/tmp/x.db"))


async def test_every_endpoint_is_reserved_for_before_it_reaches_a_provider(ledger: Path) -> None:
    """Responses, messages and embeddings calls are admitted like chat: a spent cap refuses them."""
    await _call(CAPPED)  # the cap is now nearly spent
    for call_type, path, body in (
        ("aresponses", "/v1/responses", {"input": "hello", "max_output_tokens": 20}),
        ("anthropic_messages", "/v1/messages", {"messages": MESSAGES, "max_tokens": 20}),
        ("aembedding", "/v1/embeddings", {"input": ["hello"]}),
    ):
        body = {"model": "small", **body}
        allowed = await prepare_request(await user_api_key_auth(_http(body, path), VICTIM), body, call_type)
        assert allowed["metadata"]["mm_litellm"]["reservation"]  # a budgeted caller is reserved for
        from mm_litellm.proxy.budget import release

        release(allowed)
        auth = await user_api_key_auth(_http(body, path), CAPPED)
        with pytest.raises(RequestRefused) as refused:
            await prepare_request(auth, dict(body), call_type)
        assert refused.value.status == 429, call_type
        assert refused.value.details["budget"] == "key-cap:capped"
