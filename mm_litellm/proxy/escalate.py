"""Confidence escalation in the proxy: after an unsure answer, ask the next model of the route's chain.

The loop itself is routing's (``mm_litellm.integrations.escalation.aescalate``, the same one
``mm_litellm.acompletion`` runs); this module runs it from the proxy's post-call success hook,
whose return value LiteLLM's proxy sends instead of the first answer. Each hop is a new call of
the proxy's own ``litellm.Router`` (its retries, cooldowns and logging), carrying the request's
OpenAI parameters and mm_litellm context with ``escalation_hop`` and ``parent_id`` (the first
call's LiteLLM call id); it gets its own call id, so the ledger records every hop once. Streams
are not escalated (as in the SDK).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from typing import Any

from mm_litellm import runtime as _runtime
from mm_litellm.context import CONTEXT_KEY, context_of
from mm_litellm.routing.plan import Plan

__all__ = ["HOP_PARAMS", "escalate_response"]

HOP_PARAMS = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "tools",
    "tool_choice",
    "response_format",
    "presence_penalty",
    "frequency_penalty",
    "logprobs",
    "top_logprobs",
    "user",
    "parallel_tool_calls",
    "reasoning_effort",
)
"""Request parameters a hop repeats; LiteLLM's per-request internals (logging object, call id) are not."""


async def escalate_response(data: dict[str, Any], response: Any) -> Any | None:
    """The most confident answer along the chain, or ``None`` to keep ``response`` as it is."""
    ctx = context_of(data)
    chain = ctx.get("escalation_chain") if ctx is not None else None
    if not chain or data.get("stream") or not hasattr(response, "choices"):
        return None
    rt = _runtime.find(ctx.get("runtime")) if ctx is not None else None  # the policy that admitted it
    router = getattr(sys.modules.get("litellm.proxy.proxy_server"), "llm_router", None)
    if rt is None or router is None:
        return None
    from mm_litellm.integrations.escalation import aescalate

    assert ctx is not None
    plan = Plan(
        requested=str(ctx.get("requested_model")),
        target=str(ctx.get("model")),
        route=ctx.get("route"),
        rule=ctx.get("rule"),
        escalation=tuple(chain),
    )
    call = {name: data[name] for name in HOP_PARAMS if name in data}
    call["metadata"] = _hop_metadata(data)
    complete = functools.partial(router.acompletion, messages=data.get("messages") or [])
    answer, trace = await aescalate(rt, plan, call, response, complete)
    hidden = getattr(answer, "_hidden_params", None)
    if isinstance(hidden, dict):
        earlier = hidden.get(CONTEXT_KEY)
        hidden[CONTEXT_KEY] = {**(earlier if isinstance(earlier, Mapping) else {}), "escalation": trace}
    return answer


def _hop_metadata(data: Mapping[str, Any]) -> dict[str, Any]:
    """The request's metadata for a hop: LiteLLM's key fields and a copy of mm_litellm's context."""
    metadata = data.get("metadata") or {}
    out = {k: v for k, v in metadata.items() if k.startswith("user_api_key") or k == "tags"}
    out[CONTEXT_KEY] = dict(metadata.get(CONTEXT_KEY) or {})  # each hop adds its number and parent
    return out
