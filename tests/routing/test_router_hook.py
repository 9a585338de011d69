"""The policy's decision inside a plain litellm.Router (its async pre-routing hook)."""

from __future__ import annotations

import asyncio

from mm_litellm import parse_policy
from mm_litellm.integrations.router_hook import routed_router
from tests.conftest import TEST_POLICY

POLICY = (TEST_POLICY
          .replace("api_key: os.environ/TEST_OPENAI_KEY", "api_key: k, mock_response: from-openai")
          .replace("api_key: os.environ/TEST_ANTHROPIC_KEY", "api_key: k, mock_response: from-claude"))


def test_router_routes_policy_routes_and_aliases_and_passes_groups_through() -> None:
    router = routed_router(parse_policy(POLICY))
    seen: list[dict] = []
    original = router.async_pre_routing_hook

    async def spy(**kwargs):  # type: ignore[no-untyped-def]
        result = await original(**kwargs)
        seen.append(dict(kwargs["request_kwargs"].get("metadata") or {}))
        return result

    router.async_pre_routing_hook = spy
    hi = [{"role": "user", "content": "hi"}]

    async def run() -> list[str]:
        vip = await router.acompletion(model="auto", messages=hi, metadata={"priority": "high"})
        default = await router.acompletion(model="auto", messages=hi)
        alias = await router.acompletion(model="gpt-4", messages=hi)
        group = await router.acompletion(model="claude", messages=hi)
        return [r.model for r in (vip, default, alias, group)]

    models = asyncio.run(run())
    assert models == ["claude-sonnet-4-5", "gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5"]
    trace = seen[0]["mm_litellm"]
    assert (trace["route"], trace["rule"], trace["model"], trace["task"]) == ("auto", "vip", "claude", "general")
    assert "mm_litellm" not in seen[3]  # a plain group is LiteLLM's business
