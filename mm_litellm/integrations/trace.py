"""The decision trace: one key set and one builder, for every door.

``mm_litellm.decision_of(response)`` (the SDK, a routed ``litellm.Router``, an ensemble through
plain LiteLLM) and the proxy's ``x-mm-decision`` header all carry a :class:`DecisionTrace` built
by :func:`decision_trace` from the two things every door has: the request context that
``request.prepare`` stamped (:mod:`mm_litellm.context`) and LiteLLM's response (which model
group really answered, how many fallbacks it tried). Details a door adds on top (an ensemble's
``ensemble``, an escalation's ``escalation``) are merged in by :func:`attach`, never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

from mm_litellm.context import CONTEXT_KEY

__all__ = [
    "DECISION_KEYS",
    "DETAIL_KEYS",
    "DecisionTrace",
    "attach",
    "attempted_fallbacks",
    "decision_trace",
    "served_model",
]


class DecisionTrace(TypedDict):
    """What was decided for one request, and what LiteLLM did with it."""

    requested_model: str
    """What the caller asked for (a route, alias, policy model or ``ensemble/<name>``)."""
    route: str | None
    rule: str | None
    strategy: str | None
    model: str
    """The model group the policy chose (after a budget downgrade, the cheaper one)."""
    fallbacks: list[str]
    reason: str | None
    task: str | None
    tier: str | None
    served_model: str
    """The model group that really answered (after LiteLLM's fallbacks)."""
    attempted_fallbacks: int
    escalation_chain: NotRequired[list[str]]
    escalation: NotRequired[dict[str, Any]]
    ensemble: NotRequired[dict[str, Any]]


DECISION_KEYS: frozenset[str] = frozenset(
    {
        "requested_model",
        "route",
        "rule",
        "strategy",
        "model",
        "fallbacks",
        "reason",
        "task",
        "tier",
        "served_model",
        "attempted_fallbacks",
    }
)
"""The keys every door's trace has (values may be ``None``)."""
DETAIL_KEYS: frozenset[str] = frozenset({"escalation_chain", "escalation", "ensemble"})
"""The keys a trace has when they apply (an escalation chain, an escalation, an ensemble)."""


def decision_trace(ctx: Mapping[str, Any], response: Any) -> DecisionTrace:
    """The trace of a request from its context (see :func:`mm_litellm.request.prepare`) and response."""
    planned = str(ctx.get("model") or ctx.get("requested_model") or "")
    trace: DecisionTrace = {
        "requested_model": str(ctx.get("requested_model") or planned),
        "route": ctx.get("route"),
        "rule": ctx.get("rule"),
        "strategy": ctx.get("strategy"),
        "model": planned,
        "fallbacks": list(ctx.get("fallbacks") or ()),
        "reason": ctx.get("reason"),
        "task": ctx.get("task"),
        "tier": ctx.get("tier"),
        "served_model": served_model(response) or planned,
        "attempted_fallbacks": attempted_fallbacks(response),
    }
    chain = ctx.get("escalation_chain")
    if chain:
        trace["escalation_chain"] = list(chain)
    return trace


def attach(response: Any, trace: Mapping[str, Any]) -> None:
    """Put ``trace`` on ``response`` (``_hidden_params``), keeping details set earlier (an ensemble's)."""
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(hidden, dict):
        earlier = hidden.get(CONTEXT_KEY)
        hidden[CONTEXT_KEY] = {**earlier, **trace} if isinstance(earlier, Mapping) else dict(trace)


def served_model(response: Any) -> str | None:
    """The Router group that really answered (after fallbacks), from LiteLLM's hidden params."""
    hidden = getattr(response, "_hidden_params", None)
    if not isinstance(hidden, Mapping):
        return None
    group = (hidden.get("additional_headers") or {}).get("x-litellm-model-group")
    if isinstance(group, str) and group:
        return group
    model_id = hidden.get("model_id")
    if isinstance(model_id, str) and "#" in model_id:  # our deployment ids are "<alias>#<n>[@<digest>]"
        return model_id.split("#", 1)[0]
    return None


def attempted_fallbacks(response: Any) -> int:
    """How many fallbacks LiteLLM's Router tried before this answer (0 when none or unknown)."""
    hidden = getattr(response, "_hidden_params", None)
    if not isinstance(hidden, Mapping):
        return 0
    value = (hidden.get("additional_headers") or {}).get("x-litellm-attempted-fallbacks")
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
