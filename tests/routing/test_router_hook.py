"""The policy's decision inside a plain litellm.Router (its public acompletion / completion)."""

from __future__ import annotations

import asyncio

from mm_litellm import decision_of, parse_policy
from mm_litellm.integrations.router_hook import routed_router
from tests.conftest import TEST_POLICY

POLICY = TEST_POLICY.replace(
    "api_key: os.environ/TEST_OPENAI_KEY", "api_key: k, mock_response: from-openai"
).replace("api_key: os.environ/TEST_ANTHROPIC_KEY", "api_key: k, mock_response: from-claude")


def test_router_routes_policy_routes_and_aliases_and_passes_groups_through() -> None:
    router = routed_router(parse_policy(POLICY))
    hi = [{"role": "user", "content": "hi"}]

    async def run() -> list[object]:
        vip = await router.acompletion(model="auto", messages=hi, metadata={"priority": "high"})
        default = await router.acompletion(model="auto", messages=hi)
        alias = await router.acompletion(model="gpt-4", messages=hi)
        group = await router.acompletion(model="claude", messages=hi)
        return [vip, default, alias, group]

    responses = asyncio.run(run())
    assert [r.model for r in responses] == ["claude-sonnet-4-5", "gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5"]
    trace = decision_of(responses[0])
    assert trace is not None
    assert (trace["route"], trace["rule"], trace["model"], trace["task"]) == (
        "auto",
        "vip",
        "claude",
        "general",
    )
    group = decision_of(responses[3])  # a policy model's group: served as named, traced like the SDK
    assert group is not None and (group["route"], group["model"], group["served_model"]) == (
        None,
        "claude",
        "claude",
    )


def test_the_sync_path_routes_too() -> None:
    router = routed_router(parse_policy(POLICY))
    response = router.completion(
        model="auto", messages=[{"role": "user", "content": "hi"}], metadata={"priority": "high"}
    )
    assert response.choices[0].message.content == "from-claude"
    assert decision_of(response)["rule"] == "vip"  # type: ignore[index]
