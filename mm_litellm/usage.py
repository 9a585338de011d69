"""Python entry points: ``usage_report`` (the numbers behind ``mm-litellm usage``) and ``flush``.

Their imports are lazy, so that ``import mm_litellm`` stays free of SQLAlchemy.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from mm_litellm import runtime
from mm_litellm.errors import ConfigurationError
from mm_litellm.policy.schema import Policy

if TYPE_CHECKING:
    from mm_litellm.budget.report import UsageReport

__all__ = ["flush", "flush_call", "usage_report"]


def usage_report(
    source: Policy | str | None = None,
    *,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    by: str = "model",
) -> UsageReport:
    """Totals, cost and tokens by ``by`` (model, route, user, team, key, tag, day, ...), budget
    use and unpriced calls, from the ledger of ``source`` (a policy, a database URL, or the
    active policy when omitted). ``since``/``until``: ``24h``, ``7d``, or an ISO date/time."""
    from mm_litellm.budget.report import build_report, parse_time
    from mm_litellm.storage import engine_for

    if source is None:
        rt = runtime.current()
        if rt is None:
            raise ConfigurationError(
                "usage_report() needs a policy or a database URL: no policy is configured"
            )
        source = rt.policy
    flush(timeout=2.0)  # rows of calls that just finished; an unread stream must not stall a report
    settings = source.budgets if isinstance(source, Policy) else None
    return build_report(engine_for(source), settings, since=parse_time(since), until=parse_time(until), by=by)


def flush(timeout: float = 10.0) -> bool:
    """Write every ledger row this process has queued (every open policy runtime); True when done."""
    from mm_litellm import runtime

    ok = True
    for rt in runtime.live_runtimes():
        if rt.keeps_ledger:
            ok = rt.budget.flush(timeout) and ok  # type: ignore[union-attr]
    return ok


def flush_call(call_id: str, timeout: float = 30.0) -> bool:
    """Wait until the ledger row of LiteLLM call ``call_id`` is written (durably, in the store).

    The row may not be queued yet (LiteLLM reports a call a moment after it returns): this waits
    for it to appear in one of this process's ledgers, then for its write. True when written;
    also True when no ledger is kept in this process (nothing to wait for); False on timeout.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        services = [rt.budget for rt in runtime.live_runtimes() if rt.keeps_ledger and rt.budget is not None]
        if not services:
            return True
        for service in services:
            state = service.writer.state(call_id)
            if state == "written":
                return True
            if state == "queued":
                return service.writer.flush_call(call_id, max(0.0, deadline - time.monotonic()))
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
