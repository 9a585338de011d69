"""Run one ensemble request: build the panel, let the strategy decide, total the calls.

``run_ensemble`` takes the model-calling function as a parameter (the LiteLLM provider passes
one that goes through the policy's ``litellm.Router``; tests and benchmarks may pass others),
so this module never imports LiteLLM.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mm_litellm.ensemble.base import Answer, CallModel, Messages, Outcome, Strategy
from mm_litellm.ensemble.panel import Panel

__all__ = ["STRATEGIES", "EnsembleResult", "run_ensemble", "strategy_for"]

STRATEGIES: dict[str, str] = {
    "voting": "mm_litellm.ensemble.voting:Voting",
    "ranking": "mm_litellm.ensemble.ranking:Ranking",
    "fusion": "mm_litellm.ensemble.fusion:Fusion",
    "verification": "mm_litellm.ensemble.verification:Verification",
    "synthesis": "mm_litellm.ensemble.synthesis:Synthesis",
}
"""Strategy name (the policy's ``strategy:``) -> ``module:Class`` implementing it."""


def strategy_for(spec: Any) -> Strategy:
    """The strategy object for an ensemble spec (looked up by its ``strategy`` name)."""
    module_name, _, cls_name = STRATEGIES[spec.strategy].partition(":")
    return getattr(importlib.import_module(module_name), cls_name)(spec)  # type: ignore[no-any-return]


@dataclass
class EnsembleResult:
    """The ensemble's answer with every call it made."""

    name: str
    strategy: str
    outcome: Outcome
    answers: list[Answer]

    @property
    def text(self) -> str:
        return self.outcome.text

    @property
    def prompt_tokens(self) -> int:
        return sum(a.prompt_tokens for a in self.answers)

    @property
    def completion_tokens(self) -> int:
        return sum(a.completion_tokens for a in self.answers)

    @property
    def cost(self) -> float | None:
        """Sum of LiteLLM's per-call costs (members, judge, ...); ``None`` if no call was priced."""
        costs = [a.cost for a in self.answers if a.cost is not None]
        return sum(costs) if costs else None

    @property
    def unpriced(self) -> list[str]:
        """Calls that answered but have no LiteLLM price (their cost is not in :attr:`cost`)."""
        return [a.label for a in self.answers if a.text is not None and a.cost is None]

    def details(self) -> dict[str, Any]:
        """Plain data for ``decision_of(response)["ensemble"]``."""
        members = [a for a in self.answers if a.role == "member"]
        return {
            "name": self.name,
            "strategy": self.strategy,
            "confidence": self.outcome.confidence,
            "members": [a.label for a in members],
            "answers": {a.label: a.text for a in self.answers if a.ok},
            "failures": {
                a.label: {"error_class": a.error_class, "error": a.error} for a in self.answers if not a.ok
            },
            "calls": [a.record() for a in self.answers],
            "cost": self.cost,
            "unpriced": self.unpriced,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            **self.outcome.details,
        }


async def run_ensemble(
    name: str,
    spec: Any,
    messages: Messages,
    call: CallModel,
    *,
    capability: Callable[[str], float] | None = None,
) -> EnsembleResult:
    """Answer ``messages`` with the ensemble ``spec``; raises an ``EnsembleError`` when it cannot."""
    panel = Panel(name, spec, messages, call, capability=capability)
    outcome = await strategy_for(spec).decide(panel)
    return EnsembleResult(name, spec.strategy, outcome, panel.answers)
