"""One runtime per policy: everything built for a policy, created, registered and closed by it.

A :class:`Runtime` owns, for one loaded policy: the routing engine, the ``litellm.Router``, the
budget service (with its ledger writer and leases), the prompt registry and the latency
recorder. It registers itself with LiteLLM's callbacks through one process-wide dispatcher
(:mod:`mm_litellm.integrations.dispatch`) that hands each call's events to the runtime that
admitted the call, and :meth:`Runtime.close` gives everything back: new calls refused, calls in
flight waited for, ledger rows written, leases returned, callbacks unregistered.

A :class:`RuntimeSlot` holds the runtime a door uses now. Replacing the policy (``configure``,
hot reload, ``Gateway.configure``) builds the new runtime, swaps it in atomically, and retires
the old one: it closes once its in-flight calls finish. A call takes the runtime once, at its
start, and is admitted, routed and charged under it to its end.

The module functions (:func:`configure`, :func:`current`) work on the process's default slot,
the one ``mm_litellm.completion`` and the proxy use.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import uuid
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mm_litellm.errors import ConfigurationError
from mm_litellm.logs import get_logger
from mm_litellm.policy.loader import load_policy
from mm_litellm.policy.schema import Policy
from mm_litellm.routing.engine import RoutingEngine
from mm_litellm.routing.latency import LatencyTracker

if TYPE_CHECKING:  # SQLAlchemy and the prompt store load on first use
    from mm_litellm.budget.service import BudgetService
    from mm_litellm.prompts.registry import PromptRegistry

__all__ = [
    "POLICY_ENV",
    "Runtime",
    "RuntimeSlot",
    "configure",
    "current",
    "find",
    "live_runtimes",
    "reset",
    "wait_retired",
]

log = get_logger("mm_litellm.runtime")

POLICY_ENV = "MM_LITELLM_POLICY"
"""Environment variable naming the policy file used when ``configure`` was not called."""

RETIRE_TIMEOUT_S = 60.0
"""How long a replaced runtime waits for its in-flight calls before it closes anyway."""

_UNBUILT: Any = object()
_live: weakref.WeakValueDictionary[str, Runtime] = weakref.WeakValueDictionary()
"""Open runtimes by id; a runtime nobody holds any more (a dropped Router's) simply goes."""
_live_lock = threading.Lock()


def live_runtimes() -> list[Runtime]:
    """Every runtime of this process that is not closed yet (oldest first)."""
    with _live_lock:
        return list(_live.values())


def find(runtime_id: object) -> Runtime | None:
    """The open runtime with this id (the ``runtime`` of a request's context), if any."""
    return _live.get(runtime_id) if isinstance(runtime_id, str) else None


def _embed(spec: Any, texts: Any) -> Any:
    """A learned route's prompt embedding for a live request, through LiteLLM (imported on use)."""
    from mm_litellm.integrations.embeddings import decision_fetch

    return decision_fetch(spec, texts)


class Runtime:
    """Everything built for one policy; thread-safe; close it when done (or use ``with``)."""

    def __init__(self, policy: Policy, *, ambient: bool = False, ledger_engine: Any = None) -> None:
        from mm_litellm.integrations.prices import LiteLLMFacts
        from mm_litellm.integrations.router import SecretCheck

        self.id = uuid.uuid4().hex[:16]
        self.policy = policy
        self.ambient = ambient
        """Also records LiteLLM calls that carry no mm_litellm context (plain ``litellm`` calls)."""
        self.latency = LatencyTracker()
        self.engine = RoutingEngine(policy, latency=self.latency, facts=LiteLLMFacts(), embed=_embed)
        self.secrets = SecretCheck(policy)
        self._ledger_engine = ledger_engine
        self._router: Any = None
        self._budget: Any = _UNBUILT
        self._prompts: Any = _UNBUILT
        self._lock = threading.RLock()
        self._cond = threading.Condition()
        self._inflight = 0
        self._closing = False
        self._closed = False
        self._attached = False
        with _live_lock:
            _live[self.id] = self

    def __repr__(self) -> str:
        state = "closed" if self._closed else "closing" if self._closing else "open"
        return f"<Runtime {self.id} {self.policy.source} {state}>"

    # -- what the runtime owns (each built once, on first use) --------------------------------
    @property
    def router(self) -> Any:
        """The ``litellm.Router`` serving the policy's models."""
        if self._router is None:
            with self._lock:
                if self._router is None:
                    from mm_litellm.integrations.router import build_router

                    self._router = build_router(self.policy)
                    self.attach()
        return self._router

    @property
    def budget(self) -> BudgetService | None:
        """The budget service and ledger (``None`` for a policy without ``budgets:``)."""
        if self._budget is _UNBUILT:
            with self._lock:
                if self._budget is _UNBUILT:
                    self._budget = self._build_budget()
                    self.attach()
        return self._budget  # type: ignore[no-any-return]

    @property
    def keeps_ledger(self) -> bool:
        """True when this runtime records its calls in a ledger (its budget service is built)."""
        return self._budget is not _UNBUILT and self._budget is not None

    @property
    def budget_built(self) -> bool:
        """True once :attr:`budget` was built (building it opens the store: I/O)."""
        return self._budget is not _UNBUILT

    def _build_budget(self) -> BudgetService | None:
        if self.policy.budgets is None and self._ledger_engine is None:
            return None
        from mm_litellm.budget.service import BudgetService
        from mm_litellm.integrations.prices import count_prompt_tokens, max_output_tokens, per_token_price
        from mm_litellm.storage import engine_for

        engine = self._ledger_engine if self._ledger_engine is not None else engine_for(self.policy)
        price = functools.partial(per_token_price, self.policy)
        return BudgetService(
            self.policy, engine, price=price, count_tokens=count_prompt_tokens, max_output=max_output_tokens
        )

    @property
    def prompts(self) -> PromptRegistry | None:
        """The prompt registry the policy's ``prompts:`` section describes (``None`` without one)."""
        if self._prompts is _UNBUILT:
            with self._lock:
                if self._prompts is _UNBUILT:
                    if self.policy.prompts is None:
                        self._prompts = None
                    else:
                        from mm_litellm.prompts.registry import PromptRegistry

                        self._prompts = PromptRegistry.from_policy(self.policy)
        return self._prompts  # type: ignore[no-any-return]

    def attach(self) -> None:
        """Register with LiteLLM's callbacks (through the dispatcher); idempotent, cheap."""
        from mm_litellm.integrations.dispatch import attach

        attach(self)
        self._attached = True

    # -- lifetime -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def call(self) -> Iterator[Runtime]:
        """Count one call in flight for the ``with`` block; refused once the runtime is closing."""
        with self._cond:
            if self._closing:
                raise ConfigurationError(f"this mm_litellm runtime ({self.policy.source}) is closed")
            self._inflight += 1
        try:
            yield self
        finally:
            with self._cond:
                self._inflight -= 1
                if self._inflight == 0:
                    self._cond.notify_all()

    @property
    def in_flight(self) -> int:
        return self._inflight

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, timeout: float = 30.0) -> bool:
        """Refuse new calls, wait for calls in flight, write every ledger row, give leases back,
        unregister from LiteLLM. True when everything finished within ``timeout``."""
        with self._cond:
            self._closing = True
            drained = self._cond.wait_for(lambda: self._inflight == 0, timeout=timeout)
        ok = drained
        if self._budget not in (_UNBUILT, None):
            ok = self._budget.flush(timeout=timeout) and ok
        if self._attached:
            from mm_litellm.integrations.dispatch import detach

            detach(self)
        with _live_lock:
            _live.pop(self.id, None)
        self._closed = True
        if not ok:
            log.warning("runtime.close_timeout", policy=self.policy.source, in_flight=self._inflight)
        return ok

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- LiteLLM events of this runtime's calls (called by the dispatcher) --------------------
    def on_event(self, kwargs: Any, start: Any, end: Any, status: str) -> None:
        """Record one finished call (or attempt): a ledger row, and its latency on success."""
        service = self._budget if self._budget is not _UNBUILT else None
        if service is not None:
            from mm_litellm.integrations.callbacks import ledger_row

            try:
                row = ledger_row(service, kwargs, start, end, status)
            except Exception as exc:  # a malformed event must be seen, never crash the caller
                log.error("budget.ledger_event_unreadable", error=str(exc))
                row = None
            if row is not None:
                service.record(row)
        if status == "success":
            self._observe_latency(kwargs, start, end)

    def _observe_latency(self, kwargs: Any, start: Any, end: Any) -> None:
        payload = kwargs.get("standard_logging_object") or {}
        group = payload.get("model_group")
        if not group or group not in self.policy.models:
            return
        seconds = payload.get("response_time")
        if seconds is None:
            try:
                seconds = (end - start).total_seconds()
            except (TypeError, AttributeError):
                return
        self.latency.observe(str(group), float(seconds) * 1000.0)


