"""The request facts a policy rule's ``when:`` may test (computed by :mod:`mm_litellm.routing.features`)."""

from __future__ import annotations

__all__ = ["FACTS"]

FACTS: dict[str, str] = {
    "model": "the model name the caller asked for",
    "task": "task type from the classifier: reasoning, extraction, classification, code, summarization, "
    "math, creative or general (patterns in the policy's classifier: section)",
    "tier": "complexity tier from the classifier: basic, intermediate, advanced or expert",
    "input_tokens": "input tokens: characters / 4 plus per-message overhead, counted exactly with "
    "litellm.token_counter when near a threshold a rule or context window uses",
    "input_tokens_exact": "true when input_tokens was counted exactly",
    "message_count": "number of chat messages",
    "has_images": "true when a message carries an image part",
    "has_tools": "true when the request offers tools or functions",
    "json_mode": "true when response_format asks for JSON",
    "stream": "true for a streaming request",
    "max_tokens": "the request's max_tokens (or max_completion_tokens), if given",
    "user": "the request's user (LiteLLM 'user' argument or metadata.user)",
    "team": "metadata.team",
    "priority": "metadata.priority (e.g. high, normal, low)",
    "budget_mode": "metadata.budget_mode (true when the caller wants the cheap path)",
    "latency_critical": "metadata.latency_critical",
    "preferred_model": "metadata.preferred_model",
    "tags": "metadata.tags (a list)",
}
"""Fact names a rule's ``when:`` may test, besides ``metadata.<path>``."""
