"""Every operator of the ``when:`` grammar, compiled and explained."""

from __future__ import annotations

from typing import Any

import pytest

from mm_litellm.policy.conditions import ConditionError, compile_when
from mm_litellm.routing.features import RequestFeatures


def feats(**kwargs: Any) -> RequestFeatures:
    return RequestFeatures(**kwargs)


@pytest.mark.parametrize(
    ("when", "features", "expected"),
    [
        ({"has_images": True}, {"has_images": True}, True),
        ({"has_images": True}, {}, False),
        ({"input_tokens": {"eq": 10}}, {"input_tokens": 10}, True),
        ({"input_tokens": {"ne": 10}}, {"input_tokens": 11}, True),
        ({"input_tokens": {"ne": 10}}, {"input_tokens": 10}, False),
        ({"input_tokens": {"gt": 10}}, {"input_tokens": 11}, True),
        ({"input_tokens": {"gt": 10}}, {"input_tokens": 10}, False),
        ({"input_tokens": {"gte": 10}}, {"input_tokens": 10}, True),
        ({"input_tokens": {"lt": 10}}, {"input_tokens": 9}, True),
        ({"input_tokens": {"lt": 10}}, {"input_tokens": 10}, False),
        ({"input_tokens": {"lte": 10}}, {"input_tokens": 10}, True),
        ({"input_tokens": {"gt": 10, "lt": 20}}, {"input_tokens": 15}, True),
        ({"input_tokens": {"gt": 10, "lt": 20}}, {"input_tokens": 25}, False),
        ({"max_tokens": {"gt": 10}}, {}, False),  # missing fact never compares
        ({"priority": {"in": ["high", "urgent"]}}, {"metadata": {"priority": "urgent"}}, True),
        ({"priority": {"in": ["high", "urgent"]}}, {}, False),
        ({"priority": {"not_in": ["low"]}}, {}, True),
        ({"priority": {"not_in": ["low"]}}, {"metadata": {"priority": "low"}}, False),
        ({"tags": {"contains": "vip"}}, {"metadata": {"tags": ["a", "vip"]}}, True),
        ({"tags": {"contains": "vip"}}, {"metadata": {"tags": "vip"}}, True),
        ({"tags": {"contains": "vip"}}, {}, False),
        ({"user": {"exists": True}}, {"user": "u1"}, True),
        ({"user": {"exists": False}}, {}, True),
        ({"user": {"matches": "^team-a/"}}, {"user": "team-a/bob"}, True),
        ({"user": {"matches": "^team-a/"}}, {"user": "team-b/bob"}, False),
        ({"metadata.customer.plan": "premium"}, {"metadata": {"customer": {"plan": "premium"}}}, True),
        ({"metadata.customer.plan": "premium"}, {"metadata": {"customer": "x"}}, False),
        ({"metadata.web_search": True}, {}, False),
        ({"any": [{"priority": "high"}, {"budget_mode": True}]}, {"metadata": {"budget_mode": True}}, True),
        ({"any": [{"priority": "high"}, {"budget_mode": True}]}, {}, False),
        ({"not": {"stream": True}}, {"stream": False}, True),
        ({"not": {"stream": True}}, {"stream": True}, False),
        ({"has_tools": True, "json_mode": True}, {"has_tools": True, "json_mode": True}, True),
        ({"has_tools": True, "json_mode": True}, {"has_tools": True}, False),
        ({}, {}, True),
        ({"input_tokens": {"gt": 1}}, {"input_tokens": True}, False),  # booleans are not numbers
    ],
)
def test_operators(when: dict[str, Any], features: dict[str, Any], expected: bool) -> None:
    condition = compile_when(when)
    f = feats(**features)
    assert condition.matches(f) is expected
    assert condition.explain(f)[0] is expected


def test_explain_says_what_was_compared() -> None:
    condition = compile_when({"input_tokens": {"gt": 50000}, "priority": "high"})
    ok, lines = condition.explain(feats(input_tokens=1200, metadata={"priority": "high"}))
    assert ok is False
    assert lines == ["input_tokens=1200 > 50000 -> no", "priority='high' == 'high' -> yes"]
    ok, lines = compile_when({"any": [{"user": {"exists": True}}]}).explain(feats())
    assert lines == ["any(user=missing exists True -> no) -> no"]


@pytest.mark.parametrize(
    ("when", "loc", "message"),
    [
        ({"colour": 1}, ("colour",), "unknown fact 'colour'; allowed: "),
        ({"user": {"like": "x"}}, ("user", "like"), "unknown operator 'like'; allowed: eq, ne, in,"),
        ({"user": {}}, ("user",), "empty operator mapping; use one of: eq,"),
        ({"input_tokens": {"gt": "5"}}, ("input_tokens", "gt"), "'gt' takes a number"),
        ({"input_tokens": {"lte": True}}, ("input_tokens", "lte"), "'lte' takes a number"),
        ({"user": {"in": "abc"}}, ("user", "in"), "'in' takes a list"),
        ({"user": {"exists": "yes"}}, ("user", "exists"), "'exists' takes true or false"),
        ({"user": {"matches": 3}}, ("user", "matches"), "'matches' takes a regular expression string"),
        ({"any": []}, ("any",), "'any' takes a non-empty list of conditions"),
        ({"any": [3]}, ("any", 0), "must be a mapping of fact: test"),
        ({"not": "x"}, ("not",), "must be a mapping of fact: test"),
        ({"metadata.": 1}, ("metadata.",), "'metadata.' is not a valid metadata path"),
    ],
)
def test_invalid_conditions(when: dict[str, Any], loc: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ConditionError) as info:
        compile_when(when)
    assert info.value.loc == loc
    assert str(info.value).startswith(message)
