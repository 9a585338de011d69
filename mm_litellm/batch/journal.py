"""JSONL files for batch runs: reading input rows, and an output file that a rerun resumes.

The output is append-only, one complete JSON line per finished row, each written with a
single ``write`` as soon as the row finishes, so an interrupted run (Ctrl-C, SIGTERM,
SIGKILL, a crash of the process) leaves every finished row in the file and at most one torn
last line, which the next run cuts off before appending. The file is fsynced in groups (at
most every :data:`SYNC_INTERVAL_S`, and on close): a per-row fsync cost more than the call
itself and serialised parallel workers on the disk, and what it added (surviving the loss of
the whole machine) is bounded by the group: those few rows run again on resume, as the
ledger's own commits do (SQLite WAL, ``synchronous=NORMAL``). A row is identified by its ``id`` field when it
has one, else by its position among the input's non-blank lines; a rerun skips every row
whose key is already in the output.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import monotonic
from typing import Any

__all__ = ["SYNC_INTERVAL_S", "InputRow", "OutputJournal", "read_rows", "row_key"]

SYNC_INTERVAL_S = 0.2
"""Longest time a written row waits for its fsync (the group commit's window)."""


@dataclass(frozen=True, slots=True)
class InputRow:
    """One non-blank input line: its position, line number, key, and the parsed request or why not."""

    index: int
    line: int
    key: str
    request: Any
    problem: str | None = None
    """Why the line cannot be run (invalid JSON, duplicate id); the row is then reported as an error."""

    @property
    def id(self) -> str | None:
        return self.key[3:] if self.key.startswith("id:") else None


def row_key(index: int, row_id: Any) -> str:
    """The resume key: ``id:<id>`` for a row with an ``id``, else ``row:<index>``."""
    return f"id:{row_id}" if row_id is not None else f"row:{index}"


def read_rows(path: Path) -> Iterator[InputRow]:
    """Input rows in file order, lazily. Bad lines become rows with a ``problem``, never dropped."""
    first_line: dict[str, int] = {}
    index = 0
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                request = json.loads(text)
            except json.JSONDecodeError as exc:
                yield InputRow(
                    index,
                    number,
                    row_key(index, None),
                    None,
                    f"{path.name}:{number}: not valid JSON ({exc.msg} at column {exc.colno})",
                )
                index += 1
                continue
            row_id = request.get("id") if isinstance(request, Mapping) else None
            key = row_key(index, row_id)
            if row_id is not None and key in first_line:
                yield InputRow(
                    index,
                    number,
                    row_key(index, None),
                    request,
                    f"{path.name}:{number}: duplicate id {row_id!r} (first at line {first_line[key]})",
                )
            else:
                if row_id is not None:
                    first_line[key] = number
                yield InputRow(index, number, key, request)
            index += 1


def count_rows(path: Path) -> int:
    """Non-blank lines of ``path`` (the progress line's total)."""
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


class OutputJournal:
    """The output JSONL of a batch run: finished keys on open, durable appends after."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: set[str] = set()
        self.torn_bytes = 0
        """Bytes of a torn last line cut off when the file was opened (0 when it was whole)."""
        self._fd: int | None = None
        self._unsynced = False
        self._synced_at = 0.0

    def open(self) -> OutputJournal:
        """Read what earlier runs finished, cut a torn last line, and open for appending."""
        if self.path.exists():
            data = self.path.read_bytes()
            good = len(data)
            if data and not data.endswith(b"\n"):
                good = data.rfind(b"\n") + 1
            for number, line in enumerate(data[:good].splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    self.done.add(row_key(row["index"], row.get("id")))
                except (ValueError, KeyError, TypeError) as exc:
                    raise ValueError(
                        f"{self.path}:{number}: not a batch output row ({exc}); "
                        "use a new --output file or repair this one"
                    ) from exc
            if good < len(data):
                self.torn_bytes = len(data) - good
                with self.path.open("r+b") as handle:
                    handle.truncate(good)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self

    def write(self, row: Mapping[str, Any]) -> bool:
        """Append one row as one complete line; fsync when the group's window has passed.

        Returns whether written rows still wait for an fsync (call :meth:`sync` within
        :data:`SYNC_INTERVAL_S` if no further row comes)."""
        if self._fd is None:
            raise RuntimeError("OutputJournal.write before open()")
        data = (json.dumps(row, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.done.add(row_key(row["index"], row.get("id")))
        self._unsynced = True
        if monotonic() - self._synced_at >= SYNC_INTERVAL_S:
            self.sync()
        return self._unsynced

    def sync(self) -> None:
        """fsync what was written (a no-op when nothing is pending)."""
        if self._fd is not None and self._unsynced:
            os.fsync(self._fd)
            self._unsynced = False
            self._synced_at = monotonic()

    def write_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append complete lines for ``rows``, then fsync once (a merge: the rows are durable elsewhere)."""
        if self._fd is None:
            raise RuntimeError("OutputJournal.write_many before open()")
        text = "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows)
        data = text.encode("utf-8")
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)
        self.done.update(row_key(row["index"], row.get("id")) for row in rows)

    def close(self) -> None:
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> OutputJournal:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
