"""LedgeredOutput: a row's line is written only after its ledger row, without holding the worker."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from mm_litellm import usage
from mm_litellm.batch.journal import OutputJournal
from mm_litellm.batch.results import LedgeredOutput


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_rows_wait_for_their_ledger_rows_in_one_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    waits: list[list[str]] = []

    def flush_calls(ids: list[str], timeout: float) -> list[str]:
        waits.append(list(ids))
        release.wait(timeout)
        return []

    monkeypatch.setattr(usage, "flush_calls", flush_calls)
    out = tmp_path / "out.jsonl"
    journal = OutputJournal(out).open()
    output = LedgeredOutput(journal, ledger_wait_s=5)
    shown: list[int] = []
    output.add({"index": 0, "id": "a", "call_id": "c0"}, lambda: shown.append(0))  # add() never waits
    await asyncio.sleep(0.05)  # the writer task now waits for c0's ledger row
    for i in (1, 2, 3):
        output.add({"index": i, "id": f"r{i}", "call_id": f"c{i}"}, lambda i=i: shown.append(i))
    await asyncio.sleep(0.05)
    assert out.read_text() == "", "no result line before its ledger row is written"
    release.set()
    assert await output.close(5) == 0
    assert [row["index"] for row in _lines(out)] == [0, 1, 2, 3]
    assert shown == [0, 1, 2, 3]
    assert waits == [["c0"], ["c1", "c2", "c3"]], "rows finished meanwhile wait together"
    journal.close()


async def test_a_late_ledger_row_is_reported_and_the_result_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(usage, "flush_calls", lambda ids, timeout: list(ids))
    journal = OutputJournal(tmp_path / "out.jsonl").open()
    output = LedgeredOutput(journal, ledger_wait_s=0.1)
    output.add({"index": 0, "id": None, "call_id": "slow"})
    output.add({"index": 1, "id": None})  # no call (an invalid row): nothing to wait for
    await output.close(5)
    assert [row["index"] for row in _lines(tmp_path / "out.jsonl")] == [0, 1]
    assert "ledger row of call slow (row 0) is not written" in capsys.readouterr().err
    journal.close()


async def test_a_write_that_fails_is_raised_not_swallowed(tmp_path: Path) -> None:
    journal = OutputJournal(tmp_path / "out.jsonl").open()
    output = LedgeredOutput(journal, ledger_wait_s=1)
    output.add({"id": None})  # no "index": the journal cannot key it
    await asyncio.sleep(0.05)
    with pytest.raises(KeyError):
        output.add({"index": 1, "id": None})
    with pytest.raises(KeyError):
        await output.close(1)
    journal.close()
