"""Replay: the real routing engine decides every recorded row, with no provider call.

The request a row stands for (its messages and metadata) is built once, and its features are
computed once per feature-relevant part of the policy and cached, so a sweep over a rule's
threshold re-runs only the rules: that is what keeps 14,000 rows well under a second per policy.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mm_litellm.errors import RoutingError
from mm_litellm.evaluation.errors import EvaluationError
from mm_litellm.evaluation.table import OutcomeTable
from mm_litellm.integrations.bundled_tokens import TokenCounter
from mm_litellm.policy.schema import Policy
from mm_litellm.routing.engine import RoutingEngine
from mm_litellm.routing.features import RequestFeatures

__all__ = ["Decisions", "PolicyResult", "Replayer", "summarize"]

ENSEMBLE_PREFIX = "ensemble/"
FAILED = ""
"""Target of a row whose request failed (an ensemble that could not answer, with no fallback)."""


@dataclass(frozen=True, slots=True)
class Decisions:
    """What the engine planned for every row."""

    targets: list[str]
    rules: list[str | None]
    chains: list[tuple[str, ...]]
    fallbacks: list[tuple[str, ...]]
    unserved: Counter[str] = field(default_factory=Counter)
    """Why rows the route could not serve failed (each is counted as a failed request)."""


@dataclass(frozen=True, slots=True)
class PolicyResult:
    """Quality and cost of one set of decisions over the table's rows."""

    n: int
    quality: float
    cost_per_1k: float
    share: dict[str, float]
    per_task: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "quality": self.quality,
            "cost_per_1k": self.cost_per_1k,
            "share": self.share,
            "rules": self.rules,
            "per_task": self.per_task,
        }


class Replayer:
    """Runs policies over one outcome table; requests and features are built once and cached."""

    def __init__(
        self, table: OutcomeTable, *, metadata_labels: Sequence[str] = (), strict: bool = False
    ) -> None:
        self.table = table
        self.strict = strict
        self._requests: list[tuple[list[Any], dict[str, Any]]] = []
        for row in table.rows:
            metadata = dict(row.metadata)
            for key in metadata_labels:  # labels the caller would know in production, opted in
                if key == "task" and row.task is not None:
                    metadata["task"] = row.task
                elif key in row.labels:
                    metadata[key] = row.labels[key]
            self._requests.append((row.chat(), {"metadata": metadata}))
        self._features: dict[tuple[Any, ...], list[RequestFeatures]] = {}
        self._counts: dict[int, int] = {}
        self.counter = TokenCounter()
        self._facts: Any = None
        self._hashed_ids: Any = None

    def count_tokens(self, messages: Any) -> int:
        """LiteLLM's exact count, once per row: the engine asks only for rows near a threshold.

        Plain chat messages are counted without importing LiteLLM (:mod:`.tokens`).
        """
        key = id(messages)
        count = self._counts.get(key)
        if count is None:
            count = self._counts[key] = self.counter(messages)
        return count

    def engine(self, policy: Policy) -> RoutingEngine:
        """The policy's engine; prices from LiteLLM's bundled table unless LiteLLM is imported."""
        if self._facts is None:
            from mm_litellm.integrations.bundled_prices import facts_for_commands

            self._facts = facts_for_commands()
        return RoutingEngine(policy, counter=self.count_tokens, facts=self._facts)

    def features(
        self, policy: Policy, route: str, engine: RoutingEngine | None = None
    ) -> list[RequestFeatures]:
        """Features of every row as the engine computes them for ``route``.

        Cached per route, classifier settings and token thresholds (what decides an exact
        count), so a sweep that changes neither reuses them, task and tier included.
        """
        engine = engine or self.engine(policy)
        key = (route, _feature_fingerprint(policy), engine.thresholds)
        cached = self._features.get(key)
        if cached is None:
            cached = [engine.features(route, messages, kwargs) for messages, kwargs in self._requests]
            self._features[key] = cached
        return cached

    def decide(self, policy: Policy, route: str) -> Decisions:
        """Per row: the target (a model or an ensemble), the rule, the escalation chain, the fallbacks."""
        engine = self.engine(policy)
        if not engine.handles(route):
            known = ", ".join(sorted(policy.routes)) or "(none)"
            raise EvaluationError(
                f"'{route}' is not a route, alias or model of {policy.source}; routes: {known}"
            )
        plan = engine.plan
        targets: list[str] = []
        rules: list[str | None] = []
        chains: list[tuple[str, ...]] = []
        fallbacks: list[tuple[str, ...]] = []
        rows = self.features(policy, route, engine)
        if policy.routers:  # learned routes: rows their router was trained on get out-of-fold predictions
            from mm_litellm.learned.artifact import id_hash
            from mm_litellm.learned.evaluate import prime_out_of_fold

            if self._hashed_ids is None:
                self._hashed_ids = id_hash([row.id for row in self.table.rows], sort=False)
            prime_out_of_fold(policy, rows, self._hashed_ids)
        unserved: Counter[str] = Counter()
        for features in rows:
            try:
                decided = plan(route, features=features)
            except RoutingError as exc:  # live, the caller gets this error: a failed request
                if self.strict:
                    raise EvaluationError(f"a row the route cannot serve (--strict): {exc}") from exc
                unserved[str(exc)[:300]] += 1
                targets.append(FAILED)
                rules.append(None)
                chains.append(())
                fallbacks.append(())
                continue
            targets.append(decided.target)
            rules.append(decided.rule)
            chains.append(decided.escalation)
            fallbacks.append(decided.fallbacks)
        unmapped = Counter(
            t
            for t in targets
            if t != FAILED and t not in self.table.score and not t.startswith(ENSEMBLE_PREFIX)
        )
        if unmapped:
            shown = ", ".join(f"{m} ({n} rows)" for m, n in unmapped.most_common())
            raise EvaluationError(
                f"the policy routes rows to models with no recorded outcome: {shown}; map each to a dataset "
                f"model with --map MODEL=DATASET_MODEL (mapped: {', '.join(self.table.models)})"
            )
        return Decisions(targets, rules, chains, fallbacks, unserved)

    def messages(self) -> list[list[Any]]:
        """The chat messages of every row (what ensemble members are asked)."""
        return [messages for messages, _kwargs in self._requests]


