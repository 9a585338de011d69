"""What the budget store takes and returns: charges, releases, spends, denials and alerts.

Plain frozen values, so the service, the lease cache and the alert sender share them without
importing the SQL that the store runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mm_litellm.policy.budgets import BudgetLimit

__all__ = ["Alert", "Charge", "CounterKey", "Denial", "Release", "Spend", "merge_releases"]

CounterKey = tuple[str, str, datetime, datetime]
"""(budget name, scope value, window start, window end), times naive UTC."""


@dataclass(frozen=True)
class Charge:
    """One counter a call is estimated to spend on: ``usd`` and ``tokens`` held until settled."""

    limit: BudgetLimit
    key: CounterKey
    usd: float
    tokens: int
    enforce: bool = True


@dataclass(frozen=True)
class Release:
    """Give back part of a hold: ``usd``/``tokens`` of reservation ``rid`` on counter ``key``."""

    rid: str
    key: CounterKey
    usd: float
    tokens: int


@dataclass(frozen=True)
class Spend:
    """What settled calls add to one counter."""

    usd: float = 0.0
    tokens: int = 0
    unpriced: int = 0


@dataclass(frozen=True)
class Denial:
    """Why a reservation was refused: the first budget that had no room."""

    limit: BudgetLimit
    key: CounterKey
    used: float
    estimate: float


@dataclass(frozen=True)
class Alert:
    """A threshold crossed for the first time in a window (claimed in the store, so sent once)."""

    budget: str
    scope: str
    scope_key: str
    window_start: datetime
    window_end: datetime
    threshold: float
    spent: float
    limit: float
    unit: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "scope": self.scope,
            "scope_key": self.scope_key,
            "window_start": self.window_start.isoformat(),
            "resets_at": self.window_end.isoformat(),
            "threshold": self.threshold,
            "spent": self.spent,
            "limit": self.limit,
            "unit": self.unit,
        }


def merge_releases(partial: Sequence[Release]) -> list[Release]:
    """One give-back per (hold, counter): every call admitted from one lease gives its share of
    the same hold back, so a batch has many shares of few holds; summed, they are one statement
    each instead of one per call (the same amounts in the end)."""
    merged: dict[tuple[str, CounterKey], list[float]] = {}
    for back in partial:
        acc = merged.get((back.rid, back.key))
        if acc is None:
            merged[(back.rid, back.key)] = [back.usd, back.tokens]
        else:
            acc[0] += back.usd
            acc[1] += back.tokens
    return [Release(rid, key, usd, int(tokens)) for (rid, key), (usd, tokens) in merged.items()]
