"""The routing decision: which target serves a request, what to fall back to, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mm_litellm.routing.features import RequestFeatures
    from mm_litellm.routing.strategies import Candidate

__all__ = ["Plan", "RuleTrial"]


@dataclass(frozen=True, slots=True)
class RuleTrial:
    """One rule the engine evaluated, for explain output."""

    route: str
    rule: str
    matched: bool
    checks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    """What the policy decided for one request.

    ``target`` is a model alias of the policy (a ``litellm.Router`` model group); ``fallbacks``
    are further groups LiteLLM's Router tries, in order, when the target fails;
    ``escalation`` are the models tried, in order, when the answer looks unsure.
    """

    requested: str
    target: str
    route: str | None = None
    rule: str | None = None
    fallbacks: tuple[str, ...] = ()
    reason: str = ""
    trials: tuple[RuleTrial, ...] = field(default=(), compare=False)
    strategy: str | None = None
    escalation: tuple[str, ...] = ()
    candidates: tuple[Candidate, ...] = field(default=(), compare=False)
    features: RequestFeatures | None = field(default=None, compare=False, repr=False)

    def trace(self) -> dict[str, Any]:
        """The decision as a plain dict (attached to responses and logged)."""
        trace: dict[str, Any] = {
            "requested_model": self.requested,
            "route": self.route,
            "rule": self.rule,
            "model": self.target,
            "fallbacks": list(self.fallbacks),
            "reason": self.reason,
        }
        if self.strategy is not None:
            trace["strategy"] = self.strategy
        if self.escalation:
            trace["escalation_chain"] = list(self.escalation)
        return trace
