"""The store's SQL statements, and a DB-API cursor for the reservation hot path (SQLite and PostgreSQL).

The store's hottest statements skip SQLAlchemy's per-statement work and run on the raw
connection; this class adapts named parameters and timestamps to each dialect.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text

from mm_litellm.budget.records import Release

__all__ = [
    "COUNTER_ID",
    "COUNTER_INSERT",
    "EXPIRED_LEDGER_INSERT",
    "EXPIRED_LEDGER_UPDATE",
    "EXPIRED_PREFIX",
    "GIVE_BACK",
    "RESERVE",
    "RES_DELETE",
    "RES_INSERT",
    "SETTLE",
    "Cursor",
]

COUNTER_INSERT = text(
    "INSERT INTO mm_budget_counter (budget, scope_key, window_start, window_end, spent_usd, spent_tokens,"
    " reserved_usd, reserved_tokens, unpriced_calls) VALUES (:b, :k, :s, :e, 0, 0, 0, 0, 0)"
    " ON CONFLICT (budget, scope_key, window_start) DO NOTHING"
)
COUNTER_ID = text(
    "SELECT id FROM mm_budget_counter WHERE budget = :b AND scope_key = :k AND window_start = :s"
)
RESERVE = text(
    "UPDATE mm_budget_counter SET reserved_usd = reserved_usd + :u, reserved_tokens = reserved_tokens + :t"
    " WHERE id = :id"
)
RES_INSERT = text(
    "INSERT INTO mm_budget_reservation (id, counter_id, amount_usd, amount_tokens, created_at, expires_at)"
    " VALUES (:r, :c, :u, :t, :now, :exp)"
)
GIVE_BACK = text(
    "UPDATE mm_budget_reservation SET amount_usd = amount_usd - :u, amount_tokens = amount_tokens - :t"
    " WHERE id = :r AND counter_id = :c RETURNING amount_usd, amount_tokens"
)
RES_DELETE = text("DELETE FROM mm_budget_reservation WHERE id = :r AND counter_id = :c")
SETTLE = text(
    "UPDATE mm_budget_counter SET spent_usd = spent_usd + :su, spent_tokens = spent_tokens + :st,"
    " unpriced_calls = unpriced_calls + :un, reserved_usd = reserved_usd - :ru,"
    " reserved_tokens = reserved_tokens - :rt WHERE id = :id"
)

EXPIRED_PREFIX = "expired:"
"""Call id of the ledger row that charges an expired hold: this prefix plus the reservation id."""
_STALE = "FROM mm_budget_reservation WHERE counter_id = :c AND expires_at < :now"
EXPIRED_INSERT = (
    "INSERT INTO mm_budget_expired (reservation_id, counter_id, amount_usd, amount_tokens, expired_at)"
    " SELECT id, counter_id, amount_usd, amount_tokens, :now " + _STALE
)
EXPIRED_RIDS = "SELECT DISTINCT id " + _STALE
EXPIRED_LEDGER_INSERT = (
    "INSERT INTO mm_ledger (call_id, ts, prompt_tokens, completion_tokens, cost_usd, priced, cost_source,"
    " status, error_class, tags, reservation_id) VALUES (:cid, :now, 0, 0, 0, :t, 'expired-hold',"
    " 'expired', 'HoldExpired', '', :r) ON CONFLICT (call_id) DO NOTHING"
)
EXPIRED_LEDGER_UPDATE = (
    "UPDATE mm_ledger SET"
    " cost_usd = (SELECT COALESCE(MAX(amount_usd), 0) FROM mm_budget_expired WHERE reservation_id = :r),"
    " completion_tokens = (SELECT COALESCE(MAX(amount_tokens), 0) FROM mm_budget_expired"
    " WHERE reservation_id = :r) WHERE call_id = :cid"
)
"""The expired-hold row costs the largest hold of its reservation (every budget it was under held
the same call; a model budget may have held less)."""
EXPIRED_GET = (
    "SELECT amount_usd, amount_tokens FROM mm_budget_expired WHERE reservation_id = :r AND counter_id = :c"
)
EXPIRED_TAKE = (
    "UPDATE mm_budget_expired SET amount_usd = amount_usd - :u, amount_tokens = amount_tokens - :t"
    " WHERE reservation_id = :r AND counter_id = :c"
)


_NAMED = re.compile(r"(?<![:\w]):(\w+)")
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DateTime in SQLite: compare equal


class Cursor:
    """A DB-API cursor with the few operations the reservation hot path needs, per dialect."""

    def __init__(self, raw: Any, pg: bool) -> None:
        self.raw = raw
        self.pg = pg
        self.cur = raw.cursor()
        self._sql: dict[str, str] = {}

    def _q(self, sql: str) -> str:
        out = self._sql.get(sql)
        if out is None:
            out = self._sql[sql] = _NAMED.sub(r"%(\1)s", sql) if self.pg else sql
        return out

    def _p(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        if self.pg:
            return params
        return {k: (v.strftime(_SQLITE_TIME) if isinstance(v, datetime) else v) for k, v in params.items()}

    def begin(self) -> None:
        if not self.pg:
            self.cur.execute("BEGIN IMMEDIATE")  # the write lock first: no lost update between readers

    def commit(self) -> None:
        if self.pg:
            self.raw.commit()
        else:
            self.cur.execute("COMMIT")

    def rollback(self) -> None:
        if self.pg:
            self.raw.rollback()
        else:
            self.cur.execute("ROLLBACK")

    def run(self, sql: str, params: Mapping[str, Any]) -> None:
        self.cur.execute(self._q(sql), self._p(params))

    def many(self, sql: str, params: Sequence[Mapping[str, Any]]) -> None:
        self.cur.executemany(self._q(sql), [self._p(p) for p in params])

    def one(self, sql: str, params: Mapping[str, Any]) -> Any:
        self.cur.execute(self._q(sql), self._p(params))
        return self.cur.fetchone()

    def lock(self, ids: Sequence[int]) -> dict[int, tuple[float, int, float, int]]:
        marks = ", ".join(["%s" if self.pg else "?"] * len(ids))
        self.cur.execute(
            "SELECT id, spent_usd, spent_tokens, reserved_usd, reserved_tokens FROM mm_budget_counter"
            f" WHERE id IN ({marks}) ORDER BY id" + (" FOR UPDATE" if self.pg else ""),
            list(ids),
        )
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in self.cur.fetchall()}

    def give_back(self, back: Release, cid: int) -> tuple[float, int] | None:
        """Return part of a hold; the amount the counter gets back (``None``: the hold is gone)."""
        got = self.one(GIVE_BACK.text, {"u": back.usd, "t": back.tokens, "r": back.rid, "c": cid})
        if got is None:
            return None
        if got[0] <= 1e-9 and got[1] <= 0:
            self.run(RES_DELETE.text, {"r": back.rid, "c": cid})
            return back.usd + got[0], back.tokens + int(got[1])
        return back.usd, back.tokens

    def expire(self, cid: int, now: datetime) -> tuple[float, int, float, int]:
        """Charge the holds on counter ``cid`` that expired (see ``BudgetStore.expire``)."""
        params = {"c": cid, "now": now}
        stale = self.one(
            "SELECT COALESCE(SUM(amount_usd), 0), COALESCE(SUM(amount_tokens), 0) " + _STALE, params
        )
        if stale[0] or stale[1]:
            rids = [r[0] for r in self._all(EXPIRED_RIDS, params)]
            self.run(EXPIRED_INSERT, params)
            self.run("DELETE " + _STALE, params)
            self.run(
                SETTLE.text,
                {
                    "su": stale[0],
                    "st": int(stale[1]),
                    "un": 0,
                    "ru": stale[0],
                    "rt": int(stale[1]),
                    "id": cid,
                },
            )
            for rid in rids:
                keys = {"cid": EXPIRED_PREFIX + rid, "r": rid}
                self.run(EXPIRED_LEDGER_INSERT, {**keys, "now": now, "t": True})
                self.run(EXPIRED_LEDGER_UPDATE, keys)
        return self.lock([cid])[cid]

    def refund_expired(self, back: Release, cid: int) -> None:
        """A share given back after its hold expired and was charged: refund it (see the store)."""
        got = self.one(EXPIRED_GET, {"r": back.rid, "c": cid})
        if got is None:
            return
        usd, tokens = min(back.usd, float(got[0])), min(back.tokens, int(got[1]))
        self.run(EXPIRED_TAKE, {"u": usd, "t": tokens, "r": back.rid, "c": cid})
        self.run(SETTLE.text, {"su": -usd, "st": -tokens, "un": 0, "ru": 0.0, "rt": 0, "id": cid})
        self.run(EXPIRED_LEDGER_UPDATE, {"cid": EXPIRED_PREFIX + back.rid, "r": back.rid})

    def _all(self, sql: str, params: Mapping[str, Any]) -> list[Any]:
        self.cur.execute(self._q(sql), self._p(params))
        return list(self.cur.fetchall())
