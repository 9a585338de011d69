"""The ledger's quarantine: rows the writer could not write, kept with their error (schema version 3).

The writer moves a row here when the row itself fails while the store works (see
``budget.writer``), so the rows behind it are written; ``mm-litellm usage`` counts them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from mm_litellm.budget.windows import utcnow
from mm_litellm.storage import write_transaction

__all__ = ["quarantine_row"]


def quarantine_row(engine: Engine, row: Any, error: str) -> None:
    """Insert ``row`` (as JSON; values JSON cannot hold as their repr) and ``error`` into
    ``mm_ledger_quarantine``. Its call's hold is left to expire, and be charged at its estimate."""
    call_id = row.get("call_id") if isinstance(row, Mapping) else None
    payload = json.dumps(
        dict(row) if isinstance(row, Mapping) else {"row": row}, default=repr, sort_keys=True
    )
    with write_transaction(engine) as conn, conn.begin():
        conn.execute(
            text("INSERT INTO mm_ledger_quarantine (ts, call_id, error, row_json) VALUES (:ts, :c, :e, :j)"),
            {"ts": utcnow(), "c": None if call_id is None else str(call_id)[:256], "e": error, "j": payload},
        )
