"""Slow down a client address that keeps failing authentication: one small token bucket per address.

Each failed authentication takes a token; a bucket refills at ``rate`` tokens a second up to
``burst``. While an address has no token left, its requests with a key the proxy has not
already verified are refused with 429 before any hashing. Keys already verified (and the
master key) are never slowed, so a user sharing an address with a guesser keeps working.
The custom auth also keeps one bucket (``scrypt``) for failed scrypt checks from any address,
so guessers spread over many addresses still cannot make the proxy run more than ``rate``
failing scrypt checks a second (while it is empty, a scrypt key not yet verified by this
process is answered 429 too; keys minted by ``mm-litellm keys new`` use SHA-256 and are never
affected). The table is bounded: the least recently failing entries are forgotten first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["FailureThrottle"]


class FailureThrottle:
    """Per-address token bucket of authentication failures."""

    def __init__(
        self,
        *,
        burst: float = 10.0,
        rate: float = 2.0,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or rate <= 0 or max_addresses < 1:
            raise ValueError("burst must be >= 1, rate > 0 and max_addresses >= 1")
        self.burst = burst
        self.rate = rate
        self.max_addresses = max_addresses
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address -> (tokens, at)
        self._lock = threading.Lock()

    def _tokens(self, address: str, now: float) -> float:
        tokens, at = self._buckets.get(address, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate)

    def retry_after(self, address: str) -> float:
        """Seconds until ``address`` may try again (0: it may try now)."""
        with self._lock:
            if address not in self._buckets:
                return 0.0
            tokens = self._tokens(address, self._clock())
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def take(self, key: str, cost: float) -> float:
        """Reserve ``cost`` checks for ``key`` before doing them: 0 when reserved (the bucket may go
        into debt down to ``-cost``), else the seconds to wait. Reserving first means concurrent
        requests cannot all pass an empty-looking check at once. :meth:`refund` on success."""
        with self._lock:
            now = self._clock()
            tokens = self._tokens(key, now)
            if tokens < 1:
                return (1 - tokens) / self.rate
            self._buckets[key] = (max(-cost, tokens - cost), now)
            self._buckets.move_to_end(key)
            self._forget_oldest()
            return 0.0

    def refund(self, key: str, cost: float) -> None:
        """Give back checks reserved by :meth:`take` that turned out to be a success."""
        with self._lock:
            now = self._clock()
            if key in self._buckets:
                self._buckets[key] = (min(self.burst, self._tokens(key, now) + cost), now)

    def _forget_oldest(self) -> None:
        while len(self._buckets) > self.max_addresses:
            self._buckets.popitem(last=False)

    def failed(self, address: str, cost: float = 1.0) -> None:
        """Record a failed authentication from ``address`` that cost ``cost`` checks.

        A bucket may go into debt (down to ``-cost``): one costly failure is paid back before
        the next attempt, so the sustained rate of checks stays at ``rate`` whatever each costs.
        """
        with self._lock:
            now = self._clock()
            self._buckets[address] = (max(-cost, self._tokens(address, now) - cost), now)
            self._buckets.move_to_end(address)
            self._forget_oldest()
