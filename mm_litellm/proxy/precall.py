"""What the proxy's pre-call hook decides, on LiteLLM's request dict, without LiteLLM itself.

Order for one request (each step one call into the module that owns it):
identity (from the authenticated key) -> prompt rendering -> routing decision -> budget
reservation. The result is written into the request: ``data["model"]`` becomes the chosen
Router group, route fallbacks become the request's ``fallbacks``, and the decision plus the
identity go into ``data["metadata"]["mm_litellm"]``, which the ledger and the response-header
hook read later.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Mapping
from typing import Any

from mm_litellm import runtime as _runtime
from mm_litellm.context import CONTEXT_KEY, Identity, RequestContext, context_of, metadata_of
from mm_litellm.errors import ConfigurationError, MMLiteLLMError, PolicyError, RoutingError
from mm_litellm.prompts.errors import PromptError
from mm_litellm.proxy.attach import attach_models, find_policy
from mm_litellm.proxy.identity import identity_of
from mm_litellm.request import prepare
from mm_litellm.routing.plan import Plan

__all__ = ["CONTEXT_KEY", "ROUTED_CALL_TYPES", "RequestRefused", "context_of", "prepare_request"]

ROUTED_CALL_TYPES = frozenset({"completion", "acompletion", "text_completion", "atext_completion"})
"""LiteLLM call types whose ``model`` the policy may rewrite (chat and text completions)."""


class RequestRefused(MMLiteLLMError):
    """The policy refuses this request: HTTP ``status`` with an OpenAI-style error body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str,
        param: str | None = None,
        code: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.param = param
        self.code = code
        self.details = dict(details or {})


def current_runtime() -> _runtime.Runtime | None:
    """The active policy in the proxy process; a policy that fails to load refuses with 500.

    The custom auth calls this before LiteLLM sets up a request's logging, so the first request
    after a (re)load already finds the policy's models and its ledger callback registered.
    """
    try:
        find_policy()
        rt = _runtime.current()
    except (PolicyError, ConfigurationError) as exc:
        raise RequestRefused(
            500, f"mm_litellm: the proxy's policy does not load: {exc}", kind="server_error"
        ) from exc
    if rt is not None:
        attach_models(rt)
    return rt


async def prepare_request(auth: Any, data: dict[str, Any], call_type: str) -> dict[str, Any]:
    """Apply the policy to one proxy request in place; raise :class:`RequestRefused` to refuse it."""
    identity = identity_of(auth)
    metadata = metadata_of(data)
    requester = metadata.get("requester_metadata")
    requester = requester if isinstance(requester, Mapping) else {}
    # A fresh context: whatever the client put under metadata.mm_litellm is discarded.
    body_user = data.get("user")
    if isinstance(body_user, str) and body_user and identity.end_user is None:
        identity = dataclasses.replace(identity, end_user=body_user)
    ctx: RequestContext = {"identity": identity.as_dict()}
    # the one body flag kept: it can only make the request cheaper; nothing in the body can raise
    # a limit or change whose budget is charged
    if requester.get("budget_mode") is True:
        ctx["budget_mode"] = True
    metadata[CONTEXT_KEY] = ctx
    model = data.get("model")
    if not isinstance(model, str):
        return data
    ctx["requested_model"] = model
    _check_key_models(identity, model)
    rt = current_runtime()
    if rt is None:
        return data
    ctx["runtime"] = rt.id
    if call_type not in ROUTED_CALL_TYPES:
        # responses, messages, embeddings, images, audio...: not routed, but reserved and charged
        # like a chat call, so no endpoint spends around a budget
        await _admit_unrouted(rt, data, model)
        return data

    if data.get("prompt_id"):  # rendered before routing, so the rules see the rendered request
        model, ctx = _render_prompt(rt, data, model)

    if rt.engine.handles(model):
        try:
            view = _routing_kwargs(data, requester, identity)
            if rt.engine.may_block:  # a learned route may ask a provider for the prompt's embedding
                messages = data.get("messages")
                plan = await asyncio.to_thread(prepare, rt, data, model, messages, routing_view=view)
            else:
                plan = prepare(rt, data, model, data.get("messages"), routing_view=view)
        except RoutingError as exc:
            raise RequestRefused(
                400,
                f"mm_litellm: {exc}",
                kind="invalid_request_error",
                param="model",
                code="routing_error",
                details={"reason": "routing_error", "route": exc.route},
            ) from exc
        data["model"] = plan.target

        # Budgets: reserve the plan's estimated cost for the identity; a block is a 429, a
        # downgrade re-plans. Nothing is reserved (or charged) for a request refused before this.
        from mm_litellm.proxy.budget import reserve

        admitted = await reserve(rt, plan, data)
        if admitted is not plan:
            data["model"] = admitted.target
    return data


