"""What one batch request may be, checked and turned into :func:`mm_litellm.arun` arguments.

A request is a prompt string, or a mapping with ``prompt`` or ``messages`` and optional
``id`` plus :func:`mm_litellm.run`'s options (the same keys a JSONL input row may have).
A bad request fails alone (its result says why); it never stops the batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["OPTION_KEYS", "PARAM_KEYS", "InvalidRequest", "Unrunnable", "request_id", "to_run_kwargs"]

OPTION_KEYS = frozenset(
    {
        "prompt",
        "messages",
        "system",
        "strategy",
        "model",
        "chain",
        "ensemble_size",
        "max_cost",
        "task_type",
        "priority",
        "metadata",
    }
)
"""Keys that are :func:`mm_litellm.run` options."""
PARAM_KEYS = frozenset(
    {
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "seed",
        "user",
        "response_format",
        "timeout",
        "prompt_id",
        "prompt_variables",
        "prompt_version",
        "prompt_label",
    }
)
"""LiteLLM completion parameters a row may set directly (anything else goes in ``params``)."""


class InvalidRequest(ValueError):
    """A batch request is malformed (the message says which key and what is allowed)."""


@dataclass(frozen=True, slots=True)
class Unrunnable:
    """Stands in for an input row that could not be read (bad JSON, duplicate id), so that the
    row is still reported, in its place, with ``reason``."""

    reason: str
    id: str | None = None


def request_id(request: Any) -> str | None:
    """The caller's ``id`` of a request, as a string (``None`` when it has none)."""
    if isinstance(request, Unrunnable):
        return request.id
    if isinstance(request, Mapping) and request.get("id") is not None:
        return str(request["id"])
    return None


def to_run_kwargs(request: Any, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``arun(**kwargs)`` for one request; ``defaults`` fill in what the request does not say."""
    if isinstance(request, Unrunnable):
        raise InvalidRequest(request.reason)
    if isinstance(request, str):
        request = {"prompt": request}
    if not isinstance(request, Mapping):
        raise InvalidRequest(
            f"a request is a prompt string or an object with 'prompt' or 'messages', "
            f"got {type(request).__name__}"
        )
    unknown = sorted(set(request) - OPTION_KEYS - PARAM_KEYS - {"id", "params"})
    if unknown:
        allowed = ", ".join(sorted(OPTION_KEYS | PARAM_KEYS | {"id", "params"}))
        raise InvalidRequest(f"unknown key(s) {', '.join(unknown)}; allowed: {allowed}")
    if ("prompt" in request) == ("messages" in request) and not (
        "prompt_id" in request and "prompt" not in request
    ):
        raise InvalidRequest(
            "a request needs exactly one of 'prompt' (text) or 'messages' (a list), or a 'prompt_id'"
        )
    if "prompt" in request and not isinstance(request["prompt"], str):
        raise InvalidRequest("'prompt' must be a string")
    if "messages" in request and not (isinstance(request["messages"], list) and request["messages"]):
        raise InvalidRequest("'messages' must be a non-empty list of chat messages")
    params = request.get("params", {})
    if not isinstance(params, Mapping):
        raise InvalidRequest("'params' must be an object of LiteLLM completion parameters")
    if "metadata" in request and not isinstance(request["metadata"], Mapping):
        raise InvalidRequest("'metadata' must be an object")
    kwargs = {k: v for k, v in (defaults or {}).items() if k != "params"}
    default_params = (defaults or {}).get("params") or {}
    if not isinstance(default_params, Mapping):
        raise InvalidRequest("defaults 'params' must be an object of LiteLLM completion parameters")
    kwargs.update(default_params)  # defaults={"params": {...}} apply like a row's own params
    kwargs.update(params)
    kwargs.update((k, v) for k, v in request.items() if k not in ("id", "params"))
    if defaults and "metadata" in defaults and "metadata" in request:
        kwargs["metadata"] = {**defaults["metadata"], **request["metadata"]}
    return kwargs
