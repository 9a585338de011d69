"""Ranking: every member answers, each answer is scored, the best-scored answer wins.

The scorer is a judge model (asked for a 0-10 score per criterion, as JSON) or a local
heuristic. All scores are returned. If the judge fails or its reply cannot be read, the
heuristic scores are used and the judge's failure is kept in the details.
"""

from __future__ import annotations

import json
from typing import Any

from mm_litellm.ensemble import heuristics
from mm_litellm.ensemble.base import Answer, Outcome
from mm_litellm.ensemble.normalise import extract_json
from mm_litellm.ensemble.panel import Panel
from mm_litellm.policy.ensembles import RankingEnsemble

__all__ = ["Ranking", "heuristic_scores", "judge_prompt", "parse_judge"]

_RUBRIC = {
    "coherence": "clear, well organised and internally consistent",
    "accuracy": "factually and logically correct for the question",
    "completeness": "answers every part of the question",
}


def heuristic_scores(answers: list[Answer], criteria: tuple[str, ...]) -> list[dict[str, float]]:
    """0..1 per criterion from local signals (no model call)."""
    texts = [a.text or "" for a in answers]
    longest = max((len(t.split()) for t in texts), default=0)
    scores = []
    for i, text in enumerate(texts):
        others = texts[:i] + texts[i + 1 :]
        signal = {
            "coherence": heuristics.coherence(text),
            # agreement with the other answers stands in for correctness
            "accuracy": round(
                0.5 * heuristics.consensus(text, others) + 0.5 * heuristics.confidence(text), 4
            ),
            "completeness": heuristics.completeness(text, longest),
        }
        scores.append({c: signal[c] for c in criteria})
    return scores


def judge_prompt(question: str, answers: list[Answer], criteria: tuple[str, ...]) -> list[dict[str, str]]:
    """The judge's messages: the question, numbered answers and the rubric; JSON scores asked."""
    rubric = "\n".join(f"- {c}: {_RUBRIC[c]}" for c in criteria)
    listed = "\n\n".join(f"Answer {i + 1}:\n{a.text}" for i, a in enumerate(answers))
    example = json.dumps({"scores": [{"answer": 1, **{c: 7 for c in criteria}}]})
    return [
        {"role": "system", "content": "You are a strict, impartial judge of answers."},
        {
            "role": "user",
            "content": (
                f"Question:\n{question}\n\n{listed}\n\n"
                f"Score every answer from 0 to 10 on each criterion:\n{rubric}\n\n"
                f"Reply with JSON only, like {example}"
            ),
        },
    ]


def parse_judge(text: str, count: int, criteria: tuple[str, ...]) -> list[dict[str, float]]:
    """The judge's scores as 0..1 per criterion and answer; ``ValueError`` if incomplete."""
    data = extract_json(text)
    rows = data.get("scores") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise ValueError("the judge's JSON has no 'scores' list")
    scores: list[dict[str, float] | None] = [None] * count
    for position, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError("each score must be an object")
        index = int(row.get("answer", position + 1)) - 1
        if not 0 <= index < count:
            raise ValueError(f"score for answer {index + 1}, but there are {count} answers")
        try:
            scores[index] = {c: min(1.0, max(0.0, float(row[c]) / 10)) for c in criteria}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"answer {index + 1}: missing or non-numeric criterion ({exc})") from None
    missing = [str(i + 1) for i, s in enumerate(scores) if s is None]
    if missing:
        raise ValueError(f"no score for answer(s) {', '.join(missing)}")
    return [s for s in scores if s is not None]


class Ranking:
    """The ``ranking`` strategy."""

    def __init__(self, spec: RankingEnsemble) -> None:
        self.spec = spec

    async def decide(self, panel: Panel) -> Outcome:
        answers = panel.require(await panel.gather())
        criteria = tuple(self.spec.criteria)
        details: dict[str, Any] = {"scorer": self.spec.scorer, "criteria": list(criteria)}
        scores = None
        if self.spec.scorer == "judge":
            assert self.spec.judge is not None
            judged = await panel.ask_model(
                "judge", self.spec.judge, judge_prompt(_question(panel), answers, criteria), role="judge"
            )
            try:
                if not judged.ok:
                    raise ValueError(f"{judged.error_class}: {judged.error}")
                scores = parse_judge(judged.text or "", len(answers), criteria)
            except ValueError as exc:
                details["judge_error"] = str(exc)
                details["scorer"] = "heuristic (judge failed)"
        if scores is None:
            scores = heuristic_scores(answers, criteria)
        totals = [round(sum(s.values()) / len(s), 4) for s in scores]
        order = sorted(range(len(answers)), key=lambda i: (-totals[i], -answers[i].weight, i))
        best = order[0]
        details["scores"] = {a.label: {**scores[i], "total": totals[i]} for i, a in enumerate(answers)}
        details["ranking"] = [answers[i].label for i in order]
        details["chosen_member"] = answers[best].label
        return Outcome(text=answers[best].text or "", confidence=totals[best], details=details)


def _question(panel: Panel) -> str:
    for message in reversed(panel.messages):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""
