"""The LiteLLM custom provider that serves ``model="ensemble/<name>"``.

Registered in ``litellm.custom_provider_map`` (explicitly: :func:`register`, or by
``build_router`` for a policy with ensembles), so an ensemble works wherever LiteLLM takes a
model string: ``litellm.completion``, a ``litellm.Router`` model group, the proxy
(``litellm_settings.custom_provider_map`` naming :data:`handler`).

Members are called through the policy's ``litellm.Router`` (its retries, cooldowns and
fallbacks apply), concurrently, each under ``asyncio.wait_for``. Each member call carries
``metadata["mm_litellm"]`` with ``parent_id`` (the ensemble call's LiteLLM call id),
``ensemble`` and ``ensemble_member``, so a ledger can count money once: the ensemble call's
own cost is the exact sum of its calls' LiteLLM ``response_cost``.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from litellm.llms.custom_llm import CustomLLM

from mm_litellm.context import CONTEXT_KEY as TRACE_KEY
from mm_litellm.context import context_of
from mm_litellm.ensemble.base import Messages, Reply
from mm_litellm.ensemble.runner import EnsembleResult, run_ensemble
from mm_litellm.errors import ConfigurationError
from mm_litellm.integrations import ensemble_mock
from mm_litellm.integrations._litellm import litellm
from mm_litellm.integrations.ensemble_mock import MEMBERS_MOCK, PROVIDER
from mm_litellm.integrations.trace import decision_trace
from mm_litellm.policy.ensembles import ENSEMBLE_PREFIX
from mm_litellm.policy.types import TIERS
from mm_litellm.request import prepare

__all__ = ["PROVIDER", "EnsembleProvider", "ensure_registered", "handler", "register"]


_ROUTER_KEYS = frozenset(
    {
        "_routing_request_tags",
        "api_base",
        "attempted_fallbacks",
        "attempted_retries",
        "caching_groups",
        "deployment",
        "deployment_model_name",
        "max_retries",
        "model_group",
        "model_group_alias",
        "model_group_size",
        "model_info",
        "original_model_group",
        "previous_models",
        "request_retry_count",
        "hidden_params",
        "litellm_parent_otel_span",
    }
)
"""Metadata keys the Router sets on the ensemble call itself; members get their own."""

_PROXY_KEY_PREFIX = "user_api_key"
"""The LiteLLM proxy's caller identity (``user_api_key_hash``, ...): kept off member calls so the
proxy charges the key once, for the ensemble call; mm_litellm's own identity stays in
``metadata["mm_litellm"]``."""

_DROPPED_PARAMS = frozenset({"stream", "stream_options", "n"})


class EnsembleProvider(CustomLLM):
    """Answers ``ensemble/<name>`` from a policy's ``ensembles:`` section.

    ``runtime`` fixes the policy (``register(policy)``); without it the active policy of the
    process (``mm_litellm.configure`` / ``MM_LITELLM_POLICY``) is used at call time.
    """

    def __init__(self, runtime: Any = None) -> None:
        super().__init__()
        self.runtime = runtime

    # --- LiteLLM's four entry points --------------------------------------------------------

    # LiteLLM passes every argument by keyword (``custom_chat_llm_router``); only these are used.

    def completion(self, *_: Any, **kw: Any) -> Any:
        result = self._run_sync(kw["model"], kw["messages"], kw["optional_params"], kw.get("litellm_params"))
        return _respond(result, kw["model_response"], kw.get("litellm_params"))

    async def acompletion(self, *_: Any, **kw: Any) -> Any:
        result = await self._run(kw["model"], kw["messages"], kw["optional_params"], kw.get("litellm_params"))
        return _respond(result, kw["model_response"], kw.get("litellm_params"))

    def streaming(self, *_: Any, **kw: Any) -> Iterator[dict[str, Any]]:  # type: ignore[override]
        yield from _chunks(
            self._run_sync(kw["model"], kw["messages"], kw["optional_params"], kw.get("litellm_params"))
        )

    async def astreaming(self, *_: Any, **kw: Any) -> AsyncIterator[dict[str, Any]]:  # type: ignore[override]
        result = await self._run(kw["model"], kw["messages"], kw["optional_params"], kw.get("litellm_params"))
        for chunk in _chunks(result):
            yield chunk

    # --- running ----------------------------------------------------------------------------

    def _resolve(self, model: str, litellm_params: Any = None) -> tuple[Any, str, Any]:
        from mm_litellm import runtime as _runtime

        ctx = context_of(litellm_params) if isinstance(litellm_params, Mapping) else None
        admitted = _runtime.find(ctx.get("runtime")) if ctx is not None else None
        rt = self.runtime or admitted or _runtime.current()
        name = model[len(ENSEMBLE_PREFIX) :] if model.startswith(ENSEMBLE_PREFIX) else model
        if rt is None:
            raise ConfigurationError(
                f"'ensemble/{name}': no policy is active; call mm_litellm.configure(policy) or "
                "mm_litellm.register_ensembles(policy), or set MM_LITELLM_POLICY"
            )
        spec = rt.policy.ensembles.get(name)
        if spec is None:
            known = ", ".join(ENSEMBLE_PREFIX + e for e in sorted(rt.policy.ensembles)) or "(none declared)"
            raise ConfigurationError(
                f"unknown ensemble 'ensemble/{name}' in policy {rt.policy.source}; known: {known}"
            )
        return rt, name, spec

    async def _run(
        self,
        model: str,
        messages: Messages,
        optional_params: dict[str, Any],
        litellm_params: Any,
        executor: ThreadPoolExecutor | None = None,
    ) -> EnsembleResult:
        rt, name, spec = self._resolve(model, litellm_params)
        call = _member_caller(rt, name, optional_params, litellm_params or {}, executor)
        return await run_ensemble(name, spec, messages, call, capability=partial(_capability, rt.policy))

    def _run_sync(
        self, model: str, messages: Messages, optional_params: dict[str, Any], litellm_params: Any
    ) -> EnsembleResult:
        """Sync entry: members run as sync Router calls in threads, the panel in a private loop.

        Sync members avoid sharing LiteLLM's async HTTP clients across event loops.
        """
        _rt, _name, spec = self._resolve(model, litellm_params)
        executor = ThreadPoolExecutor(
            max_workers=len(spec.labelled_members()) + 2, thread_name_prefix="mm-ensemble"
        )
        try:
            coro = self._run(model, messages, optional_params, litellm_params, executor)
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return asyncio.run(coro)
            box: dict[str, Any] = {}  # a loop runs in this thread: run ours in another one
            thread = threading.Thread(target=lambda: box.update(result=_capture(coro)), daemon=True)
            thread.start()
            thread.join()
            outcome = box["result"]
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome  # type: ignore[no-any-return]
        finally:  # a timed-out member's thread ends on its own LiteLLM timeout; do not wait for it
            executor.shutdown(wait=False, cancel_futures=True)


def _capture(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except BaseException as exc:  # handed back to the calling thread
        return exc


def _member_caller(
    rt: Any,
    name: str,
    optional_params: dict[str, Any],
    litellm_params: dict[str, Any],
    executor: ThreadPoolExecutor | None,
) -> Any:
    """The ``call(model, messages, timeout, label)`` the panel uses: one Router call per member."""
    parent_id = litellm_params.get("litellm_call_id") or str(uuid.uuid4())
    metadata = {
        k: v
        for k, v in (litellm_params.get("metadata") or {}).items()
        if k not in _ROUTER_KEYS and not k.startswith(_PROXY_KEY_PREFIX)
    }
    context = dict(metadata.get(TRACE_KEY) or {})
    params = {k: v for k, v in optional_params.items() if k not in _DROPPED_PARAMS}
    if MEMBERS_MOCK in context:  # the caller mocked the ensemble: its members answer the mock
        params["mock_response"] = context.pop(MEMBERS_MOCK)

    async def call(model: str, messages: Messages, timeout: float, label: str) -> Reply:
        member_meta = {
            **metadata,
            TRACE_KEY: {
                **context,
                "parent_id": parent_id,
                "ensemble": name,
                "ensemble_member": label,
                "requested_model": model,
                "route": None,
                "rule": None,
            },
        }
        kwargs: dict[str, Any] = {**params, "metadata": member_meta, "timeout": timeout}
        group = _group(rt, model, messages, kwargs)
        if executor is None:
            response = await rt.router.acompletion(model=group, messages=list(messages), **kwargs)
        else:
            loop = asyncio.get_running_loop()
            job = partial(rt.router.completion, model=group, messages=list(messages), **kwargs)
            response = await loop.run_in_executor(executor, job)
        return _reply(response, group)

    return call


def _group(rt: Any, model: str, messages: Messages, kwargs: dict[str, Any]) -> str:
    """The Router model group for a member: a model as is; a route decided by the routing engine.

    A secret the group needs and the environment lacks fails the member with
    ``MissingSecretError`` (naming the variable) instead of a provider's authentication error.
    """
    if model in rt.policy.models:
        rt.secrets.check(model, kwargs)
        return model
    plan = prepare(rt, kwargs, model, list(messages))
    if plan.target.startswith(ENSEMBLE_PREFIX):
        raise ConfigurationError(
            f"route '{model}' chose '{plan.target}': an ensemble member cannot be an ensemble"
        )
    rt.secrets.check(plan.target, kwargs)
    return str(plan.target)


def _reply(response: Any, group: str) -> Reply:
    hidden = getattr(response, "_hidden_params", None) or {}
    headers = hidden.get("additional_headers") or {}
    usage = getattr(response, "usage", None)
    return Reply(
        text=response.choices[0].message.content or "",
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        cost=hidden.get("response_cost"),
        model=str(headers.get("x-litellm-model-group") or group),
    )


def _capability(policy: Any, model: str) -> float:
    """0..1: the model's ``quality`` if the policy gives one, else its tier's rank."""
    spec = policy.models.get(model)
    if spec is None:
        return 0.5
    if spec.quality is not None:
        return float(spec.quality)
    return TIERS.index(spec.tier) / (len(TIERS) - 1)


def _respond(result: EnsembleResult, model_response: Any, litellm_params: Any = None) -> Any:
    """Fill LiteLLM's response: the answer, summed usage, summed cost, and the decision trace.

    The trace's decision keys come from the request context a door stamped (``mm_litellm``'s
    gateway, a routed Router); an ensemble asked by name through plain LiteLLM gets them too
    (requested and served by name), so ``decision_of`` has the same keys in every door.
    """
    lt = litellm()
    model_response.choices[0].message.content = result.text
    model_response.choices[0].finish_reason = "stop"
    model_response.model = ENSEMBLE_PREFIX + result.name
    prompt, completion = result.prompt_tokens, result.completion_tokens
    model_response.usage = lt.Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )
    hidden = model_response._hidden_params
    hidden["response_cost"] = result.cost
    ctx = context_of(litellm_params) if isinstance(litellm_params, Mapping) else None
    if ctx is None or "requested_model" not in ctx:  # plain LiteLLM: by name, or a Router group's model
        name = ENSEMBLE_PREFIX + result.name
        metadata = litellm_params.get("metadata") if isinstance(litellm_params, Mapping) else None
        group = metadata.get("model_group") if isinstance(metadata, Mapping) else None
        asked = group if isinstance(group, str) and group else name
        how = "asked by name" if asked == name else f"served for the Router group '{asked}'"
        ctx = {"requested_model": asked, "model": name, "reason": f"ensemble '{result.name}' {how}"}
    trace = hidden.get(TRACE_KEY)
    hidden[TRACE_KEY] = {
        **(trace if isinstance(trace, dict) else {}),
        **decision_trace(ctx, model_response),
        "ensemble": result.details(),
    }
    return model_response


def _chunks(result: EnsembleResult, size: int = 24) -> Iterator[dict[str, Any]]:
    """The final answer as LiteLLM ``GenericStreamingChunk`` dicts; the last carries usage and cost."""
    text = result.text
    pieces = [text[i : i + size] for i in range(0, len(text), size)] or [""]
    prompt, completion = result.prompt_tokens, result.completion_tokens
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        usage = (
            {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "cost": result.cost,
            }
            if last
            else None
        )
        yield {
            "text": piece,
            "is_finished": last,
            "finish_reason": "stop" if last else None,
            "usage": usage,
            "index": 0,
            "tool_use": None,
        }


handler = EnsembleProvider()
"""The provider serving the active policy; name it in a proxy config's ``custom_provider_map``."""

_lock = threading.Lock()


def register(policy: Any = None) -> EnsembleProvider:
    """Put an ensemble provider in ``litellm.custom_provider_map`` (replacing an earlier one).

    ``policy``: a ``Policy`` or a path whose ensembles this provider serves; ``None``: the
    active policy at call time (:data:`handler`).
    """
    provider = handler
    if policy is not None:
        from mm_litellm.policy import Policy, load_policy
        from mm_litellm.runtime import Runtime

        loaded = policy if isinstance(policy, Policy) else load_policy(os.fspath(policy))
        provider = EnsembleProvider(Runtime(loaded))
    lt = litellm()
    with _lock:
        entries = [e for e in lt.custom_provider_map if e.get("provider") != PROVIDER]
        lt.custom_provider_map = [*entries, {"provider": PROVIDER, "custom_handler": provider}]
        lt.utils.custom_llm_setup()  # the Router checks providers when it is built
    ensemble_mock.install()  # async calls' mock_response reaches the members
    return provider


def ensure_registered() -> None:
    """Register :data:`handler` unless some ensemble provider is registered already."""
    lt = litellm()
    if not any(e.get("provider") == PROVIDER for e in lt.custom_provider_map):
        register(None)
    else:
        ensemble_mock.install()
