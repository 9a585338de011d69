"""The project's database: one SQLModel engine per URL, for the ledger, budgets and prompts.

SQLite (a file, WAL mode) is the embedded default; PostgreSQL (``postgresql+psycopg://``)
is what several processes or proxy instances share. Table classes live in their own
packages; :func:`ensure_schema` creates and upgrades them by running, once per database,
every entry of :data:`MIGRATIONS` newer than the version recorded in ``schema_version``.

Adding a schema change: append a :class:`Migration` with the next version number (never
edit or reorder a released one); its ``apply`` gets a connection inside the migration
transaction. See docs/budgets.md ("Schema changes").
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlmodel import create_engine

from mm_litellm.errors import ConfigurationError

if TYPE_CHECKING:
    from mm_litellm.policy.schema import Policy

__all__ = [
    "DATABASE_ENV",
    "MIGRATIONS",
    "Migration",
    "check_ledger_file",
    "database_url",
    "engine_for",
    "ensure_schema",
    "make_engine",
    "schema_version",
    "sqlite_path",
    "write_transaction",
]

DATABASE_ENV = "MM_LITELLM_DATABASE_URL"
"""Environment variable that, when set, overrides the policy's ``database.url``."""

_ENV_PREFIX = "os.environ/"

_engines: dict[str, Engine] = {}
_lock = threading.Lock()
_ensured: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Migration:
    """One schema step. ``version`` numbers are consecutive; ``apply`` must be idempotent-safe DDL."""

    version: int
    description: str
    apply: Callable[[Connection], None]
    compatible: bool = False
    """True when code that knows only the earlier versions can go on using the upgraded database
    (the step adds tables or nullable columns that code never touches): in a rolling upgrade the
    instances not yet upgraded keep serving. Otherwise they refuse the newer database."""


def _budget_tables_v1(conn: Connection) -> None:
    from sqlmodel import SQLModel

    from mm_litellm.budget import models

    SQLModel.metadata.create_all(conn, tables=[t.__table__ for t in models.TABLES])  # type: ignore[union-attr]


def _prompt_tables_v2(conn: Connection) -> None:
    # Databases made before version 2 may have these tables already (the prompt registry created
    # them itself): create_all adds only the missing ones.
    from sqlmodel import SQLModel

    from mm_litellm.prompts import store

    SQLModel.metadata.create_all(conn, tables=store.TABLES)


def _quarantine_table_v3(conn: Connection) -> None:
    from sqlmodel import SQLModel

    from mm_litellm.budget.models import QuarantinedRow

    SQLModel.metadata.create_all(conn, tables=[QuarantinedRow.__table__])  # type: ignore[attr-defined]


def _expired_holds_v4(conn: Connection) -> None:
    from sqlmodel import SQLModel

    from mm_litellm.budget.models import ExpiredHold

    SQLModel.metadata.create_all(conn, tables=[ExpiredHold.__table__])  # type: ignore[attr-defined]


def _end_user_v5(conn: Connection) -> None:
    # A database created at this version has the column already (version 1 creates the ledger
    # from the current model); one made earlier gets it added, nullable, so older code ignores it.
    from sqlalchemy import inspect, text

    if "end_user" not in {c["name"] for c in inspect(conn).get_columns("mm_ledger")}:
        conn.execute(text("ALTER TABLE mm_ledger ADD COLUMN end_user VARCHAR"))


MIGRATIONS: list[Migration] = [
    Migration(1, "usage ledger, budget counters, reservations and alerts", _budget_tables_v1),
    Migration(
        2, "prompt registry: versions, labels, label history, assignments", _prompt_tables_v2, compatible=True
    ),
    Migration(3, "ledger quarantine: rows the writer could not write", _quarantine_table_v3, compatible=True),
    Migration(4, "expired holds charged at their estimate", _expired_holds_v4, compatible=True),
    Migration(
        5, "ledger end_user column: the body's user under an authenticated key", _end_user_v5, compatible=True
    ),
]
"""Every schema step, in order. Other packages append theirs (with the next version number)."""


