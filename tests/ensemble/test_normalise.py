"""Voting normalisers: the value an answer is reduced to before votes are counted."""

from __future__ import annotations

import pytest

from mm_litellm.ensemble.normalise import extract_json, json_value, label, normaliser, number, text


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("Step 1: 3 + 4 = 7. Step 2: 7 * 6 = 42.\n#### 42", "42"),
        ("so 5 apples... The answer is $1,250.50", "1250.5"),
        ("\\boxed{18} because 16 - 3 - 4 = 9", "18"),
        ("She pays 3 times 2 = 6 dollars", "6"),
        ("It is -3.0", "-3"),
        ("no digits here", None),
    ],
)
def test_number(answer: str, value: str | None) -> None:
    assert number(answer) == value


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("The answer is (B).", "B"),
        ("**C**) because ...", "C"),
        ("d", "D"),
        ("Positive. The review praises the food.", "positive"),
        ("", None),
    ],
)
def test_label(answer: str, value: str | None) -> None:
    assert label(answer) == value


def test_json_value_is_canonical_and_reads_fences() -> None:
    assert json_value('```json\n{"b": 1, "a": [1, 2]}\n```') == '{"a":[1,2],"b":1}'
    assert json_value('Here: {"a": [1,2], "b": 1} done') == '{"a":[1,2],"b":1}'
    assert json_value("not json") is None
    with pytest.raises(ValueError, match="no JSON value"):
        extract_json("{broken")


def test_text_and_custom_extractor() -> None:
    assert text("  Paris.  ") == text("paris") == "paris"
    assert normaliser("number") is number
    assert normaliser("os.path:basename")("a/b") == "b"
    with pytest.raises(ValueError, match="unknown normaliser 'roman'"):
        normaliser("roman")
