"""The store: schema migrations, atomic reservations, crash expiry, idempotent settlement, alerts once."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from mm_litellm import storage
from mm_litellm.budget.store import BudgetStore, Charge
from mm_litellm.budget.windows import utcnow
from mm_litellm.policy.budgets import BudgetLimit

CAP = BudgetLimit(name="cap", limit_usd=1.0, alert_at=(0.5, 0.8))
KEY = ("cap", "*", datetime(2026, 1, 1), datetime(2099, 1, 1))


def _row(call_id: str, cost: float | None, reservation: str | None = None, **kw: Any) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "ts": utcnow(),
        "model": "small",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": cost,
        "priced": cost is not None,
        "cost_source": "policy" if cost is not None else "unpriced",
        "status": "success",
        "tags": "",
        "reservation_id": reservation,
        **kw,
    }


def _charges(_row: Any) -> list[tuple[BudgetLimit, Any]]:
    return [(CAP, KEY)]


def _counter(store: BudgetStore) -> tuple[float, int, float, int, int]:
    with store.engine.connect() as c:
        return tuple(
            c.execute(
                text(  # type: ignore[return-value]
                    "SELECT spent_usd, spent_tokens, reserved_usd, reserved_tokens, unpriced_calls"
                    " FROM mm_budget_counter"
                )
            ).one()
        )


@pytest.fixture
def store(tmp_path: Any) -> BudgetStore:
    return BudgetStore(storage.make_engine(f"sqlite:///{tmp_path / 'b.db'}"), ttl_s=600)


def test_schema_is_versioned_and_upgrades_once(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = storage.make_engine(f"sqlite:///{tmp_path / 's.db'}")
    assert storage.schema_version(engine) == 0
    now = len(storage.MIGRATIONS)
    assert storage.ensure_schema(engine) == now
    applied: list[int] = []

    def add_column(conn: Any) -> None:
        applied.append(now + 1)
        conn.execute(text("ALTER TABLE mm_ledger ADD COLUMN region VARCHAR"))

    monkeypatch.setattr(
        storage, "MIGRATIONS", [*storage.MIGRATIONS, storage.Migration(now + 1, "ledger region", add_column)]
    )
    assert storage.ensure_schema(engine) == now + 1
    fresh = storage.make_engine(f"sqlite:///{tmp_path / 's.db'}")  # another process: already upgraded
    assert storage.ensure_schema(fresh) == now + 1
    assert applied == [now + 1]
    with engine.connect() as c:
        versions = [r[0] for r in c.execute(text("SELECT version FROM schema_version ORDER BY version"))]
        assert versions == list(range(1, now + 2))
        c.execute(text("SELECT region FROM mm_ledger"))


def test_a_version_1_database_gets_the_prompt_tables(tmp_path: Any) -> None:
    """Migration 2: a ledger made before the prompt registry joined the schema, with and without
    the prompt tables the registry used to create by itself, upgrades and keeps its rows."""
    from sqlalchemy import inspect

    from mm_litellm.prompts.store import PromptStore

    for had_prompt_tables in (False, True):
        engine = storage.make_engine(f"sqlite:///{tmp_path / f'v1-{had_prompt_tables}.db'}")
        with engine.begin() as c:  # what version 1 left behind
            storage._read_version(c)
            storage.MIGRATIONS[0].apply(c)
            c.execute(text("INSERT INTO schema_version (version) VALUES (1)"))
            if had_prompt_tables:
                storage.MIGRATIONS[1].apply(c)
                c.execute(
                    text(
                        "INSERT INTO prompt_labels (prompt_id, label, version, updated_by, updated_at)"
                        " VALUES ('p', 'production', 1, 'me', CURRENT_TIMESTAMP)"
                    )
                )
        PromptStore(engine)  # opening the registry upgrades the database
        assert storage.schema_version(engine) == len(storage.MIGRATIONS)
        tables = set(inspect(engine).get_table_names())
        assert {"mm_ledger", "prompt_versions", "prompt_labels", "prompt_assignments"} <= tables
        with engine.connect() as c:
            labels = c.execute(text("SELECT COUNT(*) FROM prompt_labels")).scalar()
        assert labels == (1 if had_prompt_tables else 0)


def test_database_newer_than_the_code_is_refused(tmp_path: Any) -> None:
    engine = storage.make_engine(f"sqlite:///{tmp_path / 'n.db'}")
    storage.ensure_schema(engine)
    with engine.begin() as c:  # what a newer mm_litellm with an incompatible step 99 leaves
        c.execute(text("INSERT INTO schema_version (version) VALUES (99)"))
        c.execute(text("UPDATE schema_required SET version = 99"))
    with pytest.raises(
        storage.ConfigurationError, match="schema version 99 and needs mm_litellm to know at least version 99"
    ):
        storage.ensure_schema(storage.make_engine(f"sqlite:///{tmp_path / 'n.db'}"))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_rolling_upgrade_older_code_keeps_using_a_compatibly_upgraded_database(
    backend: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """Instances sharing a database are upgraded one by one: a newer one's compatible steps (new
    tables) do not stop the older ones; an incompatible step does."""
    url = f"sqlite:///{tmp_path / 'r.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    newest = list(storage.MIGRATIONS)
    now = len(newest)
    assert storage.ensure_schema(storage.make_engine(url)) == now  # the newer instance upgraded it
    monkeypatch.setattr(storage, "MIGRATIONS", newest[:1])  # an instance that knows version 1 only
    assert storage.ensure_schema(storage.make_engine(url)) == now
    assert storage.schema_version(storage.make_engine(url)) == now

    def rename(conn: Any) -> None:
        conn.execute(text("ALTER TABLE mm_ledger RENAME COLUMN task TO task_type"))

    renamed = storage.Migration(now + 1, "ledger: rename", rename)
    monkeypatch.setattr(storage, "MIGRATIONS", [*newest, renamed])
    assert storage.ensure_schema(storage.make_engine(url)) == now + 1
    monkeypatch.setattr(storage, "MIGRATIONS", newest)  # the older instance must not read it
    needed = f"needs mm_litellm to know at least version {now + 1}"
    with pytest.raises(storage.ConfigurationError, match=needed):
        storage.ensure_schema(storage.make_engine(url))


def test_database_url_env_override_and_environment_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(storage.DATABASE_ENV, raising=False)
    monkeypatch.setenv("MY_DB", "sqlite:///x.db")
    assert storage.database_url("os.environ/MY_DB") == "sqlite:///x.db"
    with pytest.raises(storage.ConfigurationError, match="the environment variable NOPE_DB is not set"):
        storage.database_url("os.environ/NOPE_DB")
    monkeypatch.setenv(storage.DATABASE_ENV, "sqlite:///override.db")
    assert storage.database_url("sqlite:///policy.db") == "sqlite:///override.db"


def test_reserve_admits_until_the_limit_then_denies(store: BudgetStore) -> None:
    for i in range(4):
        assert store.reserve(f"r{i}", [Charge(CAP, KEY, 0.25, 100)]) is None
    denial = store.reserve("r4", [Charge(CAP, KEY, 0.25, 100)])
    assert denial is not None and denial.used == pytest.approx(1.0) and denial.estimate == 0.25
    assert _counter(store)[2] == pytest.approx(1.0)
    assert (
        store.reserve("soft", [Charge(CAP, KEY, 0.25, 100, enforce=False)]) is None
    )  # downgraded calls still count


def test_denied_reservation_holds_nothing_on_any_counter(store: BudgetStore) -> None:
    other = BudgetLimit(name="other", limit_usd=0.1)
    okey = ("other", "*", KEY[2], KEY[3])
    assert store.reserve("a", [Charge(CAP, KEY, 0.5, 1), Charge(other, okey, 0.5, 1)]) is not None
    with store.engine.connect() as c:
        assert c.execute(text("SELECT COALESCE(SUM(reserved_usd), 0) FROM mm_budget_counter")).scalar() == 0
        assert c.execute(text("SELECT COUNT(*) FROM mm_budget_reservation")).scalar() == 0


def test_settlement_is_idempotent_by_call_id(store: BudgetStore) -> None:
    store.reserve("r1", [Charge(CAP, KEY, 0.3, 15)])
    new, _ = store.settle([_row("call-1", 0.2, "r1")], ["r1"], _charges, {"cap": CAP})
    assert new == 1
    again, _ = store.settle([_row("call-1", 0.2, "r1"), _row("call-1", 0.2)], ["r1"], _charges, {"cap": CAP})
    assert again == 0
    spent, tokens, reserved, _, _ = _counter(store)
    assert (spent, tokens, reserved) == (pytest.approx(0.2), 15, pytest.approx(0.0))
    with store.engine.connect() as c:
        assert c.execute(text("SELECT COUNT(*) FROM mm_ledger")).scalar() == 1


def test_unpriced_rows_are_null_not_zero(store: BudgetStore) -> None:
    store.settle([_row("u1", None)], [], _charges, {"cap": CAP})
    assert _counter(store)[4] == 1
    with store.engine.connect() as c:
        assert c.execute(text("SELECT cost_usd, priced, cost_source FROM mm_ledger")).one() == (
            None,
            False,
            "unpriced",
        )


def test_crashed_reservations_expire(tmp_path: Any) -> None:
    store = BudgetStore(storage.make_engine(f"sqlite:///{tmp_path / 'e.db'}"), ttl_s=0.3)
    assert store.reserve("crashed", [Charge(CAP, KEY, 0.9, 1)]) is None
    assert store.reserve("next", [Charge(CAP, KEY, 0.2, 1)]) is not None  # the crashed call still counts
    time.sleep(0.4)
    # ...and when its reservation expires it is charged at its estimate, not forgotten
    assert store.reserve("next", [Charge(CAP, KEY, 0.2, 1)]) is not None
    assert store.reserve("next", [Charge(CAP, KEY, 0.1, 1)]) is None
    time.sleep(0.4)
    assert store.expire() == 2
    assert _counter(store)[:4] == (pytest.approx(1.0), 2, pytest.approx(0.0), 0)
    with store.engine.connect() as c:
        rows = c.execute(
            text("SELECT call_id, cost_usd, status, cost_source FROM mm_ledger ORDER BY call_id")
        ).all()
    assert [tuple(r) for r in rows] == [
        ("expired:crashed", pytest.approx(0.9), "expired", "expired-hold"),
        ("expired:next", pytest.approx(0.1), "expired", "expired-hold"),
    ]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_row_after_its_hold_expired_settles_it_at_its_real_cost(
    tmp_path: Any, backend: str, request: pytest.FixtureRequest
) -> None:
    from mm_litellm.budget.store import Release

    url = f"sqlite:///{tmp_path / 'e.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    store = BudgetStore(storage.make_engine(url), ttl_s=0.2)
    assert store.reserve("slow", [Charge(CAP, KEY, 0.3, 100)]) is None
    time.sleep(0.3)
    assert store.expire() == 1
    assert _counter(store)[:4] == (pytest.approx(0.3), 100, pytest.approx(0.0), 0)
    # the slow call finishes after all: its share comes back, its real cost is charged
    store.settle([_row("c-slow", 0.05, "slow")], [], _charges, {"cap": CAP}, [Release("slow", KEY, 0.3, 100)])
    assert _counter(store)[:4] == (pytest.approx(0.05), 15, pytest.approx(0.0), 0)
    with store.engine.connect() as c:
        assert c.execute(text("SELECT cost_usd FROM mm_ledger WHERE call_id = 'expired:slow'")).scalar() == 0


def test_alerts_are_claimed_once_per_threshold_per_window(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    one, two = BudgetStore(storage.make_engine(url)), BudgetStore(storage.make_engine(url))  # two processes
    _, alerts = one.settle([_row("c1", 0.55)], [], _charges, {"cap": CAP})
    assert [a.threshold for a in alerts] == [0.5]
    _, alerts = two.settle([_row("c2", 0.01)], [], _charges, {"cap": CAP})
    assert alerts == []
    _, alerts = two.settle([_row("c3", 0.5)], [], _charges, {"cap": CAP})
    assert [(a.threshold, a.spent) for a in alerts] == [(0.8, pytest.approx(1.06))]
    next_window = ("cap", "*", KEY[3], KEY[3] + timedelta(days=1))
    _, alerts = one.settle([_row("c4", 0.9)], [], lambda _r: [(CAP, next_window)], {"cap": CAP})
    assert [a.threshold for a in alerts] == [0.5, 0.8]


def test_a_version_4_ledger_gains_the_end_user_column(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Migration 5 adds ``mm_ledger.end_user`` to a database made before it, keeping its rows."""
    from sqlalchemy import create_engine, inspect

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_engine(url)
    with monkeypatch.context() as m:
        m.setattr(storage, "MIGRATIONS", storage.MIGRATIONS[:4])
        assert storage.ensure_schema(old) == 4
    with old.begin() as c:  # a version-4 table: no end_user column, one row
        c.execute(text("ALTER TABLE mm_ledger DROP COLUMN end_user"))
        c.execute(
            text(
                "INSERT INTO mm_ledger (call_id, ts, prompt_tokens, completion_tokens, priced, "
                "cost_source, status, tags) VALUES ('c1', '2026-12-01 00:00:00', 1, 2, 1, 'litellm', "
                "'success', '')"
            )
        )
    old.dispose()
    new = create_engine(url)
    assert storage.ensure_schema(new) == len(storage.MIGRATIONS)
    assert "end_user" in {c["name"] for c in inspect(new).get_columns("mm_ledger")}
    with new.connect() as c:
        assert c.execute(text("SELECT call_id, end_user FROM mm_ledger")).all() == [("c1", None)]


