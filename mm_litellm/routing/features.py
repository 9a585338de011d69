"""Request features: the facts rules test, computed once per request and cheaply.

Only plain Python here (no LiteLLM): the features are read from LiteLLM-style keyword
arguments (``messages``, ``tools``, ``response_format``, ``metadata``, ``user``...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mm_litellm.policy.facts import FACTS
from mm_litellm.routing.classifier import Classifier, request_text

__all__ = ["FACTS", "RequestFeatures", "estimate_tokens", "extract_features"]


_CHARS_PER_TOKEN = 4
_TOKENS_PER_MESSAGE = 4
_JSON_FORMATS = frozenset({"json_object", "json_schema"})


class RequestFeatures:
    """What the routing rules see of one request."""

    __slots__ = (
        "_classifier",
        "_task",
        "_text",
        "_tier",
        "budget_mode",
        "has_images",
        "has_tools",
        "input_tokens",
        "input_tokens_exact",
        "json_mode",
        "latency_critical",
        "max_tokens",
        "memo",
        "message_count",
        "metadata",
        "model",
        "preferred_model",
        "priority",
        "stream",
        "tags",
        "team",
        "user",
    )

    def __init__(
        self,
        *,
        model: str = "",
        input_tokens: int = 0,
        message_count: int = 0,
        has_images: bool = False,
        has_tools: bool = False,
        json_mode: bool = False,
        stream: bool = False,
        max_tokens: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        user: str | None = None,
        input_tokens_exact: bool = False,
        text: str = "",
        classifier: Classifier | None = None,
        task: str | None = None,
        tier: str | None = None,
    ) -> None:
        meta = metadata or {}
        self.model = model
        self.input_tokens = input_tokens
        self.input_tokens_exact = input_tokens_exact
        self._text = text
        self._classifier = classifier
        self._task = task
        self._tier = tier
        self.memo: dict[Any, Any] | None = None
        """What a strategy computed from this request (e.g. a learned router's predictions), kept
        so that a replay deciding the same request again under another policy reuses it."""
        self.message_count = message_count
        self.has_images = has_images
        self.has_tools = has_tools
        self.json_mode = json_mode
        self.stream = stream
        self.max_tokens = max_tokens
        self.metadata = meta
        self.user = user if user is not None else meta.get("user")
        self.team = meta.get("team")
        self.priority = meta.get("priority")
        self.budget_mode = meta.get("budget_mode")
        self.latency_critical = meta.get("latency_critical")
        self.preferred_model = meta.get("preferred_model")
        tags = meta.get("tags")
        self.tags = tuple(tags) if isinstance(tags, list | tuple) else ((tags,) if tags else ())

    @property
    def task(self) -> str:
        """Task type, classified on first use (a route whose rules never test it never pays)."""
        if self._task is None:
            self._task = self._classifier.task(self._text) if self._classifier is not None else "general"
        return self._task

    @property
    def tier(self) -> str:
        """Complexity tier, classified on first use."""
        if self._tier is None:
            classifier = self._classifier
            self._tier = classifier.tier(self._text, self.input_tokens) if classifier is not None else "basic"
        return self._tier

    @property
    def text(self) -> str:
        """The text the classifier reads (the last user message)."""
        return self._text

    def as_dict(self) -> dict[str, Any]:
        """The features as a plain dict (for explain output and the decision trace)."""
        return {name: getattr(self, name) for name in FACTS} | {"metadata": dict(self.metadata)}

    def __repr__(self) -> str:
        return f"RequestFeatures({self.as_dict()!r})"


def estimate_tokens(messages: Sequence[Any] | None) -> tuple[int, int, bool]:
    """Cheap input size: (estimated tokens, message count, has images). No tokenizer."""
    if not messages:
        return 0, 0, False
    chars = 0
    images = False
    for message in messages:
        content = (
            message.get("content") if isinstance(message, Mapping) else getattr(message, "content", None)
        )
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, Mapping):
                    continue
                kind = part.get("type")
                if kind == "text":
                    chars += len(part.get("text") or "")
                elif kind in ("image_url", "image", "input_image"):
                    images = True
    return chars // _CHARS_PER_TOKEN + _TOKENS_PER_MESSAGE * len(messages), len(messages), images


def near(tokens: int, thresholds: Sequence[int], band: float) -> bool:
    """Whether an estimate is close enough to a threshold that its error could flip a decision."""
    return any(abs(tokens - t) <= band * t for t in thresholds)


def extract_features(
    model: str,
    messages: Sequence[Any] | None,
    kwargs: Mapping[str, Any],
    *,
    classifier: Classifier | None = None,
    thresholds: Sequence[int] = (),
    counter: Callable[[Sequence[Any]], int] | None = None,
    band: float = 0.15,
) -> RequestFeatures:
    """Compute the features of one LiteLLM-style request.

    ``counter`` (an exact token counter) runs only when the cheap estimate is within ``band``
    of one of ``thresholds``: exact counts cost milliseconds on long prompts.
    """
    tokens, count, images = estimate_tokens(messages)
    exact = False
    if counter is not None and thresholds and messages and near(tokens, thresholds, band):
        tokens, exact = counter(messages), True
    response_format = kwargs.get("response_format")
    if isinstance(response_format, Mapping):
        json_mode = response_format.get("type") in _JSON_FORMATS
    else:
        json_mode = response_format is not None and not isinstance(response_format, str)
    metadata = kwargs.get("metadata")
    return RequestFeatures(
        model=model,
        input_tokens=tokens,
        message_count=count,
        has_images=images,
        has_tools=bool(kwargs.get("tools") or kwargs.get("functions")),
        json_mode=json_mode,
        stream=bool(kwargs.get("stream")),
        max_tokens=kwargs.get("max_tokens") or kwargs.get("max_completion_tokens"),
        metadata=metadata if isinstance(metadata, Mapping) else None,
        user=kwargs.get("user"),
        input_tokens_exact=exact,
        text=request_text(messages) if classifier is not None else "",
        classifier=classifier,
    )
