"""The ledger's LiteLLM callback: every finished call, success or failure, becomes a ledger row.

``register_callbacks(policy)`` is the one call that makes plain ``litellm.completion`` /
``Router`` calls recorded and counted against the policy's budgets; the gateway registers
the same callback for its runtime. The callback only translates LiteLLM's payload (its
standard logging object) into a row and queues it: the background writer does the I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import structlog

from mm_litellm.budget.service import BudgetService, identity_of
from mm_litellm.budget.windows import utcnow
from mm_litellm.integrations._litellm import litellm
from mm_litellm.policy.schema import Policy

__all__ = ["ledger_row", "register_callbacks", "register_service"]

log = structlog.get_logger("mm_litellm.budget")

MAX_CALL_TOKENS = 100_000_000
"""Reported prompt or completion tokens above this (or below 0) are impossible for one call."""
MAX_CALL_USD = 1_000_000.0
"""A reported cost above this (or negative, or not finite) is impossible for one call."""


def register_callbacks(policy: Policy, *, engine: Any = None) -> BudgetService:
    """Record every LiteLLM call of this process in ``policy``'s ledger and budgets.

    Returns the :class:`BudgetService` (``.flush()`` writes queued rows now). Without a
    ``budgets:`` section the ledger is still kept (no limits).
    """
    from mm_litellm.storage import engine_for

    service = BudgetService(policy, engine if engine is not None else engine_for(policy))
    register_service(service)
    return service


def register_service(service: BudgetService) -> Any:
    """Add ``service``'s callback to ``litellm.callbacks`` unless it is there already."""
    callback = getattr(service, "_callback", None)
    if callback is None:
        callback = service._callback = _make_logger_class()(service)  # type: ignore[attr-defined]
    lt = litellm()
    if callback not in lt.callbacks:
        lt.callbacks.append(callback)
    return callback


_logger_class: Any = None


def _make_logger_class() -> Any:
    global _logger_class
    if _logger_class is None:
        from litellm.integrations.custom_logger import CustomLogger

        class LedgerLogger(CustomLogger):
            """Queues a ledger row for each success and failure event."""

            def __init__(self, service: BudgetService) -> None:
                super().__init__()
                self.service = service
                self.ledger = f"{service.store.engine.url!r}#{id(service)}"  # distinct: LiteLLM de-duplicates

            def log_success_event(
                self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
            ) -> None:
                self._record(kwargs, start_time, end_time, "success")

            def log_failure_event(
                self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
            ) -> None:
                self._record(kwargs, start_time, end_time, "error")

            async def async_log_success_event(
                self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
            ) -> None:
                self._record(kwargs, start_time, end_time, "success")

            async def async_log_failure_event(
                self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
            ) -> None:
                self._record(kwargs, start_time, end_time, "error")

            def _record(self, kwargs: Any, start: Any, end: Any, status: str) -> None:
                try:
                    row = ledger_row(self.service, kwargs, start, end, status)
                except Exception as exc:  # a malformed event must be seen, never crash the caller
                    log.error("budget.ledger_event_unreadable", error=str(exc))
                    return
                if row is not None:
                    self.service.record(row)

        _logger_class = LedgerLogger
    return _logger_class


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
    mm = metadata.get("mm_litellm") or {}
    mm = mm if isinstance(mm, Mapping) else {}
    ident = identity_of({"metadata": metadata, "user": kwargs.get("user") or slo.get("end_user")})
    request_tags = slo.get("request_tags")
    tags = list(ident["tags"]) or (list(request_tags) if isinstance(request_tags, list | tuple) else [])
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
        "user": _text(ident["user"]),
        "team": _text(ident["team"]),
        "api_key": _text(ident["key"]),
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
