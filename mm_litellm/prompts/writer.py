"""Rows written off the call path: a queue drained by one daemon thread, in batches.

An experiment call's assignment row costs an INSERT and a commit, which is small alone but
measurable next to a call while LiteLLM's own logging threads compete for the same cores
(bench/prompts.py). The call path only enqueues; the thread inserts whatever has queued up in
one transaction. Readers in this process call :meth:`flush` first, so they always see every
row written before; other processes see a row once its batch commits (milliseconds). Rows
still queued at interpreter exit are written by an ``atexit`` hook.
"""

from __future__ import annotations

import atexit
import queue
import threading
import time
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from mm_litellm import backoff
from mm_litellm.logs import get_logger

__all__ = ["BackgroundWriter"]

log = get_logger(__name__)
BATCH = 500


class BackgroundWriter:
    """Inserts rows into ``table`` from a background thread; duplicates (same key) are ignored."""

    def __init__(self, engine: Engine, table: Table) -> None:
        self.engine = engine
        self.table = table
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, row: dict[str, Any]) -> None:
        """Queue ``row`` for insertion (starts the thread on first use)."""
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="mm-litellm-prompt-writer", daemon=True
                    )
                    self._thread.start()
                    atexit.register(self.flush, 10.0)
        self._queue.put(row)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row queued so far is in the database; False (and an error log naming
        how many rows are still queued) when ``timeout`` passes first, e.g. the database is down."""
        if self._thread is None:
            return True
        if timeout is None:
            self._queue.join()
            return True
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        if self._queue.unfinished_tasks:
            log.error("prompts.rows_unwritten", rows=self._queue.unfinished_tasks, table=self.table.name)
            return False
        return True

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            attempt = 0
            while True:  # the shared rule (mm_litellm.backoff): keep the rows, log, retry later
                try:
                    self._write(batch)
                    break
                except SQLAlchemyError as exc:
                    attempt += 1
                    log.error("prompts.write_failed", rows=len(batch), attempt=attempt, error=str(exc)[:300])
                    time.sleep(backoff.delay(attempt))
            for _ in batch:
                self._queue.task_done()

    def _write(self, batch: list[dict[str, Any]]) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(self.table), batch)
        except IntegrityError:  # a duplicate in the batch: insert one by one, skipping duplicates
            for row in batch:
                try:
                    with self.engine.begin() as conn:
                        conn.execute(insert(self.table), [row])
                except IntegrityError:
                    pass
