"""One evaluation: a dataset split meets a policy; replay, baselines and curves share the work.

``Evaluation`` loads and prices the rows once, then evaluates any number of policies (a
sweep, a diff, a calibration) over the same table, so every figure is on the same rows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mm_litellm.evaluation.baselines import Baselines, compute_baselines
from mm_litellm.evaluation.config import EvalConfig
from mm_litellm.evaluation.dataset import OutcomeRow, load_dataset
from mm_litellm.evaluation.errors import EvaluationError
from mm_litellm.evaluation.knobs import policy_from_document, set_knob
from mm_litellm.evaluation.metrics import CurvePoint, aiq, apgr, cpt, pgr
from mm_litellm.evaluation.prices import PinnedPrices, TokenPrice, load_pinned_prices
from mm_litellm.evaluation.replay import PolicyResult, Replayer, summarize
from mm_litellm.evaluation.table import OutcomeTable, build_table, select_split
from mm_litellm.policy.schema import Policy

__all__ = ["Evaluation", "Outcome", "resolve_mapping"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """A policy's decisions over the table and their summary (``targets``: the final model per row)."""

    targets: list[str]
    rules: list[str | None]
    result: PolicyResult
    costs: list[float] | None = None
    replayed: dict[str, Any] | None = None
    """Ensemble and escalation statistics, when the policy used them."""


def resolve_mapping(policy: Policy, rows: Sequence[OutcomeRow], explicit: dict[str, str]) -> dict[str, str]:
    """Explicit pairs, plus every policy model whose name (or LiteLLM model name) the dataset has.

    Pairs for models this policy does not declare are skipped (one eval config serves several
    policies); they are listed in the report's notes.
    """
    dataset_models = {m for row in rows for m in row.outcomes}
    mapping: dict[str, str] = {}
    for name, spec in policy.models.items():
        if name in explicit:
            continue
        bare = spec.litellm_model.split("/", 1)[-1]
        if name in dataset_models:
            mapping[name] = name
        elif bare in dataset_models:
            mapping[name] = bare
    targets = set(policy.models) | {f"ensemble/{name}" for name in getattr(policy, "ensembles", {})}
    return {**mapping, **{p: d for p, d in explicit.items() if p in targets}}


