"""Observed latency per policy model, as an exponentially weighted moving average.

Each runtime keeps one, fed by LiteLLM's success events of its calls; read by the
``speed_optimized`` strategy, which falls back to a model's ``latency_ms`` hint until a
latency has been observed.
"""

from __future__ import annotations

import threading

__all__ = ["LATENCY", "LatencyTracker"]


class LatencyTracker:
    """EWMA of call latencies in milliseconds, per model name."""

    def __init__(self, alpha: float = 0.2) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self._ewma: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def observe(self, model: str, latency_ms: float) -> None:
        """Record one successful call of ``model`` that took ``latency_ms``."""
        if latency_ms < 0:
            return
        with self._lock:
            previous = self._ewma.get(model)
            self._ewma[model] = (
                latency_ms if previous is None else previous + self.alpha * (latency_ms - previous)
            )
            self._counts[model] = self._counts.get(model, 0) + 1

    def get(self, model: str) -> float | None:
        """The smoothed latency of ``model`` in ms, or ``None`` if never observed."""
        return self._ewma.get(model)

    def count(self, model: str) -> int:
        """How many calls of ``model`` were observed."""
        return self._counts.get(model, 0)

    def reset(self) -> None:
        """Forget every observation."""
        with self._lock:
            self._ewma.clear()
            self._counts.clear()


LATENCY = LatencyTracker()
"""The process-wide tracker the Router's success events feed."""
