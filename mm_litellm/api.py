"""The prompt-in, result-out API: ``mm_litellm.run`` and ``arun`` (seed 003's ``run_orchestration``).

For callers who have a prompt rather than a message list. Every call goes through
:func:`mm_litellm.completion` / :func:`mm_litellm.acompletion`, so the policy's routing,
budgets, ensembles and LiteLLM's Router (retries, cooldowns, fallbacks) all apply; this
module only turns a *strategy name* into the ``model=`` (and per-request ``fallbacks=``)
the policy already declares, and the response into a typed :class:`RunResult`:

==============  ================================================================================
strategy        what is asked of the policy
==============  ================================================================================
``auto``        ``model=`` if given, else the policy's ``default_route``
``cheapest``    the route named ``cheap`` or ``cheapest``, else the first ``cost_optimized`` route
``fallback``    start at the chain's first model; an answer that looks unsure escalates to the
                next model (seed 003), an error falls back to it. A chain *name* that a route
                escalates along: that route; a list, ``"a,b,c"`` or another chain of the
                policy: that chain for this request; no chain: the route escalating ``mixed``
                (else any escalating route, else ``default_route``). The same meaning as
                ``mm-litellm run --strategy fallback`` and batch rows. Without a policy only
                LiteLLM's error fallbacks apply (there is no confidence scorer).
``ensemble``    ``ensemble/<name>`` (``model=`` names the ensemble, else the policy picks one)
==============  ================================================================================
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

from mm_litellm import gateway
from mm_litellm import runtime as _runtime
from mm_litellm.context import CONTEXT_KEY
from mm_litellm.errors import ConfigurationError

__all__ = [
    "STRATEGIES",
    "RunResult",
    "Strategy",
    "arun",
    "build_call",
    "result_from_response",
    "route_to_model",
    "run",
    "run_ensemble",
    "run_with_fallback",
]

Strategy = Literal["auto", "cheapest", "fallback", "ensemble"]
STRATEGIES: tuple[str, ...] = ("auto", "cheapest", "fallback", "ensemble")
CHEAP_ROUTES = ("cheap", "cheapest")
"""Route names the ``cheapest`` strategy looks for first, in this order."""
ENSEMBLE_PREFIX = "ensemble/"
DEFAULT_CHAIN = "mixed"
"""Seed 003's default chain: ``strategy="fallback"`` without a chain uses the route escalating it."""


@dataclass(frozen=True, slots=True)
class RunResult:
    """One answered prompt, with seed 003's ``OrchestrationResult`` fields.

    ``to_dict()`` is seed 003's JSON output (``response``, ``model_used``, ``cost``,
    ``latency``, ``confidence``, ``input_tokens``, ``output_tokens``, ``strategy``,
    ``ensemble_models``, ``metadata``, ``timestamp``); the decision trace is under
    ``metadata.decision``.
    """

    response: str
    """The answer text (also :attr:`text`)."""
    model_used: str
    """The policy model (Router group) that answered, after any fallback; the LiteLLM model
    string for a pass-through call."""
    cost: float | None
    """USD, from LiteLLM's cost calculation; ``None`` when the model is not priced."""
    latency: float
    """Seconds, from the call to the answer (also :attr:`latency_s`)."""
    confidence: float | None
    """The ensemble's or escalation's confidence when the policy computed one, else ``None``."""
    input_tokens: int | None
    output_tokens: int | None
    strategy: str
    ensemble_models: tuple[str, ...] = ()
    decision: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """The routing decision trace (:func:`mm_litellm.decision_of`); empty for a pass-through call."""
    metadata: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    timestamp: str = ""
    raw: Any = field(default=None, compare=False, repr=False)
    """The ``litellm.ModelResponse`` itself, for anything not copied into the fields."""

    @property
    def text(self) -> str:
        return self.response

    @property
    def latency_s(self) -> float:
        return self.latency

    def to_dict(self) -> dict[str, Any]:
        """Seed 003's JSON result as a plain, JSON-serialisable dict."""
        return {
            "response": self.response,
            "model_used": self.model_used,
            "cost": self.cost,
            "latency": round(self.latency, 4),
            "confidence": self.confidence,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "strategy": self.strategy,
            "ensemble_models": list(self.ensemble_models),
            "metadata": _plain(dict(self.metadata) | {"decision": dict(self.decision)}),
            "timestamp": self.timestamp,
        }

    def to_json(self, **dumps: Any) -> str:
        return json.dumps(self.to_dict(), **dumps)


