"""A background batch writer: ledger rows and releases reach the store in a few transactions.

Recording a call must cost the caller microseconds, not a database commit. Rows are queued
and a daemon thread settles them in batches (one transaction per batch); :meth:`flush` waits
until everything queued so far is written, and the writer flushes at interpreter exit.

A batch the store refuses is written again item by item, in order: a row that still fails
while the store accepts an empty transaction is the row's fault, and goes to ``quarantine``
(its own table, with the error) instead of blocking the rows behind it. When the store
cannot write at all, nothing is dropped: the items stay queued and are retried with backoff,
:attr:`LedgerWriter.healthy` is False (budget admission reads it to fail closed), and what is
still unwritten at interpreter exit is saved to a JSON-lines file and logged with its path.
Until a row is written its call's reservation keeps counting, so the budget never
under-counts meanwhile.
"""

from __future__ import annotations

import atexit
import json
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from mm_litellm import backoff
from mm_litellm.logs import get_logger

__all__ = ["LedgerWriter"]

log = get_logger(__name__)

IDLE_EXIT_S = 2.0
MAX_BACKOFF_S = 5.0
WRITTEN_KEPT = 100_000
"""Call ids of written rows remembered for :meth:`LedgerWriter.state` (batch durability checks)."""
Item = tuple[str, Any]  # ("row", dict) or ("release", reservation id)
Write = Callable[[list[Mapping[str, Any]], list[Any]], None]
Quarantine = Callable[[Mapping[str, Any], str], None]


class StoreDown(Exception):
    """The store refused an empty transaction too: it cannot write at all (not one row's fault)."""