def _feature_fingerprint(policy: Policy) -> str:
    """The policy's classifier settings: what, besides the route and thresholds, changes features."""
    return json.dumps(policy.classifier.model_dump(mode="json"), sort_keys=True, default=str)


def summarize(
    table: OutcomeTable,
    targets: Sequence[str],
    rules: Sequence[str | None] | None = None,
    costs: Sequence[float] | None = None,
) -> PolicyResult:
    """Mean quality, cost per 1,000 requests, share per model and the per-task breakdown.

    ``costs`` (USD per row) replaces the served model's cost where a row paid for more than one
    call (escalation hops).
    """
    n = len(targets)
    if n != len(table):
        raise EvaluationError(f"{n} decisions for {len(table)} rows")
    score, cost = table.score, table.cost
    total_q = total_c = 0.0
    tasks: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    task_models: dict[str, Counter[str]] = defaultdict(Counter)
    for i, (row, model) in enumerate(zip(table.rows, targets, strict=True)):
        if model == FAILED:
            q, c = 0.0, costs[i] if costs is not None else 0.0
            model = "(failed)"
        else:
            q = score[model][i]
            c = cost[model][i] if costs is None else costs[i]
        total_q += q
        total_c += c
        bucket = tasks[row.task or "(none)"]
        bucket[0] += 1
        bucket[1] += q
        bucket[2] += c
        task_models[row.task or "(none)"][model] += 1
    share = {(m or "(failed)"): k / n for m, k in Counter(targets).most_common()}
    per_task = {
        task: {
            "n": int(k),
            "quality": q / k,
            "cost_per_1k": c / k * 1000,
            "share": {m: v / k for m, v in task_models[task].most_common()},
        }
        for task, (k, q, c) in sorted(tasks.items())
    }
    rule_share = (
        {r or "(route default)": k / n for r, k in Counter(rules).most_common()} if rules is not None else {}
    )
    return PolicyResult(n, total_q / n, total_c / n * 1000, share, per_task, rule_share)
