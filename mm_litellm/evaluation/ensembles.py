"""Replaying ensembles from recorded member answers, through the ensemble package's own strategies.

``run_ensemble`` takes the model-calling function as a parameter; here that function answers
each member call with the model's recorded answer and recorded cost for the row, so the real
strategy (normalisers, votes, quorum, ties, ``on_disagreement``, heuristic ranking) decides.
The row scores what the chosen member scored and pays for every call the strategy made.

Only strategies whose every call asks a model the row's own prompt can be replayed this way:
``voting`` and ``ranking`` with the heuristic scorer. A judge, fusion, verification or
synthesis call asks something else, which no recorded answer can stand in for: record such an
ensemble's own outcome and map it (``--map ensemble/NAME=DATASET_MODEL``) instead.

An ensemble that cannot answer (no agreement, quorum lost) falls back along the route, as it
does live: the first mapped fallback's outcome counts, on top of the members' cost; with no
fallback the request failed and scores 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mm_litellm.errors import EnsembleError
from mm_litellm.evaluation.errors import EvaluationError
from mm_litellm.evaluation.table import OutcomeTable
from mm_litellm.policy.schema import Policy
from mm_litellm.policy.types import TIERS

__all__ = ["EnsembleStats", "check_replayable", "replay_ensembles"]

ENSEMBLE_PREFIX = "ensemble/"


@dataclass(slots=True)
class EnsembleStats:
    rows: int = 0
    failed: int = 0
    fell_back: int = 0
    member_failures: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "ensemble_failed": self.failed,
            "served_by_fallback": self.fell_back,
            "member_calls_without_recorded_answer": self.member_failures,
        }


def check_replayable(policy: Policy, target: str, table: OutcomeTable) -> None:
    """Raise :class:`EvaluationError` saying why ``target`` cannot be replayed, else return."""
    name = target[len(ENSEMBLE_PREFIX) :]
    spec = policy.ensembles.get(name)
    if spec is None:
        raise EvaluationError(f"'{target}' is not an ensemble of the policy")
    strategy = spec.strategy
    if strategy not in ("voting", "ranking") or (
        strategy == "ranking" and getattr(spec, "scorer", "") != "heuristic"
    ):
        raise EvaluationError(
            f"ensemble '{name}' ({strategy}) cannot be replayed from recorded answers: its calls ask models "
            f"more than the prompt; record the ensemble's own outcome and map it: "
            f"--map {target}=DATASET_MODEL"
        )
    models = [m.model for _label, m in spec.labelled_members()]
    escalate_to = getattr(spec, "escalate_to", None)
    if escalate_to:
        models.append(escalate_to)
    unmapped = sorted({m for m in models if m not in table.score})
    if unmapped:
        raise EvaluationError(
            f"ensemble '{name}' calls models with no recorded outcome: {', '.join(unmapped)}; map each with "
            f"--map MODEL=DATASET_MODEL (mapped: {', '.join(table.models)})"
        )


def _capability(policy: Policy, model: str) -> float:
    spec = policy.models.get(model)
    if spec is None:
        return 0.5
    return float(spec.quality) if spec.quality is not None else TIERS.index(spec.tier) / (len(TIERS) - 1)


def replay_ensembles(
    policy: Policy,
    table: OutcomeTable,
    rows: Sequence[int],
    targets: Sequence[str],
    fallbacks: Sequence[Sequence[str]],
    messages: Sequence[Sequence[Any]],
) -> tuple[dict[int, str], dict[int, float], EnsembleStats]:
    """For each row index in ``rows``: the model whose answer the ensemble returned, and the cost paid."""
    from mm_litellm.ensemble.base import Reply
    from mm_litellm.ensemble.runner import run_ensemble

    for target in sorted(set(targets[i] for i in rows)):
        check_replayable(policy, target, table)
    finals: dict[int, str] = {}
    costs: dict[int, float] = {}
    stats = EnsembleStats()

    async def run_all() -> None:
        for i in rows:
            name = targets[i][len(ENSEMBLE_PREFIX) :]

            async def call(model: str, _messages: Any, _timeout: float, _label: str, i: int = i) -> Reply:
                answer = table.answers[model][i]
                if answer is None:
                    stats.member_failures += 1
                    raise LookupError(f"no recorded answer of '{model}' for this row")
                return Reply(text=answer, cost=table.cost[model][i], model=model)

            stats.rows += 1
            try:
                result = await run_ensemble(
                    name,
                    policy.ensembles[name],
                    messages[i],
                    call,
                    capability=lambda m: _capability(policy, m),
                )
            except EnsembleError:
                stats.failed += 1
                spent = sum(table.cost[m.model][i] for _l, m in policy.ensembles[name].labelled_members())
                backup = next((f for f in fallbacks[i] if f in table.score), None)
                if backup is None:
                    finals[i], costs[i] = "", spent
                else:
                    stats.fell_back += 1
                    finals[i], costs[i] = backup, spent + table.cost[backup][i]
                continue
            by_label = {a.label: a.model for a in result.answers}
            chosen = result.outcome.details.get("chosen_member")
            finals[i] = by_label.get(chosen, "") if isinstance(chosen, str) else ""
            costs[i] = sum(a.cost for a in result.answers if a.cost is not None)

    asyncio.run(run_all())
    return finals, costs, stats
