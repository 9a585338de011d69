"""The gateway's budget step: reserve before the call, downgrade or refuse, release on error.

``plan, held = admit(runtime, plan, messages, call)`` then ``with held: <the call>``
(``await aadmit(...)`` on an event loop). The call's reservation id travels in
the request context (``reservation``); the ledger callback settles it when LiteLLM reports
the call's success, and ``held`` releases it if the call raises. A policy without a
``budgets:`` section makes this a no-op.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING, Any, Literal

from mm_litellm.context import CONTEXT_KEY, identify
from mm_litellm.errors import BudgetExceeded, BudgetStoreError
from mm_litellm.logs import get_logger
from mm_litellm.request import record_plan, set_fallbacks
from mm_litellm.routing.features import estimate_tokens
from mm_litellm.routing.plan import Plan

if TYPE_CHECKING:  # the service (SQLAlchemy) is imported on the first call of a policy with budgets
    from mm_litellm.budget.service import BudgetService, Estimate
    from mm_litellm.runtime import Runtime

__all__ = ["Held", "aadmit", "admit"]

log = get_logger("mm_litellm.budget")


class Held:
    """Releases the reservation when the call raises (success is settled by the callback)."""

    __slots__ = ("reservation", "service")

    def __init__(self, service: BudgetService | None, reservation: str | None) -> None:
        self.service = service
        self.reservation = reservation

    def __enter__(self) -> Held:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Literal[False]:
        if exc_type is not None and self.reservation is not None and self.service is not None:
            self.service.release(self.reservation)
        return False


_NOTHING_HELD = Held(None, None)


async def aadmit(rt: Runtime, plan: Plan, messages: Any, call: dict[str, Any]) -> tuple[Plan, Held]:
    """:func:`admit` on an event loop, which it never blocks on the store.

    A lease of this process admits most calls in place, in microseconds. When only the store
    can decide (the first call, a lease refill, every call near a limit, a ``max_cost`` check
    with exact token counts), :func:`admit` runs in a worker thread, so one request's database
    round trip (a PostgreSQL network hop, a wait for SQLite's write lock) does not stall every
    other request the loop is serving.
    """
    if rt.budget_built:  # opening the store (first call) is I/O too
        service = rt.budget
        mm = call["metadata"].get(CONTEXT_KEY) or {}
        if service is None:  # no budgets: nothing to reserve, no store to wait for
            return admit(rt, plan, messages, call, store=False)
        if call.get("max_cost") is None and mm.get("max_cost") is None:
            from mm_litellm.budget.service import NeedsStore  # imported with the service: no I/O

            try:
                return admit(rt, plan, messages, call, store=False)
            except NeedsStore:
                pass
    # The thread runs to its end even if this request is cancelled meanwhile (a client gone, a
    # caller's timeout): then nobody will hold what it reserved, so it is given back at once.
    admitted = asyncio.ensure_future(asyncio.to_thread(admit, rt, plan, messages, call))
    try:
        return await asyncio.shield(admitted)
    except asyncio.CancelledError:
        admitted.add_done_callback(_release_unclaimed)
        raise


def _release_unclaimed(admitted: asyncio.Future[tuple[Plan, Held]]) -> None:
    if not admitted.cancelled() and admitted.exception() is None:
        admitted.result()[1].__exit__(asyncio.CancelledError, None, None)


def admit(
    rt: Runtime, plan: Plan, messages: Any, call: dict[str, Any], *, store: bool = True
) -> tuple[Plan, Held]:
    """Reserve the plan's estimated cost; re-plan on a downgrade; raise :class:`BudgetExceeded`.

    ``store=False`` admits from this process's leases only and raises ``NeedsStore`` (having
    changed nothing) when the store would have to decide.
    """
    try:
        service = rt.budget
    except Exception as exc:  # the store cannot even be opened
        if rt.policy.budgets is None or rt.policy.budgets.on_store_error == "block":
            raise BudgetStoreError(
                f"budget store failed, call refused (budgets.on_store_error: block): {exc}"
            ) from exc
        log.error("budget.store_failed", error=str(exc), policy="on_store_error: allow")
        call.pop("max_cost", None)
        return plan, _NOTHING_HELD
    max_cost = call.pop("max_cost", None)
    mm = call["metadata"].setdefault(CONTEXT_KEY, {})
    if max_cost is None:
        max_cost = mm.get("max_cost")
    if service is None:
        capped = identify(call)
        if capped.key and capped.limits.get("max_budget_usd"):  # fail closed: the cap cannot be kept
            raise BudgetExceeded(
                f"key-cap:{capped.key}",
                "key",
                0.0,
                float(capped.limits["max_budget_usd"]),
                None,
                reason=(
                    f"key '{capped.key}' has a spend cap (limits.max_budget_usd) but the policy keeps "
                    "no ledger to enforce it: add a 'budgets:' section to the policy"
                ),
            )
        if max_cost is not None:
            raise BudgetExceeded(
                "max_cost",
                "request",
                0.0,
                float(max_cost),
                None,
                reason=(
                    "max_cost needs a 'budgets:' section in the policy (prices and the ledger come from it)"
                ),
            )
        return plan, _NOTHING_HELD
    if not service.writer_healthy():  # the ledger cannot be written: admitting would spend blind
        error = service.writer.last_error or "unknown error"
        if service.settings.on_store_error == "block":
            raise BudgetStoreError(
                "the ledger cannot be written (budgets.on_store_error: block), call refused: " + error[:300]
            )
        log.error("budget.ledger_unwritable", error=error[:300], policy="on_store_error: allow")
    from sqlalchemy.exc import SQLAlchemyError

    from mm_litellm.budget.windows import CallContext

    ident = identify(call)
    cap = ident.limits.get("max_budget_usd") if ident.key else None
    if isinstance(cap, int | float) and not isinstance(cap, bool) and cap > 0:
        service.key_cap(str(ident.key), float(cap))
    cheap = estimate_tokens(messages)[0]
    soft: set[str] = set()
    original = plan
    cache: dict[str, Estimate] = {}
    for _ in range(len(rt.policy.models) + len(service.limits) + 2):
        chain = [plan.target, *plan.fallbacks]

        def exact(chain: list[str] = chain) -> list[Estimate]:
            return [cache.get(m) or cache.setdefault(m, service.estimate(m, messages, call)) for m in chain]

        # cheap token estimates first: a lease far from every limit admits the call without a
        # store round trip; the store path (near a limit) refines them with exact counts
        estimates = (
            exact()
            if max_cost is not None
            else [service.estimate(m, messages, call, exact=False, cheap_prompt=cheap) for m in chain]
        )
        if max_cost is not None:
            _check_max_cost(estimates[0], float(max_cost))
        ctx = CallContext(
            model=plan.target,
            route=plan.route,
            user=ident.user,
            team=ident.team,
            key=ident.key,
            tags=ident.tags,
            end_user=ident.end_user,
        )
        try:
            rid, denial = service.reserve(ctx, estimates, frozenset(soft), refine=exact, store=store)
        except SQLAlchemyError as exc:
            if service.settings.on_store_error == "block":
                raise BudgetStoreError(
                    f"budget store {service.store.engine.url!r} failed, call refused "
                    f"(budgets.on_store_error: block): {exc}"
                ) from exc
            log.error("budget.store_failed", error=str(exc), policy="on_store_error: allow")
            return plan, _NOTHING_HELD
        if denial is None:
            break
        limit, model = denial.limit, denial.key[1]
        if limit.scope == "model" and model != plan.target and model in plan.fallbacks:
            plan = dataclasses.replace(plan, fallbacks=tuple(f for f in plan.fallbacks if f != model))
            continue  # that fallback's own budget is spent: it may not serve this call
        if limit.on_exceed != "downgrade":
            raise service.exceeded(denial)
        target = limit.downgrade_to or service.cheapest_model() or plan.target
        soft.add(limit.name)
        new = rt.engine.plan(target, messages, call)
        log.warning(
            "budget.downgrade",
            budget=limit.name,
            scope_key=model,
            from_model=plan.target,
            to_model=new.target,
        )
        mm["downgraded"] = {"budget": limit.name, "from": plan.target, "to": new.target}
        plan = dataclasses.replace(
            plan,
            target=new.target,
            fallbacks=new.fallbacks,
            escalation=new.escalation,  # the cheaper plan's own chain: no climbing back up
            reason=f"{plan.reason}; budget '{limit.name}' exhausted: downgraded to '{new.target}'",
        )
    else:  # pragma: no cover - every pass removes a fallback or softens a budget
        assert denial is not None
        raise service.exceeded(denial)
    if plan is not original:
        set_fallbacks(call, plan, replacing=original)
        record_plan(mm, plan)
    if rid is None:
        return plan, _NOTHING_HELD
    mm["reservation"] = rid
    return plan, Held(service, rid)


def _check_max_cost(estimate: Estimate, max_cost: float) -> None:
    if estimate.usd is None:
        raise BudgetExceeded(
            "max_cost",
            "request",
            0.0,
            max_cost,
            None,
            reason=(f"max_cost ${max_cost} cannot be checked: model '{estimate.model}' has no known price"),
        )
    if estimate.usd > max_cost:
        raise BudgetExceeded(
            "max_cost",
            "request",
            0.0,
            max_cost,
            None,
            estimate=estimate.usd,
            reason=(
                f"max_cost ${max_cost:.6f} exceeded: model '{estimate.model}' "
                f"may cost up to ${estimate.usd:.6f} "
                f"({estimate.prompt_tokens} prompt + {estimate.completion_tokens} completion tokens); "
                "lower max_tokens or use a cheaper model"
            ),
        )
