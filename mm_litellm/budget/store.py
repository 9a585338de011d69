"""The budget store: atomic reservations, and settling batches of ledger rows, in SQL.

Every write runs in one transaction holding the write lock on the counters it touches:
SQLite takes the database write lock at ``BEGIN IMMEDIATE``; PostgreSQL locks the
per-(budget, scope value, window) counter rows with ``SELECT ... FOR UPDATE``, always in
counter-id order so that two writers never deadlock. Several processes sharing one database
therefore enforce one budget together.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from mm_litellm.budget.attempts import record_attempt
from mm_litellm.budget.dbapi import (
    COUNTER_ID,
    COUNTER_INSERT,
    GIVE_BACK,
    RES_DELETE,
    RES_INSERT,
    RESERVE,
    SETTLE,
)
from mm_litellm.budget.dbapi import Cursor as _Cursor
from mm_litellm.budget.models import LedgerRow
from mm_litellm.budget.quarantine import quarantine_row
from mm_litellm.budget.records import Alert, Charge, CounterKey, Denial, Release, Spend
from mm_litellm.budget.records import merge_releases as _merge
from mm_litellm.budget.windows import utcnow
from mm_litellm.policy.budgets import BudgetLimit
from mm_litellm.storage import ensure_schema, write_transaction

__all__ = ["LEASE_HEADROOM", "Alert", "BudgetStore", "Charge", "CounterKey", "Denial", "Release", "Spend"]

log = structlog.get_logger("mm_litellm.budget")

EPS = 1e-12
LEASE_HEADROOM = 50
SWEEP_EVERY_S = 60.0
"""A process may hold a lease on a counter only while the counter has room for this many calls."""


class BudgetStore:
    """Reservations and settlement over one database (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, ttl_s: float = 600.0) -> None:
        self.engine = engine
        self.ttl = timedelta(seconds=ttl_s)
        self._pg = engine.dialect.name == "postgresql"
        self._ids: dict[CounterKey, int] = {}
        """Counter ids already committed (a counter row is never deleted or renumbered)."""
        ensure_schema(engine)
        self._next_sweep = 0.0
        self.sweep()

    def sweep(self) -> None:
        """:meth:`expire`, at most once per :data:`SWEEP_EVERY_S` (at open, then after settling), so
        the holds of a dead process are charged even when no call comes near a limit."""
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_EVERY_S
        try:
            self.expire()
        except Exception as exc:  # the next sweep (or reservation near a limit) tries again
            log.warning("budget.expire_failed", error=str(exc)[:300])

    # -- reservations -------------------------------------------------------------------------
    def reserve(self, reservation_id: str, charges: Sequence[Charge]) -> Denial | None:
        """Hold every charge atomically, or none and return the first :class:`Denial`."""
        return self.reserve_leased(reservation_id, charges)[0]

    def reserve_leased(
        self,
        reservation_id: str,
        charges: Sequence[Charge],
        lease: int = 0,
        returns: Sequence[Release] = (),
    ) -> tuple[Denial | None, dict[CounterKey, float]]:
        """See :meth:`_reserve_once`. A deadlock PostgreSQL resolved by aborting this transaction
        is retried; any other driver error is raised as SQLAlchemy's ``DBAPIError``."""
        dbapi = self.engine.dialect.loaded_dbapi
        for attempt in range(3):
            try:
                return self._reserve_once(reservation_id, charges, lease, returns)
            except dbapi.Error as exc:
                if attempt < 2 and getattr(exc, "sqlstate", None) in ("40P01", "40001"):
                    continue
                raise DBAPIError.instance("reserve", None, exc, dbapi.Error) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _reserve_once(
        self,
        reservation_id: str,
        charges: Sequence[Charge],
        lease: int = 0,
        returns: Sequence[Release] = (),
    ) -> tuple[Denial | None, dict[CounterKey, float]]:
        """Like :meth:`reserve`, first giving back ``returns`` (unused lease remainders), and
        holding up to ``lease`` more calls' worth on each counter that is far from its limit.

        Returns the denial (or ``None``) and, per counter, the extra factor granted: a grant of
        ``f`` holds ``(1 + f)`` times the charge. Leases are granted only while the counter's
        room after this call is at least :data:`LEASE_HEADROOM` calls, and never more than a
        quarter of that room, so near a limit every call is checked exactly.

        The hot path of every budgeted call, so it talks to the driver directly (a handful of
        statements in one transaction) and remembers counter ids once they are committed.
        """
        grants: dict[CounterKey, float] = {}
        if not charges:
            return None, grants
        now = utcnow()
        raw = self.engine.raw_connection()
        try:
            cur = _Cursor(raw, self._pg)
            cur.begin()
            ids, created = self._raw_counter_ids(cur, [c.key for c in charges] + [r.key for r in returns])
            rows = cur.lock(sorted(set(ids.values())))
            for back in returns:
                cid = ids[back.key]
                freed = cur.give_back(back, cid)
                if freed is not None:
                    cur.run(
                        SETTLE.text,
                        {"su": 0.0, "st": 0, "un": 0, "ru": freed[0], "rt": int(freed[1]), "id": cid},
                    )
                else:  # the hold expired meanwhile and was charged: this unused part is refunded
                    cur.refund_expired(back, cid)
            if returns:
                rows = cur.lock(sorted(set(ids.values())))
            ordered = sorted(charges, key=lambda c: ids[c.key])
            for charge in ordered:
                if not charge.enforce:
                    continue
                cid = ids[charge.key]
                amount = charge.usd if charge.limit.unit == "usd" else charge.tokens
                if self._used(rows[cid], charge.limit) + amount > charge.limit.limit + EPS:
                    rows[cid] = cur.expire(cid, now)  # only near the limit: free holds a crash left
                    used = self._used(rows[cid], charge.limit)
                    if used + amount > charge.limit.limit + EPS:
                        cur.rollback()
                        return Denial(charge.limit, charge.key, used, float(amount)), {}
                if lease > 0:
                    room = charge.limit.limit - self._used(rows[cid], charge.limit) - amount
                    if amount > 0 and room >= LEASE_HEADROOM * amount:
                        grants[charge.key] = min(float(lease), room / 4 / amount)
            held = [(c, 1.0 + grants.get(c.key, 0.0)) for c in ordered]
            cur.many(
                RESERVE.text, [{"u": c.usd * f, "t": round(c.tokens * f), "id": ids[c.key]} for c, f in held]
            )
            cur.many(
                RES_INSERT.text,
                [
                    {
                        "r": reservation_id,
                        "c": ids[c.key],
                        "u": c.usd * f,
                        "t": round(c.tokens * f),
                        "now": now,
                        "exp": now + self.ttl,
                    }
                    for c, f in held
                ],
            )
            cur.commit()
            self._ids.update(created)
        except BaseException:
            with contextlib.suppress(Exception):
                raw.rollback()
            raise
        finally:
            raw.close()
        return None, grants

    def _raw_counter_ids(
        self, cur: _Cursor, keys: Sequence[CounterKey]
    ) -> tuple[dict[CounterKey, int], dict[CounterKey, int]]:
        ids: dict[CounterKey, int] = {}
        created: dict[CounterKey, int] = {}
        for key in dict.fromkeys(keys):
            cid = self._ids.get(key)
            if cid is None:
                b, k, start, end = key
                params = {"b": b, "k": k, "s": start, "e": end}
                found = cur.one(COUNTER_ID.text, params)
                if found is None:
                    cur.run(COUNTER_INSERT.text, params)
                    found = cur.one(COUNTER_ID.text, params)
                cid = created[key] = int(found[0])
            ids[key] = cid
        return ids, created

    def release(self, reservation_ids: Iterable[str]) -> None:
        """Drop reservations whose call ended without a ledger row (an exception before the call)."""
        self.settle([], list(reservation_ids), lambda _row: [], {})

    def expire(self) -> int:
        """Charge every hold past its expiry at its estimate; returns how many holds.

        A hold outlives its TTL when its process died (or a call ran longer than the TTL): the
        call may have been served and paid for, so its estimate moves from reserved to spent and
        a ledger row ``expired:<reservation id>`` (``cost_source = expired-hold``) records it.
        A row of that call arriving later (a slow process, not a dead one) gives its share back:
        the estimate is refunded and the real cost charged instead (see ``refund_expired``).
        """
        now = utcnow()
        with write_transaction(self.engine) as conn, conn.begin():
            ids = [
                r[0]
                for r in conn.execute(
                    text("SELECT DISTINCT counter_id FROM mm_budget_reservation WHERE expires_at < :now"),
                    {"now": now},
                )
            ]
            self._lock(conn, sorted(ids))
            count = 0
            for cid in sorted(ids):
                before = conn.execute(
                    text(
                        "SELECT COUNT(*) FROM mm_budget_reservation"
                        " WHERE counter_id = :c AND expires_at < :now"
                    ),
                    {"c": cid, "now": now},
                ).scalar()
                self._expire(conn, cid, now)
                count += int(before or 0)
            return count

    def quarantine(self, row: Mapping[str, Any], error: str) -> None:
        """Keep a row the ledger cannot take in ``mm_ledger_quarantine`` (see ``budget.quarantine``)."""
        quarantine_row(self.engine, row, error)

    # -- settlement ---------------------------------------------------------------------------
    def settle(
        self,
        rows: Sequence[Mapping[str, Any]],
        releases: Sequence[str],
        charges_of: Callable[[Mapping[str, Any]], Sequence[tuple[BudgetLimit, CounterKey]]],
        limits: Mapping[str, BudgetLimit],
        partial: Sequence[Release] = (),
    ) -> tuple[int, list[Alert]]:
        """Insert ledger rows (duplicates ignored), add their spend, release reservations
        (whole ones by id, and ``partial`` shares of leases).

        Returns how many rows were new and the threshold alerts this batch claimed.
        """
        spends: dict[CounterKey, list[float]] = {}
        with write_transaction(self.engine) as conn, conn.begin():
            inserted = self._insert_rows(conn, rows)
            new = 0
            for row in rows:
                if row["call_id"] in inserted:
                    inserted.discard(row["call_id"])  # the first row of this id in the batch went in
                elif not self._record_attempt(conn, row):
                    continue  # a duplicate event: nothing inserted, no spend
                new += 1
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
                    text(
                        "SELECT counter_id, amount_usd, amount_tokens FROM mm_budget_reservation"
                        " WHERE id IN :ids"
                    ).bindparams(bindparam("ids", expanding=True)),
                    {"ids": list(releases)},
                ):
                    acc = freed.setdefault(cid, [0.0, 0])
                    acc[0] += u
                    acc[1] += t
                conn.execute(
                    text("DELETE FROM mm_budget_reservation WHERE id IN :ids").bindparams(
                        bindparam("ids", expanding=True)
                    ),
                    {"ids": list(releases)},
                )
            ids = (
                self._counter_ids(conn, list(spends) + [p.key for p in partial]) if spends or partial else {}
            )
            for back in _merge(partial):
                got = conn.execute(
                    GIVE_BACK, {"u": back.usd, "t": back.tokens, "r": back.rid, "c": ids[back.key]}
                ).first()
                if got is None:  # the hold expired meanwhile and was charged at its estimate:
                    _Cursor(conn.connection, self._pg).refund_expired(back, ids[back.key])  # refund
                    continue
                acc = freed.setdefault(ids[back.key], [0.0, 0])
                acc[0] += back.usd
                acc[1] += back.tokens
                if got[0] <= 1e-9 and got[1] <= 0:  # used up: drop the row and its rounding remainder
                    conn.execute(RES_DELETE, {"r": back.rid, "c": ids[back.key]})
                    acc[0] += got[0]
                    acc[1] += got[1]
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
                conn.execute(
                    SETTLE,
                    {
                        "su": spent[0],
                        "st": int(spent[1]),
                        "un": int(spent[2]),
                        "ru": held[0],
                        "rt": int(held[1]),
                        "id": cid,
                    },
                )
            alerts = self._claim_alerts(conn, {k: ids[k] for k in spends}, limits) if spends else []
        self._ids.update(ids)  # committed now
        self.sweep()
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

    def _record_attempt(self, conn: Connection, row: Mapping[str, Any]) -> bool:
        return record_attempt(conn, row, lambda rows: bool(self._insert_rows(conn, rows)))

    def _counter_ids(self, conn: Connection, keys: Sequence[CounterKey]) -> dict[CounterKey, int]:
        ids: dict[CounterKey, int] = {}
        for key in dict.fromkeys(keys):
            cid = self._ids.get(key)
            if cid is None:
                b, k, s, e = key
                found = conn.execute(COUNTER_ID, {"b": b, "k": k, "s": s}).scalar()
                if found is None:
                    conn.execute(COUNTER_INSERT, {"b": b, "k": k, "s": s, "e": e})
                    found = conn.execute(COUNTER_ID, {"b": b, "k": k, "s": s}).scalar()
                assert found is not None, "the counter row was just inserted"
                cid = int(found)
            ids[key] = cid
        return ids

    def _lock(self, conn: Connection, ids: Sequence[int]) -> dict[int, tuple[float, int, float, int]]:
        sql = (
            "SELECT id, spent_usd, spent_tokens, reserved_usd, reserved_tokens FROM mm_budget_counter"
            " WHERE id IN :ids ORDER BY id" + (" FOR UPDATE" if self._pg else "")
        )
        stmt = text(sql).bindparams(bindparam("ids", expanding=True))
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in conn.execute(stmt, {"ids": list(ids)})} if ids else {}

    @staticmethod
    def _used(row: tuple[float, int, float, int], limit: BudgetLimit) -> float:
        return float(row[0] + row[2]) if limit.unit == "usd" else float(row[1] + row[3])

    def _expire(self, conn: Connection, cid: int, now: datetime) -> tuple[float, int, float, int]:
        return _Cursor(conn.connection, self._pg).expire(cid, now)

    def _claim_alerts(
        self,
        conn: Connection,
        ids: Mapping[CounterKey, int],
        limits: Mapping[str, BudgetLimit],
    ) -> list[Alert]:
        alerts: list[Alert] = []
        ids = {k: cid for k, cid in ids.items() if (lim := limits.get(k[0])) is not None and lim.alert_at}
        if not ids:  # no threshold on these budgets: no need to read the counters back
            return alerts
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
                    text(
                        "INSERT INTO mm_budget_alert"
                        ' (budget, scope_key, window_start, threshold, spent, "limit", ts)'
                        " VALUES (:b, :k, :s, :th, :sp, :li, :ts)"
                        " ON CONFLICT (budget, scope_key, window_start, threshold) DO NOTHING RETURNING id"
                    ),
                    {
                        "b": key[0],
                        "k": key[1],
                        "s": key[2],
                        "th": threshold,
                        "sp": spent,
                        "li": limit.limit,
                        "ts": now,
                    },
                ).first()
                if claimed is not None:
                    alerts.append(
                        Alert(
                            key[0],
                            limit.scope,
                            key[1],
                            key[2],
                            key[3],
                            threshold,
                            spent,
                            limit.limit,
                            limit.unit,
                        )
                    )
        return alerts
