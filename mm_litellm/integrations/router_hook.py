"""The policy's routing decision inside a plain ``litellm.Router`` (no mm_litellm gateway).

``litellm.Router`` asks ``Router.async_pre_routing_hook(model, request_kwargs, messages, ...)``
before it picks a deployment, and lets the answer replace the model group (LiteLLM's own
auto-router uses this seam). :func:`install_routing` chains the policy's
:class:`~mm_litellm.routing.engine.RoutingEngine` in front of that hook on one Router
instance: a request for a route or alias of the policy is sent to the group the policy
decides; anything else reaches LiteLLM's own hook unchanged. Build the Router from the same
policy (``build_router(policy)`` or ``model_list(policy)``) so every target is a group.

LiteLLM calls this hook on its async paths (``Router.acompletion``); the decision trace is in
the request's context (:mod:`mm_litellm.context`), so callbacks and the budget ledger see it.
Per-route fallbacks and confidence escalation are gateway features: use
``mm_litellm.acompletion`` for those (Router-level ``fallbacks`` still apply).
"""

from __future__ import annotations

from typing import Any

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
    from litellm.types.router import PreRoutingHookResponse

    if isinstance(policy, Runtime):
        rt = policy
    else:
        rt = Runtime(policy.policy if isinstance(policy, RoutingEngine) else policy)
        if isinstance(policy, RoutingEngine):
            rt.engine = policy
    original = router.async_pre_routing_hook
    groups = set(router.get_model_names())

    async def async_pre_routing_hook(
        model: str,
        request_kwargs: dict[str, Any],
        messages: list[dict[str, Any]] | None = None,
        input: str | list[Any] | None = None,
        specific_deployment: bool | None = False,
    ) -> Any:
        if model in groups or not rt.engine.handles(model):
            return await original(
                model=model,
                request_kwargs=request_kwargs,
                messages=messages,
                input=input,
                specific_deployment=specific_deployment,
            )
        plan = prepare(rt, request_kwargs, model, messages, fallbacks=False)
        return PreRoutingHookResponse(model=plan.target, messages=messages)

    router.async_pre_routing_hook = async_pre_routing_hook
    router.mm_litellm_runtime = rt
    rt.attach()  # observed latencies feed the speed_optimized strategy
    return rt.engine


def routed_router(policy: Policy, **overrides: Any) -> Any:
    """A new ``litellm.Router`` serving the policy's models, with its routes installed."""
    from mm_litellm.integrations.router import build_router

    router = build_router(policy, **overrides)
    install_routing(router, policy)
    return router