def run(
    prompt: str | None = None,
    *,
    strategy: str = "auto",
    chain: Sequence[str] | str | None = None,
    ensemble_size: int | None = None,
    max_cost: float | None = None,
    task_type: str | None = None,
    priority: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    model: str | None = None,
    system: str | None = None,
    messages: Sequence[Mapping[str, Any]] | None = None,
    **kwargs: Any,
) -> RunResult:
    """Answer ``prompt`` through the policy with ``strategy`` (see the module docstring).

    ``messages`` may replace ``prompt`` (and ``system``); other keyword arguments
    (``max_tokens``, ``temperature``, ``user``, ``mock_response``...) go to
    :func:`mm_litellm.completion` unchanged. ``task_type``, ``priority`` and ``max_cost``
    travel in the request's metadata, where the routing rules and budgets read them.
    LiteLLM's exceptions and mm_litellm's (``RoutingError``, ``BudgetExceeded``...) propagate.
    """
    call = build_call(
        prompt,
        strategy=strategy,
        chain=chain,
        ensemble_size=ensemble_size,
        max_cost=max_cost,
        task_type=task_type,
        priority=priority,
        metadata=metadata,
        model=model,
        system=system,
        messages=messages,
        **kwargs,
    )
    started = time.perf_counter()
    response = gateway.completion(**call)
    return result_from_response(response, strategy=strategy, latency=time.perf_counter() - started)


async def arun(
    prompt: str | None = None,
    *,
    strategy: str = "auto",
    chain: Sequence[str] | str | None = None,
    ensemble_size: int | None = None,
    max_cost: float | None = None,
    task_type: str | None = None,
    priority: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    model: str | None = None,
    system: str | None = None,
    messages: Sequence[Mapping[str, Any]] | None = None,
    **kwargs: Any,
) -> RunResult:
    """Async twin of :func:`run` (over :func:`mm_litellm.acompletion`)."""
    call = build_call(
        prompt,
        strategy=strategy,
        chain=chain,
        ensemble_size=ensemble_size,
        max_cost=max_cost,
        task_type=task_type,
        priority=priority,
        metadata=metadata,
        model=model,
        system=system,
        messages=messages,
        **kwargs,
    )
    started = time.perf_counter()
    response = await gateway.acompletion(**call)
    return result_from_response(response, strategy=strategy, latency=time.perf_counter() - started)


def run_with_fallback(
    prompt: str, chain: Sequence[str] | str | None = None, *, max_cost: float | None = None, **kwargs: Any
) -> RunResult:
    """Seed 003's ``run_with_fallback``: ``run(prompt, strategy="fallback", chain=chain)``."""
    return run(prompt, strategy="fallback", chain=chain, max_cost=max_cost, **kwargs)


def run_ensemble(
    prompt: str,
    name: str | None = None,
    *,
    ensemble_size: int | None = None,
    max_cost: float | None = None,
    **kwargs: Any,
) -> RunResult:
    """Seed 003's ``run_ensemble``: ``run(prompt, strategy="ensemble", model=name)``."""
    return run(
        prompt, strategy="ensemble", model=name, ensemble_size=ensemble_size, max_cost=max_cost, **kwargs
    )


def route_to_model(
    prompt: str, *, strategy: str = "cheapest", model: str | None = None, **kwargs: Any
) -> str:
    """Seed 003's ``route_to_model``: the policy model that would serve ``prompt``; no call is made.

    Asks the routing engine for its plan (the same decision ``completion`` would take).
    """
    call = build_call(prompt, strategy=strategy, model=model, **kwargs)
    rt = _runtime.current()
    target = call["model"]
    if rt is None or not rt.engine.handles(target):
        return str(target)
    messages = call.pop("messages")
    return rt.engine.plan(call.pop("model"), messages, call).target


