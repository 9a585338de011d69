"""Fusion: JSON answers merged field by field, with the provenance of every field.

Each top-level field takes the value with the most weight among the members that gave the
field (weight: the member's ``weight``, or the number the answer itself reports in
``confidence_field``); equal weights go to the member listed first. An answer that is not a
JSON object counts as a failed member (``InvalidJSON``), so the quorum is checked after parsing.
"""

from __future__ import annotations

import json
from typing import Any

from mm_litellm.ensemble.base import Answer, Outcome
from mm_litellm.ensemble.normalise import extract_json
from mm_litellm.ensemble.panel import Panel
from mm_litellm.policy.ensembles import FusionEnsemble

__all__ = ["Fusion", "merge"]


def merge(objects: list[tuple[str, dict[str, Any], float]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Weighted majority per field of ``(label, object, weight)``; returns (merged, provenance)."""
    merged: dict[str, Any] = {}
    provenance: dict[str, Any] = {}
    fields = list(dict.fromkeys(key for _label, obj, _w in objects for key in obj))
    for field in fields:
        options: dict[str, dict[str, Any]] = {}
        for label, obj, weight in objects:
            if field not in obj:
                continue
            key = json.dumps(obj[field], sort_keys=True)
            option = options.setdefault(key, {"value": obj[field], "members": [], "weight": 0.0})
            option["members"].append(label)
            option["weight"] += weight
        total = sum(o["weight"] for o in options.values())
        best = max(options.values(), key=lambda o: o["weight"])  # first seen among equals
        merged[field] = best["value"]
        provenance[field] = {
            "value": best["value"],
            "members": best["members"],
            "share": round(best["weight"] / total, 6) if total else 0.0,
            "alternatives": [
                {"value": o["value"], "members": o["members"]} for o in options.values() if o is not best
            ],
        }
    return merged, provenance


class Fusion:
    """The ``fusion`` strategy."""

    def __init__(self, spec: FusionEnsemble) -> None:
        self.spec = spec

    async def decide(self, panel: Panel) -> Outcome:
        answers = await panel.gather()
        objects: list[tuple[str, dict[str, Any], float]] = []
        for answer in answers:
            if not answer.ok:
                continue
            parsed = _object(answer)
            if parsed is not None:
                objects.append((answer.label, parsed, self._weight(answer, parsed)))
        panel.require(answers)
        merged, provenance = merge(objects)
        shares = [p["share"] for p in provenance.values()]
        confidence = round(sum(shares) / len(shares), 6) if shares else 0.0
        details = {
            "weight_by": self.spec.weight_by,
            "fields": provenance,
            "invalid_json": [a.label for a in answers if a.error_class == "InvalidJSON"],
        }
        return Outcome(text=json.dumps(merged), confidence=confidence, details=details)

    def _weight(self, answer: Answer, obj: dict[str, Any]) -> float:
        if self.spec.weight_by == "confidence":
            value = obj.get(self.spec.confidence_field)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                return float(value)
        return answer.weight


def _object(answer: Answer) -> dict[str, Any] | None:
    try:
        value = extract_json(answer.text or "")
    except ValueError:
        answer.reject("InvalidJSON", "the answer is not valid JSON")
        return None
    if not isinstance(value, dict):
        answer.reject("InvalidJSON", f"the answer is JSON {type(value).__name__}, not an object")
        return None
    return value
