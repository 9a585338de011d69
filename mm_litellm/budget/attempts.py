"""Attempts of one call: LiteLLM call ids shared by a failed attempt and the call that served.

On the proxy a failed attempt and the retry or fallback that succeeds share one LiteLLM call id;
the ledger keeps every attempt and charges the call that served, once (see :func:`record_attempt`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

__all__ = ["MAX_ATTEMPTS", "record_attempt"]

MAX_ATTEMPTS = 32
"""Failed attempts kept per call id (``<call id>#1`` ...); more are counted as duplicates."""


def record_attempt(
    conn: Connection, row: Mapping[str, Any], insert: Callable[[list[dict[str, Any]]], bool]
) -> bool:
    """A row whose call id is in the ledger already: another attempt of that call, or a duplicate.

    On the proxy a failed attempt and the retry or fallback that succeeds share one LiteLLM
    call id. The call's row under that id is the one that served it: a success takes the id
    over from a failed attempt, which is kept as ``<call id>#<n>``; a failed attempt arriving
    later is recorded as ``<call id>#<n>`` beside it. An event identical to a recorded one
    (same status, deployment, latency and error) is a duplicate and inserts nothing.
    Returns True when a row was inserted (its spend is then counted).
    """
    cid = str(row["call_id"])
    names = [cid, *(f"{cid}#{n}" for n in range(1, MAX_ATTEMPTS + 1))]  # exact ids: index lookups
    known = conn.execute(
        text(
            "SELECT id, call_id, status, deployment, latency_ms, error_class FROM mm_ledger"
            " WHERE call_id IN :ids ORDER BY id"
        ).bindparams(bindparam("ids", expanding=True)),
        {"ids": names},
    ).all()
    signature = (row.get("status"), row.get("deployment"), row.get("latency_ms"), row.get("error_class"))
    if any(tuple(k[2:]) == signature for k in known):
        return False
    main = next((k for k in known if k[1] == cid), None)
    success = row.get("status") == "success"
    if main is not None and main[2] == "success" and success:
        return False  # one call id served twice cannot be: keep the first
    attempt = f"{cid}#{len(known)}"
    if main is None:
        attempt = cid
    elif success:  # the call that served takes the id; the failed attempt moves aside
        conn.execute(text("UPDATE mm_ledger SET call_id = :a WHERE id = :i"), {"a": attempt, "i": main[0]})
        attempt = cid
    moved = {**row, "call_id": attempt}
    return insert([moved])
