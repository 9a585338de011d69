"""Local text signals (no model call): seed 003's confidence indicators, completeness, overlap.

Used by the ``synthesis`` strategy's weighted choice and the ``ranking`` strategy's heuristic
scorer. They are cheap proxies, not judgements: a judge model is the better scorer when the
answers matter.
"""

from __future__ import annotations

import functools
import re

from mm_litellm.routing.confidence import HeuristicScorer

__all__ = ["coherence", "completeness", "confidence", "consensus", "key_terms"]

_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "then",
        "so",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "it",
        "this",
        "that",
        "these",
        "those",
        "i",
        "you",
        "he",
        "she",
        "we",
        "they",
        "not",
        "no",
        "yes",
        "do",
        "does",
        "did",
        "can",
        "could",
        "would",
        "should",
        "will",
        "may",
        "might",
    ]
)


def confidence(text: str) -> float:
    """0..1: the same heuristic escalation uses (seed 003's indicators, refusals, short answers).

    One implementation for the whole product: :class:`mm_litellm.routing.confidence.HeuristicScorer`
    with the default settings.
    """
    return _default_scorer().score(text).score


@functools.cache
def _default_scorer() -> HeuristicScorer:
    return HeuristicScorer()


def completeness(text: str, longest: int) -> float:
    """0..1: the answer's length relative to the longest answer of the panel."""
    return round(min(1.0, len(text.split()) / longest), 4) if longest > 0 else 0.0


def key_terms(text: str) -> set[str]:
    """Content words (lower-case, no stop words, 3+ characters, numbers kept)."""
    return {
        w
        for w in re.findall(r"[a-z0-9][a-z0-9'-]+", text.casefold())
        if (w not in _STOP and len(w) > 2) or w.isdigit()
    }


def consensus(text: str, others: list[str]) -> float:
    """0..1: mean overlap (Jaccard) of this answer's key terms with each other answer's."""
    mine = key_terms(text)
    if not others or not mine:
        return 0.0
    scores = []
    for other in others:
        theirs = key_terms(other)
        union = mine | theirs
        scores.append(len(mine & theirs) / len(union) if union else 0.0)
    return round(sum(scores) / len(scores), 4)


def coherence(text: str) -> float:
    """0..1: penalises empty answers, unfinished sentences and heavy repetition."""
    words = text.split()
    if not words:
        return 0.0
    score = 1.0
    if not text.rstrip().endswith((".", "!", "?", "`", ")", "]", "}", '"')) and len(words) > 12:
        score -= 0.2
    repeated = 1 - len(set(w.casefold() for w in words)) / len(words)
    if len(words) > 20:
        score -= max(0.0, repeated - 0.6)
    return round(max(0.0, score), 4)
