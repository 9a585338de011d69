"""mm_litellm's one LiteLLM callback: each call's events go to the runtime that admitted it.

Runtimes :func:`attach` themselves; the first one puts :data:`dispatcher` into
``litellm.callbacks`` and the last one to :func:`detach` takes it out, so LiteLLM holds one
mm_litellm callback however many policies were loaded, replaced or run side by side. An event
carries the admitting runtime's id in its request context (``metadata["mm_litellm"]["runtime"]``);
an event without one (a plain ``litellm.completion`` call) goes to the ambient runtimes (the
process's default policy, ``register_callbacks``). A runtime that closed a moment ago still gets
the late events of its own calls, so nothing it admitted goes unrecorded.
"""

from __future__ import annotations

import collections
import threading
import weakref
from typing import TYPE_CHECKING, Any

from mm_litellm.context import context_of
from mm_litellm.integrations._litellm import litellm

if TYPE_CHECKING:
    from mm_litellm.runtime import Runtime

__all__ = ["attach", "attached", "detach", "dispatcher"]

RECENTLY_CLOSED = 16
"""Closed runtimes still reachable for late events of their own calls."""

_attached: weakref.WeakValueDictionary[str, Runtime] = weakref.WeakValueDictionary()
"""Runtimes events go to; one nobody holds any more (a dropped Router's) leaves on its own."""
_ambient: dict[str, Runtime] = {}
"""Ambient runtimes are held until closed: ``register_callbacks(policy)`` records even when its
caller does not keep what it returned."""
_recent: collections.deque[Runtime] = collections.deque(maxlen=RECENTLY_CLOSED)
_lock = threading.RLock()  # re-entered when a dropped runtime is finalized while attaching
_dispatcher: Any = None


def dispatcher() -> Any:
    """The process's ``CustomLogger`` (created on first use: importing it imports LiteLLM)."""
    global _dispatcher
    if _dispatcher is None:
        from litellm.integrations.custom_logger import CustomLogger

        class MMDispatcher(CustomLogger):
            """Hands each success and failure event to the runtime that admitted the call."""

            def log_success_event(
                self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
            ) -> None:
                _dispatch(kwargs, start_time, end_time, "success")

            def log_failure_event(
                self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
            ) -> None:
                _dispatch(kwargs, start_time, end_time, "error")

            async def async_log_success_event(
                self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
            ) -> None:
                _dispatch(kwargs, start_time, end_time, "success")

            async def async_log_failure_event(
                self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
            ) -> None:
                _dispatch(kwargs, start_time, end_time, "error")

        _dispatcher = MMDispatcher()
    return _dispatcher


def attach(runtime: Runtime) -> None:
    """Route ``runtime``'s events to it (and make sure LiteLLM calls the dispatcher)."""
    handler = dispatcher()
    with _lock:
        if runtime.id not in _attached:
            weakref.finalize(runtime, _dropped, runtime.id)
        _attached[runtime.id] = runtime
        if runtime.ambient:
            _ambient[runtime.id] = runtime
        callbacks = litellm().callbacks
        if handler not in callbacks:  # also after a test reset LiteLLM's callbacks
            callbacks.append(handler)


def detach(runtime: Runtime) -> None:
    """Stop routing new events to ``runtime``; the last one out unregisters the dispatcher."""
    with _lock:
        _ambient.pop(runtime.id, None)
        if _attached.pop(runtime.id, None) is not None:
            _recent.append(runtime)
        if not _attached and _dispatcher is not None:
            _unregister(_dispatcher)


def _dropped(runtime_id: str) -> None:
    """A runtime nobody holds any more (a dropped Router's) is gone: the last one unregisters."""
    with _lock:
        _attached.pop(runtime_id, None)
        if not _attached and _dispatcher is not None:
            _unregister(_dispatcher)


def _unregister(handler: Any) -> None:
    """Take ``handler`` out of every list LiteLLM copies ``litellm.callbacks`` entries into."""
    lt = litellm()
    manager = getattr(lt, "logging_callback_manager", None)
    if manager is not None and hasattr(manager, "remove_callback_from_all_lists"):
        manager.remove_callback_from_all_lists(handler)
        return
    for name in (
        "callbacks",
        "success_callback",
        "failure_callback",
        "_async_success_callback",
        "_async_failure_callback",
    ):
        entries = getattr(lt, name, None)
        if isinstance(entries, list):
            entries[:] = [cb for cb in entries if cb is not handler]


def attached() -> list[Runtime]:
    """The runtimes events are routed to now."""
    with _lock:
        return list(_attached.values())


def _targets(runtime_id: Any) -> list[Runtime]:
    owner: Runtime | None = None
    if runtime_id:
        owner = _attached.get(runtime_id)
        if owner is None:
            owner = next((rt for rt in tuple(_recent) if rt.id == runtime_id), None)
    if owner is not None and owner.keeps_ledger:
        return [owner]
    # no owner, or one that keeps no ledger (a Router's routing hook): the ambient ledgers record it
    ambient = [rt for rt in tuple(_attached.values()) if rt.ambient and rt is not owner]
    return [owner, *ambient] if owner is not None else ambient


def _dispatch(kwargs: Any, start: Any, end: Any, status: str) -> None:
    ctx = context_of(kwargs) if isinstance(kwargs, dict) else None
    for runtime in _targets(ctx.get("runtime") if ctx is not None else None):
        runtime.on_event(kwargs, start, end, status)
