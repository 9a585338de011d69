"""The ensemble's small contract: what a model call returns, what a strategy decides.

A strategy gets a :class:`~mm_litellm.ensemble.panel.Panel` (which calls models and keeps
every call's record) and returns an :class:`Outcome`. Nothing here imports LiteLLM: the
provider in ``integrations/ensemble_provider.py`` turns LiteLLM responses into :class:`Reply`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mm_litellm.ensemble.panel import Panel

__all__ = ["Answer", "CallModel", "Outcome", "Reply", "Strategy"]

Messages = Sequence[dict[str, Any]]


@dataclass(frozen=True)
class Reply:
    """What one model call returned: its text, tokens and LiteLLM's cost of it."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    """LiteLLM's ``response_cost`` of the call; ``None`` when the model is unpriced."""
    model: str = ""
    """The policy model that served the call (after routes and fallbacks)."""


CallModel = Callable[[str, Messages, float, str], Awaitable[Reply]]
"""``call(model, messages, timeout, label)``: one model call through LiteLLM (Router)."""


@dataclass
class Answer:
    """The record of one call an ensemble made: a member, a judge, a validator, ..."""

    label: str
    model: str
    role: str = "member"
    weight: float = 1.0
    text: str | None = None
    error_class: str | None = None
    error: str | None = None
    latency: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    served_by: str = ""

    @property
    def ok(self) -> bool:
        """True when the call answered (and no strategy rejected the answer)."""
        return self.error_class is None and self.text is not None

    def reject(self, error_class: str, error: str) -> None:
        """Count an answer that arrived but is unusable (e.g. invalid JSON) as a failure."""
        self.error_class, self.error = error_class, error

    def record(self) -> dict[str, Any]:
        """The answer as plain data for the response's details."""
        return {
            "member": self.label,
            "model": self.model,
            "served_by": self.served_by or None,
            "role": self.role,
            "weight": self.weight,
            "ok": self.ok,
            "answer": self.text,
            "error_class": self.error_class,
            "error": self.error,
            "latency": round(self.latency, 4),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": self.cost,
        }


@dataclass
class Outcome:
    """What a strategy decided: the final text, a confidence 0..1 and strategy-specific details."""

    text: str
    confidence: float
    details: dict[str, Any] = field(default_factory=dict)


class Strategy(Protocol):
    """One way of turning a panel's answers into one answer."""

    async def decide(self, panel: Panel) -> Outcome:
        """Call the models the strategy needs through ``panel`` and decide the answer."""
        ...
