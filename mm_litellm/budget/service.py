"""One policy's budgets over one database: estimate, reserve, record, settle, alert.

The gateway asks :meth:`BudgetService.admit` before a call (estimate the plan's cost, reserve
it atomically, downgrade or refuse); the LiteLLM callback hands every finished call to
:meth:`record`, and the background writer settles it: ledger row in, spend added to the
counters of the model that actually served, reservation released, alerts claimed.
"""

from __future__ import annotations

import atexit
import itertools
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from mm_litellm.budget.alerts import AlertSink
from mm_litellm.budget.leases import LeaseBook
from mm_litellm.budget.store import BudgetStore, Charge, CounterKey, Denial, Release
from mm_litellm.budget.windows import CallContext, scope_keys, utcnow, window_bounds
from mm_litellm.budget.writer import LedgerWriter
from mm_litellm.errors import BudgetExceeded
from mm_litellm.logs import get_logger
from mm_litellm.policy.budgets import BudgetLimit, BudgetSettings
from mm_litellm.policy.schema import Policy
from mm_litellm.routing.features import estimate_tokens

__all__ = ["BudgetService", "Estimate", "NeedsStore"]

log = get_logger("mm_litellm.budget")

ENSEMBLE_PREFIX = "ensemble/"
COUNTER_CACHE_SIZE = 4096
"""Call contexts whose counters are remembered (see :meth:`BudgetService.counters`)."""
LEASE_CALLS = 32
"""Calls' worth of budget a process may hold in advance on a counter far from its limit."""


class NeedsStore(Exception):
    """No lease of this process covers the call: only the store can admit it (see ``reserve``)."""


@dataclass(frozen=True)
class Estimate:
    """Upper bound of one call: prompt tokens counted, completion bounded by ``max_tokens``."""

    model: str
    prompt_tokens: int
    completion_tokens: int
    usd: float | None
    """``None`` when the model has no known price."""

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def _estimated_tokens(model: str, messages: list[Any]) -> int:
    return estimate_tokens(messages)[0]


