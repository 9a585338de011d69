"""Ledger rows from LiteLLM's callback payload: every finished call, success or failure.

The runtime that admitted a call gets its events from the dispatcher
(:mod:`mm_litellm.integrations.dispatch`) and turns each into a row with :func:`ledger_row`;
the background writer does the I/O. ``register_callbacks(policy)`` makes plain
``litellm.completion`` / ``Router`` calls recorded and counted against the policy's budgets.
"""

from __future__ import annotations

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


def register_callbacks(policy: Policy, *, engine: Any = None) -> BudgetService:
    """Record every LiteLLM call of this process in ``policy``'s ledger and budgets.

    Builds an ambient :class:`~mm_litellm.runtime.Runtime` for ``policy`` (it records calls that
    carry no mm_litellm context) and returns its :class:`BudgetService` (``.flush()`` writes
    queued rows now). Without a ``budgets:`` section the ledger is still kept (no limits).
    ``service.runtime.close()`` stops recording.
    """
    from mm_litellm.runtime import Runtime
    from mm_litellm.storage import engine_for

    runtime = Runtime(policy, ambient=True, ledger_engine=engine if engine is not None else engine_for(policy))
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
    metadata = params.get("metadata") or kwargs.get("metadata") or {}
    mm = metadata.get(CONTEXT_KEY) or {}
    ident = identify({"metadata": metadata, "user": kwargs.get("user") or slo.get("end_user")})
    tags = list(ident.tags)
    model = slo.get("model_group") or kwargs.get("model") or slo.get("model")
    deployment = slo.get("model") or kwargs.get("model")
    provider = slo.get("custom_llm_provider")
    if deployment and provider and "/" not in str(deployment):
        deployment = f"{provider}/{deployment}"
    prompt_tokens = int(slo.get("prompt_tokens") or 0)
    completion_tokens = int(slo.get("completion_tokens") or 0)
    cost, priced, source = _cost(service, model, kwargs, slo, prompt_tokens, completion_tokens, status)
    exception = kwargs.get("exception")
    prompt = mm.get("prompt") or {}
    return {
        "call_id": str(call_id),
        "ts": utcnow(),
        "route": mm.get("route"),
        "rule": mm.get("rule"),
        "requested_model": mm.get("requested_model") or model,
        "model": model,
        "deployment": deployment,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cost_usd": cost,
        "priced": priced,
        "cost_source": source,
        "latency_ms": _ms(start, end),
        "status": status,
        "error_class": type(exception).__name__ if exception is not None else None,
        "task": mm.get("task"),
        "user": ident.user,
        "team": ident.team,
        "api_key": ident.key,
        "tags": "," + ",".join(str(t) for t in tags) + "," if tags else "",
        "parent_id": mm.get("parent_id"),
        "escalation_hop": mm.get("escalation_hop"),
        "prompt_id": prompt.get("id"),
        "prompt_version": None if prompt.get("version") is None else str(prompt.get("version")),
        "prompt_variant": prompt.get("variant"),
        "reservation_id": mm.get("reservation"),
    }


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
