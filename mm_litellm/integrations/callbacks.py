"""Ledger rows from LiteLLM's callback payload: every finished call, success or failure.

The runtime that admitted a call gets its events from the dispatcher
(:mod:`mm_litellm.integrations.dispatch`) and turns each into a row with :func:`ledger_row`;
the background writer does the I/O. ``register_callbacks(policy)`` makes plain
``litellm.completion`` / ``Router`` calls recorded and counted against the policy's budgets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mm_litellm.budget.service import BudgetService
from mm_litellm.budget.windows import utcnow
from mm_litellm.context import CONTEXT_KEY, identify
from mm_litellm.logs import get_logger
from mm_litellm.policy.schema import Policy

__all__ = ["ledger_row", "register_callbacks"]

log = get_logger("mm_litellm.budget")

MAX_CALL_TOKENS = 100_000_000
"""Reported prompt or completion tokens above this (or below 0) are impossible for one call."""
MAX_CALL_USD = 1_000_000.0
"""A reported cost above this (or negative, or not finite) is impossible for one call."""


def register_callbacks(policy: Policy, *, engine: Any = None) -> BudgetService:
    """Record every LiteLLM call of this process in ``policy``'s ledger and budgets.

    Builds an ambient :class:`~mm_litellm.runtime.Runtime` for ``policy`` (it records calls that
    carry no mm_litellm context) and returns its :class:`BudgetService` (``.flush()`` writes
    queued rows now). Without a ``budgets:`` section the ledger is still kept (no limits).
    ``service.runtime.close()`` stops recording.
    """
    from mm_litellm.runtime import Runtime
    from mm_litellm.storage import engine_for

    runtime = Runtime(
        policy, ambient=True, ledger_engine=engine if engine is not None else engine_for(policy)
    )
    service = runtime.budget
    assert service is not None  # a ledger engine was given
    service.runtime = runtime  # type: ignore[attr-defined]
    return service


def ledger_row(
    service: BudgetService, kwargs: Mapping[str, Any], start: Any, end: Any, status: str
) -> dict[str, Any] | None:
    """A ledger row from LiteLLM's callback arguments (``None`` when the event has no call id)."""
    slo = kwargs.get("standard_logging_object") or {}
    call_id = kwargs.get("litellm_call_id") or slo.get("litellm_call_id")
    if not call_id:
        return None
    params = kwargs.get("litellm_params") or {}
    metadata = (params.get("metadata") if isinstance(params, Mapping) else None) or kwargs.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    mm = metadata.get(CONTEXT_KEY) or {}
    mm = mm if isinstance(mm, Mapping) else {}
    ident = identify({"metadata": metadata, "user": kwargs.get("user") or slo.get("end_user")})
    tags = list(ident.tags)  # LiteLLM's own request tags (User-Agent...) never select a budget
    model = slo.get("model_group") or kwargs.get("model") or slo.get("model")
    deployment = slo.get("model") or kwargs.get("model")
    provider = slo.get("custom_llm_provider")
    if deployment and provider and "/" not in str(deployment):
        deployment = f"{provider}/{deployment}"
    model, deployment = _text(model), _text(deployment)  # a client's {"model": 123} stays writable
    reported = (_count(slo.get("prompt_tokens")), _count(slo.get("completion_tokens")))
    invalid = _usage_problem(*reported)
    prompt_tokens, completion_tokens = (max(0, n or 0) for n in reported)
    cost, priced, source = _cost(service, model, kwargs, slo, prompt_tokens, completion_tokens, status)
    if invalid is None and cost is not None and not (math.isfinite(cost) and 0 <= cost <= MAX_CALL_USD):
        invalid = f"cost_usd={cost}"
    exception = kwargs.get("exception")
    error_class = type(exception).__name__ if exception is not None else None
    if invalid is not None:  # never trusted, never a refund: flagged and charged at the estimate
        log.warning("budget.usage_invalid", call_id=str(call_id)[:128], model=model, usage=invalid)
        error_class = "InvalidUsage"
        prompt_tokens = completion_tokens = 0
        cost, priced, source = (0.0, True, source) if status != "success" else (None, False, "unpriced")
    if status == "success" and not prompt_tokens and not completion_tokens and not cost:
        estimated = _estimated(service, model, kwargs)  # no usage: the request's tokens and bound
        if estimated is not None:
            prompt_tokens, completion_tokens, cost = estimated
            priced, source = cost is not None, "estimated" if cost is not None else "unpriced"
    prompt = mm.get("prompt") or {}
    if not isinstance(prompt, Mapping):
        prompt = {}
    return {
        "call_id": _text(call_id, 128),
        "ts": utcnow(),
        "route": _text(mm.get("route")),
        "rule": _text(mm.get("rule")),
        "requested_model": _text(mm.get("requested_model") or model),
        "model": _text(model),
        "deployment": _text(deployment),
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cost_usd": cost,
        "priced": priced,
        "cost_source": source,
        "latency_ms": _ms(start, end),
        "status": status,
        "error_class": error_class,
        "task": _text(mm.get("task")),
        "user": _text(ident.user),
        "team": _text(ident.team),
        "api_key": _text(ident.key),
        "end_user": _text(ident.end_user),
        "tags": "," + ",".join(t for t in (_text(t) for t in tags) if t) + "," if tags else "",
        "parent_id": _text(mm.get("parent_id"), 128),
        "escalation_hop": _count(mm.get("escalation_hop")),
        "prompt_id": _text(prompt.get("id")),
        "prompt_version": _text(prompt.get("version")),
        "prompt_variant": _text(prompt.get("variant")),
        "reservation_id": _text(mm.get("reservation"), 64),
    }


