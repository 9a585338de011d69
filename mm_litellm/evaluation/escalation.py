"""Replaying confidence escalation from recorded answers.

Live, the engine answers with its chosen model, scores the answer's confidence and, below the
threshold, asks the next model of the route's chain, until an answer is confident, the chain
ends or the next hop would pass the cost cap. Offline, the recorded answer of each model stands
in for the live one: the same scorer reads it, every hop's recorded cost is paid, and the last
hop's score counts. A row whose current model has no recorded answer has no confidence signal:
it is not escalated, and the report counts it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mm_litellm.evaluation.table import OutcomeTable

__all__ = ["EscalationStats", "replay_escalation"]

Scorer = Callable[[str], float]


@dataclass(slots=True)
class EscalationStats:
    rows_with_chain: int = 0
    escalated: int = 0
    hops: int = 0
    no_signal: int = 0
    capped: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "rows_with_chain": self.rows_with_chain,
            "escalated": self.escalated,
            "hops": self.hops,
            "no_answer_recorded": self.no_signal,
            "stopped_by_cost_cap": self.capped,
        }


def replay_escalation(
    table: OutcomeTable,
    first: Sequence[str],
    chains: Sequence[Sequence[str]],
    score: Scorer,
    threshold: float,
    max_cost_usd: float | None,
    paid: Sequence[float] | None = None,
) -> tuple[list[str], list[float], EscalationStats]:
    """Final model and total cost (USD) per row after escalation, and what happened.

    ``paid`` is what each row already cost (an ensemble's calls); default: its first model's cost.
    """
    finals: list[str] = []
    costs: list[float] = []
    stats = EscalationStats()
    for i, (model, chain) in enumerate(zip(first, chains, strict=True)):
        spent = paid[i] if paid is not None else table.cost[model][i]
        if chain and model in table.cost:
            stats.rows_with_chain += 1
            went = False
            for nxt in chain:
                if nxt not in table.cost:
                    break
                answer = table.answers.get(model, [None] * len(table))[i]
                if answer is None:
                    stats.no_signal += 1
                    break
                if score(answer) >= threshold:
                    break
                if max_cost_usd is not None and spent + table.cost[nxt][i] > max_cost_usd:
                    stats.capped += 1
                    break
                model = nxt
                spent += table.cost[nxt][i]
                stats.hops += 1
                went = True
            stats.escalated += went
        finals.append(model)
        costs.append(spent)
    return finals, costs, stats