async def _admit_unrouted(rt: _runtime.Runtime, data: dict[str, Any], model: str) -> None:
    """Reserve the estimate of a call the policy does not route (the model LiteLLM will use: a
    route or alias name resolves as the proxy's ``model_group_alias`` does)."""
    from mm_litellm.proxy.budget import reserve

    target = model
    if rt.engine.handles(model):
        with contextlib.suppress(RoutingError):  # a route that needs a request: reserve for its name
            target = rt.engine.plan(model, [], {}).target
    messages = data.get("messages")
    if not isinstance(messages, list):
        text = data.get("input") if data.get("input") is not None else data.get("prompt")
        messages = [{"role": "user", "content": text if isinstance(text, str) else repr(text)}]
    plan = Plan(requested=model, target=target)
    admitted = await reserve(rt, plan, data, messages=messages)
    if admitted.target != plan.target:  # a budget says downgrade: only a routed chat call can
        from mm_litellm.proxy.budget import release

        release(data)
        raise RequestRefused(
            429,
            f"mm_litellm: a budget is exhausted for '{model}' and downgrades apply to chat calls only",
            kind="budget_exceeded",
            code="budget_exceeded",
            details={"reason": "budget_exceeded", "downgrade_to": admitted.target},
        )


def _render_prompt(rt: _runtime.Runtime, data: dict[str, Any], model: str) -> tuple[str, RequestContext]:
    """Render ``prompt_id`` from the policy's prompt registry into the request (prompt_* removed).

    The experiment assignment is recorded now, keyed by the call id; LiteLLM's success or failure
    event settles it through ``mm_litellm.integrations.prompt_manager.prompt_manager`` (registered
    by :func:`mm_litellm.proxy.attach.attach_models` when an experiment is active). Returns the
    model (the template's when the request names none) and the request's mm_litellm context,
    which rendering copied.
    """
    from mm_litellm.prompts import apply

    try:
        model, messages, _ = apply.prepare(model or None, data.get("messages"), data, rt, record_now=True)
    except PromptError as exc:
        raise RequestRefused(
            400,
            f"mm_litellm: {exc}",
            kind="invalid_request_error",
            param="prompt_id",
            code="prompt_error",
            details={"reason": "prompt_error"},
        ) from exc
    data["model"], data["messages"] = model, messages
    return model, metadata_of(data)[CONTEXT_KEY]


def _routing_kwargs(
    data: Mapping[str, Any], requester: Mapping[str, Any], identity: Identity
) -> dict[str, Any]:
    """The request as the routing engine sees it: the client's hints, the server's identity."""
    metadata = dict(requester)
    metadata["user"] = identity.user
    metadata["team"] = identity.team
    body_tags = requester.get("tags")
    extra = [str(t) for t in body_tags] if isinstance(body_tags, list) else []
    metadata["tags"] = list(identity.tags) + [t for t in extra if t not in identity.tags]
    kwargs = {
        k: data[k]
        for k in ("tools", "functions", "response_format", "stream", "max_tokens", "max_completion_tokens")
        if k in data
    }
    kwargs["metadata"] = metadata
    kwargs["user"] = identity.user
    return kwargs


def _check_key_models(identity: Identity, model: str) -> None:
    if identity.source != "mm_litellm":
        return
    from mm_litellm.proxy.auth import key_store

    spec = key_store().keys.get(identity.key or "")
    if spec is not None and spec.models and model not in spec.models:
        raise RequestRefused(
            403,
            f"mm_litellm: key '{identity.key}' may not use model '{model}'; "
            f"allowed: {', '.join(spec.models)}",
            kind="permission_error",
            param="model",
            code="model_not_allowed",
        )
