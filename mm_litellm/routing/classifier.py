"""Task type and complexity tier of a request, from regular expressions the policy can edit.

Deliberately a cheap heuristic: the patterns of each task and tier, run over at most the first
and last ``scan_chars`` characters of the request's last user message, so a 100k-token prompt
costs the same as a short one. The patterns are the policy's ``classifier:`` section merged over
the defaults (seed 003's complexity levels).

Most patterns cannot match unless a literal word of theirs is in the text (``\bexplain\b`` needs
"explain"; ``\b(python|rust)\b`` needs one of two). Those literals are read from each pattern
once, and a pattern runs only when one of them occurs in the lower-cased text (a substring search,
far cheaper than a case-insensitive regular expression over the whole text). The answer is the
one the patterns give: the literal test only skips patterns that cannot match. Texts holding one
of the four non-ASCII characters that case-insensitive matching folds to ASCII
letters (U+0130, U+0131, U+017F, U+212A) take the plain path.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

try:  # the regular-expression parser (private, stable since 3.11); without it nothing is gated
    _sre: Any = importlib.import_module("re._constants")
    _sre_parse: Any = importlib.import_module("re._parser")
except ImportError:  # pragma: no cover
    _sre = _sre_parse = None

from mm_litellm.policy.routing import DEFAULT_TASK_PATTERNS, DEFAULT_TIER_PATTERNS, ClassifierSettings
from mm_litellm.policy.types import TIERS

__all__ = ["Classifier", "request_text"]


def _combine(patterns: Sequence[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


_FOLDS_TO_ASCII = re.compile("[\u0130\u0131\u017f\u212a]")
"""Non-ASCII characters that IGNORECASE matches to ASCII letters: texts with them are not gated."""
_MIN_GATE = 2


def required_literals(pattern: str) -> frozenset[str] | None:
    """Lower-case ASCII strings one of which every match of ``pattern`` contains (None: unknown)."""
    if _sre_parse is None:
        return None
    try:
        parsed = _sre_parse.parse(pattern, re.IGNORECASE)
    except Exception:
        return None
    return _required(list(parsed))


def prefix_literals(pattern: str) -> frozenset[str] | None:
    """Lower-case ASCII strings one of which every match of ``pattern`` starts with (None: unknown)."""
    if _sre_parse is None:
        return None
    try:
        parsed = _sre_parse.parse(pattern, re.IGNORECASE)
    except Exception:
        return None
    found = _prefix(list(parsed))
    return _better(None, found)


def _prefix(items: list[Any]) -> frozenset[str] | None:
    run: list[str] = []
    for op, av in items:
        if op is _sre.AT and not run:  # an anchor (\b, ^) consumes nothing
            continue
        if op is _sre.LITERAL:
            run.append(chr(av))
            continue
        if run:
            break
        if op is _sre.SUBPATTERN:
            return _prefix(list(av[-1]))
        if op is _sre.BRANCH:
            parts = [_prefix(list(branch)) for branch in av[1]]
            if parts and all(p is not None for p in parts):
                return frozenset().union(*parts)  # type: ignore[arg-type]
        return None
    return frozenset({"".join(run).lower()}) if run else None


def _is_digit_class(items: list[Any]) -> bool:
    """Whether ``items`` is one element matching only digits (``\\d``, ``[0-9]``)."""
    if len(items) != 1 or items[0][0] is not _sre.IN:
        return False
    members = items[0][1]
    return len(members) == 1 and (
        members[0] == (_sre.CATEGORY, _sre.CATEGORY_DIGIT) or members[0] == (_sre.RANGE, (48, 57))
    )


def digit_start(pattern: str) -> bool | None:
    """True when every match of ``pattern`` starts with a digit; False when it merely contains one;
    None when it need not contain any (then a text without digits cannot be skipped)."""
    if _sre_parse is None:
        return None
    try:
        items = list(_sre_parse.parse(pattern, re.IGNORECASE))
    except Exception:
        return None
    first = True
    for op, av in items:
        if op is _sre.AT and first:
            continue
        body = list(av[2]) if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) and av[0] >= 1 else [(op, av)]
        if _is_digit_class(body):
            return first
        first = False
    return None


def _better(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    if b is None or any(len(x) < _MIN_GATE or not x.isascii() for x in b):
        return a
    if a is None:
        return b
    return b if (min(map(len, b)), -len(b)) > (min(map(len, a)), -len(a)) else a


def _required(items: list[Any]) -> frozenset[str] | None:
    """The best gate of a sequence: a run of literals, or a required group's gate."""
    best: frozenset[str] | None = None
    run: list[str] = []

    def flush() -> None:
        nonlocal best
        if run:
            best = _better(best, frozenset({"".join(run).lower()}))
            run.clear()

    for op, av in items:
        if op is _sre.LITERAL:
            run.append(chr(av))
            continue
        flush()
        if op is _sre.SUBPATTERN:
            best = _better(best, _required(list(av[-1])))
        elif op is _sre.BRANCH:
            parts = [_required(list(branch)) for branch in av[1]]
            if parts and all(p is not None for p in parts):
                best = _better(best, frozenset().union(*parts))  # type: ignore[arg-type]
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None)):
            low, _high, body = av
            if low >= 1:
                best = _better(best, _required(list(body)))
    flush()
    return best


