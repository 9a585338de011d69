"""One ``prepare()`` for every door: plan a request and stamp its context.

``mm_litellm.completion``, the Router's routing hook, the proxy's pre-call hook and the ensemble
provider's members all call :func:`prepare` on the request they are about to hand to LiteLLM
(keyword arguments, or the proxy's request body): it asks the runtime's routing engine for a
:class:`~mm_litellm.routing.plan.Plan`, writes the decision into the request's context (one key
under LiteLLM's metadata, see :mod:`mm_litellm.context`) with the id of the runtime that admits
the call, and turns the plan's fallbacks into LiteLLM's ``fallbacks`` (:func:`set_fallbacks`, the
one place that does).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from mm_litellm.context import RequestContext, ensure_context, metadata_of
from mm_litellm.routing.plan import Plan

if TYPE_CHECKING:
    from mm_litellm.runtime import Runtime

__all__ = ["prepare", "set_fallbacks", "stamp"]


def prepare(
    rt: Runtime,
    request: MutableMapping[str, Any],
    model: str,
    messages: Any,
    *,
    routing_view: Mapping[str, Any] | None = None,
    fallbacks: bool = True,
) -> Plan:
    """Plan ``model`` for ``request`` (changed in place) and record the decision in its context.

    ``routing_view`` is what the routing rules may read (the proxy passes the client's hints with
    the server's identity); by default the request itself. With ``fallbacks`` the plan's
    fallback chain becomes the request's ``fallbacks`` unless the caller gave its own.
    """
    plan = rt.engine.plan(model, messages, routing_view if routing_view is not None else request)
    ctx = stamp(rt, request)
    chain = ctx.get("chain")
    if chain and plan.target == chain[0]:  # the caller's own chain: unsure answers climb it
        plan = dataclasses.replace(plan, escalation=tuple(chain[1:]))
    ctx["requested_model"] = model
    record_plan(ctx, plan)
    if plan.escalation and not request.get("stream"):
        ctx["escalation_chain"] = list(plan.escalation)
    if fallbacks:
        set_fallbacks(request, plan)
    return plan


def stamp(rt: Runtime, request: MutableMapping[str, Any]) -> RequestContext:
    """The request's context (created if needed), marked as admitted by ``rt``."""
    ctx = ensure_context(metadata_of(request))
    ctx["runtime"] = rt.id
    return ctx


def record_plan(ctx: RequestContext, plan: Plan) -> None:
    """Write ``plan``'s decision into a context (also after a downgrade re-plans)."""
    ctx["route"] = plan.route
    ctx["rule"] = plan.rule
    ctx["model"] = plan.target
    ctx["fallbacks"] = list(plan.fallbacks)
    ctx["reason"] = plan.reason
    if plan.strategy is not None:
        ctx["strategy"] = plan.strategy
    if plan.features is not None:
        ctx["task"] = plan.features.task
        ctx["tier"] = plan.features.tier


def set_fallbacks(request: MutableMapping[str, Any], plan: Plan, *, replacing: Plan | None = None) -> None:
    """Give LiteLLM the plan's fallbacks, unless the request carries the caller's own.

    ``replacing``: the plan these fallbacks were set from before (a downgrade): they are replaced.
    """
    given = request.get("fallbacks")
    if given is not None and (replacing is None or given != _fallbacks(replacing)):
        return  # the caller's own list
    if plan.fallbacks:
        request["fallbacks"] = _fallbacks(plan)
    else:
        request.pop("fallbacks", None)


def _fallbacks(plan: Plan) -> list[dict[str, list[str]]]:
    return [{plan.target: list(plan.fallbacks)}]
