"""How sure an answer looks: the signal that drives confidence escalation.

The default scorer is seed 003's heuristic (hedging phrases lower the score, assertive ones
raise it, very short answers are unsure) plus refusals, empty answers and, when the provider
returned them, token log-probabilities. Scorers are pluggable: register a factory under a
name with :func:`register_scorer` and name it in the policy (``escalation: {scorer: NAME}``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mm_litellm.errors import ConfigurationError
from mm_litellm.policy.routing import EscalationSettings

__all__ = ["SCORERS", "Confidence", "ConfidenceScorer", "HeuristicScorer", "register_scorer", "scorer_for"]


@dataclass(frozen=True, slots=True)
class Confidence:
    """A score in [0, 1] and the observations that produced it."""

    score: float
    reasons: tuple[str, ...] = ()


class ConfidenceScorer(Protocol):
    """Scores an answer; ``response`` is the LiteLLM response when there is one (for logprobs)."""

    def score(self, text: str, response: Any | None = None) -> Confidence: ...


def _compile(patterns: tuple[str, ...]) -> list[tuple[str, re.Pattern[str]]]:
    return [(p, re.compile(p, re.IGNORECASE)) for p in patterns]


class HeuristicScorer:
    """Seed 003's confidence detector, with refusals and optional log-probabilities.

    Starts at 0.8; each distinct hedging phrase -0.2; each assertive phrase +0.05 (at most
    +0.15); fewer than ``short_answer_words`` words -0.3; a refusal caps the score at 0.2; an
    empty answer is 0. With token log-probabilities the score is averaged with their mean
    probability.
    """

    BASE = 0.8

    def __init__(self, settings: EscalationSettings | None = None) -> None:
        settings = settings or EscalationSettings()
        self._low = _compile(settings.low_confidence)
        self._high = _compile(settings.high_confidence)
        self._refusals = _compile(settings.refusals)
        self._short = settings.short_answer_words

    def score(self, text: str, response: Any | None = None) -> Confidence:
        text = (text or "").strip()
        if not text:
            return Confidence(0.0, ("empty answer",))
        score = self.BASE
        reasons: list[str] = []
        for _pattern, rx in self._low:
            if m := rx.search(text):
                score -= 0.2
                reasons.append(f"hedging: '{m.group(0)}'")
        bonus = 0.0
        for _pattern, rx in self._high:
            if m := rx.search(text):
                bonus += 0.05
                reasons.append(f"assertive: '{m.group(0)}'")
        score += min(bonus, 0.15)
        words = len(text.split())
        if self._short and words < self._short:
            score -= 0.3
            reasons.append(f"short answer ({words} words < {self._short})")
        for _pattern, rx in self._refusals:
            if m := rx.search(text):
                score = min(score, 0.2)
                reasons.append(f"refusal: '{m.group(0)}'")
                break
        mean_p = _mean_token_probability(response)
        if mean_p is not None:
            score = (score + mean_p) / 2
            reasons.append(f"mean token probability {mean_p:.2f}")
        return Confidence(round(min(1.0, max(0.0, score)), 4), tuple(reasons))


def _mean_token_probability(response: Any | None) -> float | None:
    """exp(mean log-probability) of the answer's tokens, when the response carries logprobs."""
    try:
        logprobs = response.choices[0].logprobs  # type: ignore[union-attr]
    except (AttributeError, IndexError, TypeError):
        return None
    content = getattr(logprobs, "content", None)
    if content is None and isinstance(logprobs, dict):
        content = logprobs.get("content")
    if not content:
        return None
    values = []
    for token in content:
        lp = token.get("logprob") if isinstance(token, dict) else getattr(token, "logprob", None)
        if isinstance(lp, int | float):
            values.append(float(lp))
    if not values:
        return None
    return math.exp(sum(values) / len(values))


SCORERS: dict[str, Callable[[EscalationSettings], ConfidenceScorer]] = {"heuristic": HeuristicScorer}
"""Scorer name -> factory taking the policy's ``escalation:`` settings."""


def register_scorer(name: str, factory: Callable[[EscalationSettings], ConfidenceScorer]) -> None:
    """Make ``name`` usable as ``escalation: {scorer: name}``."""
    SCORERS[name] = factory


def scorer_for(settings: EscalationSettings) -> ConfidenceScorer:
    """The scorer the policy names. Raises :class:`ConfigurationError` for an unregistered name."""
    factory = SCORERS.get(settings.scorer)
    if factory is None:
        raise ConfigurationError(
            f"escalation.scorer: unknown confidence scorer '{settings.scorer}'; registered: "
            f"{', '.join(sorted(SCORERS))} (add one with mm_litellm.routing.confidence.register_scorer)"
        )
    return factory(settings)
