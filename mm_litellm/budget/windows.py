"""Calendar windows in a declared time zone, and which budgets a call falls under.

A daily window starts at local midnight, weekly on Monday, monthly on the 1st, hourly on the
hour; bounds are computed in local time and returned as naive UTC, so a DST change makes a
day 23 or 25 hours long, as a user expects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from mm_litellm.policy.budgets import BudgetLimit

__all__ = ["CallContext", "scope_keys", "utcnow", "window_bounds"]


def utcnow() -> datetime:
    """Now, as the naive UTC datetime the store uses."""
    return datetime.now(UTC).replace(tzinfo=None)


def _floor(local: datetime, window: str) -> datetime:
    if window == "hourly":
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "daily":
        return day
    if window == "weekly":
        return day - timedelta(days=day.weekday())
    if window == "monthly":
        return day.replace(day=1)
    raise ValueError(f"unknown window '{window}'; allowed: hourly, daily, weekly, monthly")


def _next(start: datetime, window: str) -> datetime:
    if window == "hourly":
        return start + timedelta(hours=1)
    if window == "daily":
        return start + timedelta(days=1)
    if window == "weekly":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def window_bounds(window: str, ts: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Start and end (naive UTC) of the ``window`` containing ``ts`` (naive UTC) in zone ``tz``."""
    local = ts.replace(tzinfo=UTC).astimezone(tz)
    start = _floor(local.replace(tzinfo=None), window)
    end = _next(start, window)
    if window == "hourly":  # real hours: a repeated wall-clock hour at DST's end is two windows
        start_aware = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC).replace(tzinfo=None)
        return start_aware, start_aware + timedelta(hours=1)

    def to_utc(naive_local: datetime) -> datetime:
        return naive_local.replace(tzinfo=tz).astimezone(UTC).replace(tzinfo=None)

    return to_utc(start), to_utc(end)


@dataclass(frozen=True)
class CallContext:
    """What budgets and the ledger know about a call: who made it and what it ran on."""

    model: str | None = None
    route: str | None = None
    user: str | None = None
    team: str | None = None
    key: str | None = None
    tags: tuple[str, ...] = field(default=())
    end_user: str | None = None
    """The body's ``user`` under an authenticated key; its budget scope is ``<key>/<end user>``."""

    def values(self, scope: str) -> tuple[str, ...]:
        """The scope values of this call for ``scope`` (several for tags, none if unknown)."""
        if scope == "global":
            return ("*",)
        if scope == "tag":
            return self.tags
        if scope == "end_user":  # namespaced by the key: one key's end users never reach another's
            return (f"{self.key}/{self.end_user}",) if self.key and self.end_user else ()
        value = {
            "user": self.user,
            "team": self.team,
            "key": self.key,
            "model": self.model,
            "route": self.route,
        }[scope]
        return (value,) if value else ()


def scope_keys(limit: BudgetLimit, ctx: CallContext) -> tuple[str, ...]:
    """The counter keys of ``limit`` this call counts against (empty: the budget does not apply)."""
    values = ctx.values(limit.scope)
    if limit.match:
        values = tuple(v for v in values if v in limit.match)
    return values
