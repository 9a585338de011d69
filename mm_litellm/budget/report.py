"""Usage reports from the ledger: totals, cost and tokens by a dimension, budget use, unpriced calls.

The same numbers back ``mm_litellm.usage_report(...)``, ``mm-litellm usage`` and the CSV/JSON
export. Unpriced calls (a model with no known price) are counted and listed separately, and
their cost is never added as zero: a total that includes them says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.engine import Engine

from mm_litellm.budget.windows import utcnow, window_bounds
from mm_litellm.policy.budgets import BudgetSettings
from mm_litellm.storage import ensure_schema

__all__ = ["BY", "BudgetUse", "Group", "UsageReport", "build_report", "ledger_rows", "parse_time"]

BY = ("model", "route", "user", "team", "key", "end_user", "tag", "day", "deployment", "task", "status")
_COLUMNS = {
    "model": "model",
    "route": "route",
    "user": '"user"',
    "team": "team",
    "key": "api_key",
    "end_user": "end_user",
    "deployment": "deployment",
    "task": "task",
    "status": "status",
}
_SPAN = re.compile(r"^(\d+)\s*([mhdw])$")


def parse_time(value: str | datetime | None, now: datetime | None = None) -> datetime | None:
    """``24h``, ``7d``, ``30m``, ``2w`` (that long ago) or an ISO date/time; naive UTC out."""
    if value is None or isinstance(value, datetime):
        return None if value is None else _naive_utc(value)
    now = now or utcnow()
    match = _SPAN.match(value.strip())
    if match:
        n, unit = int(match.group(1)), match.group(2)
        return (
            now
            - {
                "m": timedelta(minutes=n),
                "h": timedelta(hours=n),
                "d": timedelta(days=n),
                "w": timedelta(weeks=n),
            }[unit]
        )
    try:
        return _naive_utc(datetime.fromisoformat(value))
    except ValueError:
        raise ValueError(
            f"'{value}' is not a time: use 30m, 24h, 7d, 2w or an ISO date such as 2026-01-31"
        ) from None


def _naive_utc(value: datetime) -> datetime:
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


@dataclass
class Group:
    """One line of a breakdown (e.g. one model)."""

    key: str
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class BudgetUse:
    """A budget's current window: spent (settled), reserved (in flight), limit, alerts sent."""

    budget: str
    scope: str
    scope_key: str
    window: str
    unit: str
    spent: float
    reserved: float
    limit: float
    resets_at: str
    alerts_sent: list[float]
    on_exceed: str

    @property
    def fraction(self) -> float:
        return self.spent / self.limit if self.limit else 0.0


@dataclass
class UsageReport:
    """What ``usage_report`` returns; ``as_dict()`` is the JSON export."""

    since: datetime | None
    until: datetime | None
    by: str
    totals: Group
    groups: list[Group]
    unpriced: list[Group]
    budgets: list[BudgetUse] = field(default_factory=list)
    avg_latency_ms: float | None = None
    quarantined: int = 0
    """Rows the ledger writer could not write, kept in ``mm_ledger_quarantine`` (all time)."""

    def as_dict(self) -> dict[str, Any]:
        def group(g: Group) -> dict[str, Any]:
            return {**asdict(g), "total_tokens": g.total_tokens}

        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "by": self.by,
            "totals": group(self.totals),
            "avg_latency_ms": self.avg_latency_ms,
            "groups": [group(g) for g in self.groups],
            "unpriced": [group(g) for g in self.unpriced],
            "budgets": [{**asdict(b), "fraction": b.fraction} for b in self.budgets],
            "quarantined": self.quarantined,
        }


def _where(since: datetime | None, until: datetime | None) -> tuple[str, dict[str, Any]]:
    clauses, params = [], {}
    if since is not None:
        clauses.append("ts >= :since")
        params["since"] = since
    if until is not None:
        clauses.append("ts < :until")
        params["until"] = until
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _add(
    g: Group, status: str, prompt: int, completion: int, cost: float | None, priced: bool, n: int = 1
) -> None:
    g.requests += n
    g.errors += n if status != "success" else 0
    g.prompt_tokens += int(prompt or 0)
    g.completion_tokens += int(completion or 0)
    if priced:
        g.cost_usd += float(cost or 0.0)
    else:
        g.unpriced_calls += n


