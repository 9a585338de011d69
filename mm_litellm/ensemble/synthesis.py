"""Synthesis (seed 003): choose the best answer by a weighted score, or let an aggregator write one.

``weighted``: score = confidence x 0.5 + capability x 0.3 + completeness x 0.2 + consensus x
bonus (weights configurable), where confidence is seed 003's indicator heuristic, capability
the serving model's ``quality`` or tier in the policy, completeness the length relative to the
longest answer, and consensus the key-term overlap with the other answers.
``aggregator``: one model reads the panel's answers and writes the final answer
(mixture-of-agents); its answer's confidence is measured the same way.
"""

from __future__ import annotations

from typing import Any

from mm_litellm.ensemble import heuristics
from mm_litellm.ensemble.base import Answer, Outcome
from mm_litellm.ensemble.panel import Panel
from mm_litellm.errors import EnsembleError
from mm_litellm.policy.ensembles import SynthesisEnsemble

__all__ = ["Synthesis", "aggregation_prompt"]


def aggregation_prompt(messages: list[dict[str, Any]], answers: list[Answer]) -> list[dict[str, Any]]:
    """The aggregator's messages: the conversation, then the panel's answers to synthesise."""
    listed = "\n\n".join(f"Response {i + 1}:\n{a.text}" for i, a in enumerate(answers))
    system = (
        "You have been given responses from several models to the latest user request. Synthesise them "
        "into one answer of the highest quality: check them critically, keep what is correct, drop what is "
        "wrong, and do not mention the individual responses.\n\n" + listed
    )
    return [{"role": "system", "content": system}, *messages]


class Synthesis:
    """The ``synthesis`` strategy."""

    def __init__(self, spec: SynthesisEnsemble) -> None:
        self.spec = spec

    async def decide(self, panel: Panel) -> Outcome:
        answers = panel.require(await panel.gather())
        texts = [a.text or "" for a in answers]
        longest = max(len(t.split()) for t in texts)
        w = self.spec.weights
        scored: dict[str, dict[str, float]] = {}
        for i, answer in enumerate(answers):
            parts = {
                "confidence": heuristics.confidence(texts[i]),
                "capability": round(panel.capability(answer), 4),
                "completeness": heuristics.completeness(texts[i], longest),
                "consensus": heuristics.consensus(texts[i], texts[:i] + texts[i + 1 :]),
            }
            parts["score"] = round(
                w.confidence * parts["confidence"]
                + w.capability * parts["capability"]
                + w.completeness * parts["completeness"]
                + w.consensus_bonus * parts["consensus"],
                4,
            )
            scored[answer.label] = parts
        details: dict[str, Any] = {
            "mode": self.spec.mode,
            "scores": scored,
            "all_confidences": [scored[a.label]["confidence"] for a in answers],
        }
        if self.spec.mode == "aggregator":
            return await self._aggregate(panel, answers, details)
        best = max(answers, key=lambda a: (scored[a.label]["score"], a.weight))
        details["chosen_member"] = best.label
        return Outcome(best.text or "", scored[best.label]["confidence"], details)

    async def _aggregate(self, panel: Panel, answers: list[Answer], details: dict[str, Any]) -> Outcome:
        assert self.spec.aggregator is not None
        written = await panel.ask_model(
            "aggregator", self.spec.aggregator, aggregation_prompt(panel.messages, answers), role="aggregator"
        )
        if not written.ok:
            raise EnsembleError(
                panel.name,
                f"the aggregator '{self.spec.aggregator}' failed: {written.error_class}: {written.error}",
                {"aggregator": f"{written.error_class}: {written.error}"},
            )
        details["chosen_member"] = "aggregator"
        return Outcome(written.text or "", heuristics.confidence(written.text or ""), details)
