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


def test_a_ledger_another_process_is_creating_is_waited_for_not_refused(tmp_path: Path) -> None:
    """SQLite leaves a new ledger empty for a moment; a second process starting then (two batch
    workers, two proxy workers) waits for the creator's lock instead of refusing an 'empty' file."""
    import shutil
    import threading
    import time

    ready = tmp_path / "made" / "ledger.db"
    ready.parent.mkdir()
    version = _open(ready)  # what the creator will have written when it lets go
    path = tmp_path / "ledger.db"
    result: dict[str, Any] = {}

    def second_process() -> None:
        try:
            result["version"] = _open(path)
        except Exception as exc:  # the test reads it below
            result["error"] = exc

    with storage.creation_lock(str(path)):  # the creator, mid-way: the file exists, empty
        path.write_bytes(b"")
        waiter = threading.Thread(target=second_process)
        waiter.start()
        time.sleep(0.3)
        assert waiter.is_alive(), result  # waiting, not refusing
        shutil.copyfile(ready, path)  # the creator's schema is in
    waiter.join(10)
    assert result == {"version": version}


def test_processes_starting_together_on_a_new_ledger_all_open_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys\nfrom mm_litellm import storage\n"
        "print(storage.ensure_schema(storage.make_engine('sqlite:///' + sys.argv[1])))"
    )
    for attempt in range(3):
        path = tmp_path / f"ledger-{attempt}.db"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, str(path)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        outcomes = [p.communicate(timeout=60) for p in procs]
        assert all(p.returncode == 0 for p in procs), [err[-500:] for _, err in outcomes]


def test_where_no_lock_file_can_be_made_the_checks_still_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The creation lock is a file beside the ledger; in a folder nobody may write in, a ledger is
    still read, and an empty file is still refused with its own message (not an OSError)."""
    import os

    path = tmp_path / "ledger.db"
    version = _open(path)
    real_open = os.open

    def no_lock_files(name: Any, flags: int, *args: Any) -> int:
        if str(name).endswith(".init-lock"):
            raise PermissionError(13, "Permission denied", str(name))
        return real_open(name, flags, *args)

    monkeypatch.setattr(storage.os, "open", no_lock_files)
    assert storage.schema_version(storage.make_engine(f"sqlite:///{path}")) == version
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(ConfigurationError, match="is an empty file"):
        storage.schema_version(storage.make_engine(f"sqlite:///{empty}"))
