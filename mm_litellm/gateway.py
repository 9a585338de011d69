"""One request, end to end: :class:`Gateway` and the module's ``completion``/``acompletion``.

Same arguments, return types and exceptions as ``litellm.completion``. A model the policy does
not name goes straight to LiteLLM; a route, alias or policy model is planned by the routing
engine, admitted by the budgets and served by the policy's ``litellm.Router``.

A :class:`Gateway` holds one policy's runtime (httpx's ``Client`` pattern): an application may
hold several side by side, each charging its own ledger. ``mm_litellm.completion`` and friends
are the same methods on the process's default gateway, whose policy ``mm_litellm.configure`` (or
hot reload) replaces.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any

from mm_litellm import runtime as _runtime
from mm_litellm.admission import aadmit, admit
from mm_litellm.context import CONTEXT_KEY
from mm_litellm.errors import ConfigurationError
from mm_litellm.integrations._litellm import litellm
from mm_litellm.integrations.trace import attach, decision_trace
from mm_litellm.logs import get_logger
from mm_litellm.policy.loader import load_policy
from mm_litellm.policy.schema import Policy
from mm_litellm.prompts import apply as _prompts
from mm_litellm.request import prepare, stamp
from mm_litellm.routing.explain import Explanation, explain_with
from mm_litellm.routing.plan import Plan

__all__ = ["Gateway", "acompletion", "completion", "decision_of", "default_gateway", "explain"]

log = get_logger("mm_litellm.gateway")

TRACE_KEY = CONTEXT_KEY
"""Key of the decision trace in ``response._hidden_params`` and of the context in ``metadata``."""


class Gateway:
    """mm_litellm for one policy: ``completion``/``acompletion`` routed, budgeted and recorded.

    ``Gateway("policy.yaml")`` (or a :class:`Policy`) builds its own runtime; ``configure()``
    replaces the policy (the old runtime closes once its calls finish); ``close()`` (or ``with``)
    writes every ledger row and unregisters from LiteLLM.
    """

    def __init__(
        self,
        policy: Policy | str | os.PathLike[str] | None = None,
        *,
        _slot: _runtime.RuntimeSlot | None = None,
    ) -> None:
        self._closed = False
        if _slot is not None:
            self._slot = _slot
        else:
            self._slot = _runtime.RuntimeSlot()
            self.configure(policy)

    def configure(self, policy: Policy | str | os.PathLike[str] | None) -> _runtime.Runtime | None:
        """Serve ``policy`` from now on (``None``: pass everything straight through)."""
        if policy is not None and not isinstance(policy, Policy):
            policy = load_policy(policy)
        ambient = self._slot is _runtime.DEFAULT
        return self._slot.swap(_runtime.Runtime(policy, ambient=ambient) if policy is not None else None)

    @property
    def runtime(self) -> _runtime.Runtime | None:
        """The runtime serving calls now (``None``: no policy, pure pass-through)."""
        return self._slot.get()

    @property
    def policy(self) -> Policy | None:
        rt = self.runtime
        return rt.policy if rt is not None else None

    def completion(self, model: str | None = None, messages: list[Any] | None = None, **kwargs: Any) -> Any:
        """Drop-in for ``litellm.completion``: routed when the policy names ``model``."""
        rt = self._runtime_for_call()
        if rt is None:  # no policy: prompt_id= still renders from a registered registry
            model, messages, prompt = _prompts.prepare(model, messages, kwargs, None)
            return _prompts.settled(prompt, litellm().completion(model=model, **_with(messages, kwargs)))
        with rt.call():
            model, messages, prompt = _prompts.prepare(model, messages, kwargs, rt)  # prompt_id= first
            if not rt.engine.handles(model):
                return _prompts.settled(
                    prompt, litellm().completion(model=model, **_passing(rt, messages, kwargs))
                )
            plan, call = _plan(rt, model, messages, kwargs)
            plan, held = admit(rt, plan, messages, call)
            with held:
                response = rt.router.completion(model=plan.target, messages=messages or [], **call)
            escalation = None
            if plan.escalation and not kwargs.get("stream"):
                from mm_litellm.integrations.escalation import escalate

                complete = functools.partial(rt.router.completion, messages=messages or [])
                response, escalation = escalate(rt, plan, call, response, complete)
            return _prompts.settled(prompt, _finish(response, call, escalation))

    async def acompletion(
        self, model: str | None = None, messages: list[Any] | None = None, **kwargs: Any
    ) -> Any:
        """Drop-in for ``litellm.acompletion``: routed when the policy names ``model``."""
        rt = self._runtime_for_call()
        if rt is None:  # no policy: prompt_id= still renders from a registered registry
            model, messages, prompt = _prompts.prepare(model, messages, kwargs, None)
            response = await litellm().acompletion(model=model, **_with(messages, kwargs))
            return _prompts.settled(prompt, response)
        with rt.call():
            model, messages, prompt = _prompts.prepare(model, messages, kwargs, rt)  # prompt_id= first
            if not rt.engine.handles(model):
                passing = _passing(rt, messages, kwargs)
                return _prompts.settled(prompt, await litellm().acompletion(model=model, **passing))
            if rt.engine.may_block:  # a learned route may ask a provider for the prompt's embedding
                plan, call = await asyncio.to_thread(_plan, rt, model, messages, kwargs)
            else:
                plan, call = _plan(rt, model, messages, kwargs)
            plan, held = await aadmit(rt, plan, messages, call)
            with held:
                response = await rt.router.acompletion(model=plan.target, messages=messages or [], **call)
            escalation = None
            if plan.escalation and not kwargs.get("stream"):
                from mm_litellm.integrations.escalation import aescalate

                complete = functools.partial(rt.router.acompletion, messages=messages or [])
                response, escalation = await aescalate(rt, plan, call, response, complete)
            return _prompts.settled(prompt, _finish(response, call, escalation))

    def explain(
        self, model: str, messages: Sequence[Any] | None = None, *, prompt: str | None = None, **kwargs: Any
    ) -> Explanation:
        """What this gateway's policy would do with the request, without calling anyone.

        Takes ``litellm.completion``'s arguments (``prompt=`` is a shortcut for one user message).
        """
        if prompt is not None:
            messages = [*(messages or []), {"role": "user", "content": prompt}]
        rt = self._runtime_for_call()
        if rt is None:
            return Explanation(requested=model, kind="passthrough")
        return explain_with(rt.engine, model, messages, kwargs)

    def flush(self, timeout: float = 10.0) -> bool:
        """Write every ledger row of calls made so far; True when done within ``timeout``."""
        rt = self.runtime
        if rt is None or not rt.budget_built or rt.budget is None:
            return True
        return rt.budget.flush(timeout)

    def close(self, timeout: float = 30.0) -> bool:
        """Finish calls in flight, write the ledger, unregister from LiteLLM; later calls raise."""
        self._closed = True
        rt = self.runtime
        self._slot.swap(None)
        ok = rt.close(timeout) if rt is not None else True
        return self._slot.wait_retired(timeout) and ok

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _runtime_for_call(self) -> _runtime.Runtime | None:
        if self._closed:
            raise ConfigurationError("this mm_litellm Gateway is closed; create a new one")
        return self._slot.get()


_DEFAULT = Gateway(_slot=_runtime.DEFAULT)


def default_gateway() -> Gateway:
    """The process's default gateway (``mm_litellm.completion``; ``configure`` replaces its policy)."""
    return _DEFAULT


