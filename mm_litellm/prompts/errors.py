"""The prompt registry's exceptions (all subclasses of :class:`mm_litellm.MMLiteLLMError`)::

MMLiteLLMError
└── PromptError                  anything the prompt registry refuses
    ├── TemplateSyntaxError      a template uses syntax the safe renderer does not allow (at registration)
    ├── RenderError              variables given to a render do not fit the template (missing, extra, type)
    ├── PromptNotFoundError      unknown prompt id, version or label
    └── PromptStoreError         a change that needs the database, or conflicts with it
"""

from __future__ import annotations

from collections.abc import Iterable

from mm_litellm.errors import MMLiteLLMError

__all__ = [
    "PromptError",
    "PromptNotFoundError",
    "PromptStoreError",
    "RenderError",
    "TemplateSyntaxError",
]


class PromptError(MMLiteLLMError, ValueError):
    """Base class of every error of the prompt registry."""


class TemplateSyntaxError(PromptError):
    """A template uses syntax the safe renderer refuses; raised when the version is registered.

    ``where`` names the template (``prompt 'extraction' v2 messages[1]``), ``placeholder`` the
    offending text exactly as written.
    """

    def __init__(self, where: str, placeholder: str, reason: str) -> None:
        self.where = where
        self.placeholder = placeholder
        self.reason = reason
        super().__init__(f"{where}: {placeholder!r} {reason}")


class RenderError(PromptError):
    """The variables of a render do not fit the template: ``names`` are the offending variables."""

    def __init__(self, where: str, problem: str, names: Iterable[str], allowed: Iterable[str] = ()) -> None:
        self.where = where
        self.names = tuple(sorted(names))
        allowed = sorted(allowed)
        listing = ", ".join(allowed) if allowed else "(none)"
        super().__init__(f"{where}: {problem}: {', '.join(self.names)}; declared variables: {listing}")


class PromptNotFoundError(PromptError, LookupError):
    """No prompt with this id, or no such version or label of it."""


class PromptStoreError(PromptError):
    """A change the store cannot make: no database configured, or it conflicts with what is stored."""
