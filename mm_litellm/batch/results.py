"""Finished batch rows to the output journal, each only after its call's ledger row is written.

A row's result line is written after its ledger row is in the store, so a crash never leaves a
result unbilled. Waiting for that inside the worker that made the call held its concurrency slot
through a ledger transaction per row; here the workers hand finished rows over and go on, and
one task waits for the ledger rows of everything finished so far in one go (one transaction
for the group), then appends those lines and fsyncs them as a group.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

from mm_litellm.batch.journal import SYNC_INTERVAL_S, OutputJournal

__all__ = ["LedgeredOutput"]


class LedgeredOutput:
    """``add(row)`` returns at once; a task writes rows to ``journal`` once their ledger rows are in."""

    def __init__(self, journal: OutputJournal, *, ledger_wait_s: float) -> None:
        self.journal = journal
        self.ledger_wait_s = ledger_wait_s
        self._queue: asyncio.Queue[tuple[Mapping[str, Any], Callable[[], None] | None]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._sync_timer: asyncio.TimerHandle | None = None

    def add(self, row: Mapping[str, Any], written: Callable[[], None] | None = None) -> None:
        """Queue one finished row (with its ``call_id`` when a call was made); ``written`` is
        called once its line is in the file. Raises what stopped the writing task (a full disk)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._write_rows())
        elif self._task.done() and not self._task.cancelled() and self._task.exception() is not None:
            raise self._task.exception()  # type: ignore[misc]
        self._queue.put_nowait((row, written))

    async def close(self, timeout: float) -> int:
        """Write what is queued (waiting up to ``timeout`` s), stop, fsync; the rows left unwritten."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout)
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._sync_timer is not None:
            self._sync_timer.cancel()
            self._sync_timer = None
        self.journal.sync()
        return self._queue.qsize()

    async def _write_rows(self) -> None:
        from mm_litellm.usage import flush_calls

        while True:
            group = [await self._queue.get()]
            while not self._queue.empty():
                group.append(self._queue.get_nowait())
            try:
                ids = [row["call_id"] for row, _ in group if row.get("call_id")]
                late = set(await asyncio.to_thread(flush_calls, ids, self.ledger_wait_s)) if ids else set()
                for row, written in group:
                    if row.get("call_id") in late:
                        print(
                            f"mm-litellm: the ledger row of call {row['call_id']} (row {row['index']}) "
                            f"is not written after {self.ledger_wait_s:.0f} s; writing its result anyway",
                            file=sys.stderr,
                        )
                    if self.journal.write(row) and self._sync_timer is None:
                        self._sync_timer = asyncio.get_running_loop().call_later(SYNC_INTERVAL_S, self._sync)
                    if written is not None:
                        written()
            finally:
                for _ in group:
                    self._queue.task_done()

    def _sync(self) -> None:
        self._sync_timer = None
        self.journal.sync()
