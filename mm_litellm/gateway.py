"""One request, end to end: ``mm_litellm.completion`` and ``acompletion``.

Same arguments, return types and exceptions as ``litellm.completion``. A model the active
policy does not name goes straight to ``litellm.completion``; a route, alias or policy model
is planned by the routing engine and served by the policy's ``litellm.Router``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import structlog

from mm_litellm import runtime as _runtime
from mm_litellm.budget.guard import aadmit, admit
from mm_litellm.integrations._litellm import litellm
from mm_litellm.prompts import apply as _prompts
from mm_litellm.routing.plan import Plan

__all__ = ["acompletion", "completion", "decision_of"]

log = structlog.get_logger("mm_litellm.gateway")

TRACE_KEY = "mm_litellm"
"""Key of the decision trace in ``response._hidden_params`` and in the call's ``metadata``."""


def completion(model: str | None = None, messages: list[Any] | None = None, **kwargs: Any) -> Any:
    """Drop-in for ``litellm.completion``: routed when the policy names ``model``."""
    rt = _runtime.current()
    model, messages, prompt = _prompts.prepare(model, messages, kwargs, rt)  # prompt_id= renders first
    if rt is None or not rt.engine.handles(model):
        if messages is not None:
            kwargs["messages"] = messages
        return _prompts.settled(prompt, litellm().completion(model=model, **kwargs))
    plan, call = _prepare(rt, model, messages, kwargs)
    plan, held = admit(rt, plan, messages, call)
    with held:
        response = rt.router.completion(model=plan.target, messages=messages or [], **call)
    escalation = None
    if plan.escalation and not kwargs.get("stream"):
        from mm_litellm.integrations.escalation import escalate

        complete = functools.partial(rt.router.completion, messages=messages or [])
        response, escalation = escalate(rt, plan, call, response, complete)
    return _prompts.settled(prompt, _finish(response, plan, escalation))


async def acompletion(model: str | None = None, messages: list[Any] | None = None, **kwargs: Any) -> Any:
    """Drop-in for ``litellm.acompletion``: routed when the policy names ``model``."""
    rt = _runtime.current()
    model, messages, prompt = _prompts.prepare(model, messages, kwargs, rt)  # prompt_id= renders first
    if rt is None or not rt.engine.handles(model):
        if messages is not None:
            kwargs["messages"] = messages
        return _prompts.settled(prompt, await litellm().acompletion(model=model, **kwargs))
    plan, call = _prepare(rt, model, messages, kwargs)
    plan, held = await aadmit(rt, plan, messages, call)
    with held:
        response = await rt.router.acompletion(model=plan.target, messages=messages or [], **call)
    escalation = None
    if plan.escalation and not kwargs.get("stream"):
        from mm_litellm.integrations.escalation import aescalate

        complete = functools.partial(rt.router.acompletion, messages=messages or [])
        response, escalation = await aescalate(rt, plan, call, response, complete)
    return _prompts.settled(prompt, _finish(response, plan, escalation))


def decision_of(response: Any) -> dict[str, Any] | None:
    """The decision trace mm_litellm attached to a response or stream (``None`` if not routed)."""
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(hidden, Mapping):
        trace = hidden.get(TRACE_KEY)
        return dict(trace) if isinstance(trace, Mapping) else None
    return None


def _prepare(rt: _runtime.Runtime, model: str, messages: list[Any] | None, kwargs: dict[str, Any]) -> tuple[Plan, dict[str, Any]]:
    plan = rt.engine.plan(model, messages, kwargs)
    rt.secrets.check(plan.target, kwargs)
    call = dict(kwargs)
    metadata = dict(kwargs.get("metadata") or {})
    context = metadata.get(TRACE_KEY)  # the caller's (identity, ...): add to it, never replace it
    metadata[TRACE_KEY] = {**(context if isinstance(context, Mapping) else {}),
                           "requested_model": model, "route": plan.route, "rule": plan.rule}
    if plan.features is not None:
        metadata[TRACE_KEY].update(task=plan.features.task, tier=plan.features.tier)
    call["metadata"] = metadata
    if plan.target.startswith("ensemble/") and "mock_response" in call:  # issue 18: the members answer it
        from mm_litellm.integrations.ensemble_provider import carry_mock_to_members
        carry_mock_to_members(call)
    if plan.fallbacks and "fallbacks" not in kwargs:
        call["fallbacks"] = [{plan.target: list(plan.fallbacks)}]
    return plan, call


def _finish(response: Any, plan: Plan, escalation: dict[str, Any] | None = None) -> Any:
    trace = plan.trace()
    if escalation is not None:
        trace["escalation"] = escalation
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(hidden, dict):
        headers = hidden.get("additional_headers") or {}
        trace["served_model"] = headers.get("x-litellm-model-group", plan.target)
        trace["attempted_fallbacks"] = headers.get("x-litellm-attempted-fallbacks", 0)
        earlier = hidden.get(TRACE_KEY)  # e.g. an ensemble's details, set by its provider
        hidden[TRACE_KEY] = {**earlier, **trace} if isinstance(earlier, Mapping) else trace
    if structlog.is_configured():  # an unconfigured structlog prints to stdout: stay quiet then
        log.info("route.decided", **trace)
    return response
