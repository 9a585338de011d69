"""Voting: every member answers, answers are normalised, the (weighted) majority wins.

Confidence is the winner's share of the usable answers' weight (compared with
``min_agreement`` at two decimals: 2 of 3 is 0.67). A tie, or a winner below
``min_agreement``, follows ``on_disagreement``: fail with the votes, take the plurality
(ties broken by the highest member weight), or ask ``escalate_to`` and take its answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mm_litellm.ensemble.base import Answer, Outcome
from mm_litellm.ensemble.normalise import Normaliser, normaliser
from mm_litellm.ensemble.panel import Panel
from mm_litellm.errors import NoAgreementError
from mm_litellm.policy.ensembles import VotingEnsemble

__all__ = ["Tally", "Voting", "tally"]

_EPS = 1e-9


@dataclass
class Tally:
    """Votes per normalised value, in the order values were first seen."""

    groups: dict[str, list[Answer]] = field(default_factory=dict)
    abstained: list[Answer] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(a.weight for g in self.groups.values() for a in g) + sum(a.weight for a in self.abstained)

    def weight(self, value: str) -> float:
        return sum(a.weight for a in self.groups.get(value, ()))

    def ranked(self) -> list[str]:
        """Values by vote weight, highest first (stable: first seen wins among equals)."""
        return sorted(self.groups, key=lambda v: -self.weight(v))

    def leaders(self) -> list[str]:
        ranked = self.ranked()
        return [v for v in ranked if ranked and abs(self.weight(v) - self.weight(ranked[0])) < _EPS]

    def votes(self) -> dict[str, float]:
        return {v: self.weight(v) for v in self.ranked()}


def tally(answers: list[Answer], extract: Normaliser) -> Tally:
    """Group usable answers by their normalised value; answers with no value abstain."""
    result = Tally()
    for answer in answers:
        value = extract(answer.text or "")
        if value is None:
            result.abstained.append(answer)
        else:
            result.groups.setdefault(value, []).append(answer)
    return result


class Voting:
    """The ``voting`` strategy."""

    def __init__(self, spec: VotingEnsemble) -> None:
        self.spec = spec
        self.extract = normaliser(spec.normalise)

    async def decide(self, panel: Panel) -> Outcome:
        answers = panel.require(await panel.gather())
        votes = tally(answers, self.extract)
        leaders = votes.leaders()
        total = votes.total
        share = votes.weight(leaders[0]) / total if leaders and total else 0.0
        details: dict[str, Any] = {
            "normalise": self.spec.normalise,
            "votes": votes.votes(),
            "voters": {v: [a.label for a in g] for v, g in votes.groups.items()},
            "abstained": [a.label for a in votes.abstained],
            "min_agreement": self.spec.min_agreement,
            "tie": len(leaders) > 1,
        }
        # shares are compared at two decimals, so the seed's 0.67 accepts two votes of three
        if len(leaders) == 1 and round(share, 2) >= self.spec.min_agreement:
            return self._won(leaders[0], votes, share, details, "majority")
        problem = self._problem(leaders, share)
        details["disagreement"] = problem
        if self.spec.on_disagreement == "weight" and leaders:
            winner = max(leaders, key=lambda v: (max(a.weight for a in votes.groups[v]), -leaders.index(v)))
            return self._won(winner, votes, share, details, "weight")
        if self.spec.on_disagreement == "escalate":
            return await self._escalate(panel, votes, details, problem)
        raise NoAgreementError(panel.name, f"{problem}; votes: {_votes_text(votes)}")

    def _problem(self, leaders: list[str], share: float) -> str:
        if not leaders:
            return "no member gave an answer the normaliser could read"
        if len(leaders) > 1:
            return f"tie between {', '.join(repr(v) for v in leaders)}"
        needed = self.spec.min_agreement
        return f"no agreement: the leading answer has {share:.0%} of the votes, {needed:.0%} needed"

    def _won(self, value: str, votes: Tally, share: float, details: dict[str, Any], how: str) -> Outcome:
        group = votes.groups[value]
        best = max(group, key=lambda a: a.weight)  # first of equal weights: member order
        details |= {"winner": value, "resolution": how, "chosen_member": best.label}
        text = value if self.spec.reply == "value" else (best.text or value)
        return Outcome(text=text, confidence=round(share, 6), details=details)

    async def _escalate(self, panel: Panel, votes: Tally, details: dict[str, Any], problem: str) -> Outcome:
        assert self.spec.escalate_to is not None
        answer = await panel.ask_model("escalation", self.spec.escalate_to, panel.messages, role="escalation")
        if not answer.ok:
            raise NoAgreementError(
                panel.name,
                f"{problem}; votes: {_votes_text(votes)}; escalation to '{self.spec.escalate_to}' failed: "
                f"{answer.error_class}: {answer.error}",
                {"escalation": f"{answer.error_class}: {answer.error}"},
            )
        value = self.extract(answer.text or "")
        agreeing = votes.weight(value) if value is not None else 0.0
        share = (agreeing + answer.weight) / (votes.total + answer.weight)
        details |= {
            "winner": value,
            "resolution": "escalated",
            "escalated_to": self.spec.escalate_to,
            "chosen_member": "escalation",
        }
        text = value if (self.spec.reply == "value" and value is not None) else (answer.text or "")
        return Outcome(text=text, confidence=round(share, 6), details=details)


def _votes_text(votes: Tally) -> str:
    parts = [f"{v!r}: {', '.join(a.label for a in g)}" for v, g in votes.groups.items()]
    if votes.abstained:
        parts.append(f"no readable answer: {', '.join(a.label for a in votes.abstained)}")
    return "; ".join(parts) or "(none)"
