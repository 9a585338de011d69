"""A rule's ``when:`` mapping, validated and compiled once into fast predicates.

Grammar (all keys of one mapping must hold)::

    when:
      has_images: true                    # equality with a fact
      input_tokens: {gt: 50000}           # operators: eq ne in not_in gt gte lt lte contains exists matches
      priority: {in: [high, urgent]}
      metadata.customer.plan: premium     # any path into the request's metadata
      any: [{priority: high}, {budget_mode: false}]   # at least one sub-mapping holds
      not: {stream: true}                 # the sub-mapping does not hold

A fact that is missing (``None``) satisfies only ``exists: false``, ``ne`` and ``not_in``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mm_litellm.policy.facts import FACTS

RequestFeatures = Any
"""What a condition reads: ``mm_litellm.routing.features.RequestFeatures`` (a fact per attribute)."""

__all__ = ["OPERATORS", "Check", "Condition", "ConditionError", "compile_when"]

Predicate = Callable[[RequestFeatures], bool]

OPERATORS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "exists", "matches")
_NUMERIC = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
_SYMBOL = {"eq": "==", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_MISSING = object()


class ConditionError(ValueError):
    """A ``when:`` entry is invalid; ``loc`` is its path inside the ``when`` mapping."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        self.loc = loc
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Check:
    """One test of one fact, with a readable description for explain output."""

    fact: str
    op: str
    value: Any
    get: Callable[[RequestFeatures], Any]
    test: Callable[[Any], bool]

    def __call__(self, features: RequestFeatures) -> bool:
        return self.test(self.get(features))

    def describe(self, features: RequestFeatures) -> str:
        actual = self.get(features)
        shown = "missing" if actual is None else repr(actual)
        return f"{self.fact}={shown} {_SYMBOL.get(self.op, self.op)} {self.value!r}"


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled ``when:``: ``matches(features)`` is the fast path, ``explain`` says why."""

    checks: tuple[Check | Condition, ...]
    mode: str = "all"  # all | any | not
    matches: Predicate = lambda _f: True

    def explain(self, features: RequestFeatures) -> tuple[bool, list[str]]:
        """Whether it holds, and one line per check with its outcome."""
        lines: list[str] = []
        results = []
        for check in self.checks:
            if isinstance(check, Condition):
                ok, sub = check.explain(features)
                if check.mode == "all" and len(sub) == 1:
                    lines.append(sub[0])  # a one-test branch of any/not reads best bare
                else:
                    label = "" if check.mode == "all" else check.mode
                    lines.append(f"{label}({'; '.join(sub)}) -> {'yes' if ok else 'no'}")
            else:
                ok = check(features)
                lines.append(f"{check.describe(features)} -> {'yes' if ok else 'no'}")
            results.append(ok)
        if self.mode == "any":
            return any(results), lines
        if self.mode == "not":
            return not all(results), lines
        return all(results), lines


def compile_when(when: Mapping[str, Any], *, facts: Mapping[str, str] = FACTS) -> Condition:
    """Validate and compile a ``when:`` mapping. Raises :class:`ConditionError` naming the key."""
    return _compile_mapping(when, (), "all", facts)


def _compile_mapping(when: Any, loc: tuple[str | int, ...], mode: str, facts: Mapping[str, str]) -> Condition:
    if not isinstance(when, Mapping):
        raise ConditionError(loc, "must be a mapping of fact: test")
    checks: list[Check | Condition] = []
    for key, spec in when.items():
        key = str(key)
        if key == "any":
            if not isinstance(spec, Sequence) or isinstance(spec, str) or not spec:
                raise ConditionError((*loc, key), "'any' takes a non-empty list of conditions")
            subs = tuple(_compile_mapping(s, (*loc, key, i), "all", facts) for i, s in enumerate(spec))
            checks.append(_combine(subs, "any"))
        elif key == "not":
            checks.append(_combine((_compile_mapping(spec, (*loc, key), "all", facts),), "not"))
        else:
            checks.extend(_compile_fact(key, spec, (*loc, key), facts))
    return _combine(tuple(checks), mode)


def _combine(checks: tuple[Check | Condition, ...], mode: str) -> Condition:
    fns = tuple(c.matches if isinstance(c, Condition) else c for c in checks)
    matches: Callable[[RequestFeatures], bool]
    if mode == "any":

        def any_of(f: RequestFeatures) -> bool:
            return any(fn(f) for fn in fns)

        matches = any_of
    elif mode == "not":
        inner = fns[0]

        def negated(f: RequestFeatures) -> bool:
            return not inner(f)

        matches = negated
    elif len(fns) == 1:
        matches = fns[0]
    else:

        def all_of(f: RequestFeatures) -> bool:
            return all(fn(f) for fn in fns)

        matches = all_of
    return Condition(checks=checks, mode=mode, matches=matches)


def _getter(
    key: str, loc: tuple[str | int, ...], facts: Mapping[str, str]
) -> Callable[[RequestFeatures], Any]:
    if key.startswith("metadata."):
        path = tuple(key.split(".")[1:])
        if not all(path):
            raise ConditionError(loc, f"'{key}' is not a valid metadata path")

        def get(f: RequestFeatures) -> Any:
            value: Any = f.metadata
            for part in path:
                if not isinstance(value, Mapping):
                    return None
                value = value.get(part)
            return value

        return get
    if key not in facts:
        raise ConditionError(
            loc, f"unknown fact '{key}'; allowed: {', '.join(sorted(facts))}, metadata.<path>, any, not"
        )
    return operator.attrgetter(key)


def _compile_fact(key: str, spec: Any, loc: tuple[str | int, ...], facts: Mapping[str, str]) -> list[Check]:
    get = _getter(key, loc, facts)
    if not isinstance(spec, Mapping):
        return [Check(key, "eq", spec, get, _test("eq", spec, loc))]
    if not spec:
        raise ConditionError(loc, f"empty operator mapping; use one of: {', '.join(OPERATORS)}")
    checks = []
    for op, value in spec.items():
        if op not in OPERATORS:
            raise ConditionError((*loc, str(op)), f"unknown operator '{op}'; allowed: {', '.join(OPERATORS)}")
        checks.append(Check(key, str(op), value, get, _test(str(op), value, (*loc, str(op)))))
    return checks


def _test(op: str, value: Any, loc: tuple[str | int, ...]) -> Callable[[Any], bool]:
    if op == "eq":
        return lambda actual: actual == value
    if op == "ne":
        return lambda actual: actual != value
    if op in ("in", "not_in"):
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise ConditionError(loc, f"'{op}' takes a list")
        members = tuple(value)
        if op == "in":
            return lambda actual: actual is not None and actual in members
        return lambda actual: actual not in members
    if op in _NUMERIC:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConditionError(loc, f"'{op}' takes a number")
        compare = _NUMERIC[op]
        return lambda actual: (
            isinstance(actual, int | float) and not isinstance(actual, bool) and compare(actual, value)
        )
    if op == "contains":
        return lambda actual: isinstance(actual, str | list | tuple | set | frozenset) and value in actual
    if op == "exists":
        if not isinstance(value, bool):
            raise ConditionError(loc, "'exists' takes true or false")
        return lambda actual: (actual is not None) is value
    # matches
    if not isinstance(value, str):
        raise ConditionError(loc, "'matches' takes a regular expression string")
    try:
        pattern = re.compile(value)
    except re.error as exc:
        raise ConditionError(loc, f"invalid regular expression: {exc}") from None
    return lambda actual: isinstance(actual, str) and pattern.search(actual) is not None
