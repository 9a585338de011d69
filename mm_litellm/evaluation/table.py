"""The outcome table: per row, the score and cost of every policy model, ready for fast replay.

Built once per evaluation. A row is kept only when every mapped model has a score and a
price on it, so that the policy and every baseline are compared on exactly the same rows;
the number of rows left out, and why, is reported, never silently lost.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from mm_litellm.evaluation.dataset import Outcome, OutcomeRow, assign_split
from mm_litellm.evaluation.errors import EvaluationError
from mm_litellm.evaluation.prices import PinnedPrices, TokenPrice

__all__ = ["OutcomeTable", "build_table", "select_split"]

FallbackPrice = Callable[[str], TokenPrice | None]
"""Price of a policy model when the pinned table lacks its dataset model (None: unpriced)."""


@dataclass(slots=True)
class OutcomeTable:
    """Scores and costs (USD per request) per policy model, aligned with ``rows``."""

    rows: list[OutcomeRow]
    mapping: dict[str, str]
    """policy model -> dataset model."""
    score: dict[str, list[float]]
    cost: dict[str, list[float]]
    answers: dict[str, list[str | None]] = field(default_factory=dict)
    """The recorded answer text per model (``None`` where none was recorded): the confidence signal."""
    dropped: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self.mapping)

    def __len__(self) -> int:
        return len(self.rows)

    def mean_score(self, model: str) -> float:
        return sum(self.score[model]) / len(self.rows)

    def mean_cost(self, model: str) -> float:
        return sum(self.cost[model]) / len(self.rows)

    def subset(self, keep: Sequence[int]) -> OutcomeTable:
        """The same table restricted to the row indexes ``keep`` (in that order)."""
        return OutcomeTable(
            rows=[self.rows[i] for i in keep],
            mapping=dict(self.mapping),
            score={m: [v[i] for i in keep] for m, v in self.score.items()},
            cost={m: [v[i] for i in keep] for m, v in self.cost.items()},
            answers={m: [v[i] for i in keep] for m, v in self.answers.items()},
            dropped=Counter(self.dropped),
            notes=list(self.notes),
        )


def select_split(
    rows: Sequence[OutcomeRow], split: str, *, seed: int, test_fraction: float, resplit: bool = False
) -> list[OutcomeRow]:
    """Rows of ``split`` (train, test or all). A row's own split wins unless ``resplit``."""
    if split == "all":
        return list(rows)
    if split not in ("train", "test"):
        raise EvaluationError(f"unknown split '{split}'; allowed: train, test, all")
    chosen = []
    for row in rows:
        row_split = (
            row.split if row.split is not None and not resplit else assign_split(row.id, seed, test_fraction)
        )
        if row_split == split:
            chosen.append(row)
    return chosen


def build_table(
    rows: Sequence[OutcomeRow],
    mapping: Mapping[str, str],
    *,
    prices: PinnedPrices | None = None,
    fallback_price: FallbackPrice | None = None,
    default_completion_tokens: int | None = None,
) -> OutcomeTable:
    """Score and price every mapped model on every row; rows missing any of them are dropped."""
    if not mapping:
        raise EvaluationError(
            "no policy model is mapped to a dataset model; give --map POLICY_MODEL=DATASET_MODEL "
            "or 'models:' in the evaluation config"
        )
    present = Counter(m for row in rows for m in row.outcomes)
    missing = [f"{p} -> {d}" for p, d in mapping.items() if d not in present]
    if missing:
        known = ", ".join(sorted(present)) or "(none)"
        raise EvaluationError(
            f"mapped to models the dataset does not have: {', '.join(missing)}; dataset models: {known}"
        )
    resolved: dict[str, TokenPrice | None] = {}

    def price_for(policy_model: str) -> TokenPrice | None:  # looked up only when a row needs it
        if policy_model not in resolved:
            price = prices.get(mapping[policy_model]) if prices is not None else None
            if price is None and fallback_price is not None:
                price = fallback_price(policy_model)
            resolved[policy_model] = price
        return resolved[policy_model]

    table = OutcomeTable(
        rows=[],
        mapping=dict(mapping),
        score={m: [] for m in mapping},
        cost={m: [] for m in mapping},
        answers={m: [] for m in mapping},
    )
    no_completion = 0
    for row in rows:
        scores: list[float] = []
        costs: list[float] = []
        answers: list[str | None] = []
        reason = None
        for policy_model, data_model in mapping.items():
            outcome = row.outcomes.get(data_model)
            if outcome is None:
                reason = f"no outcome for {data_model}"
                break
            if outcome.score is None:
                reason = f"no score for {data_model}"
                break
            cost, guessed = _cost(row, outcome, price_for, policy_model, default_completion_tokens)
            if cost is None:
                raise EvaluationError(_unpriced_message(row, policy_model, data_model, prices))
            no_completion += guessed
            scores.append(outcome.score)
            costs.append(cost)
            answers.append(outcome.answer)
        if reason is not None:
            table.dropped[reason] += 1
            continue
        table.rows.append(row)
        for model, s, c, a in zip(mapping, scores, costs, answers, strict=True):
            table.answers[model].append(a)
            table.score[model].append(s)
            table.cost[model].append(c)
    if no_completion:
        how = (
            f"priced with default_completion_tokens={default_completion_tokens}"
            if default_completion_tokens is not None
            else "priced with 0 completion tokens (set default_completion_tokens in the eval config)"
        )
        table.notes.append(f"{no_completion} outcome(s) recorded no completion tokens; {how}")
    if not table.rows:
        detail = "; ".join(f"{n} {why}" for why, n in table.dropped.most_common()) or "no rows given"
        raise EvaluationError(f"no row has a score for every mapped model ({detail})")
    return table


def _cost(
    row: OutcomeRow,
    outcome: Outcome,
    price_for: Callable[[str], TokenPrice | None],
    policy_model: str,
    default_completion: int | None,
) -> tuple[float | None, int]:
    if outcome.cost_usd is not None:
        return outcome.cost_usd, 0
    prompt_tokens = outcome.prompt_tokens if outcome.prompt_tokens is not None else row.prompt_tokens
    price = price_for(policy_model)
    if price is None or prompt_tokens is None:
        return None, 0
    if outcome.completion_tokens is None:
        return price.cost(prompt_tokens, default_completion or 0), 1
    return price.cost(prompt_tokens, outcome.completion_tokens), 0


def _unpriced_message(
    row: OutcomeRow, policy_model: str, data_model: str, prices: PinnedPrices | None
) -> str:
    where = f"row '{row.id}', model '{data_model}' (policy model '{policy_model}')"
    if prices is None:
        return f"{where}: no cost_usd, and no price: pass --prices FILE or price the policy model"
    return f"{where}: no cost_usd and no price: add it to {prices.path} or give the row prompt_tokens"