class RuntimeSlot:
    """The runtime a door uses now; replaced atomically, the old one retired (see module doc)."""

    def __init__(self, runtime: Runtime | None = None, *, from_env: bool = False) -> None:
        self._runtime = runtime
        self._from_env = from_env
        self._lock = threading.Lock()
        self._retiring: list[threading.Thread] = []

    def peek(self) -> Runtime | None:
        """The runtime in the slot now, without loading ``MM_LITELLM_POLICY``."""
        return self._runtime

    def get(self) -> Runtime | None:
        runtime = self._runtime
        if runtime is None and self._from_env:
            with self._lock:
                if self._runtime is None and self._from_env:
                    path = os.environ.get(POLICY_ENV)
                    if path:  # a file that fails to load raises here, and again on the next call
                        self._runtime = Runtime(load_policy(Path(path)), ambient=True)
                    self._from_env = False
                runtime = self._runtime
        return runtime

    def swap(self, runtime: Runtime | None, *, from_env: bool = False) -> Runtime | None:
        """Make ``runtime`` the one in use; the previous one closes once its calls finish."""
        with self._lock:
            old, self._runtime, self._from_env = self._runtime, runtime, from_env
        if old is not None and old is not runtime:
            thread = threading.Thread(
                target=old.close, args=(RETIRE_TIMEOUT_S,), name="mm-litellm-retire", daemon=True
            )
            thread.start()
            self._retiring = [t for t in self._retiring if t.is_alive()] + [thread]
        return runtime

    def wait_retired(self, timeout: float = RETIRE_TIMEOUT_S) -> bool:
        """Wait until every replaced runtime is closed; True when they all are."""
        for thread in list(self._retiring):
            thread.join(timeout)
        return not any(t.is_alive() for t in self._retiring)