def completion(model: str | None = None, messages: list[Any] | None = None, **kwargs: Any) -> Any:
    """Drop-in for ``litellm.completion``: routed when the active policy names ``model``."""
    return _DEFAULT.completion(model, messages, **kwargs)


async def acompletion(model: str | None = None, messages: list[Any] | None = None, **kwargs: Any) -> Any:
    """Drop-in for ``litellm.acompletion``: routed when the active policy names ``model``."""
    return await _DEFAULT.acompletion(model, messages, **kwargs)


def explain(
    model: str,
    messages: Sequence[Any] | None = None,
    *,
    prompt: str | None = None,
    policy: Policy | str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> Explanation:
    """What the active policy (or ``policy``: a Policy or a file path) would do with this request.

    Takes ``litellm.completion``'s arguments (``prompt=`` is a shortcut for one user message);
    no provider is called.
    """
    if policy is None:
        return _DEFAULT.explain(model, messages, prompt=prompt, **kwargs)
    from mm_litellm.integrations.bundled_prices import facts_for_commands
    from mm_litellm.routing.engine import RoutingEngine

    if prompt is not None:
        messages = [*(messages or []), {"role": "user", "content": prompt}]
    loaded = policy if isinstance(policy, Policy) else load_policy(policy)
    return explain_with(RoutingEngine(loaded, facts=facts_for_commands()), model, messages, kwargs)


def decision_of(response: Any) -> dict[str, Any] | None:
    """The decision trace mm_litellm attached to a response or stream (``None`` if not routed)."""
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(hidden, Mapping):
        trace = hidden.get(TRACE_KEY)
        return dict(trace) if isinstance(trace, Mapping) else None
    return None


def _with(messages: list[Any] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    if messages is not None:
        kwargs["messages"] = messages
    return kwargs


def _passing(rt: _runtime.Runtime, messages: list[Any] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """A pass-through call's kwargs: a gateway of its own marks it, so its ledger records it."""
    _with(messages, kwargs)
    if not rt.ambient:
        kwargs["metadata"] = dict(kwargs.get("metadata") or {})
        stamp(rt, kwargs)
        rt.attach()
    return kwargs


def _plan(
    rt: _runtime.Runtime, model: str, messages: list[Any] | None, kwargs: dict[str, Any]
) -> tuple[Plan, dict[str, Any]]:
    call = dict(kwargs)
    call["metadata"] = dict(kwargs.get("metadata") or {})  # the caller's dict is never changed
    plan = prepare(rt, call, model, messages)
    rt.secrets.check(plan.target, kwargs)
    if plan.target.startswith("ensemble/") and "mock_response" in call:  # the members answer the mock
        from mm_litellm.integrations.ensemble_mock import carry_mock_to_members

        carry_mock_to_members(call)
    return plan, call


def _finish(response: Any, call: Mapping[str, Any], escalation: dict[str, Any] | None = None) -> Any:
    """Attach the decision trace (:mod:`mm_litellm.integrations.trace`) to the response."""
    trace: dict[str, Any] = dict(decision_trace(call["metadata"][CONTEXT_KEY], response))
    if escalation is not None:
        trace["escalation"] = escalation
    attach(response, trace)
    log.info("route.decided", **trace)
    return response
