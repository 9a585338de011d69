"""Scripted LiteLLM responses per model, on top of LiteLLM's own ``mock_response``.

``MockLLM`` adds ``mock_response=`` (and ``mock_delay=``) to each ``litellm.completion`` /
``litellm.acompletion`` call whose model is scripted. Everything else of LiteLLM still runs:
the Router's retries and fallbacks, callbacks, cost calculation, streaming. Calls made
through ``litellm.completion`` / ``litellm.acompletion`` (module attributes), through
``mm_litellm``, and through a ``litellm.Router`` are all seen.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from mm_litellm.integrations import _litellm as _boundary
from mm_litellm.integrations._litellm import litellm

__all__ = ["ERRORS", "MockCall", "MockLLM", "Reply", "UnscriptedModelError", "model_response"]

ERRORS: dict[str, tuple[str, int]] = {
    "rate_limit": ("RateLimitError", 429),
    "context_window": ("ContextWindowExceededError", 400),
    "content_policy": ("ContentPolicyViolationError", 400),
    "internal": ("InternalServerError", 500),
    "unavailable": ("ServiceUnavailableError", 503),
    "auth": ("AuthenticationError", 401),
    "bad_request": ("BadRequestError", 400),
    "timeout": ("Timeout", 408),
}
"""Error names a script accepts, with the LiteLLM exception class each one raises."""


PASS_THROUGH_PREFIXES = ("ensemble/",)
"""Models served by mm_litellm's own providers: never mocked, their member calls are."""


class UnscriptedModelError(AssertionError):
    """A call reached a model the test did not script (a strict ``MockLLM`` refuses it)."""


@dataclass(frozen=True)
class Reply:
    """One scripted outcome: a text answer with optional token usage, or an error."""

    text: str = "mocked response"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | BaseException | None = None
    delay: float | None = None

    def mock_kwargs(self, model: str, stream: bool) -> dict[str, Any]:
        """The ``mock_*`` keyword arguments that make LiteLLM produce this outcome."""
        kwargs: dict[str, Any] = {}
        if self.delay:
            kwargs["mock_delay"] = self.delay
        if self.error is not None:
            kwargs["mock_response"] = _exception(self.error, model)
        elif (self.prompt_tokens is not None or self.completion_tokens is not None) and not stream:
            kwargs["mock_response"] = model_response(
                self.text,
                model=model,
                prompt_tokens=self.prompt_tokens,
                completion_tokens=self.completion_tokens,
            )
        else:  # LiteLLM counts real tokens for a streamed string mock
            kwargs["mock_response"] = self.text
        return kwargs


@dataclass(frozen=True)
class MockCall:
    """One call the mock saw: the model string LiteLLM was asked for and the policy group."""

    model: str
    model_group: str | None
    kwargs: Mapping[str, Any]
    reply: Reply


