"""A batch's results and metrics: one :class:`BatchItem` per request, in input order.

Seed 004's executor metrics (success rate, latency) plus what a cost-aware batch needs:
percentiles, money and tokens, which models answered, which errors happened, and whether
(and why) the batch stopped early.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mm_litellm.api import RunResult

__all__ = ["BatchItem", "BatchMetrics", "BatchReport", "Status", "percentile"]

Status = Literal["ok", "error", "skipped"]


@dataclass(frozen=True, slots=True)
class BatchItem:
    """The outcome of one request: ``ok`` (with its result), ``error``, or ``skipped``
    (never sent, because the batch stopped first: see :attr:`BatchReport.stopped`)."""

    index: int
    """Position of the request in the input."""
    id: str | None
    status: Status
    result: RunResult | None = None
    error_type: str | None = None
    """The exception's class name (``RateLimitError``, ``BudgetExceeded``, ``InvalidRequest``...)."""
    error: str | None = None
    blocked: bool = False
    """The request was refused by the budget block that stopped the batch (no provider call)."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """One JSONL output row: ``index``, ``id``, ``status``, then ``result`` or the error."""
        row: dict[str, Any] = {"index": self.index, "id": self.id, "status": self.status}
        if self.result is not None:
            row["result"] = self.result.to_dict()
        else:
            row["error_type"] = self.error_type
            row["error"] = self.error
        return row


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class BatchMetrics:
    """Totals over a batch. Latencies are per call (seconds), of successful calls."""

    total: int
    succeeded: int
    failed: int
    skipped: int
    success_rate: float
    """Succeeded / requests that ran (skipped ones excluded); 0.0 when none ran."""
    latency_p50: float | None
    latency_p90: float | None
    latency_p99: float | None
    wall_time: float
    throughput: float
    """Finished calls (ok or error) per second of wall time."""
    total_cost: float
    unpriced: int
    """Successful calls whose model has no price (their cost is unknown, not zero)."""
    input_tokens: int
    output_tokens: int
    per_model: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, items: Sequence[BatchItem], wall_time: float) -> BatchMetrics:
        results = [i.result for i in items if i.result is not None]
        failed = sum(1 for i in items if i.status == "error")
        skipped = sum(1 for i in items if i.status == "skipped")
        ran = len(results) + failed
        latencies = [r.latency for r in results]
        return cls(
            total=len(items),
            succeeded=len(results),
            failed=failed,
            skipped=skipped,
            success_rate=len(results) / ran if ran else 0.0,
            latency_p50=percentile(latencies, 50),
            latency_p90=percentile(latencies, 90),
            latency_p99=percentile(latencies, 99),
            wall_time=wall_time,
            throughput=ran / wall_time if wall_time > 0 else 0.0,
            total_cost=sum(r.cost for r in results if r.cost is not None),
            unpriced=sum(1 for r in results if r.cost is None),
            input_tokens=sum(r.input_tokens or 0 for r in results),
            output_tokens=sum(r.output_tokens or 0 for r in results),
            per_model=dict(Counter(r.model_used for r in results).most_common()),
            errors=dict(Counter(i.error_type or "?" for i in items if i.status == "error").most_common()),
        )

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class BatchReport:
    """Every request's outcome, in input order, with the metrics and the stop reason."""

    items: tuple[BatchItem, ...]
    metrics: BatchMetrics
    stopped: str | None = None
    """Why the batch stopped before running every request (a budget block), else ``None``."""

    @property
    def results(self) -> list[RunResult | None]:
        """Each request's :class:`RunResult`, or ``None`` where it failed or was skipped."""
        return [i.result for i in self.items]

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": self.metrics.to_dict(),
            "stopped": self.stopped,
            "items": [i.to_dict() for i in self.items],
        }

    def summary(self) -> str:
        """A few human-readable lines: counts, latency, money, models, errors, stop reason."""
        m = self.metrics

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value * 1000:.0f}"

        lines = [
            f"{m.total} requests: {m.succeeded} ok, {m.failed} failed, {m.skipped} skipped "
            f"(success rate {m.success_rate:.1%}) in {m.wall_time:.2f} s ({m.throughput:.1f} req/s)",
            f"latency p50/p90/p99: {ms(m.latency_p50)}/{ms(m.latency_p90)}/{ms(m.latency_p99)} ms",
            f"cost: ${m.total_cost:.6f}"
            + (f" (+{m.unpriced} unpriced calls)" if m.unpriced else "")
            + f"; tokens: {m.input_tokens} in, {m.output_tokens} out",
        ]
        if m.per_model:
            lines.append("models: " + ", ".join(f"{k} {v}" for k, v in m.per_model.items()))
        if m.errors:
            lines.append("errors: " + ", ".join(f"{k} {v}" for k, v in m.errors.items()))
        if self.stopped:
            lines.append(f"stopped: {self.stopped}")
        return "\n".join(lines)
