"""The routing decision as HTTP response headers (``x-mm-*``), from the request's mm_litellm context.

Headers are sent before a streamed body, so a stream carries everything but the cost (absent,
not 0). Values come from the policy and LiteLLM, some of them from names the request chose, so
each is checked: a value that is not short printable ASCII is left out rather than sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mm_litellm.context import CONTEXT_KEY, context_of
from mm_litellm.integrations.trace import decision_trace, served_model
from mm_litellm.policy.ensembles import ENSEMBLE_PREFIX

__all__ = ["DECISION_HEADER", "decision_headers", "header_value"]

MAX_HEADER_VALUE = 512
MAX_DECISION_HEADER = 4096
DECISION_HEADER = "x-mm-decision"
"""The decision trace's keys (``mm_litellm.integrations.trace.DECISION_KEYS``) as compact JSON."""


def header_value(value: object, limit: int = MAX_HEADER_VALUE) -> str | None:
    """``value`` as a header value, or ``None`` when it is not printable ASCII of sane length."""
    text = str(value)
    if not text or len(text) > limit or not text.isascii() or not text.isprintable():
        return None
    return text


def decision_headers(
    data: Mapping[str, Any], response: Any, call_info: Mapping[str, Any] | None = None
) -> dict[str, str] | None:
    """``x-mm-route``, ``x-mm-rule``, ``x-mm-model``, ``x-mm-cost`` (when known) and the whole
    decision as ``x-mm-decision`` (the keys of ``mm_litellm.decision_of`` in the SDK) for one response."""
    ctx = context_of(data)
    if ctx is None or "requested_model" not in ctx:
        return None
    headers: dict[str, str] = {}
    if ctx.get("route"):
        headers["x-mm-route"] = str(ctx["route"])
        headers["x-mm-rule"] = str(ctx.get("rule") or "default")
    served = served_model(response) or ctx.get("model") or data.get("model")
    if served:
        headers["x-mm-model"] = str(served)
    downgraded = ctx.get("downgraded")
    if isinstance(downgraded, Mapping):
        headers["x-mm-budget-downgrade"] = (
            f"{downgraded.get('budget')}: {downgraded.get('from')} -> {downgraded.get('to')}"
        )
    hidden = getattr(response, "_hidden_params", None)
    target = str(ctx.get("model") or data.get("model") or "")
    if target.startswith(ENSEMBLE_PREFIX):
        headers["x-mm-ensemble"] = target[len(ENSEMBLE_PREFIX) :]
    if isinstance(hidden, Mapping):
        trace = hidden.get(CONTEXT_KEY)
        ensemble = trace.get("ensemble") if isinstance(trace, Mapping) else None
        if isinstance(ensemble, Mapping):
            headers["x-mm-ensemble"] = str(ensemble.get("name"))
            headers["x-mm-ensemble-members"] = ",".join(str(m) for m in ensemble.get("members") or ())
            if isinstance(ensemble.get("confidence"), int | float):
                headers["x-mm-ensemble-confidence"] = f"{ensemble['confidence']:.3f}"
        escalation = trace.get("escalation") if isinstance(trace, Mapping) else None
        cost = hidden.get("response_cost")
        if isinstance(escalation, Mapping):  # the request cost every hop, not only the answer kept
            hops = escalation.get("hops") or []
            headers["x-mm-escalation"] = ",".join(str(h.get("model")) for h in hops)
            headers["x-mm-escalation-stopped"] = str(escalation.get("stopped") or "")
            cost = escalation.get("total_cost", cost)
        if isinstance(cost, int | float) and not data.get("stream"):
            headers["x-mm-cost"] = f"{cost:.10f}".rstrip("0").rstrip(".") or "0"
        attempted = (hidden.get("additional_headers") or {}).get("x-litellm-attempted-fallbacks")
        if attempted:
            headers["x-mm-fallbacks"] = str(attempted)
    out = {name: value for name, raw in headers.items() if (value := header_value(raw)) is not None}
    trace = json.dumps(decision_trace(ctx, response), separators=(",", ":"), ensure_ascii=True)
    decision = header_value(trace, MAX_DECISION_HEADER)
    if decision is not None:
        out[DECISION_HEADER] = decision
    return out