def _whole(value: Any) -> int | None:
    """A positive whole number (``50``, ``50.0``, ``"50"``), else ``None``: estimates are upper bounds,
    so a value that is not one (negative, zero, a bool, text, NaN) never lowers them."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and value > 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip()) or None
    return None


class BudgetService:
    """Budgets and ledger of one policy. Thread-safe; one per policy per process."""

    def __init__(
        self,
        policy: Policy,
        engine: Any,
        *,
        price: Callable[[str], tuple[float, float] | None] | None = None,
        count_tokens: Callable[[str, list[Any]], int] | None = None,
        max_output: Callable[[str], int | None] | None = None,
    ) -> None:
        """``price(model)``: USD per token (input, output) or ``None``; ``count_tokens(model,
        messages)``: exact prompt tokens; ``max_output(model)``: the model's maximum output tokens.
        The runtime gives LiteLLM's; without them, a policy model's ``pricing`` is its only price,
        tokens are estimated from characters and the output bound is ``default_max_tokens``."""
        self.policy = policy
        self._max_output_of = max_output
        self._price_of = price if price is not None else self._policy_price
        self._count_tokens = count_tokens if count_tokens is not None else _estimated_tokens
        self.settings: BudgetSettings = policy.budgets or BudgetSettings()
        self.tz = ZoneInfo(self.settings.timezone)
        self.limits: dict[str, BudgetLimit] = {limit.name: limit for limit in self.settings.limits}
        self._limits: tuple[BudgetLimit, ...] = tuple(self.settings.limits)
        """The policy's budgets plus the caps of the keys seen (:meth:`key_cap`)."""
        self.store = BudgetStore(engine, self.settings.reservation_ttl_s)
        self.alerts = AlertSink(self.settings)
        self.writer = LedgerWriter(self._write, quarantine=self.store.quarantine)  # issue 15 (ledger half)
        self.leases = LeaseBook(self.settings.reservation_ttl_s / 2)
        self._prices: dict[str, tuple[float, float] | None] = {}
        self._windows: dict[str, tuple[datetime, datetime]] = {}
        self._counters: dict[
            CallContext, tuple[datetime, datetime, tuple[tuple[BudgetLimit, CounterKey], ...]]
        ] = {}
        self._model_ctx: dict[str, CallContext] = {}
        self._estimates: dict[tuple[str, int, int], Estimate] = {}
        self._rid_prefix = uuid.uuid4().hex[:20]
        """Reservation ids are this random prefix plus a counter: unique across the processes
        sharing the store, without reading the OS's random source on every call."""
        self._rid_seq = itertools.count(1)
        self._open: set[str] = set()
        """Reservations this process holds whose call has not been recorded yet."""
        self._open_cond = threading.Condition()
        ref = weakref.ref(self)
        atexit.register(lambda: (s := ref()) is not None and s.flush(timeout=5.0))

    # -- estimation ---------------------------------------------------------------------------
    def price(self, model: str) -> tuple[float, float] | None:
        """USD per token (input, output) of a policy model or LiteLLM model; ``None`` if unknown."""
        if model not in self._prices:
            self._prices[model] = self._price_of(model)
        return self._prices[model]

    def _policy_price(self, model: str) -> tuple[float, float] | None:
        spec = self.policy.models.get(model)
        pricing = spec.pricing if spec is not None else None
        if pricing is None or pricing.input_per_mtok is None:
            return None
        return pricing.input_per_mtok / 1e6, (pricing.output_per_mtok or 0) / 1e6

    def estimate(
        self,
        model: str,
        messages: Sequence[Any] | None,
        kwargs: Mapping[str, Any],
        *,
        exact: bool = True,
        cheap_prompt: int | None = None,
    ) -> Estimate:
        """Cost bound of calling ``model`` (policy alias or LiteLLM model) with these arguments.

        An upper bound whatever the arguments: completion tokens are ``max_tokens`` /
        ``max_completion_tokens`` when one is a positive whole number, else the model's maximum
        output (LiteLLM's table; ``default_max_tokens`` when unknown), times ``n`` / ``best_of``
        (the larger, when a positive whole number). Garbage values never make it smaller.
        ``exact`` counts prompt tokens with LiteLLM's ``token_counter``; otherwise characters / 4
        (good enough far from a limit, where a lease admits the call: see :meth:`reserve`).
        """
        limit = _whole(kwargs.get("max_tokens"))
        if limit is None:
            limit = _whole(kwargs.get("max_completion_tokens"))
        if limit is None:
            limit = self._max_output(model)
        choices = max(_whole(kwargs.get("n")) or 1, _whole(kwargs.get("best_of")) or 1)
        completion = limit * choices
        if not exact and cheap_prompt is not None:  # the gateway's hot path: same inputs, same bound
            key = (model, cheap_prompt, completion)
            cached = self._estimates.get(key)
            if cached is None:
                if len(self._estimates) >= COUNTER_CACHE_SIZE:
                    self._estimates.clear()
                cached = self._estimates[key] = self._estimate(
                    model, messages, kwargs, exact, cheap_prompt, completion
                )
            return cached
        return self._estimate(model, messages, kwargs, exact, cheap_prompt, completion)

    def _estimate(
        self,
        model: str,
        messages: Sequence[Any] | None,
        kwargs: Mapping[str, Any],
        exact: bool,
        cheap_prompt: int | None,
        completion: int,
    ) -> Estimate:
        ensemble = self._ensemble(model)
        if ensemble is not None:  # an ensemble call costs what all its member calls cost
            parts = [
                self.estimate(m, messages, kwargs, exact=exact, cheap_prompt=cheap_prompt)
                for _, m in ensemble.model_refs()
            ]
            usd = None if any(p.usd is None for p in parts) else sum(p.usd or 0.0 for p in parts)
            return Estimate(
                model, sum(p.prompt_tokens for p in parts), sum(p.completion_tokens for p in parts), usd
            )
        spec = self.policy.models.get(model)
        if exact:
            prompt = self._count_tokens(spec.litellm_model if spec else model, list(messages or []))
        elif cheap_prompt is not None:  # counted once for the whole chain by the caller
            prompt = cheap_prompt
        else:
            prompt = estimate_tokens(messages)[0]
        price = self.price(model)
        usd = None if price is None else prompt * price[0] + int(completion) * price[1]
        return Estimate(model, prompt, int(completion), usd)

    def _max_output(self, model: str) -> int:
        """The model's maximum output tokens (remembered per model), else ``default_max_tokens``."""
        cache: dict[str, int] = self.__dict__.setdefault("_max_outputs", {})
        found = cache.get(model)
        if found is None:
            spec = self.policy.models.get(model)
            try:
                found = (
                    self._max_output_of(spec.litellm_model if spec else model)
                    if self._max_output_of
                    else None
                )
            except Exception:  # an odd model name: the policy's bound
                found = None
            found = cache[model] = found or self.settings.default_max_tokens
        return found

    def _ensemble(self, model: str) -> Any:
        if not model.startswith(ENSEMBLE_PREFIX):
            return None
        return self.policy.ensembles.get(model[len(ENSEMBLE_PREFIX) :])

    # -- which counters a call touches ---------------------------------------------------------
    def counters(self, ctx: CallContext, when: datetime) -> Sequence[tuple[BudgetLimit, CounterKey]]:
        """The (budget, counter key) pairs a call with ``ctx`` at ``when`` counts against.

        Remembered per context until the earliest of its windows ends: every call asks (for its
        identity and for each model of its chain), and the answer only changes with the window.
        """
        cached = self._counters.get(ctx)
        if cached is not None and cached[0] <= when < cached[1]:
            return cached[2]
        out: list[tuple[BudgetLimit, CounterKey]] = []
        valid_from, valid_until = datetime.min, datetime.max
        for limit in self._limits:
            keys = scope_keys(limit, ctx)
            if keys:
                start, end = self._bounds(limit.window, when)
                valid_from, valid_until = max(valid_from, start), min(valid_until, end)
                out.extend((limit, (limit.name, key, start, end)) for key in keys)
        if len(self._counters) >= COUNTER_CACHE_SIZE:  # many distinct users/tags: start over
            self._counters.clear()
        result = tuple(out)
        self._counters[ctx] = (valid_from, valid_until, result)
        return result

    def key_cap(self, key: str, usd: float) -> BudgetLimit:
        """The budget that caps ``key``'s spend at ``usd`` per calendar month (a key's own
        ``limits.max_budget_usd``), counted from now on like any budget of the policy."""
        name = f"key-cap:{key}"
        limit = self.limits.get(name)
        if limit is None or limit.limit_usd != usd:
            limit = BudgetLimit(
                name=name,
                scope="key",
                match=(key,),
                window="monthly",
                limit_usd=usd,
                description=f"limits.max_budget_usd of key '{key}'",
            )
            with self._open_cond:
                self.limits[name] = limit
                self._limits = (*(x for x in self._limits if x.name != name), limit)
                self._counters.clear()
        return limit

    def _bounds(self, window: str, when: datetime) -> tuple[datetime, datetime]:
        """``window_bounds``, remembered until the window ends (the hot path asks per call)."""
        cached = self._windows.get(window)
        if cached is not None and cached[0] <= when < cached[1]:
            return cached
        bounds = window_bounds(window, when, self.tz)
        self._windows[window] = bounds
        return bounds

    def charges_of(self, row: Mapping[str, Any]) -> Sequence[tuple[BudgetLimit, CounterKey]]:
        """Counters a settled ledger row adds spend to: those of the model that really served."""
        if (row.get("model") or "").startswith(ENSEMBLE_PREFIX) or (row.get("deployment") or "").startswith(
            ENSEMBLE_PREFIX
        ):
            return []  # the ensemble's members are recorded (and counted) one by one
        tags = tuple(t for t in (row.get("tags") or "").split(",") if t)
        ctx = CallContext(
            model=row.get("model"),
            route=row.get("route"),
            user=row.get("user"),
            team=row.get("team"),
            key=row.get("api_key"),
            tags=tags,
            end_user=row.get("end_user"),
        )
        return self.counters(ctx, row["ts"])

    # -- admission ----------------------------------------------------------------------------
    def reserve(
        self,
        ctx: CallContext,
        estimates: Sequence[Estimate],
        soft: frozenset[str] = frozenset(),
        refine: Callable[[], Sequence[Estimate]] | None = None,
        *,
        store: bool = True,
    ) -> tuple[str | None, Denial | None]:
        """Reserve the estimate of a call whose serving model is one of ``estimates`` (the first is
        the planned one, the rest its fallbacks): model budgets per model, others the maximum.

        A lease of this process admits the call without a store round trip; otherwise
        ``refine()`` (exact token counts) replaces the estimates and the store decides.
        With ``store=False`` only a lease may admit it: :class:`NeedsStore` is raised instead
        of going to the store (the caller then reserves again off its event loop).
        """
        now = utcnow()
        charges = self._charges(ctx, estimates, soft, now)
        if not charges:
            return None, None
        self._check_unpriced(charges, estimates[0])
        rid = f"{self._rid_prefix}{next(self._rid_seq):x}"
        with self._open_cond:
            self._open.add(rid)
        if self.leases.take(rid, charges):
            return rid, None
        if not store:
            self._closed([rid])
            raise NeedsStore
        if refine is not None:
            estimates = refine()
            charges = self._charges(ctx, estimates, soft, now)
        return self._reserve_in_store(rid, charges, estimates[0])

    def _charges(
        self, ctx: CallContext, estimates: Sequence[Estimate], soft: frozenset[str], now: datetime
    ) -> list[Charge]:
        usd = max((e.usd or 0.0) for e in estimates)
        tokens = max(e.tokens for e in estimates)
        charges: list[Charge] = []
        for limit, key in self.counters(ctx, now):
            if limit.scope == "model":
                continue
            charges.append(Charge(limit, key, usd, tokens, limit.name not in soft))
        for est in estimates:
            model_ctx = self._model_ctx.get(est.model)
            if model_ctx is None:
                model_ctx = self._model_ctx[est.model] = CallContext(model=est.model)
            for limit, key in self.counters(model_ctx, now):
                if limit.scope == "model":
                    enforce = limit.name not in soft  # a spent fallback is dropped by the caller
                    charges.append(Charge(limit, key, est.usd or 0.0, est.tokens, enforce))
        return charges

    def _check_unpriced(self, charges: list[Charge], first: Estimate) -> None:
        if first.usd is None and self.settings.on_unpriced == "block":
            usd_limit = next((c.limit for c in charges if c.limit.unit == "usd"), None)
            if usd_limit is not None:
                raise BudgetExceeded(
                    usd_limit.name,
                    usd_limit.scope,
                    0.0,
                    usd_limit.limit,
                    None,
                    reason=(
                        f"model '{first.model}' has no known price and budget '{usd_limit.name}' is in USD; "
                        "add 'pricing' to the model or set budgets.on_unpriced: allow"
                    ),
                )

    def _reserve_in_store(
        self, rid: str, charges: list[Charge], first: Estimate
    ) -> tuple[str | None, Denial | None]:
        returns = self.leases.surrender([c.key for c in charges])
        try:
            denial, grants = self.store.reserve_leased(rid, charges, LEASE_CALLS, returns)
        except BaseException:
            self._closed([rid])
            for back in returns:  # rolled back: give the remainders back in the background
                self.writer.release(back)
            raise
        if denial is not None:
            self._closed([rid])
            for back in returns:
                self.writer.release(back)
            return None, denial
        for back in self.leases.granted(rid, charges, grants):
            self.writer.release(back)
        return rid, None

    def exceeded(self, denial: Denial) -> BudgetExceeded:
        limit = denial.limit
        scope = limit.scope if limit.scope == "global" else f"{limit.scope}={denial.key[1]}"
        resets = denial.key[3].replace(tzinfo=ZoneInfo("UTC")).astimezone(self.tz)
        return BudgetExceeded(
            limit.name, scope, denial.used, limit.limit, resets, limit.unit, denial.estimate
        )

    def cheapest_model(self, exclude: str | None = None) -> str | None:
        """The policy model with the lowest known price (input plus output), for downgrades."""
        priced = [
            (p[0] + p[1], name)
            for name in self.policy.models
            if name != exclude and (p := self.price(name)) is not None
        ]
        return min(priced)[1] if priced else None

    # -- recording ----------------------------------------------------------------------------
    def record(self, row: Mapping[str, Any]) -> None:
        """Queue a ledger row (settled in the background; see :meth:`flush`)."""
        self.writer.submit(row)
        rid = row.get("reservation_id")
        if rid and row.get("status") == "success" and not row.get("parent_id"):
            self._closed([rid])

    def release(self, reservation_id: str) -> None:
        """Give a reservation back (its call raised); written by the background writer."""
        self.writer.release(reservation_id)
        self._closed([reservation_id])

    def writer_healthy(self) -> bool:
        """False while the ledger writer cannot write to the store at all (it keeps retrying, with
        backoff, and drops nothing); admission should then fail closed. A row that cannot be
        written while the store works is quarantined and does not make this False."""
        return self.writer.healthy

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every call this process admitted has been recorded (LiteLLM reports
        success from a worker thread, a moment after the call returns), give unused leases
        back, and write every queued row. True when done; False on timeout (e.g. a stream
        nobody finished reading)."""
        deadline = time.monotonic() + timeout
        with self._open_cond:
            done = self._open_cond.wait_for(lambda: not self._open, timeout=timeout)
        for back in self.leases.surrender_all():
            self.writer.release(back)
        return self.writer.flush(max(0.0, deadline - time.monotonic())) and done

    def _closed(self, reservation_ids: list[str]) -> None:
        with self._open_cond:
            self._open.difference_update(reservation_ids)
            self._open_cond.notify_all()

    def _write(self, rows: list[Mapping[str, Any]], releases: list[Any]) -> None:
        # a row gives its call's hold back only when the call finished; a failed attempt of a
        # Router call may be followed by a fallback that still needs the hold
        # ensemble members and escalation hops (parent_id set) share their parent's hold: the
        # parent's own row, which LiteLLM reports last, gives it back
        wanted = [
            *releases,
            *(
                r["reservation_id"]
                for r in rows
                if r.get("reservation_id") and r.get("status") == "success" and not r.get("parent_id")
            ),
        ]
        partial: list[Release] = []
        settled: list[str] = []
        seen: set[str] = set()
        for item in wanted:
            if isinstance(item, Release):
                partial.append(item)
                continue
            if item in seen:
                continue
            seen.add(item)
            shares = self.leases.shares(item)
            if shares is not None:  # None: given back already (a duplicate event), or not ours
                partial.extend(shares)
                settled.append(item)
        _, alerts = self.store.settle(rows, [], self.charges_of, self.limits, partial)
        self.leases.forget(settled)  # only now: a failed batch is retried with the same shares
        if alerts:
            self.alerts.deliver(alerts)
