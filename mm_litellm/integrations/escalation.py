"""Confidence escalation: when an answer looks unsure, ask the next model of the route's chain.

Error-class fallbacks stay LiteLLM's (the Router). This loop handles the other failure, an
answer that is unsure: after each response the policy's confidence scorer decides; the next
model of the chain is called (through the same Router) until an answer is confident, the
chain ends, the hop limit is reached, or the next hop would exceed the request's
``max_cost`` (``metadata.max_cost``, else ``escalation.max_cost``). The most confident answer
is returned (the later one on a tie) and every hop is recorded in the decision trace.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mm_litellm.context import CONTEXT_KEY
from mm_litellm.routing.confidence import ConfidenceScorer, scorer_for
from mm_litellm.routing.plan import Plan

__all__ = ["Escalation", "aescalate", "escalate"]


def _text(response: Any) -> str:
    try:
        return str(response.choices[0].message.content or "")
    except (AttributeError, IndexError):
        return ""


def _cost(response: Any) -> float | None:
    hidden = getattr(response, "_hidden_params", None) or {}
    cost = hidden.get("response_cost")
    return float(cost) if isinstance(cost, int | float) else None


def _usage(response: Any) -> tuple[int, int]:
    usage = getattr(response, "usage", None)
    return int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)


@dataclass
class Escalation:
    """State of one request's escalation; :meth:`trace` is what lands in the decision trace."""

    plan: Plan
    scorer: ConfidenceScorer
    min_confidence: float
    max_cost: float | None
    max_hops: int
    estimate: Callable[[str, int, int], float | None]
    hops: list[dict[str, Any]] = field(default_factory=list)
    stopped: str = ""
    spent: float = 0.0
    _best: tuple[float, int, Any] | None = None

    @classmethod
    def start(cls, runtime: Any, plan: Plan, kwargs: dict[str, Any]) -> Escalation:
        settings = runtime.policy.escalation
        metadata = kwargs.get("metadata") or {}
        cap = metadata.get("max_cost") if isinstance(metadata, dict) else None
        if not isinstance(cap, int | float) or isinstance(cap, bool):
            cap = settings.max_cost
        catalog = runtime.engine.catalog

        def estimate(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
            entry = catalog.get(model)
            return entry.cost(prompt_tokens, completion_tokens) if entry is not None else None

        return cls(plan, scorer_for(settings), settings.min_confidence, cap, settings.max_hops, estimate)

    def record(self, model: str, response: Any) -> str | None:
        """Score ``response`` (the answer of ``model``); return the next model to ask, or ``None``."""
        confidence = self.scorer.score(_text(response), response)
        cost = _cost(response)
        self.spent += cost or 0.0
        confident = confidence.score >= self.min_confidence
        self.hops.append(
            {
                "model": model,
                "confidence": confidence.score,
                "reasons": list(confidence.reasons),
                "cost": cost,
                "confident": confident,
            }
        )
        hop = len(self.hops) - 1
        if self._best is None or confidence.score >= self._best[0]:
            self._best = (confidence.score, hop, response)
        if confident:
            self.stopped = "confident"
            return None
        chain = self.plan.escalation
        # a model that already answered (the Router's fallback may have served the first call)
        # is not asked again: climb on from the furthest model of the chain that answered
        answered = [chain.index(h["model"]) for h in self.hops if h["model"] in chain]
        remaining = chain[max(answered, default=-1) + 1 :]
        if not remaining:
            self.stopped = "chain exhausted"
            return None
        if hop >= self.max_hops:
            self.stopped = f"max_hops {self.max_hops} reached"
            return None
        nxt = remaining[0]
        if self.max_cost is not None:
            estimated = self.estimate(nxt, *_usage(response))
            if estimated is None or self.spent + estimated > self.max_cost:
                shown = "unpriced" if estimated is None else f"${estimated:.6f}"
                self.stopped = (
                    f"cost cap: spent ${self.spent:.6f}, next hop '{nxt}' {shown}, "
                    f"max_cost ${self.max_cost:g}"
                )
                return None
        return nxt

    @property
    def answer(self) -> Any:
        assert self._best is not None
        return self._best[2]

    def trace(self) -> dict[str, Any]:
        assert self._best is not None
        return {
            "hops": self.hops,
            "stopped": self.stopped,
            "total_cost": round(self.spent, 10),
            "chosen_hop": self._best[1],
            "min_confidence": self.min_confidence,
            "max_cost": self.max_cost,
        }


def _hop_kwargs(call: dict[str, Any], hop: int, parent_id: str | None) -> dict[str, Any]:
    """The next hop's arguments: the call's, marked as hop ``hop`` of the first call ``parent_id``."""
    kwargs = dict(call)
    kwargs.pop("fallbacks", None)  # the route's fallbacks were for the first target
    metadata = dict(kwargs.get("metadata") or {})
    context = dict(metadata.get(CONTEXT_KEY) or {})
    context["escalation_hop"] = hop
    # the ledger groups the hops with the first call (one prompt, several models); the first
    # call's budget reservation is settled by that call, hops are counted as they happen
    context.pop("reservation", None)
    if parent_id:
        context["parent_id"] = parent_id
    metadata[CONTEXT_KEY] = context
    kwargs["metadata"] = metadata
    return kwargs


def _served(response: Any, target: str) -> str:
    """The model group that answered (a Router fallback may have served instead of ``target``)."""
    hidden = getattr(response, "_hidden_params", None)
    headers = (hidden.get("additional_headers") or {}) if isinstance(hidden, dict) else {}
    group = headers.get("x-litellm-model-group") if isinstance(headers, dict) else None
    return group if isinstance(group, str) and group else target


def _call_id(response: Any) -> str | None:
    hidden = getattr(response, "_hidden_params", None)
    call_id = hidden.get("litellm_call_id") if isinstance(hidden, dict) else None
    return str(call_id) if call_id else None


def escalate(
    runtime: Any, plan: Plan, call: dict[str, Any], first: Any, complete: Callable[..., Any]
) -> tuple[Any, dict[str, Any]]:
    """Run the loop with ``complete(model=..., **kwargs)`` (a Router's ``completion``)."""
    state = Escalation.start(runtime, plan, call)
    response, model, parent = first, _served(first, plan.target), _call_id(first)
    while (nxt := state.record(model, response)) is not None:
        model = nxt
        response = complete(model=model, **_hop_kwargs(call, len(state.hops), parent))
    return state.answer, state.trace()


async def aescalate(
    runtime: Any, plan: Plan, call: dict[str, Any], first: Any, complete: Callable[..., Awaitable[Any]]
) -> tuple[Any, dict[str, Any]]:
    """:func:`escalate` for ``acompletion``."""
    state = Escalation.start(runtime, plan, call)
    response, model, parent = first, _served(first, plan.target), _call_id(first)
    while (nxt := state.record(model, response)) is not None:
        model = nxt
        response = await complete(model=model, **_hop_kwargs(call, len(state.hops), parent))
    return state.answer, state.trace()
