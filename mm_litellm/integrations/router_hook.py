"""The policy's routing decision inside a plain ``litellm.Router`` (no mm_litellm gateway).

:func:`install_routing` wraps one Router instance's public ``acompletion`` and ``completion``:
a request for a route or alias of the policy is sent to the model group the policy's
:class:`~mm_litellm.routing.engine.RoutingEngine` decides; a policy model or ensemble group
reaches the Router as named, with the decision trace; anything else (a name the policy does not
know, a group of the Router's own) reaches the Router unchanged. Build the Router from the same policy
(``build_router(policy)`` or ``model_list(policy)``) so every target is a group.

The public methods are the seam because they are the one surface every supported LiteLLM
keeps: 1.106's Python Router asked ``Router.async_pre_routing_hook`` (async only), while the
1.110 Router's core answers pre-routing from its own registry and never calls an instance hook.
The decision is in the call's request context (:mod:`mm_litellm.context`; callbacks and the
budget ledger see it) and on the response, as ``mm_litellm.decision_of(response)``. Per-route
fallbacks and confidence escalation are gateway features: use ``mm_litellm.acompletion`` for
those (Router-level ``fallbacks`` still apply).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from mm_litellm.context import CONTEXT_KEY as TRACE_KEY
from mm_litellm.integrations.ensemble_mock import carry_mock_to_members
from mm_litellm.integrations.trace import attach, decision_trace
from mm_litellm.policy.ensembles import ENSEMBLE_PREFIX
from mm_litellm.policy.schema import Policy
from mm_litellm.request import prepare
from mm_litellm.routing.engine import RoutingEngine
from mm_litellm.runtime import Runtime

__all__ = ["install_routing", "routed_router"]


def install_routing(router: Any, policy: Policy | Runtime | RoutingEngine) -> RoutingEngine:
    """Make ``router`` route requests for the policy's routes and aliases. Returns the engine.

    Given a :class:`Policy` (or an engine's policy), a :class:`Runtime` is built for it; it
    lives as long as the router (``router.mm_litellm_runtime``) and records the observed
    latencies its ``speed_optimized`` routes read.
    """
    if isinstance(policy, Runtime):
        rt = policy
    else:
        rt = Runtime(policy.policy if isinstance(policy, RoutingEngine) else policy)
        if isinstance(policy, RoutingEngine):
            rt.engine = policy
    groups = set(router.get_model_names())

    def decide(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        model = kwargs.get("model", args[0] if args else None)
        if not isinstance(model, str) or not rt.engine.handles(model):
            return kwargs, None
        if model in groups and model not in rt.policy.models and not model.startswith(ENSEMBLE_PREFIX):
            return kwargs, None  # a group of the Router's own that the policy names otherwise
        messages = kwargs.get("messages", args[1] if len(args) > 1 else None)
        call = {k: v for k, v in kwargs.items() if k not in ("model", "messages")}
        call["metadata"] = dict(call.get("metadata") or {})  # the caller's dict is never changed
        plan = prepare(rt, call, model, messages, fallbacks=False)
        if plan.target.startswith(ENSEMBLE_PREFIX):  # its members answer a mock (and this policy serves it)
            carry_mock_to_members(call)
        return {**call, "model": plan.target, "messages": messages}, call["metadata"][TRACE_KEY]

    def stamp(response: Any, ctx: dict[str, Any] | None) -> Any:
        if ctx is not None:
            attach(response, decision_trace(ctx, response))
        return response

    original_async: Callable[..., Any] = router.acompletion
    original_sync: Callable[..., Any] = router.completion

    @functools.wraps(original_async)
    async def acompletion(*args: Any, **kwargs: Any) -> Any:
        if rt.engine.may_block:  # a learned route may ask a provider for the prompt's embedding
            call, ctx = await asyncio.to_thread(decide, args, kwargs)
        else:
            call, ctx = decide(args, kwargs)
        if ctx is None:
            return await original_async(*args, **kwargs)
        return stamp(await original_async(**call), ctx)

    @functools.wraps(original_sync)
    def completion(*args: Any, **kwargs: Any) -> Any:
        call, ctx = decide(args, kwargs)
        if ctx is None:
            return original_sync(*args, **kwargs)
        return stamp(original_sync(**call), ctx)

    router.acompletion = acompletion
    router.completion = completion
    router.mm_litellm_runtime = rt
    rt.attach()  # observed latencies feed the speed_optimized strategy
    return rt.engine


def routed_router(policy: Policy, **overrides: Any) -> Any:
    """A new ``litellm.Router`` serving the policy's models, with its routes installed."""
    from mm_litellm.integrations.router import build_router

    router = build_router(policy, **overrides)
    install_routing(router, policy)
    return router
