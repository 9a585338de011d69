"""Feed observed latencies into the ``speed_optimized`` strategy from LiteLLM's success events.

A ``CustomLogger`` reads each successful Router call's model group (a policy model alias) and
its response time from LiteLLM's standard logging payload. Registered once per process by
:func:`install` (LiteLLM de-duplicates callbacks by class, so a second instance would get no
events): the runtime calls it when a policy has a ``speed_optimized`` route.
"""

from __future__ import annotations

from typing import Any

from mm_litellm.integrations._litellm import litellm
from mm_litellm.routing.latency import LATENCY, LatencyTracker

__all__ = ["install", "latency_logger"]

_logger: Any = None


def latency_logger() -> Any:
    """The process's latency recorder, a LiteLLM ``CustomLogger`` feeding ``routing.latency.LATENCY``."""
    global _logger
    if _logger is None:
        from litellm.integrations.custom_logger import CustomLogger

        class MMLatencyRecorder(CustomLogger):
            """Records the response time of every successful call per model group."""

            def __init__(self, tracker: LatencyTracker) -> None:
                super().__init__()
                self._tracker = tracker

            def _record(self, kwargs: dict[str, Any], start: Any, end: Any) -> None:
                payload = kwargs.get("standard_logging_object") or {}
                group = payload.get("model_group")
                if not group:
                    return
                seconds = payload.get("response_time")
                if seconds is None:
                    try:
                        seconds = (end - start).total_seconds()
                    except (TypeError, AttributeError):
                        return
                self._tracker.observe(str(group), float(seconds) * 1000.0)

            def log_success_event(
                self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
            ) -> None:
                self._record(kwargs, start_time, end_time)

            async def async_log_success_event(
                self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
            ) -> None:
                self._record(kwargs, start_time, end_time)

        _logger = MMLatencyRecorder(LATENCY)
    return _logger


def install() -> Any:
    """Register the latency recorder in ``litellm.callbacks`` unless it is already there."""
    lt = litellm()
    recorder = latency_logger()
    if not any(cb is recorder for cb in lt.callbacks):
        lt.logging_callback_manager.add_litellm_callback(recorder)
    return recorder