def _usage_problem(prompt: int | None, completion: int | None) -> str | None:
    """Why reported usage is impossible (negative or absurd counts), or None when it is plausible."""
    for name, value in (("prompt_tokens", prompt), ("completion_tokens", completion)):
        if value is not None and not 0 <= value <= MAX_CALL_TOKENS:
            return f"{name}={value}"
    return None


def _estimated(
    service: BudgetService, model: str | None, kwargs: Mapping[str, Any]
) -> tuple[int, int, float | None] | None:
    """(prompt, completion, cost) of a chat call from its request, as its reservation estimated
    it: prompt tokens counted, completion at its bound; None for calls without messages."""
    messages = kwargs.get("messages")
    if not model or not isinstance(messages, list):
        return None
    params = kwargs.get("optional_params")
    request = {**(params if isinstance(params, Mapping) else {})}
    try:
        estimate = service.estimate(model, messages, request)
    except Exception as exc:  # the row must still be written
        log.warning("budget.usage_estimate_failed", model=model, error=str(exc)[:200])
        return None
    return estimate.prompt_tokens, estimate.completion_tokens, estimate.usd


def _text(value: Any, limit: int = 256) -> str | None:
    """A column value as text: scalars as their string, anything else (a dict ``user``) None.

    A ledger row must be writable whatever a client sent; an identity that is not a plain
    value never selects a budget."""
    if value is None or isinstance(value, bool):
        return None if value is None else str(value)
    if isinstance(value, str | int | float):
        text = str(value)
        return text[:limit] if text else None
    return None


def _count(value: Any) -> int | None:
    """A whole number (tokens, hops) or None when the value is not one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _cost(
    service: BudgetService,
    model: str | None,
    kwargs: Mapping[str, Any],
    slo: Mapping[str, Any],
    prompt_tokens: int,
    completion_tokens: int,
    status: str,
) -> tuple[float | None, bool, str]:
    """(cost, priced, source): LiteLLM's ``response_cost``, the policy override, or unpriced."""
    spec = service.policy.models.get(model or "")
    source = "policy" if spec is not None and spec.pricing is not None else "litellm"
    cost = kwargs.get("response_cost")
    if cost is None:
        cost = slo.get("response_cost")
    if cost is not None and (cost > 0 or status != "success" or service.price(model or "") is not None):
        return float(cost), True, source
    if status != "success" and not (prompt_tokens or completion_tokens):
        return 0.0, True, source  # a failed call that used no tokens costs nothing
    price = service.price(model or "") if model else None
    if price is None:
        return None, False, "unpriced"
    return prompt_tokens * price[0] + completion_tokens * price[1], True, source


def _ms(start: Any, end: Any) -> float | None:
    if isinstance(start, datetime) and isinstance(end, datetime):
        return (end - start).total_seconds() * 1000.0
    if isinstance(start, int | float) and isinstance(end, int | float):
        return (end - start) * 1000.0
    return None
