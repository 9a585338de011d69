"""Task type and complexity tier of a request, from regular expressions the policy can edit.

Deliberately a cheap heuristic: one combined regex per task and per tier, run over at most
the first and last ``scan_chars`` characters of the request's last user message, so a
100k-token prompt costs the same as a short one. The patterns are the policy's
``classifier:`` section merged over the defaults (seed 003's complexity levels).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from mm_litellm.policy.routing import DEFAULT_TASK_PATTERNS, DEFAULT_TIER_PATTERNS, ClassifierSettings
from mm_litellm.policy.types import TIERS

__all__ = ["Classifier", "request_text"]


def _combine(patterns: Sequence[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


def _merged(
    defaults: Mapping[str, tuple[str, ...]], overrides: Mapping[str, tuple[str, ...]]
) -> dict[str, tuple[str, ...]]:
    merged = dict(defaults)
    merged.update(overrides)
    return merged


class Classifier:
    """Compiled task and tier patterns; :meth:`task` and :meth:`tier` classify a text."""

    def __init__(self, settings: ClassifierSettings | None = None) -> None:
        settings = settings or ClassifierSettings()
        self.settings = settings
        self.scan_chars = settings.scan_chars
        self.default_task = settings.default_task
        self.default_tier = settings.default_tier
        tasks = _merged(DEFAULT_TASK_PATTERNS, settings.tasks)
        tiers = _merged(DEFAULT_TIER_PATTERNS, settings.tiers)
        self._tasks = tuple((name, rx) for name, pats in tasks.items() if (rx := _combine(pats)) is not None)
        # Highest tier first: the first tier whose pattern matches is the request's tier.
        self._tiers = tuple(
            (name, rx) for name in reversed(TIERS) if (rx := _combine(tiers.get(name, ()))) is not None
        )
        self._tier_rank: dict[str, int] = {name: i for i, name in enumerate(TIERS)}
        self._by_tokens = sorted(
            ((tokens, tier) for tier, tokens in settings.tier_by_tokens.items()), reverse=True
        )

    def window(self, text: str) -> str:
        """The part of ``text`` that is scanned: all of it, or its head and tail."""
        n = self.scan_chars
        if len(text) <= 2 * n:
            return text
        return text[:n] + "\n" + text[-n:]

    def task(self, text: str) -> str:
        """The first task (in declared order) with a matching pattern, else the default task."""
        scanned = self.window(text)
        for name, rx in self._tasks:
            if rx.search(scanned):
                return name
        return self.default_task

    def tier(self, text: str, input_tokens: int = 0) -> str:
        """The highest tier with a matching pattern (else the default), raised by input size."""
        scanned = self.window(text)
        found: str = self.default_tier
        for name, rx in self._tiers:
            if rx.search(scanned):
                found = name
                break
        for tokens, tier in self._by_tokens:
            if input_tokens >= tokens:
                if self._tier_rank[tier] > self._tier_rank[found]:
                    found = tier
                break
        return found

    def explain(self, text: str) -> dict[str, Any]:
        """Which task and tier patterns matched, and on what words (for explain output)."""
        scanned = self.window(text)
        return {
            "scanned_chars": len(scanned),
            "task_matches": {n: m.group(0) for n, rx in self._tasks if (m := rx.search(scanned))},
            "tier_matches": {n: m.group(0) for n, rx in self._tiers if (m := rx.search(scanned))},
        }


def request_text(messages: Sequence[Any] | None) -> str:
    """The text the classifier reads: the last user message (where the task is usually stated)."""
    if not messages:
        return ""
    for message in reversed(messages):
        role = message.get("role") if isinstance(message, Mapping) else getattr(message, "role", None)
        if role not in ("user", None):
            continue
        content = (
            message.get("content") if isinstance(message, Mapping) else getattr(message, "content", None)
        )
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "\n".join(
                str(p.get("text") or "")
                for p in content
                if isinstance(p, Mapping) and p.get("type") == "text"
            )
        return ""
    return ""