def database_url(source: Policy | str) -> str:
    """The URL to use: ``$MM_LITELLM_DATABASE_URL`` if set, else the policy's.

    A policy URL of the form ``os.environ/NAME`` is read from that environment variable.
    """
    override = os.environ.get(DATABASE_ENV)
    if override:
        return override
    url = source if isinstance(source, str) else source.database.url
    if url.startswith(_ENV_PREFIX):
        name = url[len(_ENV_PREFIX) :]
        value = os.environ.get(name)
        if not value:
            raise ConfigurationError(
                f"database.url is '{url}' and the environment variable {name} is not set; "
                f"set it (or {DATABASE_ENV}) to a URL such as sqlite:///mm_litellm.db"
            )
        return value
    if isinstance(source, str):
        return url
    from mm_litellm.policy.paths import resolve_database_url

    return resolve_database_url(source, url)  # a relative SQLite file lives next to the policy


def make_engine(url: str) -> Engine:
    """A new engine for ``url``; SQLite files get WAL, a busy timeout and foreign keys.

    On SQLite the driver's own implicit transactions are switched off and mm_litellm emits
    ``BEGIN`` itself, so that a writer can ask for ``BEGIN IMMEDIATE`` (take the write lock
    first, then read) with :func:`write_transaction`.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # bound datetimes (raw SQL) in the exact text form SQLAlchemy's DateTime stores, so a
        # "window_start = :s" written by either path finds the same row
        sqlite3.register_adapter(datetime, _sqlite_datetime)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see below)
            cursor = dbapi_connection.cursor()
            if parsed.database not in (None, "", ":memory:"):
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "")
            conn.exec_driver_sql(f"BEGIN {mode}".strip())

        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_datetime(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def engine_for(source: Policy | str) -> Engine:
    """The process-wide engine for a URL or a policy's database (created once; pooled)."""
    url = database_url(source) if not isinstance(source, str) else source
    engine = _engines.get(url)
    if engine is None:
        with _lock:
            engine = _engines.get(url)
            if engine is None:
                engine = _engines[url] = make_engine(url)
    return engine


def write_transaction(engine: Engine) -> Connection:
    """A connection whose transactions take the write lock at ``BEGIN`` on SQLite.

    Use as ``with write_transaction(engine) as conn, conn.begin(): ...``. On PostgreSQL it is a
    plain connection: lock rows with ``SELECT ... FOR UPDATE`` inside the transaction.
    """
    conn = engine.connect()
    if engine.dialect.name == "sqlite":
        conn = conn.execution_options(sqlite_begin="IMMEDIATE")
    return conn


def schema_version(engine: Engine) -> int:
    """The schema version recorded in the database (0 for a new database)."""
    check_ledger_file(engine)
    with engine.connect() as conn:
        _refuse_foreign(conn, engine)
        return _read_version(conn, create=False)


def _read_version(conn: Connection, create: bool = True) -> int:
    if create:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    elif not conn.dialect.has_table(conn, "schema_version"):
        return 0
    value = conn.execute(text("SELECT MAX(version) FROM schema_version")).scalar()
    return int(value or 0)


SQLITE_HEADER = b"SQLite format 3\x00"


