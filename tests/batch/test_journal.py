"""The output journal: each row is in the file at once; fsyncs are grouped, and none is forgotten."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mm_litellm.batch import journal as journal_mod
from mm_litellm.batch.journal import OutputJournal


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(journal_mod.os, "fsync", counting)
    return calls


def test_rows_are_in_the_file_before_any_fsync(tmp_path: Path, fsyncs: list[int]) -> None:
    out = tmp_path / "out.jsonl"
    journal = OutputJournal(out).open()
    journal.write({"index": 0, "id": "a", "ok": True})  # the first row syncs (no sync yet)
    for i in range(1, 200):
        pending = journal.write({"index": i, "id": f"r{i}", "ok": True})
    # every row is readable by another process right away (a SIGKILL now loses nothing)
    assert len(out.read_text().splitlines()) == 200
    assert len(fsyncs) < 5, "fsyncs are grouped, not one per row"
    assert pending, "rows written since the last fsync are reported as pending"
    count = len(fsyncs)
    journal.sync()
    assert len(fsyncs) == count + 1
    journal.sync()  # nothing pending: no fsync
    assert len(fsyncs) == count + 1
    journal.close()


def test_close_syncs_what_is_pending(tmp_path: Path, fsyncs: list[int]) -> None:
    journal = OutputJournal(tmp_path / "out.jsonl").open()
    journal.write({"index": 0, "id": None})
    assert journal.write({"index": 1, "id": None})
    before = len(fsyncs)
    journal.close()
    assert len(fsyncs) == before + 1
    journal.sync()  # after close: a no-op, not an error (a late timer may call it)
    reopened = OutputJournal(tmp_path / "out.jsonl").open()
    assert reopened.done == {"row:0", "row:1"}
    reopened.close()


def test_a_window_passing_syncs_on_the_next_write(
    tmp_path: Path, fsyncs: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [100.0]
    monkeypatch.setattr(journal_mod, "monotonic", lambda: now[0])
    journal = OutputJournal(tmp_path / "out.jsonl").open()
    assert not journal.write({"index": 0, "id": 1})  # synced at once (first row)
    assert journal.write({"index": 1, "id": 2})  # inside the window: pending
    now[0] += journal_mod.SYNC_INTERVAL_S
    assert not journal.write({"index": 2, "id": 3})  # window passed: synced with this row
    assert len(fsyncs) == 2
    journal.close()
    assert [json.loads(line)["id"] for line in (tmp_path / "out.jsonl").read_text().splitlines()] == [1, 2, 3]
