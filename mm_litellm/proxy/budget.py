"""The budget step of a proxy request: reserve before the call, refuse with 429, release on failure.

One call into the budget module (``mm_litellm.admission.aadmit``, the step the SDK gateway
runs; it never blocks the proxy's event loop on the store): it reserves the plan's estimated
cost for the authenticated identity atomically in the ledger's store, re-plans on a
``downgrade`` budget, or raises ``BudgetExceeded``. The
reservation id stays in the request context (``reservation``); the ledger callback settles
it from LiteLLM's success event, and :func:`release` gives it back when the call finally fails.
"""

from __future__ import annotations

from typing import Any

from mm_litellm import runtime as _runtime
from mm_litellm.context import CONTEXT_KEY, context_of, metadata_of
from mm_litellm.errors import BudgetExceeded, BudgetStoreError
from mm_litellm.proxy.precall import RequestRefused
from mm_litellm.routing.plan import Plan

__all__ = ["refusal", "release", "reserve"]


async def reserve(rt: Any, plan: Plan, data: dict[str, Any], *, messages: Any = None) -> Plan:
    """Admit ``plan`` under the policy's budgets; returns the plan to run (a downgrade changes it).

    ``messages``: what the estimate counts when the request has no chat ``messages``."""
    from mm_litellm.admission import aadmit

    # The budget step sees the authenticated identity only (the client's `user` and metadata
    # never choose whose budget is charged; see mm_litellm.context.identify).
    view = {k: v for k, v in data.items() if k not in ("user", "metadata")}
    view["metadata"] = {CONTEXT_KEY: metadata_of(data)[CONTEXT_KEY]}  # the same dict: admit adds to it
    try:
        admitted, _held = await aadmit(
            rt, plan, messages if messages is not None else data.get("messages"), view
        )
    except BudgetExceeded as exc:
        raise refusal(exc) from exc
    except BudgetStoreError as exc:
        raise RequestRefused(
            503,
            f"mm_litellm: {exc}",
            kind="service_unavailable",
            code="budget_store_error",
            details={"reason": "budget_store_error"},
        ) from exc
    data.pop("max_cost", None)  # a per-request cap is the budget step's, not a provider parameter
    if "fallbacks" in view:  # the plan's (prepare), or a downgrade's
        data["fallbacks"] = view["fallbacks"]
    else:
        data.pop("fallbacks", None)
    return admitted


def refusal(exc: BudgetExceeded) -> RequestRefused:
    """HTTP 429 naming the budget, its scope, what was spent, the limit and when it resets."""
    return RequestRefused(
        429,
        f"mm_litellm: {exc}",
        kind="budget_exceeded",
        param=None,
        code="budget_exceeded",
        details={
            "reason": "budget_exceeded",
            "budget": exc.budget,
            "scope": exc.scope,
            "spent": exc.spent,
            "limit": exc.limit,
            "unit": exc.unit,
            "estimate": exc.estimate,
            "resets_at": exc.resets_at.isoformat() if exc.resets_at is not None else None,
        },
    )


def release(data: dict[str, Any]) -> None:
    """Give back the reservation of a request that failed (nothing is charged for it)."""
    ctx = context_of(data)
    rid = ctx.get("reservation") if ctx is not None else None
    if not rid:
        return
    rt = _runtime.find(ctx.get("runtime")) if ctx is not None else None  # the one that reserved it
    service = rt.budget if rt is not None else None
    if service is not None:
        service.release(rid)
