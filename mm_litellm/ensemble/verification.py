"""Verification: a generator answers, a validator checks; optionally one regeneration.

The validator is asked for ``{"verdict": "pass"|"fail", "confidence": 0..1, "issues": "..."}``;
a reply that is not JSON is read for ``VERDICT: PASS/FAIL`` (or correct/incorrect) and a
``confidence`` number or percentage. A pass below ``accept_threshold`` is a rejection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mm_litellm.ensemble.base import Outcome
from mm_litellm.ensemble.normalise import extract_json
from mm_litellm.ensemble.panel import Panel
from mm_litellm.errors import EnsembleError, QuorumLostError
from mm_litellm.policy.ensembles import VerificationEnsemble

__all__ = ["Verdict", "Verification", "parse_verdict", "validation_prompt"]


@dataclass(frozen=True)
class Verdict:
    """The validator's judgement of one answer."""

    passed: bool | None
    """``None`` when the reply said neither pass nor fail."""
    confidence: float
    issues: str


def validation_prompt(messages: list[dict[str, Any]], output: str) -> list[dict[str, Any]]:
    """The validator's messages: the original task and the generated output."""
    task = "\n".join(f"{m.get('role')}: {m.get('content')}" for m in messages)
    return [
        {"role": "system", "content": "You check answers for correctness and completeness."},
        {
            "role": "user",
            "content": (
                f"Original task:\n{task}\n\nGenerated output:\n{output}\n\n"
                "Is this output correct and complete? Reply with JSON only: "
                '{"verdict": "pass" or "fail", "confidence": a number from 0 to 1, '
                '"issues": "what is wrong, if anything"}'
            ),
        },
    ]


_VERDICT = re.compile(r"verdict\W*(pass|fail|correct|incorrect)", re.IGNORECASE)
_CONFIDENCE = re.compile(r"confidence\W*(\d+(?:\.\d+)?)\s*(%?)", re.IGNORECASE)


def parse_verdict(text: str) -> Verdict:
    """Read the verdict and confidence from a validator's reply (JSON, else key phrases)."""
    try:
        data = extract_json(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and "verdict" in data:
        verdict = str(data.get("verdict", "")).strip().casefold()
        passed: bool | None = verdict in ("pass", "correct", "yes", "true") if verdict else None
        return Verdict(passed, _unit(data.get("confidence")), str(data.get("issues") or ""))
    match = _VERDICT.search(text)
    if match:
        passed = match.group(1).casefold() in ("pass", "correct")
    elif re.search(r"\b(incorrect|not correct|wrong)\b", text, re.IGNORECASE):
        passed = False
    elif re.search(r"\b(correct|accurate)\b", text, re.IGNORECASE):
        passed = True
    else:
        passed = None
    found = _CONFIDENCE.search(text)
    conf = _unit(float(found.group(1)) / (100 if found.group(2) else 1)) if found else 0.5
    return Verdict(passed, conf, text.strip())


def _unit(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.5
    if number > 1:
        number /= 100 if number <= 100 else number
    return round(min(1.0, max(0.0, number)), 4)


class Verification:
    """The ``verification`` strategy."""

    def __init__(self, spec: VerificationEnsemble) -> None:
        self.spec = spec

    async def decide(self, panel: Panel) -> Outcome:
        spec = self.spec
        rounds: list[dict[str, Any]] = []
        messages = panel.messages
        attempts = 2 if spec.regenerate else 1
        for attempt in range(attempts):
            label = "generator" if attempt == 0 else f"generator#{attempt + 1}"
            generated = await panel.ask(label, spec.generator, messages, role="generator")
            if not generated.ok:
                raise QuorumLostError(
                    panel.name,
                    f"the generator '{spec.generator.model}' failed: {generated.error_class}: "
                    f"{generated.error}",
                    {label: f"{generated.error_class}: {generated.error}"},
                )
            output = generated.text or ""
            checked = await panel.ask(
                "validator" if attempt == 0 else f"validator#{attempt + 1}",
                spec.validator,
                validation_prompt(panel.messages, output),
                role="validator",
            )
            if not checked.ok:
                raise QuorumLostError(
                    panel.name,
                    f"the validator '{spec.validator.model}' failed: {checked.error_class}: {checked.error}",
                    {checked.label: f"{checked.error_class}: {checked.error}"},
                )
            verdict = parse_verdict(checked.text or "")
            accepted = verdict.passed is True and verdict.confidence >= spec.accept_threshold
            rounds.append(
                {
                    "answer": output,
                    "verdict": _word(verdict),
                    "confidence": verdict.confidence,
                    "issues": verdict.issues,
                    "accepted": accepted,
                }
            )
            if accepted:
                return Outcome(output, verdict.confidence, {"rounds": rounds, "accepted": True})
            messages = [
                *panel.messages,
                {"role": "assistant", "content": output},
                {
                    "role": "user",
                    "content": (
                        f"A reviewer rejected this answer. Issues: {verdict.issues or 'not stated'}. "
                        "Answer the original task again, correcting them."
                    ),
                },
            ]
        last = rounds[-1]
        if spec.on_reject == "fail":
            raise EnsembleError(
                panel.name,
                f"the validator rejected the answer after {len(rounds)} round(s): "
                f"{last['issues'] or last['verdict']}",
            )
        # a confident "fail" means little confidence in the answer; a weak "pass" means the weak pass
        confidence = 1 - last["confidence"] if last["verdict"] == "fail" else last["confidence"]
        return Outcome(last["answer"], round(confidence, 4), {"rounds": rounds, "accepted": False})


def _word(verdict: Verdict) -> str:
    return "pass" if verdict.passed is True else "fail" if verdict.passed is False else "unclear"