class _Patterns:
    """One task's (or tier's) patterns: any match counts.

    A pattern whose every match starts with one of a few literals is tried only where they occur
    in the lower-cased text (anchored there); one that merely contains a required literal runs
    when it occurs; the rest run as one combined expression. ``lower()`` keeps every position
    for the texts gated (the one character it lengthens, U+0130, is among those that are not).
    """

    __slots__ = ("always", "anchored", "combined", "digits", "gated")

    def __init__(self, patterns: Sequence[str]) -> None:
        self.combined = _combine(patterns)
        anchored: list[tuple[tuple[str, ...], re.Pattern[str]]] = []
        gated: list[tuple[tuple[str, ...], re.Pattern[str]]] = []
        digits: list[tuple[bool, re.Pattern[str]]] = []
        free: list[str] = []
        for pattern in patterns:
            start = prefix_literals(pattern)
            if start is not None:
                anchored.append((tuple(sorted(start)), re.compile(pattern, re.IGNORECASE)))
                continue
            gate = required_literals(pattern)
            if gate is not None:
                gated.append((tuple(sorted(gate)), re.compile(pattern, re.IGNORECASE)))
                continue
            digit = digit_start(pattern)
            if digit is not None:
                digits.append((digit, re.compile(pattern, re.IGNORECASE)))
            else:
                free.append(pattern)
        self.always = _combine(free)
        self.anchored = tuple(anchored)
        self.gated = tuple(gated)
        self.digits = tuple(digits)

    def search(self, text: str, lowered: str | None) -> bool:
        """Whether a pattern matches ``text`` (``lowered``: its lower-case form, None: no gating)."""
        if lowered is None:
            return self.combined is not None and self.combined.search(text) is not None
        for literals, rx in self.anchored:
            for literal in literals:
                at = lowered.find(literal)
                while at >= 0:
                    if rx.match(text, at) is not None:
                        return True
                    at = lowered.find(literal, at + 1)
        for literals, rx in self.gated:
            for literal in literals:
                if literal in lowered:
                    if rx.search(text) is not None:
                        return True
                    break
        if self.digits:
            if lowered.isascii():  # \\d matches other scripts' digits too: ASCII texts only
                first = min((at for d in "0123456789" if (at := lowered.find(d)) >= 0), default=-1)
                if first >= 0:
                    for starts, rx in self.digits:
                        if rx.search(text, first if starts else 0) is not None:
                            return True
            else:
                for _starts, rx in self.digits:
                    if rx.search(text) is not None:
                        return True
        return self.always is not None and self.always.search(text) is not None


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
        self._task_sets = tuple((name, _Patterns(pats)) for name, pats in tasks.items() if pats)
        # Highest tier first: the first tier whose pattern matches is the request's tier.
        self._tier_sets = tuple((name, _Patterns(tiers[name])) for name in reversed(TIERS) if tiers.get(name))
        self._tasks = tuple((name, p.combined) for name, p in self._task_sets)
        self._tiers = tuple((name, p.combined) for name, p in self._tier_sets)
        self._last: tuple[str, str, str | None] | None = None
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

    def _prepared(self, text: str) -> tuple[str, str | None]:
        """The scanned window and its lower-case form (None where gating is not exact)."""
        last = self._last
        if last is not None and last[0] is text:  # task and tier of one request read it once
            return last[1], last[2]
        scanned = self.window(text)
        lowered = None if _FOLDS_TO_ASCII.search(scanned) else scanned.lower()
        self._last = (text, scanned, lowered)
        return scanned, lowered

    def task(self, text: str) -> str:
        """The first task (in declared order) with a matching pattern, else the default task."""
        scanned, lowered = self._prepared(text)
        for name, patterns in self._task_sets:
            if patterns.search(scanned, lowered):
                return name
        return self.default_task

    def tier(self, text: str, input_tokens: int = 0) -> str:
        """The highest tier with a matching pattern (else the default), raised by input size."""
        scanned, lowered = self._prepared(text)
        found: str = self.default_tier
        for name, patterns in self._tier_sets:
            if patterns.search(scanned, lowered):
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
            "task_matches": {n: m.group(0) for n, rx in self._tasks if rx and (m := rx.search(scanned))},
            "tier_matches": {n: m.group(0) for n, rx in self._tiers if rx and (m := rx.search(scanned))},
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
