"""What a request with ``prompt_id=`` goes through, the same in ``mm_litellm.completion`` and in
LiteLLM's prompt-management hook: pick the version (explicit version or label, else the
active experiment's sticky variant, else the default label), render it, apply its model
parameters under the caller's explicit ones, and record ``metadata["mm_litellm"]["prompt"]``.

Rendering is idempotent: when the messages already start with the rendered template (LiteLLM
renders a second time under ``acompletion``), they are returned unchanged.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mm_litellm.context import CONTEXT_KEY as TRACE_KEY
from mm_litellm.context import identify
from mm_litellm.prompts.errors import PromptError
from mm_litellm.prompts.experiments import assign_variant

if TYPE_CHECKING:  # the registry imports SQLModel: only load it when a prompt is used
    from mm_litellm.prompts.registry import PromptRegistry
    from mm_litellm.prompts.template import CompiledPrompt, RenderedPrompt

__all__ = [
    "PROMPT_KWARGS",
    "PromptCall",
    "active_registry",
    "merge_messages",
    "prepare",
    "resolve",
    "set_registered",
    "settled",
    "unit_of",
]

PROMPT_KWARGS = ("prompt_id", "prompt_variables", "prompt_version", "prompt_label")

_state: dict[str, PromptRegistry | None] = {"registered": None}


def set_registered(registry: PromptRegistry | None) -> None:
    """Make ``registry`` the one every call uses (``None``: back to the active policy's)."""
    _state["registered"] = registry


def active_registry(runtime: Any = None) -> PromptRegistry | None:
    """The registry given to ``register_prompts``, else the one ``runtime``'s policy describes."""
    registered = _state["registered"]
    if registered is not None:
        return registered
    if runtime is None or runtime.policy.prompts is None:
        return None
    return runtime.prompts  # type: ignore[no-any-return]


def unit_of(sticky_by: Sequence[str], kwargs: Mapping[str, Any]) -> str | None:
    """The first identity named by ``sticky_by`` that the request carries, as ``kind:value``.

    Who the caller is comes from :func:`mm_litellm.context.identify` (the one rule budgets use
    too): behind an authenticated key, ``user`` is the key's user, else the end user the body
    names *of that key*; ``session`` is the caller's session id.
    """
    ident = identify(kwargs)
    metadata = kwargs.get("metadata") or {}
    scoped_end_user = f"{ident.key}/{ident.end_user}" if ident.key and ident.end_user else None
    sources = {
        "user": (ident.user, scoped_end_user),
        "key": (ident.key,),
        "session": (metadata.get("session_id"), kwargs.get("litellm_session_id")),
        "team": (ident.team,),
    }
    for kind in sticky_by:
        for value in sources.get(kind, ()):
            if value and isinstance(value, str):
                return f"{kind}:{value}"
    return None


def resolve(
    registry: PromptRegistry,
    prompt_id: str,
    version: int | None,
    label: str | None,
    kwargs: Mapping[str, Any],
) -> tuple[CompiledPrompt, dict[str, Any], str | None]:
    """The version to render and the ``prompt`` record for the call (plus the hashed sticky unit)."""
    if version is None and label is None:
        experiment = registry.experiment_for(prompt_id)
        if experiment is not None:
            name, spec = experiment
            unit = unit_of(spec.sticky_by, kwargs)
            variant = assign_variant(name, spec, unit)
            arm = spec.variants[variant]
            compiled = registry.get(prompt_id, version=arm.version, label=arm.label)
            unit_hash = hashlib.sha256(unit.encode()).hexdigest() if unit is not None else None
            info = {
                "id": prompt_id,
                "version": compiled.spec.version,
                "label": arm.label,
                "variant": variant,
                "experiment": name,
            }
            return compiled, info, unit_hash
        default = registry.settings.default_label
        label = default if default in registry.labels(prompt_id) else None
    compiled = registry.get(prompt_id, version=version, label=label)
    info = {
        "id": prompt_id,
        "version": compiled.spec.version,
        "label": label,
        "variant": None,
        "experiment": None,
    }
    return compiled, info, None


def _same(a: Any, b: Mapping[str, str]) -> bool:
    role = a.get("role") if isinstance(a, Mapping) else getattr(a, "role", None)
    content = a.get("content") if isinstance(a, Mapping) else getattr(a, "content", None)
    return bool(role == b["role"] and content == b["content"])


def merge_messages(rendered: Sequence[Mapping[str, str]], messages: Sequence[Any] | None) -> list[Any]:
    """Template messages first, then the caller's; unchanged if already rendered (idempotent)."""
    given = list(messages or [])
    if len(given) >= len(rendered) and all(_same(m, r) for m, r in zip(given, rendered, strict=False)):
        return given
    return [dict(m) for m in rendered] + given


def apply_params(rendered: RenderedPrompt, kwargs: MutableMapping[str, Any]) -> list[str]:
    """Set the template's model parameters the caller did not give; returns the names applied."""
    applied = []
    for key, value in rendered.params.items():
        if kwargs.get(key) is None:
            kwargs[key] = value
            applied.append(key)
    return applied


def with_prompt_metadata(metadata: Mapping[str, Any] | None, info: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``metadata`` with ``mm_litellm.prompt`` set (other ``mm_litellm`` keys kept)."""
    out = dict(metadata or {})
    trace = dict(out.get(TRACE_KEY) or {})
    trace["prompt"] = dict(info)
    out[TRACE_KEY] = trace
    return out


@dataclass
class PromptCall:
    """A rendered request in flight: what to record when its response comes back.

    An experiment call is stored once, when it is settled (one database write per call). When
    ``recorded`` the row was written before the call (LiteLLM's hook path, which LiteLLM's own
    success event settles) and settling updates it.
    """

    registry: PromptRegistry
    info: dict[str, Any]
    unit: str | None = None
    recorded: bool = False
    started: float = field(default_factory=time.perf_counter)

    def settle(self, response: Any) -> Any:
        """Record cost and latency (experiment calls) and expose the prompt record on the response."""
        hidden = getattr(response, "_hidden_params", None)
        if isinstance(hidden, dict):
            trace = dict(hidden.get(TRACE_KEY) or {})
            trace["prompt"] = dict(self.info)
            hidden[TRACE_KEY] = trace
        store = self.registry.store
        streamed = hasattr(response, "__next__") or hasattr(response, "__anext__")
        if self.info.get("experiment") and store is not None:
            outcome: dict[str, Any] = {
                # a stream's cost is not known when it starts (LiteLLM shows 0.0 then)
                "cost_usd": hidden.get("response_cost")
                if isinstance(hidden, dict) and not streamed
                else None,
                "latency_ms": (time.perf_counter() - self.started) * 1000,
                "response_id": getattr(response, "id", None),
            }
            if self.recorded:
                store.settle(self.info["call_id"], ok=True, **outcome)
            else:
                record_assignment(self.registry, self.info, self.unit, status="ok", **outcome)
        return response


def settled(call: PromptCall | None, response: Any) -> Any:
    """``response``, with the prompt record attached and the call settled when a prompt was rendered."""
    return response if call is None else call.settle(response)


def record_assignment(
    registry: PromptRegistry, info: Mapping[str, Any], unit: str | None, **outcome: Any
) -> None:
    """Queue the experiment assignment of a call (keyed by its ``call_id``), off the call path."""
    if info.get("experiment") and registry.store is not None:
        registry.store.add_assignment(
            background=True,
            call_id=info["call_id"],
            experiment=info["experiment"],
            variant=info["variant"],
            prompt_id=info["id"],
            version=info["version"],
            unit=unit,
            **outcome,
        )


def prepare(
    model: str | None,
    messages: list[Any] | None,
    kwargs: dict[str, Any],
    runtime: Any = None,
    *,
    record_now: bool = False,
) -> tuple[str, list[Any] | None, PromptCall | None]:
    """Render the request's prompt in place of LiteLLM (``kwargs`` is changed: prompt_* removed).

    Without ``prompt_id``, or without any registry, nothing changes (LiteLLM may have its own
    prompt manager). The result's model is the caller's, else the template's. The call id is
    LiteLLM's ``litellm_call_id`` when the kwargs carry one, else a new one (not passed to LiteLLM:
    a caller-chosen ``litellm_call_id`` costs LiteLLM about a millisecond per call). With
    ``record_now`` an experiment assignment is stored before the call, else when it is settled.
    """
    registry = active_registry(runtime) if kwargs.get("prompt_id") else None
    if registry is None:
        if not model:
            raise TypeError("completion() needs model= (or prompt_id= of a template that names a model)")
        return model, messages, None
    prompt_id = str(kwargs.pop("prompt_id"))
    variables = kwargs.pop("prompt_variables", None)
    version = kwargs.pop("prompt_version", None)
    label = kwargs.pop("prompt_label", None)
    compiled, info, unit = resolve(registry, prompt_id, version, label, kwargs)
    rendered = compiled.render(variables)
    messages = merge_messages(rendered.messages, messages)
    apply_params(rendered, kwargs)
    model = model or rendered.model
    if not model:
        raise PromptError(f"prompt '{prompt_id}' v{compiled.spec.version} names no model; pass model=")
    # Only experiment calls need an id (for record_outcome); a fresh uuid in the metadata costs
    # LiteLLM a measurable fraction of a millisecond, so other calls go without one.
    info["call_id"] = kwargs.get("litellm_call_id") or (str(uuid.uuid4()) if info["experiment"] else None)
    kwargs["metadata"] = with_prompt_metadata(kwargs.get("metadata"), info)
    if record_now:
        record_assignment(registry, info, unit)
    return model, messages, PromptCall(registry, info, unit, recorded=record_now)
