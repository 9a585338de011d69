"""Normalisers for voting: reduce an answer to the value that is compared (``None``: no value).

``number`` takes the final number (``#### 42``, ``\\boxed{42}``, "the answer is 42", else the
last number), ``label`` a choice letter or a one-word label, ``json`` a JSON value in canonical
form, ``text`` the trimmed, case-folded text. Any ``package.module:function`` taking the answer
text and returning a string (or ``None``) can be named instead.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

__all__ = ["NORMALISERS", "Normaliser", "extract_json", "json_value", "label", "normaliser", "number", "text"]

Normaliser = Callable[[str], str | None]

_NUMBER = r"-?\$?\s?\d[\d,]*(?:\.\d+)?|-?\.\d+"
_FINAL_MARKERS = (
    re.compile(r"####\s*(" + _NUMBER + ")"),
    re.compile(r"\\boxed\{\s*(" + _NUMBER + r")\s*\}"),
    re.compile(r"(?:final answer|the answer|answer)\s*(?:is|:|=)?\s*\**\s*(" + _NUMBER + ")", re.IGNORECASE),
)


def number(answer: str) -> str | None:
    """The final number of a (maths) answer, canonical: ``"1,000.50"`` -> ``"1000.5"``."""
    for pattern in _FINAL_MARKERS:
        found = pattern.findall(answer)
        if found:
            return _canonical_number(found[-1])
    found = re.findall(_NUMBER, answer)
    return _canonical_number(found[-1]) if found else None


def _canonical_number(raw: str) -> str | None:
    cleaned = raw.replace(",", "").replace("$", "").replace(" ", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")


_CHOICE_PATTERNS = (
    re.compile(r"(?:answer|choice|option)\s*(?:is|:)?\s*\(?\**\s*([A-Ja-j])\b\)?", re.IGNORECASE),
    re.compile(r"^\s*\(?\**([A-Ja-j])\**\)?\s*(?:[.):]|$)"),
)


def label(answer: str) -> str | None:
    """A choice letter (``"The answer is (B)."`` -> ``"B"``) or a one-word label, case-folded."""
    for pattern in _CHOICE_PATTERNS:
        match = pattern.search(answer)
        if match:
            return match.group(1).upper()
    words = re.findall(r"[\w-]+", answer)
    return words[0].casefold() if words else None


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def extract_json(answer: str) -> object:
    """The JSON value in ``answer`` (bare, or in a ```json fence); raises ``ValueError`` if none."""
    candidates = [m.group(1) for m in _FENCE.finditer(answer)] + [answer]
    for candidate in candidates:
        try:
            return json.loads(candidate.strip())
        except json.JSONDecodeError:
            continue
    start = min((i for i in (answer.find("{"), answer.find("[")) if i >= 0), default=-1)
    if start >= 0:
        try:
            value, _end = json.JSONDecoder().raw_decode(answer[start:])
            return value
        except json.JSONDecodeError:
            pass
    raise ValueError("no JSON value found in the answer")


def json_value(answer: str) -> str | None:
    """The answer's JSON value in canonical form (sorted keys), so equal objects vote together."""
    try:
        return json.dumps(extract_json(answer), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return None


def text(answer: str) -> str | None:
    """Trimmed, whitespace-collapsed, case-folded text without a final full stop."""
    cleaned = " ".join(answer.split()).casefold().rstrip(".")
    return cleaned or None


NORMALISERS: dict[str, Normaliser] = {"number": number, "label": label, "json": json_value, "text": text}


def normaliser(name: str) -> Normaliser:
    """The normaliser called ``name``, or the function at ``package.module:function``."""
    if name in NORMALISERS:
        return NORMALISERS[name]
    module_name, sep, attr = name.partition(":")
    if not sep:
        raise ValueError(
            f"unknown normaliser '{name}'; allowed: {', '.join(NORMALISERS)} or 'package.module:function'"
        )
    function = getattr(importlib.import_module(module_name), attr, None)
    if not callable(function):
        raise ValueError(f"normaliser '{name}': '{attr}' is not a function of module '{module_name}'")
    return function  # type: ignore[no-any-return]
