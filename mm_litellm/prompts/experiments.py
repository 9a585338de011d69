"""A/B experiments: sticky assignment of variants, and reports that do not crown noise.

Assignment hashes ``experiment + unit`` with sha256 (never Python's ``hash()``, which is salted
per process), so the same user, key or session gets the same variant in every process and on
every machine, and two experiments split users independently. Without a unit the call is
assigned at random.

The decision rule compares each variant with the control (the first variant): a two-proportion
z-test for success rates, Welch's t-test for scores, two-sided at ``alpha`` divided by the number
of comparisons (Bonferroni), and only once every variant has ``min_samples`` outcomes. Anything
short of that is reported as "no winner yet" with the reason.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import fmean, quantiles
from typing import TYPE_CHECKING

from mm_litellm.policy.prompts import ExperimentSpec
from mm_litellm.prompts.stats import mean_interval, two_proportion_test, welch_test, wilson_interval

if TYPE_CHECKING:
    from mm_litellm.prompts.store import Assignment

__all__ = [
    "Comparison",
    "Decision",
    "ExperimentReport",
    "VariantReport",
    "assign_variant",
    "bucket",
    "build_report",
]


def bucket(experiment: str, unit: str) -> float:
    """A stable number in [0, 1) for ``unit`` within ``experiment`` (first 8 bytes of sha256)."""
    digest = hashlib.sha256(f"{experiment}\x00{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_variant(
    experiment: str, spec: ExperimentSpec, unit: str | None, rng: random.Random | None = None
) -> str:
    """The variant ``unit`` sees in ``experiment``: sticky when ``unit`` is given, random otherwise."""
    point = bucket(experiment, unit) if unit is not None else (rng or random).random()
    total = sum(v.weight for v in spec.variants.values())
    cumulative = 0.0
    names: list[str] = list(spec.variants)
    for name in names:
        cumulative += spec.variants[name].weight / total
        if point < cumulative:
            return name
    return names[-1]  # rounding at the top end


@dataclass(frozen=True)
class VariantReport:
    """One variant's numbers: outcomes, their mean and confidence interval, cost and latency."""

    variant: str
    versions: tuple[int, ...]
    assigned: int
    errors: int
    n: int
    """Calls with an outcome."""
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    cost_usd_mean: float | None
    cost_usd_total: float
    latency_ms_mean: float | None
    latency_ms_p95: float | None


@dataclass(frozen=True)
class Comparison:
    """A variant against the control."""

    variant: str
    difference: float | None
    p_value: float | None
    significant: bool


@dataclass(frozen=True)
class Decision:
    """The verdict: a ``winner`` (a variant name) or ``None``, with the reason in words."""

    winner: str | None
    reason: str
    comparisons: tuple[Comparison, ...] = ()


@dataclass(frozen=True)
class ExperimentReport:
    experiment: str
    prompt: str
    metric: str
    control: str
    variants: tuple[VariantReport, ...]
    decision: Decision
    settings: Mapping[str, float] = field(default_factory=dict)

    def winner_version(self) -> int | None:
        """The version the winning variant served most (what a promotion points the label at)."""
        if self.decision.winner is None:
            return None
        for v in self.variants:
            if v.variant == self.decision.winner and v.versions:
                return v.versions[0]
        return None


def _outcome(row: Assignment, metric: str) -> float | None:
    if metric == "success":
        return None if row.success is None else float(row.success)
    return row.score


def build_report(name: str, spec: ExperimentSpec, rows: Sequence[Assignment]) -> ExperimentReport:
    """Summarise the stored assignments of experiment ``name`` and apply the decision rule."""
    by_variant: dict[str, list[Assignment]] = {v: [] for v in spec.variants}
    for row in rows:
        by_variant.setdefault(row.variant, []).append(row)
    values: dict[str, list[float]] = {}
    reports = []
    for variant, items in by_variant.items():
        vals = [x for x in (_outcome(r, spec.metric) for r in items) if x is not None]
        values[variant] = vals
        reports.append(_variant_report(variant, items, vals, spec.metric))
    control = next(iter(spec.variants))
    decision = decide(spec, control, values)
    return ExperimentReport(
        name,
        spec.prompt,
        spec.metric,
        control,
        tuple(reports),
        decision,
        {"alpha": spec.alpha, "min_samples": spec.min_samples},
    )


def _variant_report(variant: str, items: list[Assignment], vals: list[float], metric: str) -> VariantReport:
    counts: dict[int, int] = {}
    for r in items:
        counts[r.version] = counts.get(r.version, 0) + 1
    versions = tuple(sorted(counts, key=lambda v: -counts[v]))
    if not vals:
        mean = lo = hi = None
    elif metric == "success":
        mean = fmean(vals)
        lo, hi = wilson_interval(int(sum(vals)), len(vals))
    else:
        mean = fmean(vals)
        lo, hi = mean_interval(vals)
    costs = [r.cost_usd for r in items if r.cost_usd is not None]
    latencies = [r.latency_ms for r in items if r.latency_ms is not None]
    p95 = None
    if len(latencies) >= 2:
        p95 = quantiles(latencies, n=20, method="inclusive")[18]
    elif latencies:
        p95 = latencies[0]
    return VariantReport(
        variant,
        versions,
        len(items),
        sum(1 for r in items if r.status == "error"),
        len(vals),
        mean,
        lo,
        hi,
        fmean(costs) if costs else None,
        sum(costs),
        fmean(latencies) if latencies else None,
        p95,
    )


def decide(spec: ExperimentSpec, control: str, values: Mapping[str, Sequence[float]]) -> Decision:
    """Compare every variant with ``control``; declare a winner only on significant evidence."""
    short = [v for v in spec.variants if len(values.get(v, ())) < spec.min_samples]
    if short:
        detail = ", ".join(f"{v}: {len(values.get(v, ()))}" for v in short)
        return Decision(None, f"not enough outcomes yet (need {spec.min_samples} per variant; have {detail})")
    others = [v for v in spec.variants if v != control]
    level = spec.alpha / len(others)
    base = values[control]
    comparisons = []
    for variant in others:
        vals = values[variant]
        if spec.metric == "success":
            _, p = two_proportion_test(int(sum(base)), len(base), int(sum(vals)), len(vals))
        else:
            _, _, p = welch_test(base, vals)
        diff = fmean(vals) - fmean(base)
        comparisons.append(Comparison(variant, diff, p, p < level))
    better = [c for c in comparisons if c.significant and (c.difference or 0) > 0]
    if better:
        best = max(better, key=lambda c: c.difference or 0)
        return Decision(
            best.variant,
            f"'{best.variant}' beats control '{control}' by {best.difference:+.4g} "
            f"(p={best.p_value:.3g} < {level:.3g})",
            tuple(comparisons),
        )
    if comparisons and all(c.significant and (c.difference or 0) < 0 for c in comparisons):
        return Decision(
            control,
            f"control '{control}' beats every other variant (each p < {level:.3g})",
            tuple(comparisons),
        )
    return Decision(
        None, f"no significant difference at alpha={spec.alpha} (corrected: {level:.3g})", tuple(comparisons)
    )