def build_call(
    prompt: str | None = None,
    *,
    strategy: str = "auto",
    chain: Sequence[str] | str | None = None,
    ensemble_size: int | None = None,
    max_cost: float | None = None,
    task_type: str | None = None,
    priority: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    model: str | None = None,
    system: str | None = None,
    messages: Sequence[Mapping[str, Any]] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """The ``completion(**call)`` keyword arguments :func:`run` sends (for batch and dry runs)."""
    templated = kwargs.get("prompt_id") is not None  # a registered prompt renders the messages
    neither = prompt is None and messages is None
    if (prompt is not None and messages is not None) or (neither and not templated):
        raise ValueError("give either a prompt or messages (not both, not neither), or prompt_id=")
    msgs: list[Any] | None = None
    if prompt is not None:
        msgs = [{"role": "system", "content": system}] if system else []
        msgs.append({"role": "user", "content": prompt})
    elif messages is not None:
        if system is not None:
            raise ValueError("'system' goes with 'prompt'; with 'messages', put the system message in them")
        msgs = list(messages)
    meta = dict(metadata or {})
    for key, value in (("task", task_type), ("priority", priority), ("max_cost", max_cost)):
        if value is not None:
            meta[key] = value
    if max_cost is not None:  # the budget check reads it from the mm_litellm context
        meta[CONTEXT_KEY] = {**(meta.get(CONTEXT_KEY) or {}), "max_cost": max_cost}
    if ensemble_size is not None:
        meta["ensemble_size"] = ensemble_size
    call: dict[str, Any] = dict(kwargs)
    if msgs is not None:
        call["messages"] = msgs
    if meta:
        call["metadata"] = meta
    policy = rt.policy if (rt := _runtime.current()) is not None else None
    if strategy == "auto":  # with prompt_id and no model, the template's model serves
        call["model"] = model or (None if templated else _default_route(policy))
    elif strategy == "cheapest":
        call["model"] = _cheap_route(policy, model)
    elif strategy == "fallback":
        target = _fallback_target(policy, model, chain)
        context = target.pop(CONTEXT_KEY, None)
        if context:
            meta = dict(call.get("metadata") or {})
            meta[CONTEXT_KEY] = {**(meta.get(CONTEXT_KEY) or {}), **context}
            call["metadata"] = meta
        call.update(target)
    elif strategy == "ensemble":
        call["model"] = _ensemble_target(policy, model, ensemble_size)
    else:
        raise ValueError(f"unknown strategy '{strategy}'; allowed: {', '.join(STRATEGIES)}")
    return call


def result_from_response(response: Any, *, strategy: str, latency: float) -> RunResult:
    """A :class:`RunResult` from a LiteLLM ``ModelResponse`` that ``completion`` returned."""
    hidden = getattr(response, "_hidden_params", None) or {}
    trace = gateway.decision_of(response) or {}
    usage = getattr(response, "usage", None)
    ensemble = trace.get("ensemble")
    members: tuple[str, ...] = ()
    confidence = _escalation_confidence(trace)
    extra: dict[str, Any] = {}
    if isinstance(ensemble, Mapping):
        members = tuple(
            str(m.get("model") if isinstance(m, Mapping) else m) for m in ensemble.get("members", ())
        )
        confidence = ensemble.get("confidence", confidence)
        extra = {"ensemble": ensemble.get("name"), "ensemble_size": len(members)}
        if "all_confidences" in ensemble:
            extra["all_confidences"] = ensemble["all_confidences"]
    content = response.choices[0].message.content if response.choices else None
    return RunResult(
        response=content or "",
        model_used=str(trace.get("served_model") or response.model),
        cost=hidden.get("response_cost"),
        latency=latency,
        confidence=confidence,
        input_tokens=getattr(usage, "prompt_tokens", None),
        output_tokens=getattr(usage, "completion_tokens", None),
        strategy=strategy,
        ensemble_models=members,
        decision=MappingProxyType(trace),
        metadata=MappingProxyType(
            {"litellm_model": hidden.get("litellm_model_name"), "response_id": getattr(response, "id", None)}
            | extra
        ),
        timestamp=datetime.now(UTC).isoformat(),
        raw=response,
    )


def _escalation_confidence(trace: Mapping[str, Any]) -> float | None:
    """The confidence of the answer an escalation chose (the routing issue's trace), if any."""
    escalation = trace.get("escalation")
    if isinstance(escalation, Mapping):
        hops, chosen = escalation.get("hops"), escalation.get("chosen_hop")
        if isinstance(hops, list | tuple) and isinstance(chosen, int) and 0 <= chosen < len(hops):
            hop = hops[chosen]
            if isinstance(hop, Mapping) and isinstance(hop.get("confidence"), int | float):
                return float(hop["confidence"])
    value = trace.get("confidence")
    return float(value) if isinstance(value, int | float) else None


# -- strategy name -> what the policy declares ------------------------------------------------


def _default_route(policy: Any) -> str:
    if policy is None:
        raise ConfigurationError("strategy 'auto' needs model=... when no policy is configured")
    if policy.default_route is None:
        raise ConfigurationError(
            f"strategy 'auto' needs model=... or default_route in the policy ({policy.source}); "
            f"routes: {', '.join(policy.routes) or '(none)'}"
        )
    return str(policy.default_route)


def _cheap_route(policy: Any, model: str | None) -> str:
    if model is not None:
        raise ValueError("strategy 'cheapest' chooses the model itself; drop model= or use strategy='auto'")
    routes: Mapping[str, Any] = policy.routes if policy is not None else {}
    for name in CHEAP_ROUTES:
        if name in routes:
            return name
    for name, route in routes.items():
        if getattr(route, "strategy", None) == "cost_optimized":
            return name
    raise ConfigurationError(
        "strategy 'cheapest' needs a route named 'cheap' or 'cheapest', or a route with "
        f"strategy: cost_optimized, in the policy; routes: {', '.join(routes) or '(none)'}"
    )


def _fallback_target(policy: Any, model: str | None, chain: Sequence[str] | str | None) -> dict[str, Any]:
    if chain is None:
        if model is not None:  # the route's (or model's) own declared fallbacks
            return {"model": model}
        escalating = _escalating_route(policy, DEFAULT_CHAIN, any_chain=True)
        return {"model": escalating or _default_route(policy)}
    if model is not None:
        raise ValueError("strategy 'fallback' starts at chain[0]; give chain= or model=, not both")
    if isinstance(chain, str) and (escalating := _escalating_route(policy, chain)) is not None:
        return {"model": escalating}  # seed 003: escalate along the chain while answers look unsure
    models = _chain_models(policy, chain)
    if policy is None or all(policy.kind_of(m) is None for m in models):
        return {"model": models[0], "fallbacks": models[1:]}  # LiteLLM's own completion fallbacks
    groups = [policy.aliases.get(m, m) for m in models]
    bad = [m for m, g in zip(models, groups, strict=True) if g not in policy.models]
    if bad:
        raise ConfigurationError(
            "chain members must be models of the policy (LiteLLM Router groups); "
            f"not models: {', '.join(bad)}; "
            f"models: {', '.join(policy.models)}"
        )
    if len(groups) == 1:
        return {"model": groups[0]}
    # one meaning everywhere (API, batch, CLI): start at chain[0]; an answer that looks unsure
    # escalates to the next model, an error falls back to it
    return {"model": groups[0], "fallbacks": [{groups[0]: groups[1:]}], CONTEXT_KEY: {"chain": groups}}


def _escalating_route(policy: Any, chain: str, *, any_chain: bool = False) -> str | None:
    """The policy route that escalates along ``chain`` (else, with ``any_chain``, along any chain)."""
    routes: Mapping[str, Any] = policy.routes if policy is not None else {}
    chains = [name for name, route in routes.items() if getattr(route, "escalate", None) == chain]
    if not chains and any_chain:
        chains = [name for name, route in routes.items() if getattr(route, "escalate", None)]
    return chains[0] if chains else None


def _chain_models(policy: Any, chain: Sequence[str] | str) -> list[str]:
    if isinstance(chain, str):
        named = getattr(policy, "chains", None) or {}
        if chain in named:
            declared = named[chain]
            chain = list(getattr(declared, "models", declared))
        else:
            chain = [part.strip() for part in chain.split(",") if part.strip()]
    models = [str(m) for m in chain]
    if not models:
        raise ValueError("strategy 'fallback' needs a non-empty chain")
    return models


def _ensemble_target(policy: Any, model: str | None, size: int | None) -> str:
    declared: Mapping[str, Any] = getattr(policy, "ensembles", None) or {}
    sizes = {name: len(getattr(spec, "members", None) or ()) for name, spec in declared.items()}
    if model is not None:
        name = model.removeprefix(ENSEMBLE_PREFIX)
        if size is not None and name in sizes and sizes[name] != size:
            raise ConfigurationError(
                f"ensemble '{name}' has {sizes[name]} members, not {size}; a request cannot resize an "
                "ensemble: declare one with that many members (or use mm-litellm run --ensemble-size)"
            )
        return ENSEMBLE_PREFIX + name
    if not declared:
        raise ConfigurationError(
            "strategy 'ensemble' needs model='<ensemble name>' or an ensembles: section in the policy"
        )
    if size is None:
        return ENSEMBLE_PREFIX + next(iter(declared))
    for name, members in sizes.items():
        if members == size:
            return ENSEMBLE_PREFIX + name
    known = ", ".join(f"{name} ({members})" for name, members in sizes.items())
    raise ConfigurationError(f"no ensemble in the policy has {size} members; ensembles (members): {known}")


def _plain(value: Any) -> Any:
    """A JSON-safe copy (read-only mappings and tuples become dicts and lists)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