def sqlite_path(engine: Engine) -> str | None:
    """The file of a SQLite engine (``None`` for PostgreSQL or an in-memory database)."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if database in (None, "", ":memory:") or database.startswith("file:"):
        return None
    return database


@contextlib.contextmanager
def creation_lock(path: str) -> Iterator[None]:
    """Serialise creating a SQLite ledger across processes (an exclusive ``flock`` on ``PATH.init-lock``).

    SQLite creates the file empty and writes the schema a moment later; a second process
    starting then (two batch workers, two proxy workers) must wait for it rather than take the
    empty file for an emptied ledger. Not POSIX: no lock (then start one process first).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    try:
        fd = os.open(path + ".init-lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:  # a folder we may not write in: reading an existing ledger needs no lock
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _is_empty(path: str) -> bool:
    wal = path + "-wal"
    return os.path.getsize(path) == 0 and not (os.path.exists(wal) and os.path.getsize(wal) > 0)


def check_ledger_file(engine: Engine, *, locked: bool = False) -> None:
    """Refuse a SQLite ledger file that exists but is empty or not SQLite, before anything opens it.

    A new ledger is created only where no file exists (or by ``mm-litellm ledger init``): an
    emptied or replaced file silently recreated would reset every budget. An empty file is
    looked at again under :func:`creation_lock` (``locked``: the caller holds it), since another
    process may be creating the ledger right now.
    """
    path = sqlite_path(engine)
    if path is None or not os.path.exists(path):
        return
    empty = _is_empty(path)
    if empty and not locked:
        with creation_lock(path):
            empty = _is_empty(path)
    size = os.path.getsize(path)
    if empty:
        raise ConfigurationError(
            f"the ledger {path} is an empty file (0 bytes), not a ledger; recreating it would reset "
            "every budget. Restore it from a backup, or, to start a new ledger there, delete it or run "
            "'mm-litellm ledger init'"
        )
    if size:
        with open(path, "rb") as handle:
            head = handle.read(len(SQLITE_HEADER))
        if head != SQLITE_HEADER:
            shown = head.decode("utf-8", "replace")[:12]
            raise ConfigurationError(
                f"the ledger {path} is not a SQLite database (it starts with {shown!r}); point "
                "database.url (or MM_LITELLM_DATABASE_URL) at the ledger, or move this file away"
            )


def _refuse_foreign(conn: Connection, engine: Engine) -> None:
    """A SQLite file with tables but no ``schema_version`` belongs to something else: never write to it."""
    path = sqlite_path(engine)
    if path is None or conn.dialect.has_table(conn, "schema_version"):
        return
    tables = sorted(
        r[0]
        for r in conn.execute(
            text("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        )
    )
    if tables:
        raise ConfigurationError(
            f"the ledger {path} is a SQLite database without mm_litellm's schema (no schema_version "
            f"table; its tables: {', '.join(tables[:10])}); refusing to write into it: point "
            "database.url (or MM_LITELLM_DATABASE_URL) at an mm_litellm ledger or a new file"
        )


def _read_required(conn: Connection, current: int) -> int:
    """The oldest schema version that code must know to use this database (``current`` when the
    database does not say: it was upgraded by code that did not record it)."""
    conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS schema_required (version INTEGER NOT NULL)")
    value = conn.execute(text("SELECT MAX(version) FROM schema_required")).scalar()
    return current if value is None else int(value)


def ensure_schema(engine: Engine) -> int:
    """Create or upgrade the database to the newest :data:`MIGRATIONS` version; returns the
    database's version.

    Safe to call from several processes at once: the check and every step run under the
    database's write lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock), and on
    SQLite under :func:`creation_lock`, so a ledger being created is never seen half made. Each
    engine is checked once per process. A database a newer mm_litellm has upgraded is used as
    it is when every step this code does not know is ``compatible``; otherwise it is refused.
    """
    target = MIGRATIONS[-1].version if MIGRATIONS else 0
    if _ensured.get(engine) == target:
        return target
    versions = [m.version for m in MIGRATIONS]
    if versions != list(range(1, len(versions) + 1)):
        raise ConfigurationError(
            f"storage.MIGRATIONS must be numbered 1, 2, 3, ... in order; found {versions}"
        )
    path = sqlite_path(engine)
    with creation_lock(path) if path is not None else contextlib.nullcontext():
        check_ledger_file(engine, locked=True)
        current = _migrate(engine, target)
    _ensured[engine] = target
    return current


def _migrate(engine: Engine, target: int) -> int:
    """:func:`ensure_schema`'s transaction: the database's version after it."""
    with write_transaction(engine) as conn, conn.begin():
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(715517)"))  # serialises concurrent upgrades
        _refuse_foreign(conn, engine)
        current = _read_version(conn)
        if current > target:
            required = _read_required(conn, current)
            if required > target:
                raise ConfigurationError(
                    f"the database is at schema version {current} and needs mm_litellm to know at "
                    f"least version {required}; this mm_litellm knows {target}: upgrade mm_litellm"
                )
            return current
        for migration in MIGRATIONS[current:]:
            migration.apply(conn)
            conn.execute(text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": migration.version})
        required = max((m.version for m in MIGRATIONS if not m.compatible), default=0)
        if _read_required(conn, -1) != required:
            conn.execute(text("DELETE FROM schema_required"))
            conn.execute(text("INSERT INTO schema_required (version) VALUES (:v)"), {"v": required})
    return target