DEFAULT = RuntimeSlot(from_env=True)
"""The process's default slot: ``mm_litellm.completion``, ``run``, ``batch`` and the proxy use it."""


def configure(policy: Policy | str | os.PathLike[str] | None) -> Runtime | None:
    """Make ``policy`` (a :class:`Policy` or a file path) the process's active policy.

    ``None`` switches routing off: every call passes straight through to LiteLLM. Without a
    call to ``configure``, the file named by ``MM_LITELLM_POLICY`` is loaded on first use. The
    previous policy's runtime is closed once the calls it admitted have finished.
    """
    if policy is not None and not isinstance(policy, Policy):
        policy = load_policy(policy)
    return DEFAULT.swap(Runtime(policy, ambient=True) if policy is not None else None)


def current() -> Runtime | None:
    """The active runtime, or ``None`` when no policy is configured (pure pass-through)."""
    return DEFAULT.get()


def wait_retired(timeout: float = RETIRE_TIMEOUT_S) -> bool:
    """Wait until the default slot's replaced runtimes are closed (for tests and shutdown)."""
    return DEFAULT.wait_retired(timeout)


def reset() -> None:
    """Forget the active policy; the next call reads ``MM_LITELLM_POLICY`` again (for tests)."""
    DEFAULT.swap(None, from_env=True)
