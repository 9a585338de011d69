"""An existing ledger that is empty, not SQLite or not mm_litellm's is refused, never recreated."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from mm_litellm import storage
from mm_litellm.cli.main import main
from mm_litellm.errors import ConfigurationError


def _open(path: Path) -> int:
    return storage.ensure_schema(storage.make_engine(f"sqlite:///{path}"))


def test_an_empty_file_is_refused_naming_the_path_and_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    path.write_bytes(b"")  # e.g. truncated after a checkpoint: recreating it would reset every budget
    with pytest.raises(ConfigurationError) as caught:
        _open(path)
    assert str(caught.value) == (
        f"the ledger {path} is an empty file (0 bytes), not a ledger; recreating it would reset every "
        "budget. Restore it from a backup, or, to start a new ledger there, delete it or run "
        "'mm-litellm ledger init'"
    )
    assert path.stat().st_size == 0  # left as it was


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    path.write_text("name,cost\nalice,1\n")
    with pytest.raises(ConfigurationError, match=r"is not a SQLite database \(it starts with 'name,cost"):
        _open(path)
    assert path.read_text() == "name,cost\nalice,1\n"


def test_a_foreign_sqlite_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(
        ConfigurationError,
        match=r"is a SQLite database without mm_litellm's schema \(no "
        r"schema_version table; its tables: customers\)",
    ):
        _open(path)
    with pytest.raises(ConfigurationError, match="without mm_litellm's schema"):
        storage.schema_version(storage.make_engine(f"sqlite:///{path}"))
    with sqlite3.connect(path) as db:
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == [
            "customers"
        ]


def test_a_new_ledger_is_created_where_no_file_exists_and_reopened(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    assert _open(path) == len(storage.MIGRATIONS)
    assert _open(path) == len(storage.MIGRATIONS)


def test_ledger_init_creates_or_replaces_an_empty_file_only(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "ledger.db"
    path.write_bytes(b"")
    assert main(["ledger", "init", "--database", f"sqlite:///{path}"]) == 0
    assert f"created the ledger {path}" in capsys.readouterr().out
    assert _open(path) == len(storage.MIGRATIONS)
    assert main(["ledger", "init", "--database", f"sqlite:///{path}"]) == 0
    assert "already an mm_litellm ledger" in capsys.readouterr().out
    other = tmp_path / "other.db"
    other.write_text("not a database")
    with pytest.raises(SystemExit):
        main(["ledger", "init", "--database", f"sqlite:///{other}"])
    assert "is not a SQLite database" in capsys.readouterr().err
