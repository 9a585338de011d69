"""Run many requests through the policy concurrently: :func:`abatch` and its sync twin :func:`batch`.

Each request is one :func:`mm_litellm.arun` (so routing, budgets, ensembles and LiteLLM's
Router retries/fallbacks apply per request). ``max_concurrency`` workers pull requests
from the input in order, which bounds the calls in flight exactly like a semaphore around
``acompletion`` and reads a large or lazy input one request at a time. A failed request is
recorded with its error class and the batch goes on; a budget block (``BudgetExceeded``,
``BudgetStoreError``: see :func:`is_stop_error`) stops new requests: the ones already in
flight finish, the rest are reported ``skipped``.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from mm_litellm import api
from mm_litellm.batch.limiter import RateLimiter
from mm_litellm.batch.report import BatchItem, BatchMetrics, BatchReport
from mm_litellm.batch.requests import InvalidRequest, request_id, to_run_kwargs
from mm_litellm.errors import BudgetExceeded, BudgetStoreError
from mm_litellm.integrations.callbacks_drain import drain_callbacks
from mm_litellm.routing.features import estimate_tokens

__all__ = ["abatch", "batch", "is_stop_error"]

OnResult = Callable[[BatchItem], Awaitable[object] | object]
_MAX_ERROR_CHARS = 2000


def is_stop_error(exc: BaseException) -> BaseException | None:
    """The budget block behind ``exc`` (itself, or what it was raised from), else ``None``.

    A budget that refuses the call (``BudgetExceeded`` of a budget, not a request's own
    ``max_cost``) or a budget store that fails closed (``BudgetStoreError``) would refuse every
    following request too: the batch stops instead of failing them one by one. A request over
    its own ``max_cost`` fails alone.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, BudgetStoreError):
            return current
        if isinstance(current, BudgetExceeded) and current.scope != "request":
            return current
        current = current.__cause__ or current.__context__
    return None


async def abatch(
    requests: Iterable[Any],
    *,
    max_concurrency: int = 8,
    rpm: float | None = None,
    tpm: float | None = None,
    on_result: OnResult | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> BatchReport:
    """Run ``requests`` (prompt strings or request mappings) concurrently; results in input order.

    ``rpm``/``tpm`` pace the whole batch (:class:`~mm_litellm.batch.limiter.RateLimiter`);
    per-deployment limits declared in the policy stay LiteLLM Router's. ``on_result`` is
    called (and awaited, if it returns an awaitable) with each :class:`BatchItem` as it
    finishes, in completion order; an exception it raises aborts the batch. ``defaults`` are
    :func:`mm_litellm.run` options applied under every request (e.g. ``strategy``, ``model``,
    ``max_tokens``).
    """
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
    limiter = RateLimiter(rpm, tpm)
    items: dict[int, BatchItem] = {}
    stop: list[str] = []  # the stop reason, once a budget blocks
    source = enumerate(requests)
    started = time.perf_counter()

    async def worker() -> None:
        for index, request in source:  # one shared iterator: each request is taken exactly once
            if stop:
                item = BatchItem(
                    index, _safe_id(request), "skipped", error_type="NotRun", error=f"not sent: {stop[0]}"
                )
            else:
                item, blocked = await _run_one(index, request, defaults, limiter, stop)
                if blocked is not None and not stop:
                    stop.append(
                        f"request {index} was blocked by {type(blocked).__name__}: {blocked}; "
                        "no new requests were sent after it"
                    )
            items[index] = item
            if on_result is not None:
                outcome = on_result(item)
                if inspect.isawaitable(outcome):
                    await outcome

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(max_concurrency):
                group.create_task(worker())
    except BaseExceptionGroup as failed:  # on_result or the input raised: that error, not a group
        raise failed.exceptions[0] from None
    ordered = tuple(items[i] for i in sorted(items))
    return BatchReport(
        ordered, BatchMetrics.of(ordered, time.perf_counter() - started), stop[0] if stop else None
    )


def batch(
    requests: Iterable[Any],
    *,
    max_concurrency: int = 8,
    rpm: float | None = None,
    tpm: float | None = None,
    on_result: OnResult | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> BatchReport:
    """Synchronous :func:`abatch` (runs its own event loop; inside a running loop, await ``abatch``).

    Before its loop closes it waits for LiteLLM's queued success/failure callbacks, so the
    ledger records every call of the batch."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "mm_litellm.batch() was called inside a running event loop; use 'await abatch(...)'"
        )

    async def run_then_drain() -> BatchReport:
        try:
            return await abatch(
                requests,
                max_concurrency=max_concurrency,
                rpm=rpm,
                tpm=tpm,
                on_result=on_result,
                defaults=defaults,
            )
        finally:  # this loop closes next: let LiteLLM record the last calls (ledger, budgets) first
            await drain_callbacks()

    return asyncio.run(run_then_drain())


async def _run_one(
    index: int, request: Any, defaults: Mapping[str, Any] | None, limiter: RateLimiter, stop: list[str]
) -> tuple[BatchItem, BaseException | None]:
    rid = _safe_id(request)
    try:
        kwargs = to_run_kwargs(request, defaults)
    except InvalidRequest as exc:
        return BatchItem(index, rid, "error", error_type="InvalidRequest", error=str(exc)), None
    estimate = 0
    if limiter.active:
        estimate = _estimate_tokens(kwargs)
        await limiter.acquire(estimate)
        if stop:  # a budget blocked another request while this one waited for its slot
            return BatchItem(index, rid, "skipped", error_type="NotRun", error=f"not sent: {stop[0]}"), None
    try:
        result = await api.arun(**kwargs)
    except Exception as exc:  # one request's failure is its result, never the batch's
        blocked = is_stop_error(exc)
        shown = blocked if blocked is not None else exc
        message = str(shown)
        if len(message) > _MAX_ERROR_CHARS:
            message = message[:_MAX_ERROR_CHARS] + "..."
        item = BatchItem(
            index, rid, "error", error_type=type(shown).__name__, error=message, blocked=blocked is not None
        )
        return item, blocked
    if limiter.tpm is not None:
        limiter.settle((result.input_tokens or 0) + (result.output_tokens or 0) - estimate)
    return BatchItem(index, rid, "ok", result=result), None


def _estimate_tokens(kwargs: Mapping[str, Any]) -> int:
    """Input tokens (cheap estimate) plus the answer's cap; corrected by the real usage after."""
    messages = kwargs.get("messages")
    if messages is None:
        messages = [{"role": "user", "content": str(kwargs.get("prompt") or "")}]
        if kwargs.get("system"):
            messages.append({"role": "system", "content": str(kwargs["system"])})
    tokens, _, _ = estimate_tokens(messages)
    cap = kwargs.get("max_tokens") or kwargs.get("max_completion_tokens") or 0
    return tokens + int(cap)


def _safe_id(request: Any) -> str | None:
    try:
        return request_id(request)
    except Exception:  # an id that cannot even be read is reported through the request's error
        return None
