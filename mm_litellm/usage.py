"""Python entry points: ``usage_report`` (the numbers behind ``mm-litellm usage``) and ``flush``.

Their imports are lazy, so that ``import mm_litellm`` stays free of SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from mm_litellm import runtime
from mm_litellm.errors import ConfigurationError
from mm_litellm.policy.schema import Policy

if TYPE_CHECKING:
    from mm_litellm.budget.report import UsageReport

__all__ = ["flush", "flush_call", "flush_calls", "usage_report"]


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
    return not flush_calls([call_id], timeout)


def flush_calls(call_ids: Iterable[str], timeout: float = 30.0) -> list[str]:
    """:func:`flush_call` for many calls at once, in one wait: the ids whose rows are still not
    written at ``timeout`` (empty when all are, or when no ledger is kept in this process)."""
    import time

    deadline = time.monotonic() + timeout
    pending = list(dict.fromkeys(call_ids))
    while pending:
        services = [rt.budget for rt in runtime.live_runtimes() if rt.keeps_ledger and rt.budget is not None]
        if not services:
            return []
        states = {cid: [service.writer.state(cid) for service in services] for cid in pending}
        pending = [cid for cid in pending if "written" not in states[cid]]
        queued = [s for i, s in enumerate(services) if any(states[cid][i] == "queued" for cid in pending)]
        if not pending or time.monotonic() >= deadline:
            break
        if queued:  # write everything queued so far (one transaction for all of them), then look again
            for service in queued:
                service.writer.flush(max(0.0, deadline - time.monotonic()))
        else:  # not reported by LiteLLM yet
            time.sleep(0.005)
    return pending