class LedgerWriter:
    """Queue of ledger rows and reservation releases, written by one daemon thread in batches."""

    def __init__(
        self,
        write: Write,
        *,
        interval_s: float = 0.25,
        max_batch: int = 1000,
        quarantine: Quarantine | None = None,
    ) -> None:
        self._write = write
        self._quarantine = quarantine
        self._interval = interval_s
        self._max_batch = max_batch
        self._items: list[Item] = []
        self._cond = threading.Condition()
        self._queued = 0
        self._done = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._urgent = 0
        """Items up to this count are waited for by a flush: write them without gathering more."""
        self._errors = 0
        self.failing_since: float | None = None
        """``time.monotonic()`` of the first failed write while the store cannot write (else None)."""
        self.last_error: str | None = None
        self.quarantined = 0
        """Rows this writer has quarantined (see the module docstring)."""
        self._positions: dict[str, int] = {}
        """Call id -> its position in the queue, while its row is not written yet."""
        self._written: dict[str, None] = {}
        """Call ids of the most recently written rows (insertion ordered, at most WRITTEN_KEPT)."""
        ref = weakref.ref(self)
        atexit.register(_close_at_exit, ref)

    def submit(self, row: Mapping[str, Any]) -> None:
        """Queue one ledger row (with its ``reservation_id`` to release, if any)."""
        self._put(("row", row))

    def state(self, call_id: str) -> str | None:
        """``"written"``, ``"queued"`` or ``None`` (not seen, or written too long ago to remember)."""
        with self._cond:
            if call_id in self._positions:
                return "queued"
            return "written" if call_id in self._written else None

    def flush_call(self, call_id: str, timeout: float = 30.0) -> bool:
        """Wait until the row of ``call_id`` (queued already) is written; False on timeout or if unknown."""
        with self._cond:
            position = self._positions.get(call_id)
            if position is None:
                return call_id in self._written
            self._urgent = max(self._urgent, position)
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._done >= position, timeout=timeout)

    def release(self, reservation: Any) -> None:
        """Queue a release: a reservation id, or a share of one (``store.Release``)."""
        self._put(("release", reservation))

    def _put(self, item: Item) -> None:
        with self._cond:
            self._items.append(item)
            self._queued += 1
            if item[0] == "row" and isinstance(item[1], Mapping):
                call_id = item[1].get("call_id")
                if isinstance(call_id, str):
                    self._positions.pop(call_id, None)  # keep queue order: a resubmitted id moves last
                    self._positions[call_id] = self._queued
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="mm-litellm-ledger", daemon=True)
                self._thread.start()
            if len(self._items) >= self._max_batch:
                self._cond.notify_all()

    @property
    def healthy(self) -> bool:
        """False while the store cannot write (the last attempt failed and none succeeded since)."""
        return self.failing_since is None

    @property
    def pending(self) -> int:
        """Items queued and not yet written."""
        return self._queued - self._done

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until everything queued before this call is written; False on timeout."""
        with self._cond:
            target = self._queued
            self._urgent = max(self._urgent, target)
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._done >= target, timeout=timeout)

    def close(self, timeout: float = 10.0) -> str | None:
        """Flush and stop the thread (called at exit). What the store would still not take is saved
        to a JSON-lines file (logged); returns its path, or None when everything was written."""
        if self._thread is not None and self._thread.is_alive():
            self.flush(timeout=timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            if self._items and self.failing_since is not None:  # the daemon thread dies with us
                return self._spill()
        return None

    def _run(self) -> None:
        idle = 0.0
        while True:
            with self._cond:
                if not self._items:
                    if self._closed or idle >= IDLE_EXIT_S:  # an idle writer ends; submit restarts it
                        self._thread = None
                        return
                    self._cond.wait(timeout=self._interval)
                    if not self._items:
                        idle += self._interval
                        continue
                idle = 0.0
                # gather a batch for a moment: one transaction per ~interval instead of per call
                # keeps the writer's CPU (and its share of the GIL) small beside the calls; a
                # transaction's fixed cost is ~2 ms, so at 60 calls/s 50 ms batches (3 rows) cost
                # 5% of a proxy's CPU and 250 ms batches (15 rows) about 1%
                self._cond.wait_for(
                    lambda: len(self._items) >= self._max_batch or self._urgent > self._done or self._closed,
                    timeout=self._interval,
                )
                batch = self._items[: self._max_batch]
            handled = self._write_batch(batch)
            if handled < len(batch):  # the store cannot write: keep the rest, retry after a pause
                with self._cond:
                    del self._items[:handled]
                    self._done += handled
                    self._remember_written()
                    self._cond.notify_all()
                    if self._closed:  # close() saved what is left
                        self._thread = None
                        return
                    self._cond.wait(timeout=backoff.delay(self._errors, cap=MAX_BACKOFF_S))
                continue
            if self.failing_since is not None:
                after = round(time.monotonic() - self.failing_since, 3)
                log.info("budget.ledger_writer_recovered", after_s=after)
            self._errors = 0
            self.failing_since = None
            with self._cond:
                del self._items[: len(batch)]
                self._done += len(batch)
                self._remember_written()
                self._cond.notify_all()

    def _remember_written(self) -> None:
        if not self._positions:
            return
        done = []
        for cid, position in self._positions.items():  # queue order: stop at the first still queued
            if position > self._done:
                break
            done.append(cid)
        for cid in done:
            del self._positions[cid]
            self._written[cid] = None
        while len(self._written) > WRITTEN_KEPT:
            del self._written[next(iter(self._written))]

    def _write_batch(self, batch: list[Item]) -> int:
        """Write ``batch``; how many of its leading items are done (all unless the store is down)."""
        rows = [payload for kind, payload in batch if kind == "row"]
        releases = [payload for kind, payload in batch if kind == "release"]
        try:
            self._write(rows, releases)
            return len(batch)
        except Exception as exc:
            first = exc
        log.warning("budget.ledger_batch_failed", error=str(first)[:300], rows=len(rows), splitting=True)
        done = 0
        try:
            for kind, payload in batch:  # in order, one by one: only a prefix may be done
                if kind == "release":
                    self._write([], [payload])
                else:
                    self._write_one(payload)
                done += 1
        except StoreDown as exc:
            self._failed(exc.__cause__ or exc, len(batch) - done)
        except Exception as exc:  # a release the store refuses: the store is in trouble
            self._failed(exc, len(batch) - done)
        return done

    def _write_one(self, row: Mapping[str, Any]) -> None:
        error: Exception | None = None
        for _ in range(2):  # twice: a transient failure between the probe and the row is not the row's
            try:
                self._write([row], [])
                return
            except Exception as exc:
                if _operational(exc):  # locked, disconnected, disk full: the store's trouble
                    raise StoreDown from exc
                error = exc
            try:
                self._write([], [])  # an empty transaction: does the store write at all?
            except Exception as down:
                raise StoreDown from down
        assert error is not None
        text = f"{type(error).__name__}: {error}"[:2000]
        try:
            if self._quarantine is None:
                raise RuntimeError("no quarantine configured") from error
            self._quarantine(row, text)
        except Exception as exc:
            raise StoreDown from exc
        self.quarantined += 1
        log.error("budget.ledger_row_quarantined", call_id=str(row.get("call_id"))[:128], error=text[:300])

    def _failed(self, exc: BaseException, left: int) -> None:
        self._errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:500]
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        log.error(
            "budget.ledger_write_failed", error=self.last_error[:300], pending=left, attempt=self._errors
        )

    def _spill(self) -> str | None:
        """At exit with the store still down: save what is unwritten to a file, loudly (never drop)."""
        items = list(self._items)
        if not items:
            return None
        fd, path = tempfile.mkstemp(prefix=f"mm_litellm-unwritten-{os.getpid()}-", suffix=".jsonl")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            for kind, payload in items:
                out.write(json.dumps({"kind": kind, "item": payload}, default=repr) + "\n")
        log.error(
            "budget.ledger_unwritten_saved",
            items=len(items),
            path=path,
            error=self.last_error,
            hint="the store could not be written before exit; these rows are not in the ledger",
        )
        return path


def _operational(exc: BaseException) -> bool:
    """An error of the database's operation (PEP 249 ``OperationalError``: a lock, a lost connection,
    a full disk), as opposed to one caused by the row's values."""
    return any(cls.__name__ == "OperationalError" for cls in type(exc).__mro__)


def _close_at_exit(ref: weakref.ref[LedgerWriter]) -> None:
    writer = ref()
    if writer is not None:
        writer.close()
