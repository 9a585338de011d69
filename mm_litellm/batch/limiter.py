"""A batch-wide request and token pacer (rpm / tpm) for :func:`mm_litellm.batch.abatch`.

Why our own: LiteLLM's rate limits *reject* instead of waiting. A deployment's ``rpm``/``tpm``
in the policy go to the Router (its pre-call check and usage-based routing raise
``RateLimitError`` once a deployment is over its limit, and the proxy's limiter answers 429);
that is right for a server, but a batch should slow down rather than fail. This pacer spaces
the *starts* of the batch's calls so that, over any window of T seconds, at most
``1 + rpm * T / 60`` requests and ``tokens of one request + tpm * T / 60`` tokens start
(GCRA-style spacing, no burst allowance). Callers queue on one FIFO lock, so concurrent workers
never race and start in arrival order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """Paces call starts to at most ``rpm`` requests and ``tpm`` tokens per minute."""

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value}")
        self.rpm = rpm
        self.tpm = tpm
        self._clock = clock
        self._sleep = sleep
        self._next_request = float("-inf")
        self._next_token = float("-inf")
        self._turn = asyncio.Lock()  # FIFO: waiters start in arrival order, one slot at a time

    @property
    def active(self) -> bool:
        return self.rpm is not None or self.tpm is not None

    async def acquire(self, tokens: int = 0) -> None:
        """Wait for this call's start slot (returns at once when no limit is set).

        The next slot is counted from the moment this one is *granted*, not from when it was
        planned: if the event loop was busy and the wait overran, later calls still keep their
        spacing instead of starting in a bunch.
        """
        if not self.active:
            return
        async with self._turn:
            delay = max(self._next_request, self._next_token) - self._clock()
            if delay > 0:
                await self._sleep(delay)
            granted = self._clock()
            if self.rpm is not None:
                self._next_request = granted + 60.0 / self.rpm
            if self.tpm is not None:
                self._next_token = granted + max(tokens, 0) * 60.0 / self.tpm

    def settle(self, token_delta: int) -> None:
        """Correct the token budget once a call's real usage is known (``actual - estimated``)."""
        if self.tpm is not None:  # a slot left in the past grants no burst: acquire() starts at now
            self._next_token += token_delta * 60.0 / self.tpm