class Evaluation:
    """A priced outcome table for one split, evaluated under any number of policies."""

    def __init__(
        self,
        rows: Sequence[OutcomeRow],
        policy: Policy,
        config: EvalConfig,
        *,
        split: str = "test",
        resplit: bool = False,
        data_source: str = "<rows>",
    ) -> None:
        started = time.perf_counter()
        self.config = config
        self.split = split
        self.data_source = data_source
        self.total_rows = len(rows)
        chosen = select_split(
            rows, split, seed=config.seed, test_fraction=config.test_fraction, resplit=resplit
        )
        if not chosen:
            hint = " (the rows carry their own split; --resplit assigns a seeded one)" if not resplit else ""
            raise EvaluationError(f"no rows in split '{split}' of {data_source}{hint}")
        mapping = resolve_mapping(policy, rows, dict(config.models))
        prices_path = config.prices or _beside(data_source, "prices_pinned.json")
        prices: PinnedPrices | None = load_pinned_prices(prices_path) if prices_path else None
        self.prices_source = prices_path
        skipped = sorted(set(config.models) - set(mapping))
        self.table: OutcomeTable = build_table(
            chosen,
            mapping,
            prices=prices,
            fallback_price=_policy_price(policy),
            default_completion_tokens=config.default_completion_tokens,
        )
        if skipped:
            self.table.notes.append(
                f"mapping entries for models this policy does not declare: {', '.join(skipped)}"
            )
        duplicates = getattr(rows, "duplicates", 0)
        if duplicates:
            self.table.notes.append(
                f"{duplicates} row(s) with an id seen before were left out (--dedupe kept the first)"
            )
        self.replayer = Replayer(self.table, metadata_labels=config.metadata_labels, strict=config.strict)
        self.baselines: Baselines = compute_baselines(self.table)
        self.load_seconds = time.perf_counter() - started

    @classmethod
    def from_file(
        cls, data: str | Path, policy: Policy, config: EvalConfig, *, dedupe: bool = False, **kwargs: Any
    ) -> Evaluation:
        started = time.perf_counter()
        rows = load_dataset(data, dedupe=dedupe)
        evaluation = cls(rows, policy, config, data_source=str(data), **kwargs)
        evaluation.load_seconds = time.perf_counter() - started  # reading the file included
        return evaluation

    def route_for(self, policy: Policy, route: str | None) -> str:
        chosen = route or self.config.route or policy.default_route
        if chosen is None:
            raise EvaluationError(
                "no route to replay: pass --route, set route: in the eval config, or default_route"
            )
        return chosen

    def run(self, policy: Policy, route: str | None = None) -> Outcome:
        decided = self.replayer.decide(policy, self.route_for(policy, route))
        targets, rules = list(decided.targets), decided.rules
        costs: list[float] | None = None
        extra: dict[str, Any] = {}
        ensemble_rows = [
            i for i, t in enumerate(targets) if t.startswith("ensemble/") and t not in self.table.score
        ]
        if ensemble_rows:
            from mm_litellm.evaluation.ensembles import replay_ensembles

            finals, paid, stats = replay_ensembles(
                policy, self.table, ensemble_rows, targets, decided.fallbacks, self.replayer.messages()
            )
            costs = [self.table.cost[t][i] if i not in paid else 0.0 for i, t in enumerate(targets)]
            for i in ensemble_rows:
                targets[i], costs[i] = finals[i], paid[i]
            extra["ensembles"] = stats.as_dict()
        chains = [() if i in set(ensemble_rows) else c for i, c in enumerate(decided.chains)]
        if any(chains):
            targets, costs, escalation = self._escalate(policy, targets, chains, costs)
            extra["escalation"] = escalation
        result = summarize(self.table, targets, rules, costs)
        if decided.unserved:
            extra["unserved"] = dict(decided.unserved)
        return Outcome(targets, rules, result, costs, extra or None)

    def _escalate(
        self, policy: Policy, first: list[str], chains: list[tuple[str, ...]], paid: list[float] | None
    ) -> tuple[list[str], list[float], dict[str, Any]]:
        """Confidence escalation replayed from recorded answers with the policy's own scorer."""
        from mm_litellm.evaluation.escalation import replay_escalation
        from mm_litellm.routing.confidence import scorer_for

        settings = policy.escalation
        scorer = scorer_for(settings)
        threshold, max_cost = settings.min_confidence, settings.max_cost
        chains = [chain[: settings.max_hops] for chain in chains]
        finals, costs, stats = replay_escalation(
            self.table, first, chains, lambda text: scorer.score(text).score, threshold, max_cost, paid
        )
        return finals, costs, stats.as_dict() | {"threshold": threshold, "max_cost_usd": max_cost}

    def strong_share(self, result: PolicyResult) -> float:
        """Share of requests answered by the strongest recorded model (under any policy name)."""
        mapping = self.table.mapping
        strongest = mapping[self.baselines.strongest_model]
        return sum(v for m, v in result.share.items() if mapping.get(m) == strongest)

    def point(self, value: object, result: PolicyResult) -> CurvePoint:
        return CurvePoint(value, result.quality, result.cost_per_1k, self.strong_share(result))

    # --- reports -------------------------------------------------------------------------------

    def header(self) -> dict[str, Any]:
        return {
            "data": self.data_source,
            "split": self.split,
            "seed": self.config.seed,
            "test_fraction": self.config.test_fraction,
            "rows_in_file": self.total_rows,
            "rows_evaluated": len(self.table),
            "rows_dropped": dict(self.table.dropped),
            "mapping": self.table.mapping,
            "prices": self.prices_source,
            "notes": list(self.table.notes),
            "metadata_labels": list(self.config.metadata_labels),
        }

    def learned_notes(self, policy: Policy) -> list[str]:
        """What the policy's learned routers were trained on, among the rows evaluated here."""
        if not policy.routers:
            return []
        from mm_litellm.learned.evaluate import trained_overlap

        return trained_overlap(policy, [row.id for row in self.table.rows])

    def report(self, policy: Policy, route: str | None = None) -> dict[str, Any]:
        """The ``policy evaluate`` report: the policy beside every baseline."""
        started = time.perf_counter()
        outcome = self.run(policy, route)
        elapsed = time.perf_counter() - started
        b = self.baselines
        res = outcome.result
        header = self.header()
        header["notes"] = [*header["notes"], *self.learned_notes(policy)]
        for why, n in ((outcome.replayed or {}).get("unserved") or {}).items():
            header["notes"].append(
                f"{n} row(s) the route cannot serve, counted as failed requests (quality 0, no cost; "
                f"--strict stops instead): {why}"
            )
        return {
            **header,
            "policy": policy.source,
            "route": self.route_for(policy, route),
            "result": res.as_dict()
            | self.relative(res.quality, res.cost_per_1k)
            | {"replayed": outcome.replayed},
            "baselines": b.as_dict() | b.matched(res.cost_per_1k),
            "seconds": {"load": round(self.load_seconds, 3), "replay": round(elapsed, 3)},
        }

    def relative(self, quality: float, cost_per_1k: float) -> dict[str, Any]:
        b = self.baselines
        strong_cost = b.strongest.cost_per_1k
        return {
            "pgr": pgr(quality, b.cheapest.quality, b.strongest.quality),
            "quality_vs_strongest": quality / b.strongest.quality if b.strongest.quality else None,
            "cost_vs_strongest": cost_per_1k / strong_cost if strong_cost else None,
        }

    def curve(
        self,
        document: dict[str, Any],
        source: str,
        path: str,
        values: Sequence[Any],
        route: str | None = None,
    ) -> dict[str, Any]:
        """Sweep ``path`` over ``values``; each point is a full replay of the changed policy."""
        started = time.perf_counter()
        points: list[CurvePoint] = []
        rows: list[dict[str, Any]] = []
        base_dir = str(Path(source).parent) if Path(source).is_file() else None
        for value in values:
            policy = policy_from_document(
                set_knob(document, path, value), f"{source} [{path}={value}]", base_dir=base_dir
            )
            res = self.run(policy, route).result
            points.append(self.point(value, res))
            rows.append(
                {"value": value, "quality": res.quality, "cost_per_1k": res.cost_per_1k, "share": res.share}
                | self.relative(res.quality, res.cost_per_1k)
            )
        elapsed = time.perf_counter() - started
        return {
            **self.header(),
            "policy": source,
            "knob": path,
            "points": rows,
            "metrics": self.curve_metrics(points),
            "baselines": self.baselines.as_dict(),
            "seconds": {
                "load": round(self.load_seconds, 3),
                "sweep": round(elapsed, 3),
                "per_point": round(elapsed / max(1, len(values)), 3),
            },
            "_points": points,
        }

    def curve_metrics(self, points: Sequence[CurvePoint]) -> dict[str, Any]:
        """APGR and CPT on both cost axes, and AIQ beside the random router's and the oracle's."""
        b = self.baselines
        qw, qs = b.cheapest.quality, b.strongest.quality
        cw, cs = b.cheapest.cost_per_1k, b.strongest.cost_per_1k

        def norm_cost(p: CurvePoint) -> float:
            return (p.cost_per_1k - cw) / (cs - cw) if cs != cw else 0.0

        def share(p: CurvePoint) -> float:
            return p.strong_share

        def dollars(p: CurvePoint) -> float:
            return p.cost_per_1k

        out: dict[str, Any] = {}
        for name, axis in (("strong_share", share), ("normalized_cost", norm_cost)):
            value, lo, hi = apgr(points, qw, qs, axis)
            out[f"apgr_{name}"] = value
            out[f"apgr_{name}_range"] = [lo, hi]
        for target in (0.5, 0.8):
            pct = int(target * 100)
            out[f"cpt{pct}_strong_share"] = cpt(points, qw, qs, target, share)
            dollars_needed = cpt(points, qw, qs, target, dollars)
            out[f"cpt{pct}_cost_per_1k"] = dollars_needed
            out[f"cpt{pct}_cost_vs_strongest"] = (
                dollars_needed / cs if dollars_needed is not None and cs else None
            )
        pts = [(p.cost_per_1k, p.quality) for p in points]
        out["aiq"] = aiq(pts, cw, cs)
        out["aiq_random"] = aiq([(cw, qw), (cs, qs)], cw, cs)
        out["aiq_oracle"] = aiq([(cw, qw), (b.oracle.cost_per_1k, b.oracle.quality)], cw, cs)
        out["aiq_single_models"] = aiq([(p.cost_per_1k, p.quality) for p in b.singles.values()], cw, cs)
        out["aiq_window"] = [cw, cs]
        return out


def _beside(data_source: str, name: str) -> str | None:
    """A pinned price table lying next to the data file, used when none is named."""
    candidate = Path(data_source).parent / name
    return str(candidate) if Path(data_source).exists() and candidate.is_file() else None


def _policy_price(policy: Policy) -> Any:
    """Price of a policy model from its pricing override or LiteLLM's table.

    LiteLLM's table is read from the file its wheel bundles, without importing LiteLLM (its live
    table when something already imported it).
    """

    def lookup(model: str) -> TokenPrice | None:
        spec = policy.models.get(model)
        if spec is None:
            return None
        if spec.pricing is not None:
            return TokenPrice(spec.pricing.input_per_mtok, spec.pricing.output_per_mtok, "policy pricing")
        from mm_litellm.integrations.bundled_prices import facts_for_commands

        price = facts_for_commands().price(spec)
        if price.input_per_mtok is None:
            return None
        return TokenPrice(
            price.input_per_mtok, price.output_per_mtok or 0.0, f"{price.source}: {spec.litellm_model}"
        )

    return lookup
