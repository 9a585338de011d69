"""Slow down a client address that keeps failing authentication: one small token bucket per address.

Each failed authentication takes a token; a bucket refills at ``rate`` tokens a second up to
``burst``. While an address has no token left, its requests with a key the proxy has not
already verified are refused with 429 before any hashing. Keys already verified (and the
master key) are never slowed, so a user sharing an address with a guesser keeps working.
The custom auth also keeps a bucket per key id (``key:<id>``) and one for tokens without an id
(``key:*``) in front of scrypt checks, so guessers spread over many addresses still cannot make
the proxy run more than ``rate`` scrypt checks a second per key. The table is bounded: the least
recently failing entries are forgotten first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["FailureThrottle"]


class FailureThrottle:
    """Per-address token bucket of authentication failures."""

    def __init__(self, *, burst: float = 10.0, rate: float = 2.0, max_addresses: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
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

    def failed(self, address: str) -> None:
        """Record one failed authentication from ``address``."""
        with self._lock:
            now = self._clock()
            self._buckets[address] = (max(0.0, self._tokens(address, now) - 1), now)
            self._buckets.move_to_end(address)
            while len(self._buckets) > self.max_addresses:
                self._buckets.popitem(last=False)
