"""The one failure rule of mm_litellm's background writers (ledger, prompt experiments).

A write the database refuses is never dropped: the writer keeps its rows, logs the failure
(every attempt, through :mod:`mm_litellm.logs`) and tries again after :func:`delay`, which grows
exponentially from 50 ms to a cap. Only a row that can never be written (bad data, not a
database outage) leaves the queue, and then it is kept elsewhere and reported (the ledger's
quarantine table).
"""

from __future__ import annotations

__all__ = ["MAX_DELAY_S", "delay"]

MAX_DELAY_S = 5.0


def delay(attempt: int, *, base: float = 0.05, cap: float = MAX_DELAY_S) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, ...): ``base * 2**attempt``, capped."""
    return float(min(base * 2 ** min(max(attempt, 0), 16), cap))
