"""The budget store: atomic reservations, and settling batches of ledger rows, in SQL.

Every write runs in one transaction holding the write lock on the counters it touches:
SQLite takes the database write lock at ``BEGIN IMMEDIATE``; PostgreSQL locks the
per-(budget, scope value, window) counter rows with ``SELECT ... FOR UPDATE``, always in
counter-id order so that two writers never deadlock. Several processes sharing one database
therefore enforce one budget together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection, Engine

from mm_litellm.budget.models import LedgerRow
from mm_litellm.budget.windows import utcnow
from mm_litellm.policy.budgets import BudgetLimit
from mm_litellm.storage import ensure_schema, write_transaction

__all__ = ["Alert", "Charge", "CounterKey", "Denial", "Spend", "BudgetStore"]

EPS = 1e-12
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
            "budget": self.budget, "scope": self.scope, "scope_key": self.scope_key,
            "window_start": self.window_start.isoformat(), "resets_at": self.window_end.isoformat(),
            "threshold": self.threshold, "spent": self.spent, "limit": self.limit, "unit": self.unit,
        }


_COUNTER_INSERT = text(
    "INSERT INTO mm_budget_counter (budget, scope_key, window_start, window_end, spent_usd, spent_tokens,"
    " reserved_usd, reserved_tokens, unpriced_calls) VALUES (:b, :k, :s, :e, 0, 0, 0, 0, 0)"
    " ON CONFLICT (budget, scope_key, window_start) DO NOTHING"
)
_COUNTER_ID = text("SELECT id FROM mm_budget_counter WHERE budget = :b AND scope_key = :k AND window_start = :s")
_RESERVE = text(
    "UPDATE mm_budget_counter SET reserved_usd = reserved_usd + :u, reserved_tokens = reserved_tokens + :t"
    " WHERE id = :id"
)
_RES_INSERT = text(
    "INSERT INTO mm_budget_reservation (id, counter_id, amount_usd, amount_tokens, created_at, expires_at)"
    " VALUES (:r, :c, :u, :t, :now, :exp)"
)
_SETTLE = text(
    "UPDATE mm_budget_counter SET spent_usd = spent_usd + :su, spent_tokens = spent_tokens + :st,"
    " unpriced_calls = unpriced_calls + :un, reserved_usd = reserved_usd - :ru,"
    " reserved_tokens = reserved_tokens - :rt WHERE id = :id"
)


class BudgetStore:
    """Reservations and settlement over one database (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, ttl_s: float = 600.0) -> None:
        self.engine = engine
        self.ttl = timedelta(seconds=ttl_s)
        self._pg = engine.dialect.name == "postgresql"
        ensure_schema(engine)

    # -- reservations -------------------------------------------------------------------------
    def reserve(self, reservation_id: str, charges: Sequence[Charge]) -> Denial | None:
        """Hold every charge atomically, or none and return the first :class:`Denial`."""
        if not charges:
            return None
        now = utcnow()
        with write_transaction(self.engine) as conn, conn.begin() as tx:
            ids = self._counter_ids(conn, [c.key for c in charges])
            rows = self._lock(conn, sorted(set(ids.values())))
            for charge in sorted(charges, key=lambda c: ids[c.key]):
                cid = ids[charge.key]
                if charge.enforce:
                    amount = charge.usd if charge.limit.unit == "usd" else charge.tokens
                    used = self._used(rows[cid], charge.limit)
                    if used + amount > charge.limit.limit + EPS:
                        rows[cid] = self._expire(conn, cid, now)  # only near the limit: free crashed holds
                        used = self._used(rows[cid], charge.limit)
                        if used + amount > charge.limit.limit + EPS:
                            tx.rollback()
                            return Denial(charge.limit, charge.key, used, float(amount))
                conn.execute(_RESERVE, {"u": charge.usd, "t": charge.tokens, "id": cid})
                conn.execute(_RES_INSERT, {
                    "r": reservation_id, "c": cid, "u": charge.usd, "t": charge.tokens,
                    "now": now, "exp": now + self.ttl,
                })
        return None

    def release(self, reservation_ids: Iterable[str]) -> None:
        """Drop reservations whose call ended without a ledger row (an exception before the call)."""
        self.settle([], list(reservation_ids), lambda _row: [], {})

    def expire(self) -> int:
        """Release every reservation past its expiry (crashed processes); returns how many."""
        now = utcnow()
        with write_transaction(self.engine) as conn, conn.begin():
            ids = [r[0] for r in conn.execute(
                text("SELECT DISTINCT counter_id FROM mm_budget_reservation WHERE expires_at < :now"), {"now": now})]
            self._lock(conn, sorted(ids))
            count = 0
            for cid in sorted(ids):
                before = conn.execute(
                    text("SELECT COUNT(*) FROM mm_budget_reservation WHERE counter_id = :c AND expires_at < :now"),
                    {"c": cid, "now": now}).scalar()
                self._expire(conn, cid, now)
                count += int(before or 0)
            return count

    # -- settlement ---------------------------------------------------------------------------
    def settle(
        self,
        rows: Sequence[Mapping[str, Any]],
        releases: Sequence[str],
        charges_of: Callable[[Mapping[str, Any]], list[tuple[BudgetLimit, CounterKey]]],
        limits: Mapping[str, BudgetLimit],
    ) -> tuple[int, list[Alert]]:
        """Insert ledger rows (duplicates ignored), add their spend, release reservations.

        Returns how many rows were new and the threshold alerts this batch claimed.
        """
        spends: dict[CounterKey, list[float]] = {}
        with write_transaction(self.engine) as conn, conn.begin():
            inserted = self._insert_rows(conn, rows)
            new = len(inserted)
            for row in rows:
                if row["call_id"] not in inserted:
                    continue
                inserted.discard(row["call_id"])  # a call id twice in one batch counts once
                usd = row["cost_usd"] or 0.0
                tokens = int(row["prompt_tokens"] or 0) + int(row["completion_tokens"] or 0)
                for _limit, key in charges_of(row):
                    acc = spends.setdefault(key, [0.0, 0, 0])
                    acc[0] += usd
                    acc[1] += tokens
                    acc[2] += 0 if row["priced"] else 1
            freed: dict[int, list[float]] = {}
            if releases:
                for cid, u, t in conn.execute(
                    text("SELECT counter_id, amount_usd, amount_tokens FROM mm_budget_reservation WHERE id IN :ids")
                    .bindparams(bindparam("ids", expanding=True)), {"ids": list(releases)}):
                    acc = freed.setdefault(cid, [0.0, 0])
                    acc[0] += u
                    acc[1] += t
                conn.execute(text("DELETE FROM mm_budget_reservation WHERE id IN :ids")
                             .bindparams(bindparam("ids", expanding=True)), {"ids": list(releases)})
            ids = self._counter_ids(conn, list(spends)) if spends else {}
            by_id: dict[int, tuple[list[float], list[float]]] = {}
            for key, acc in spends.items():
                spent_acc = by_id.setdefault(ids[key], ([0.0, 0, 0], [0.0, 0]))[0]
                for i in range(3):
                    spent_acc[i] += acc[i]
            for cid, acc in freed.items():
                held_acc = by_id.setdefault(cid, ([0.0, 0, 0], [0.0, 0]))[1]
                held_acc[0] += acc[0]
                held_acc[1] += acc[1]
            for cid in sorted(by_id):  # counter-id order, like reserve: no deadlock between writers
                spent, held = by_id[cid]
                conn.execute(_SETTLE, {"su": spent[0], "st": int(spent[1]), "un": int(spent[2]),
                                       "ru": held[0], "rt": int(held[1]), "id": cid})
            alerts = self._claim_alerts(conn, {k: ids[k] for k in spends}, limits) if spends else []
        return new, alerts

    # -- helpers ------------------------------------------------------------------------------
    def _insert_rows(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
        if not rows:
            return set()
        if self._pg:
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        table = LedgerRow.__table__  # type: ignore[attr-defined]
        columns = {c.name for c in table.columns} - {"id"}
        params = [{k: v for k, v in row.items() if k in columns} for row in rows]
        stmt = insert(table).on_conflict_do_nothing(index_elements=["call_id"]).returning(table.c.call_id)
        return {r[0] for r in conn.execute(stmt, params)}

    def _counter_ids(self, conn: Connection, keys: Sequence[CounterKey]) -> dict[CounterKey, int]:
        ids: dict[CounterKey, int] = {}
        for key in dict.fromkeys(keys):
            b, k, s, e = key
            found = conn.execute(_COUNTER_ID, {"b": b, "k": k, "s": s}).scalar()
            if found is None:
                conn.execute(_COUNTER_INSERT, {"b": b, "k": k, "s": s, "e": e})
                found = conn.execute(_COUNTER_ID, {"b": b, "k": k, "s": s}).scalar()
            ids[key] = int(found)
        return ids

    def _lock(self, conn: Connection, ids: Sequence[int]) -> dict[int, tuple[float, int, float, int]]:
        sql = ("SELECT id, spent_usd, spent_tokens, reserved_usd, reserved_tokens FROM mm_budget_counter"
               " WHERE id IN :ids ORDER BY id" + (" FOR UPDATE" if self._pg else ""))
        stmt = text(sql).bindparams(bindparam("ids", expanding=True))
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in conn.execute(stmt, {"ids": list(ids)})} if ids else {}

    @staticmethod
    def _used(row: tuple[float, int, float, int], limit: BudgetLimit) -> float:
        return float(row[0] + row[2]) if limit.unit == "usd" else float(row[1] + row[3])

    def _expire(self, conn: Connection, cid: int, now: datetime) -> tuple[float, int, float, int]:
        stale = conn.execute(
            text("SELECT COALESCE(SUM(amount_usd), 0), COALESCE(SUM(amount_tokens), 0) FROM mm_budget_reservation"
                 " WHERE counter_id = :c AND expires_at < :now"), {"c": cid, "now": now}).one()
        if stale[0] or stale[1]:
            conn.execute(text("DELETE FROM mm_budget_reservation WHERE counter_id = :c AND expires_at < :now"),
                         {"c": cid, "now": now})
            conn.execute(_SETTLE, {"su": 0.0, "st": 0, "un": 0, "ru": stale[0], "rt": int(stale[1]), "id": cid})
        return self._lock(conn, [cid])[cid]

    def _claim_alerts(
        self, conn: Connection, ids: Mapping[CounterKey, int], limits: Mapping[str, BudgetLimit],
    ) -> list[Alert]:
        alerts: list[Alert] = []
        rows = self._lock(conn, sorted(set(ids.values())))
        now = utcnow()
        for key, cid in ids.items():
            limit = limits.get(key[0])
            if limit is None or not limit.alert_at:
                continue
            spent = float(rows[cid][0] if limit.unit == "usd" else rows[cid][1])
            for threshold in limit.alert_at:
                if spent + EPS < threshold * limit.limit:
                    break
                claimed = conn.execute(
                    text("INSERT INTO mm_budget_alert (budget, scope_key, window_start, threshold, spent, \"limit\", ts)"
                         " VALUES (:b, :k, :s, :th, :sp, :li, :ts)"
                         " ON CONFLICT (budget, scope_key, window_start, threshold) DO NOTHING RETURNING id"),
                    {"b": key[0], "k": key[1], "s": key[2], "th": threshold, "sp": spent, "li": limit.limit, "ts": now},
                ).first()
                if claimed is not None:
                    alerts.append(Alert(key[0], limit.scope, key[1], key[2], key[3], threshold, spent,
                                        limit.limit, limit.unit))
        return alerts
