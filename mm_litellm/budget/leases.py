"""Per-process leases: budget held in the store in advance, so most calls need no round trip.

Far from a limit, a reservation in the store holds a few calls' worth more than the call
needs (the store decides how much: see ``BudgetStore.reserve_leased``); the following calls
of this process are admitted against that remainder in memory. Every admitted call still
has its share recorded here, and its settlement gives exactly that share back in the store,
so the store's ``reserved`` always covers every call in flight (also after a crash, until
the hold expires). Near a limit the store grants no lease and every call is checked there.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from mm_litellm.budget.store import Charge, CounterKey, Release

__all__ = ["LeaseBook"]


@dataclass
class _Lease:
    rid: str
    usd: float
    tokens: int
    until: float


class LeaseBook:
    """Leases by counter, and each admitted call's shares of the store's holds."""

    def __init__(self, max_age_s: float) -> None:
        self.max_age = max_age_s
        self._leases: dict[CounterKey, _Lease] = {}
        self._shares: dict[str, list[Release]] = {}
        self._lock = threading.Lock()

    def take(self, rid: str, charges: list[Charge]) -> bool:
        """Admit call ``rid`` from leases alone if every counter has enough left; else False."""
        now = time.monotonic()
        with self._lock:
            leases = []
            for charge in charges:
                lease = self._leases.get(charge.key)
                if (
                    lease is None
                    or lease.until < now
                    or lease.usd < charge.usd - 1e-15
                    or lease.tokens < charge.tokens
                ):
                    return False
                leases.append(lease)
            shares = []
            for charge, lease in zip(charges, leases, strict=True):
                lease.usd -= charge.usd
                lease.tokens -= charge.tokens
                shares.append(Release(lease.rid, charge.key, charge.usd, charge.tokens))
            self._shares[rid] = shares
        return True

    def surrender(self, keys: list[CounterKey]) -> list[Release]:
        """Stop using the leases on ``keys``; their remainders, to give back in the store."""
        with self._lock:
            out = []
            for key in keys:
                lease = self._leases.pop(key, None)
                if lease is not None and (lease.usd > 0 or lease.tokens > 0):
                    out.append(Release(lease.rid, key, lease.usd, lease.tokens))
            return out

    def surrender_all(self) -> list[Release]:
        with self._lock:
            keys = list(self._leases)
        return self.surrender(keys)

    def granted(self, rid: str, charges: list[Charge], grants: dict[CounterKey, float]) -> list[Release]:
        """Record call ``rid``'s own shares of its new hold, and the leases it came with.

        Returns the remainders of leases the new ones displace (another thread renewed the same
        counter meanwhile), to give back in the store.
        """
        until = time.monotonic() + self.max_age
        displaced: list[Release] = []
        with self._lock:
            self._shares[rid] = [Release(rid, c.key, c.usd, c.tokens) for c in charges]
            for charge in charges:
                extra = grants.get(charge.key, 0.0)
                if extra > 0:
                    held_usd = charge.usd * (1.0 + extra)
                    held_tokens = round(charge.tokens * (1.0 + extra))
                    old = self._leases.get(charge.key)
                    if old is not None and (old.usd > 0 or old.tokens > 0):
                        displaced.append(Release(old.rid, charge.key, old.usd, old.tokens))
                    self._leases[charge.key] = _Lease(
                        rid, held_usd - charge.usd, held_tokens - charge.tokens, until
                    )
        return displaced

    def shares(self, rid: str) -> list[Release] | None:
        """Call ``rid``'s shares of the store's holds, or ``None`` if unknown or already given back."""
        with self._lock:
            return self._shares.get(rid)

    def forget(self, rids: list[str]) -> None:
        """The shares of ``rids`` were given back in the store."""
        with self._lock:
            for rid in rids:
                self._shares.pop(rid, None)