def model_response(
    text: str, *, model: str = "mock", prompt_tokens: int | None = None, completion_tokens: int | None = None
) -> Any:
    """A fresh ``litellm.ModelResponse`` with ``text`` and explicit token usage."""
    lt = litellm()
    prompt = prompt_tokens if prompt_tokens is not None else 10
    completion = completion_tokens if completion_tokens is not None else max(1, len(text.split()))
    return lt.ModelResponse(
        id=f"chatcmpl-mock-{uuid.uuid4().hex[:12]}",
        model=model,
        created=int(time.time()),
        choices=[{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        usage={"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    )


def _exception(error: str | BaseException, model: str) -> BaseException:
    if isinstance(error, BaseException):
        return error
    if error not in ERRORS:
        raise ValueError(f"unknown error '{error}'; allowed: {', '.join(ERRORS)}")
    name, _status = ERRORS[error]
    cls = getattr(litellm(), name)
    provider = model.split("/", 1)[0] if "/" in model else "openai"
    message = f"mocked {error} error for {model}"
    if name == "Timeout":
        return cls(message=message, model=model, llm_provider=provider)  # type: ignore[no-any-return]
    return cls(message=message, llm_provider=provider, model=model)  # type: ignore[no-any-return]


class MockLLM:
    """Per-model scripted responses for LiteLLM calls.

    >>> mock = MockLLM()
    >>> mock.script("gpt-4o-mini", "Paris", prompt_tokens=12, completion_tokens=1)
    >>> mock.script("claude-sonnet", error="rate_limit", times=1)
    >>> with mock.installed():
    ...     ...  # litellm / mm_litellm calls are answered by the script

    A model name matches the policy model group (``metadata.model_group``), the exact LiteLLM
    model string, or that string without its provider prefix; ``"*"`` matches every call.
    ``times=N`` replies are used first, N times each, then the model's standing reply returns.

    Router retries still happen (a ``times=1`` error is retried, as with a real provider) but,
    with ``retry_sleep=False`` (the default), without LiteLLM's backoff sleep between attempts, so
    error-path tests are instant. ``retry_sleep=True`` keeps LiteLLM's real backoff.
    """

    def __init__(self, *, strict: bool = True, retry_sleep: bool = False) -> None:
        self.strict = strict
        self.retry_sleep = retry_sleep
        self.calls: list[MockCall] = []
        self._standing: dict[str, Reply] = {}
        self._queued: dict[str, deque[Reply]] = {}
        self._lock = threading.Lock()

    def script(
        self,
        model: str = "*",
        text: str = "mocked response",
        *,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        error: str | BaseException | None = None,
        delay: float | None = None,
        times: int | None = None,
    ) -> MockLLM:
        """Script ``model``'s reply: a text (optionally with exact usage), an error, a delay."""
        if isinstance(error, str):
            _ = ERRORS.get(error) or _exception(error, model)  # validate the name now
        reply = Reply(text, prompt_tokens, completion_tokens, error, delay)
        with self._lock:
            if times is None:
                self._standing[model] = reply
            else:
                self._queued.setdefault(model, deque()).extend([reply] * times)
        return self

    def calls_for(self, model: str) -> list[MockCall]:
        """The calls answered for ``model`` (matched like scripts are)."""
        return [c for c in self.calls if model in _keys(c.model, c.model_group)]

    def _reply(self, model: str, group: str | None) -> Reply | None:
        with self._lock:
            for key in (*_keys(model, group), "*"):
                queue = self._queued.get(key)
                if queue:
                    return queue.popleft()
                if key in self._standing:
                    return self._standing[key]
        return None

    def _inject(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if "mock_response" in kwargs or str(kwargs.get("model", "")).startswith(PASS_THROUGH_PREFIXES):
            return kwargs
        model = str(kwargs.get("model", ""))
        meta = kwargs.get("metadata") or kwargs.get("litellm_metadata") or {}
        group = meta.get("model_group") if isinstance(meta, Mapping) else None
        reply = self._reply(model, group)
        if reply is None:
            if self.strict:
                raise UnscriptedModelError(
                    f"no scripted response for model '{model}' (group '{group}'); script it with "
                    f"mock.script('{group or model}', ...) or mock.script('*', ...)"
                )
            return kwargs
        self.calls.append(MockCall(model, group, dict(kwargs), reply))
        return kwargs | reply.mock_kwargs(model, bool(kwargs.get("stream")))

    @contextmanager
    def installed(self) -> Iterator[MockLLM]:
        """Answer LiteLLM calls from the script inside the ``with`` block."""
        lt = litellm()
        main = lt.main
        originals = {
            (lt, "completion"): lt.completion,
            (lt, "acompletion"): lt.acompletion,
            (main, "completion"): main.completion,
        }
        sync_original = main.completion
        async_original = lt.acompletion

        @functools.wraps(sync_original)
        def completion(*args: Any, **kwargs: Any) -> Any:
            return sync_original(*args, **self._inject(_named(args, kwargs)))

        @functools.wraps(async_original)
        async def acompletion(*args: Any, **kwargs: Any) -> Any:
            return await async_original(*args, **self._inject(_named(args, kwargs)))

        lt.completion = completion
        main.completion = completion
        lt.acompletion = acompletion
        backoff = getattr(lt, "calculate_retry_after", None)  # (a lazy attribute: this loads it)
        if not self.retry_sleep and backoff is not None:
            # The Router's backoff between retries (LiteLLM 1.106's Python Router reads it here).
            originals[(lt, "calculate_retry_after")] = backoff
            setattr(lt, "calculate_retry_after", _no_backoff)  # noqa: B010
        _boundary._enter_mocking(+1)
        try:
            yield self
        finally:
            _boundary._enter_mocking(-1)
            for (module, name), value in originals.items():
                setattr(module, name, value)


def _no_backoff(*_args: Any, **_kwargs: Any) -> float:
    """A mocked provider has no rate limit to wait out: retry at once."""
    return 0.0


def _named(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """LiteLLM's ``completion(model, messages, ...)`` with positional model/messages named."""
    kwargs = dict(kwargs)
    for name, value in zip(("model", "messages"), args, strict=False):
        kwargs[name] = value
    if len(args) > 2:
        raise TypeError("pass LiteLLM arguments after 'messages' by keyword")
    return kwargs


def _keys(model: str, group: str | None) -> tuple[str, ...]:
    keys: list[str] = []
    if group:
        keys.append(group)
    keys.append(model)
    if "/" in model:
        keys.append(model.split("/", 1)[1])
    return tuple(keys)
