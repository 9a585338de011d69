"""Prompt versions and the safe renderer.

A template is data, not code: its only syntax is the placeholder ``{{ name }}`` (spaces
inside optional), replaced by the caller's value as plain text in a single pass. Nothing in a
template or a value is evaluated: no attribute or index access, no filters, no format specs,
no Jinja tags. Anything that looks like one of those is refused when the version is
*registered* (:func:`compile_prompt`), with the prompt, version, message and placeholder in the
error, so a bad template never reaches production. ``\\{`` writes literal braces
(``\\{{ not a placeholder }}`` renders as ``{{ not a placeholder }}``); single braces, as in
JSON examples, need no escaping unless they look like a Python format field (``{name}``),
which is refused because it is almost always a template written for ``str.format``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from mm_litellm.policy.types import Frozen, Name
from mm_litellm.prompts.errors import RenderError, TemplateSyntaxError

__all__ = [
    "CompiledPrompt",
    "Message",
    "ModelParams",
    "Placeholder",
    "PromptVersion",
    "RenderedPrompt",
    "compile_prompt",
    "parse_template",
]

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FORMAT_FIELD = re.compile(r"\{[A-Za-z_][^{}\s\"']*\}")
_REFUSALS = (
    (".", "uses attribute access; placeholders are plain variable names, written {{ name }}"),
    ("[", "uses index access; placeholders are plain variable names, written {{ name }}"),
    ("(", "calls something; templates cannot call anything, only {{ name }} placeholders"),
    ("|", "uses a filter; templates have no filters, only {{ name }} placeholders"),
    (":", "uses a format spec; values are inserted as plain text, write {{ name }}"),
    ("!", "uses a conversion; values are inserted as plain text, write {{ name }}"),
)


class Message(Frozen):
    """One chat message of a template: a role and text with ``{{ name }}`` placeholders."""

    role: Literal["system", "developer", "user", "assistant"]
    content: str = Field(min_length=1)


class ModelParams(Frozen):
    """Model parameters a template applies to the call (a caller's explicit argument wins)."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    top_p: float | None = Field(default=None, ge=0, le=1)
    seed: int | None = None
    stop: tuple[str, ...] | None = None
    response_format: dict[str, Any] | None = None

    def as_kwargs(self) -> dict[str, Any]:
        """The parameters that are set, as LiteLLM keyword arguments."""
        out = self.model_dump(exclude_none=True)
        if "stop" in out:
            out["stop"] = list(out["stop"])
        return out


class PromptVersion(Frozen):
    """One immutable version of a prompt, as stored in a file or the database."""

    id: Name
    version: int = Field(ge=1)
    name: str = ""
    description: str = ""
    variables: tuple[str, ...] = ()
    messages: tuple[Message, ...] = Field(min_length=1)
    model: str | None = None
    """Model used when the caller names none (``mm_litellm.completion(prompt_id=...)`` without ``model``)."""
    params: ModelParams = Field(default_factory=ModelParams)
    created_at: datetime | None = None
    created_by: str | None = None
    source: str = "api"
    """Where the version came from: ``file:<path>`` or ``database``."""

    @field_validator("variables")
    @classmethod
    def _variables(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not IDENTIFIER.fullmatch(name):
                raise ValueError(
                    f"variable {name!r} is not a plain name (letters, digits, _; not starting with a digit)"
                )
        if len(set(value)) != len(value):
            raise ValueError("variables are listed more than once")
        return value

    def content_key(self) -> str:
        """What makes two versions the same template (messages, variables, model, params)."""
        return json.dumps(
            self.model_dump(include={"variables", "messages", "model", "params"}, mode="json"), sort_keys=True
        )


@dataclass(frozen=True)
class Placeholder:
    """A ``{{ name }}`` in a template."""

    name: str


Segment = str | Placeholder


def parse_template(text: str, where: str) -> tuple[Segment, ...]:
    """Split ``text`` into literal text and placeholders; refuse everything else.

    ``where`` names the template in errors (``prompt 'extraction' v2 messages[1]``).
    """
    parts: list[Segment] = []
    buf: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and text.startswith("{", i + 1):
            j = i + 1
            while j < n and text[j] == "{":
                j += 1
            buf.append(text[i + 1 : j])
            i = j
            continue
        if c == "{":
            nxt = text[i + 1 : i + 2]
            if nxt == "{":
                end = text.find("}}", i + 2)
                if end < 0:
                    raise TemplateSyntaxError(
                        where, _excerpt(text, i), "opens a placeholder that is never closed with }}"
                    )
                inner = text[i + 2 : end].strip()
                if not IDENTIFIER.fullmatch(inner):
                    raise TemplateSyntaxError(where, text[i : end + 2], _why(inner))
                if buf:
                    parts.append("".join(buf))
                    buf = []
                parts.append(Placeholder(inner))
                i = end + 2
                continue
            if nxt == "%":
                raise TemplateSyntaxError(
                    where,
                    _excerpt(text, i, "%}"),
                    "is a Jinja block tag; templates have no logic, only {{ name }} placeholders",
                )
            if nxt == "#":
                raise TemplateSyntaxError(
                    where,
                    _excerpt(text, i, "#}"),
                    "is a Jinja comment; templates only have {{ name }} placeholders",
                )
            field = _FORMAT_FIELD.match(text, i)
            if field:
                raise TemplateSyntaxError(
                    where,
                    field.group(0),
                    "is a Python format field; placeholders are written {{ name }} "
                    "(write \\{ for a literal brace)",
                )
        buf.append(c)
        i += 1
    if buf:
        parts.append("".join(buf))
    return tuple(parts)


def _why(inner: str) -> str:
    if not inner:
        return "is an empty placeholder; write {{ name }}"
    for char, reason in _REFUSALS:
        if char in inner:
            return reason
    return "is not a plain variable name (letters, digits and _, not starting with a digit)"


def _excerpt(text: str, start: int, closing: str = "") -> str:
    end = (
        text.find(closing, start + 2) + len(closing)
        if closing and closing in text[start + 2 :]
        else start + 30
    )
    return text[start : min(end, start + 60)]


@dataclass(frozen=True)
class RenderedPrompt:
    """The result of a render: chat messages, plus the model and parameters the template sets."""

    messages: tuple[dict[str, str], ...]
    model: str | None
    params: Mapping[str, Any]


@dataclass(frozen=True)
class CompiledPrompt:
    """A :class:`PromptVersion` whose templates passed the safe-syntax check, ready to render."""

    spec: PromptVersion
    segments: tuple[tuple[Segment, ...], ...]

    @property
    def where(self) -> str:
        return f"prompt '{self.spec.id}' v{self.spec.version}"

    def render(self, variables: Mapping[str, Any] | None) -> RenderedPrompt:
        """Insert ``variables`` as text. Missing or undeclared variables are errors naming them."""
        values = dict(variables or {})
        declared = set(self.spec.variables)
        missing = declared - values.keys()
        if missing:
            raise RenderError(self.where, "missing variables", missing, declared)
        extra = values.keys() - declared
        if extra:
            raise RenderError(self.where, "undeclared variables", extra, declared)
        text = {name: _as_text(self.where, name, value) for name, value in values.items()}
        messages = tuple(
            {
                "role": message.role,
                "content": "".join(p if isinstance(p, str) else text[p.name] for p in parts),
            }
            for message, parts in zip(self.spec.messages, self.segments, strict=True)
        )
        return RenderedPrompt(messages, self.spec.model, self.spec.params.as_kwargs())


def _as_text(where: str, name: str, value: Any) -> str:
    """A value as the text that goes into the prompt: strings as they are, data as JSON."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | int | float | list | tuple | dict):
        try:
            return json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise RenderError(where, f"value is not JSON-serialisable ({exc})", [name]) from exc
    raise RenderError(
        where,
        f"value of type {type(value).__name__} is not allowed (use str, number, bool, list or dict)",
        [name],
    )


def compile_prompt(spec: PromptVersion) -> CompiledPrompt:
    """Check and precompile every message of ``spec``; :class:`TemplateSyntaxError` on the first problem."""
    declared = set(spec.variables)
    compiled = []
    for index, message in enumerate(spec.messages):
        where = f"prompt '{spec.id}' v{spec.version} messages[{index}] ({message.role})"
        parts = parse_template(message.content, where)
        for part in parts:
            if isinstance(part, Placeholder) and part.name not in declared:
                listing = ", ".join(spec.variables) or "(none)"
                raise TemplateSyntaxError(
                    where,
                    "{{ " + part.name + " }}",
                    f"uses a variable that is not declared; declared variables: {listing}",
                )
        compiled.append(parts)
    return CompiledPrompt(spec, tuple(compiled))