def test_an_unused_lease_given_back_after_its_hold_expired_is_refunded(tmp_path: Any) -> None:
    """A live process's lease can outlive the TTL (an idle process): the expiry charges it all, and
    the unused remainder the process gives back later is refunded; only the call it admitted stays."""
    from mm_litellm.budget.store import Release

    big = BudgetLimit(name="cap", limit_usd=100.0)
    store = BudgetStore(storage.make_engine(f"sqlite:///{tmp_path / 'l.db'}"), ttl_s=0.2)
    denial, grants = store.reserve_leased("lease", [Charge(big, KEY, 0.1, 10)], lease=4)
    assert denial is None and grants[KEY] == pytest.approx(4.0)  # holds 0.5: this call and 4 more
    time.sleep(0.3)
    assert store.expire() == 1
    assert _counter(store)[0] == pytest.approx(0.5)
    # the process gives back the four calls' worth it never used, reserving its next call
    store.reserve_leased("next", [Charge(big, KEY, 0.1, 10)], returns=[Release("lease", KEY, 0.4, 40)])
    assert _counter(store)[:3] == (pytest.approx(0.1), 10, pytest.approx(0.1))
    with store.engine.connect() as c:
        assert c.execute(text("SELECT cost_usd FROM mm_ledger WHERE call_id = 'expired:lease'")).scalar() == (
            pytest.approx(0.1)
        )
