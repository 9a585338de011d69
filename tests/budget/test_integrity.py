"""Ledger integrity under hostile rows and a failing store: quarantine, order, health, no loss."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

import mm_litellm
from mm_litellm.budget.service import BudgetService
from mm_litellm.budget.windows import utcnow
from mm_litellm.storage import make_engine

POLICY = (
    "version: 1\nbudgets: {limits: [{name: g, limit_usd: 100},"
    " {name: per-user, scope: user, limit_usd: 50}]}\n"
)


def row(call_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "call_id": call_id or uuid.uuid4().hex,
        "ts": utcnow(),
        "model": "small",
        "deployment": "openai/gpt-4o-mini",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": 0.01,
        "priced": True,
        "cost_source": "policy",
        "status": "success",
        "user": "alice",
        "tags": "",
        "reservation_id": None,
    }
    return base | overrides


def rows_of(svc: BudgetService, sql: str) -> list[tuple[Any, ...]]:
    with svc.store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


@pytest.fixture
def svc(tmp_path: Path) -> BudgetService:
    return BudgetService(mm_litellm.parse_policy(POLICY), make_engine(f"sqlite:///{tmp_path / 'l.db'}"))


@pytest.fixture(params=["sqlite", "postgresql"])
def any_svc(request: pytest.FixtureRequest, tmp_path: Path) -> BudgetService:
    url = f"sqlite:///{tmp_path / 'l.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    return BudgetService(mm_litellm.parse_policy(POLICY), make_engine(url))


def test_a_bad_row_is_quarantined_and_never_blocks_the_rows_behind_it(any_svc: BudgetService) -> None:
    svc = any_svc
    good = [row() for _ in range(20)]
    svc.record(row("bad-model", model=123))  # the crash of issue 15: 'int' has no attribute 'startswith'
    svc.record(row("bad-user", user={"a": 1}))  # a dict the driver cannot bind
    for r in good:
        svc.record(r)
    assert svc.flush(timeout=5)
    written = {r[0] for r in rows_of(svc, "SELECT call_id FROM mm_ledger")}
    assert written == {r["call_id"] for r in good}
    quarantined = rows_of(svc, "SELECT call_id, error, row_json FROM mm_ledger_quarantine ORDER BY id")
    assert [q[0] for q in quarantined] == ["bad-model", "bad-user"]
    assert "startswith" in quarantined[0][1]
    assert json.loads(quarantined[1][2])["user"] == {"a": 1}
    assert rows_of(svc, "SELECT spent_usd FROM mm_budget_counter WHERE budget = 'g'")[0][0] == pytest.approx(
        0.2
    )
    assert svc.writer_healthy()


def test_usage_report_shows_quarantined_rows(svc: BudgetService, capsys: Any) -> None:
    from mm_litellm.budget.report import build_report
    from mm_litellm.cli.usage import render

    svc.record(row("bad", model=123))
    svc.record(row())
    assert svc.flush(timeout=5)
    report = build_report(svc.store.engine, svc.settings)
    assert report.quarantined == 1
    assert "1 ledger rows quarantined; see table mm_ledger_quarantine" in render(report, "24h")


def test_a_store_that_cannot_write_is_retried_reported_unhealthy_and_recovers(
    svc: BudgetService, tmp_path: Path
) -> None:
    svc.record(row())
    assert svc.flush(timeout=5)
    lock = make_engine(f"sqlite:///{tmp_path / 'l.db'}").raw_connection()
    lock.execute("PRAGMA busy_timeout=0")
    lock.execute("BEGIN EXCLUSIVE")  # the store cannot write at all while this lasts
    try:
        svc.store.engine.dispose()
        with svc.store.engine.connect() as conn:  # fail fast instead of waiting 30 s for the lock
            conn.exec_driver_sql("PRAGMA busy_timeout=50")
        pending = [row() for _ in range(5)]
        _busy_timeout(svc, 50)
        for r in pending:
            svc.record(r)
        assert not svc.flush(timeout=1.5)  # not written, and not dropped either
        assert not svc.writer_healthy()
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    _busy_timeout(svc, 30000)
    assert svc.flush(timeout=10)
    assert svc.writer_healthy()
    written = {r[0] for r in rows_of(svc, "SELECT call_id FROM mm_ledger")}
    assert {r["call_id"] for r in pending} <= written
    assert rows_of(svc, "SELECT COUNT(*) FROM mm_ledger_quarantine") == [(0,)]


def _busy_timeout(svc: BudgetService, ms: int) -> None:
    from sqlalchemy import event

    engine = svc.store.engine
    engine.dispose()

    def pragma(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA busy_timeout={ms}")

    for listener in list(getattr(engine, "_mm_busy", [])):
        event.remove(engine, "connect", listener)
    event.listen(engine, "connect", pragma)
    engine._mm_busy = [pragma]  # type: ignore[attr-defined]


def test_rows_in_flight_when_the_writer_is_stuck_are_kept_in_order(svc: BudgetService) -> None:
    # 1,000 rows across several batches with bad rows sprinkled in: every good row is written once
    good: list[str] = []
    for i in range(1000):
        if i % 97 == 0:
            svc.record(row(f"bad-{i}", model=[1, 2]))
        else:
            r = row()
            good.append(r["call_id"])
            svc.record(r)
    assert svc.flush(timeout=20)
    assert rows_of(svc, "SELECT COUNT(*) FROM mm_ledger") == [(len(good),)]
    assert rows_of(svc, "SELECT COUNT(*) FROM mm_ledger_quarantine") == [(11,)]
    assert threading.active_count() < 50


def test_rows_the_store_never_took_are_saved_to_a_file_at_exit_not_dropped() -> None:
    from sqlalchemy.exc import OperationalError

    from mm_litellm.budget.writer import LedgerWriter

    def down(rows: Any, releases: Any) -> None:
        raise OperationalError("INSERT", {}, Exception("unable to open database file"))

    writer = LedgerWriter(down, interval_s=0.01)
    for i in range(3):
        writer.submit(row(f"kept-{i}"))
    assert not writer.flush(timeout=0.5)
    assert not writer.healthy and "unable to open database file" in (writer.last_error or "")
    path = writer.close(timeout=0.2)
    assert path is not None
    saved = [json.loads(line) for line in Path(path).read_text().splitlines()]
    assert [s["item"]["call_id"] for s in saved] == ["kept-0", "kept-1", "kept-2"]
    Path(path).unlink()