def build_report(
    engine: Engine,
    settings: BudgetSettings | None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    by: str = "model",
) -> UsageReport:
    """Aggregate the ledger between ``since`` and ``until`` (naive UTC), broken down ``by``."""
    if by not in BY:
        raise ValueError(f"cannot group by '{by}'; allowed: {', '.join(BY)}")
    ensure_schema(engine)
    tz = ZoneInfo(settings.timezone if settings else "UTC")
    where, params = _where(since, until)
    totals, groups, unpriced = Group("total"), dict[str, Group](), dict[str, Group]()
    latency_sum, latency_n = 0.0, 0
    with engine.connect() as conn:
        if by in _COLUMNS:
            col = _COLUMNS[by]
            sql = (
                f"SELECT {col}, status, priced, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens),"
                f" SUM(cost_usd), SUM(latency_ms), COUNT(latency_ms) FROM mm_ledger{where}"
                f" GROUP BY {col}, status, priced"
            )
            for key, status, priced, n, p, c, cost, lat, lat_n in conn.execute(text(sql), params):
                _add(
                    groups.setdefault(str(key or "-"), Group(str(key or "-"))),
                    status,
                    p,
                    c,
                    cost,
                    bool(priced),
                    n,
                )
                _add(totals, status, p, c, cost, bool(priced), n)
                latency_sum += float(lat or 0.0)
                latency_n += int(lat_n or 0)
        else:
            sql = (
                f"SELECT ts, tags, status, priced, prompt_tokens, completion_tokens, cost_usd, latency_ms"
                f" FROM mm_ledger{where}"
            )
            for ts, tags, status, priced, p, c, cost, lat in conn.execute(text(sql), params):
                if by == "day":
                    when = ts if isinstance(ts, datetime) else datetime.fromisoformat(str(ts))  # SQLite: text
                    keys = [when.replace(tzinfo=UTC).astimezone(tz).date().isoformat()]
                else:
                    keys = [t for t in (tags or "").split(",") if t] or ["-"]
                for key in keys:
                    _add(groups.setdefault(key, Group(key)), status, p, c, cost, bool(priced))
                _add(totals, status, p, c, cost, bool(priced))
                if lat is not None:
                    latency_sum += float(lat)
                    latency_n += 1
        sql = (
            "SELECT model, status, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens)"
            f" FROM mm_ledger{where}"
            f"{' AND' if where else ' WHERE'} priced = :false GROUP BY model, status"
        )
        for model, status, n, p, c in conn.execute(text(sql), {**params, "false": False}):
            _add(unpriced.setdefault(str(model), Group(str(model))), status, p, c, None, False, n)
        budgets = _budget_use(conn, settings, tz) if settings else []
        quarantined = int(conn.execute(text("SELECT COUNT(*) FROM mm_ledger_quarantine")).scalar() or 0)
    ordered = sorted(groups.values(), key=lambda g: (-g.cost_usd, -g.total_tokens, g.key))
    if by == "day":
        ordered = sorted(groups.values(), key=lambda g: g.key)
    return UsageReport(
        since,
        until,
        by,
        totals,
        ordered,
        sorted(unpriced.values(), key=lambda g: g.key),
        budgets,
        latency_sum / latency_n if latency_n else None,
        quarantined,
    )


def _budget_use(conn: Any, settings: BudgetSettings, tz: ZoneInfo) -> list[BudgetUse]:
    out: list[BudgetUse] = []
    now = utcnow()
    for limit in settings.limits:
        start, end = window_bounds(limit.window, now, tz)
        rows = conn.execute(
            text(
                "SELECT scope_key, spent_usd, spent_tokens, reserved_usd, reserved_tokens"
                " FROM mm_budget_counter"
                " WHERE budget = :b AND window_start = :s ORDER BY scope_key"
            ),
            {"b": limit.name, "s": start},
        ).all()
        if not rows and limit.scope == "global":
            rows = [("*", 0.0, 0, 0.0, 0)]
        for key, su, st, ru, rt in rows:
            alerts = [
                float(r[0])
                for r in conn.execute(
                    text(
                        "SELECT threshold FROM mm_budget_alert"
                        " WHERE budget = :b AND scope_key = :k AND window_start = :s"
                        " ORDER BY threshold"
                    ),
                    {"b": limit.name, "k": key, "s": start},
                )
            ]
            usd = limit.unit == "usd"
            out.append(
                BudgetUse(
                    limit.name,
                    limit.scope,
                    key,
                    limit.window,
                    limit.unit,
                    float(su if usd else st),
                    float(ru if usd else rt),
                    limit.limit,
                    end.replace(tzinfo=UTC).astimezone(tz).isoformat(),
                    alerts,
                    limit.on_exceed,
                )
            )
    return out


EXPORT_COLUMNS = (
    "ts",
    "call_id",
    "status",
    "error_class",
    "route",
    "rule",
    "requested_model",
    "model",
    "deployment",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "priced",
    "cost_source",
    "latency_ms",
    "task",
    "user",
    "team",
    "api_key",
    "end_user",
    "tags",
    "parent_id",
    "escalation_hop",
    "prompt_id",
    "prompt_version",
    "prompt_variant",
)


def ledger_rows(
    engine: Engine, since: datetime | None = None, until: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Every ledger row in the period, oldest first, as plain dicts (for CSV/JSON export)."""
    ensure_schema(engine)
    where, params = _where(since, until)
    with engine.connect() as conn:
        columns = ", ".join('"' + c + '"' for c in EXPORT_COLUMNS)
        result = conn.execute(text(f"SELECT {columns} FROM mm_ledger{where} ORDER BY ts, id"), params)
        for row in result:
            item = dict(zip(EXPORT_COLUMNS, row, strict=True))
            ts = item["ts"]
            item["ts"] = (ts if isinstance(ts, datetime) else datetime.fromisoformat(str(ts))).isoformat()
            item["tags"] = ",".join(t for t in (item["tags"] or "").split(",") if t)
            item["priced"] = bool(item["priced"])
            yield item
