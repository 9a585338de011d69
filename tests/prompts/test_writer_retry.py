"""The prompt writer follows the ledger writer's rule: a write the database refuses is retried, never dropped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, text

from mm_litellm.prompts.writer import BackgroundWriter


def test_rows_refused_while_the_database_is_down_are_written_when_it_is_back(
    tmp_path: Path, monkeypatch: Any
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("v", String))
    table.metadata.create_all(engine)
    writer = BackgroundWriter(engine, table)
    failures = {"left": 3}
    real_write = writer._write

    def flaky(batch: list[dict[str, Any]]) -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            from sqlalchemy.exc import OperationalError

            raise OperationalError("INSERT", {}, Exception("database is locked"))
        real_write(batch)

    monkeypatch.setattr(writer, "_write", flaky)
    for i in range(5):
        writer.put({"id": i, "v": str(i)})
    assert writer.flush(timeout=10)
    assert failures["left"] == 0
    with engine.connect() as c:
        assert c.execute(text("SELECT COUNT(*) FROM t")).scalar() == 5
