"""Request field checks shared by the proxy's auth and the SDK: one place decides what is malformed.

:func:`check_request` raises :class:`~mm_litellm.errors.InvalidRequestError` naming the first
offending field: 400 for a malformed value, 403 for a field an untrusted caller may not set
(deployment settings such as ``api_base`` or ``api_key``, fallbacks, mock answers). Messages
never echo the value: it may be a secret, a control character or megabytes long. Pure Python,
no LiteLLM.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from mm_litellm.errors import InvalidRequestError

__all__ = ["MAX_MODEL_NAME", "OVERRIDE_FIELDS", "check_overrides", "check_request"]

MAX_MODEL_NAME = 256
"""Longest ``model`` accepted (policy names are far shorter)."""

OVERRIDE_FIELDS: tuple[str, ...] = (
    "api_base",
    "base_url",
    "api_key",
    "api_version",
    "custom_llm_provider",
    "organization",
    "model_list",
    "user_config",
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "mock_response",
    "mock_testing_fallbacks",
    "mock_tool_calls",
    "extra_headers",
    "azure_ad_token",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_region_name",
    "vertex_project",
    "vertex_location",
    "vertex_credentials",
)
"""Fields that change where a request goes or whose credentials it uses: only a trusted caller
(the master key, or a key whose ``allow_overrides`` lists the field) may send them."""

_POSITIVE_INTS: dict[str, int] = {
    "max_tokens": 10_000_000,
    "max_completion_tokens": 10_000_000,
    "max_output_tokens": 10_000_000,
    "n": 128,
}
_MAPPINGS = ("prompt_variables", "metadata", "litellm_metadata", "response_format")
_STRINGS = ("prompt_id", "user")
_NUMBERS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")


def check_request(body: object, *, trusted: bool, allowed_overrides: Collection[str] = ()) -> None:
    """Raise :class:`InvalidRequestError` for the first malformed or forbidden field of ``body``.

    ``trusted`` callers (the operator) may set every field of :data:`OVERRIDE_FIELDS`; others only
    those in ``allowed_overrides``. Absent and ``null`` fields are always fine.
    """
    if not isinstance(body, Mapping):
        raise InvalidRequestError("body", f"the request 'body' must be a JSON object, got {_kind(body)}")
    _check_model(body.get("model"))
    for name, limit in _POSITIVE_INTS.items():
        value = body.get(name)
        if value is not None and (type(value) is not int or not 1 <= value <= limit):
            got = str(value) if type(value) is int else _kind(value)
            raise InvalidRequestError(name, f"'{name}' must be a whole number from 1 to {limit}, got {got}")
    for name in _MAPPINGS:
        value = body.get(name)
        if value is not None and not isinstance(value, Mapping):
            raise InvalidRequestError(name, f"'{name}' must be a JSON object, got {_kind(value)}")
    for name in _STRINGS:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise InvalidRequestError(name, f"'{name}' must be a string, got {_kind(value)}")
    for name in _NUMBERS:
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InvalidRequestError(name, f"'{name}' must be a number, got {_kind(value)}")
    messages = body.get("messages")
    if messages is not None and not isinstance(messages, list):
        raise InvalidRequestError("messages", f"'messages' must be a list of messages, got {_kind(messages)}")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequestError("stream", f"'stream' must be true or false, got {_kind(stream)}")
    if not trusted:
        check_overrides(body, allowed_overrides)


def check_overrides(body: Mapping[str, Any], allowed: Collection[str] = ()) -> None:
    """Refuse (403) any field of :data:`OVERRIDE_FIELDS` present in ``body`` and not ``allowed``."""
    for name in OVERRIDE_FIELDS:
        if body.get(name) is not None and name not in allowed:
            raise InvalidRequestError(
                name,
                f"'{name}' may not be set by this API key: it changes the deployment or credentials "
                "a request uses (the operator can allow it with the key's 'allow_overrides')",
                status=403,
            )


def _check_model(model: object) -> None:
    if model is None:
        return
    if not isinstance(model, str):
        raise InvalidRequestError("model", f"'model' must be a string, got {_kind(model)}")
    if not model or len(model) > MAX_MODEL_NAME or not model.isprintable():
        raise InvalidRequestError(
            "model", f"'model' must be 1 to {MAX_MODEL_NAME} printable characters (no control characters)"
        )


def _kind(value: object) -> str:
    """The JSON type of ``value`` (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a fraction"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__
