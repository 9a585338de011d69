"""Load a policy file: YAML with line numbers, pydantic validation, cross-references.

Every problem is reported, not only the first, as ``file:line field.path: message``. Messages
never echo the offending value: a policy holds secrets (``api_key``) and an error must not
print them.

Hostile files are refused before they cost anything: more than :data:`MAX_POLICY_BYTES`, not
UTF-8, YAML anchors and aliases (a few hundred bytes of nested aliases expand to billions of
nodes), nesting deeper than :data:`MAX_DEPTH` or more than :data:`MAX_NODES` nodes, each as one
``file:line`` issue. :func:`load_complete_policy` is the stricter reader for hot reload.
"""

from __future__ import annotations

import os
import time
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mm_litellm.errors import PolicyError, PolicyIssue
from mm_litellm.policy.references import check_references
from mm_litellm.policy.schema import Policy

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_POLICY_BYTES",
    "REQUIRED_SECTIONS",
    "load_complete_policy",
    "load_policy",
    "parse_policy",
]

Loc = tuple[str | int, ...]

MAX_POLICY_BYTES = 2_000_000
"""Largest policy (or keys) file read; real ones are a few kilobytes."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists accepted."""
MAX_NODES = 200_000
"""Most YAML nodes (scalars, mappings, lists) accepted in one file."""
REQUIRED_SECTIONS = ("version", "models")
"""Top-level sections a hot-reloaded policy must declare (a cut or emptied file lacks them)."""


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read, validate and freeze the policy at ``path`` (a learned route's router is loaded with it).

    Raises :class:`~mm_litellm.errors.PolicyError` listing every problem with its line.
    """
    source = os.fspath(path)
    return parse_policy(read_text(source, "policy"), source=source)


def load_complete_policy(path: str | os.PathLike[str], *, settle: float = 0.05) -> Policy:
    """:func:`load_policy` for hot reload: also refuse a file that is empty, lacks one of
    :data:`REQUIRED_SECTIONS` (or has no models), or changes between two reads ``settle`` seconds
    apart (still being written). Write a new policy to a temporary file and rename it over the
    old one: a rename is atomic, a rewrite in place is not.
    """
    source = os.fspath(path)
    first = _read_bytes(source, "policy")
    time.sleep(settle)
    second = _read_bytes(source, "policy")
    if first != second:
        raise _error(
            source,
            "the file changed while it was read (still being written?); write the new "
            "policy elsewhere, then rename it over this file",
        )
    text = _decode(second, source)
    if not text.strip():
        raise _error(source, f"the file is empty; a policy declares at least {', '.join(REQUIRED_SECTIONS)}")
    data, lines, issues = _read_yaml(text, source)
    if issues:
        raise PolicyError(issues)
    if isinstance(data, dict):
        missing = [name for name in REQUIRED_SECTIONS if name not in data]
        if missing:
            required = ", ".join(REQUIRED_SECTIONS)
            raise PolicyError(
                [
                    PolicyIssue(
                        source,
                        None,
                        "",
                        f"no '{name}' section: the file looks "
                        f"incomplete (a reloaded policy declares {required})",
                    )
                    for name in missing
                ]
            )
        if not data.get("models"):
            raise PolicyError(
                [
                    PolicyIssue(
                        source,
                        lines.get(("models",)),
                        "models",
                        "no models declared: the file looks incomplete",
                    )
                ]
            )
    return _validated(data, lines, source)


def _error(source: str, message: str, *, line: int | None = None) -> PolicyError:
    return PolicyError([PolicyIssue(source, line, "", message)])


def read_text(source: str, what: str) -> str:
    """A policy or keys file as text: at most :data:`MAX_POLICY_BYTES`, UTF-8 (one-line errors)."""
    return _decode(_read_bytes(source, what), source)


def _read_bytes(source: str, what: str) -> bytes:
    try:
        with open(source, "rb") as f:
            data = f.read(MAX_POLICY_BYTES + 1)
    except OSError as exc:
        raise _error(source, f"cannot read the {what} file: {exc.strerror}") from exc
    if len(data) > MAX_POLICY_BYTES:
        raise _error(source, f"the {what} file is over {MAX_POLICY_BYTES} bytes; is it the right file?")
    return data


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PolicyError(
            [PolicyIssue(source, line, "", f"not valid UTF-8 (byte {exc.start}); save the file as UTF-8")]
        ) from None


def parse_policy(
    text: str, *, source: str = "<string>", base_dir: str | os.PathLike[str] | None = None
) -> Policy:
    """Validate a policy given as YAML text (``source`` names it in error messages).

    Relative paths in the policy (a learned route's ``artifact``) start from ``base_dir``:
    default, the folder of the file ``source`` names, else the working directory.
    """
    if len(text) > MAX_POLICY_BYTES:
        raise _error(source, f"the policy is larger than {MAX_POLICY_BYTES} bytes")
    data, lines, issues = _read_yaml(text, source)
    if issues:
        raise PolicyError(issues)
    return _validated(data, lines, source, base_dir)


def _validated(
    data: Any, lines: dict[Loc, int], source: str, base_dir: str | os.PathLike[str] | None = None
) -> Policy:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _error(source, "the policy must be a mapping (key: value) at the top level", line=1)
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_issues_from_validation(exc, source, lines)) from None
    problems = [
        PolicyIssue(source, _line_for(loc, lines), _format_loc(loc), message)
        for loc, message in check_references(policy)
    ]
    if problems:
        raise PolicyError(sorted(problems, key=lambda i: (i.line or 0, i.path)))
    policy._source = source
    policy._base_dir = os.path.abspath(base_dir if base_dir is not None else _folder_of(source))
    if any(route.strategy == "learned" for route in policy.routes.values()):
        from mm_litellm.learned.strategy import attach_routers  # numpy only when a policy needs it

        problems = [
            PolicyIssue(source, _line_for(loc, lines), _format_loc(loc), message)
            for loc, message in attach_routers(policy)
        ]
        if problems:
            raise PolicyError(sorted(problems, key=lambda i: (i.line or 0, i.path)))
    return policy


def _folder_of(source: str) -> str:
    parent = Path(source).parent
    return str(parent) if source != "<string>" and parent.is_dir() else os.getcwd()


# --- YAML with positions -------------------------------------------------------------------


class _Refused(Exception):
    def __init__(self, mark: Any, message: str) -> None:
        super().__init__(message)
        self.line = mark.line + 1 if mark is not None else None
        self.message = message


class _PolicyLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no stubs here
    """PyYAML's safe loader, refusing anchors and aliases and capping depth and node count while
    composing, before anything is expanded or recursed into."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _Refused(
                event.start_mark,
                "YAML anchors and aliases (&name, *name, <<:) are not allowed "
                "in a policy; write the values out",
            )
        self._depth += 1
        self._nodes += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(event.start_mark, f"nested deeper than {MAX_DEPTH} levels")
        if self._nodes > MAX_NODES:
            raise _Refused(event.start_mark, f"more than {MAX_NODES} YAML nodes")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _read_yaml(text: str, source: str) -> tuple[Any, dict[Loc, int], list[PolicyIssue]]:
    """Parse YAML safely; return the data, a map of field path -> 1-based line, and issues."""
    loader = _PolicyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}, []
        lines: dict[Loc, int] = {}
        issues: list[PolicyIssue] = []
        _index(node, (), lines, issues, source)
        return loader.construct_document(node), lines, issues
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = exc.problem or exc.context or "invalid YAML"
        line = mark.line + 1 if mark else None
        return None, {}, [PolicyIssue(source, line, "", f"YAML syntax error at {where}: {problem}")]
    except _Refused as exc:
        return None, {}, [PolicyIssue(source, exc.line, "", exc.message)]
    except yaml.YAMLError as exc:
        return None, {}, [PolicyIssue(source, None, "", f"YAML error: {exc}")]
    except RecursionError:  # the parser itself, on nesting the composer never saw
        return None, {}, [PolicyIssue(source, None, "", f"nested deeper than {MAX_DEPTH} levels")]
    finally:
        loader.dispose()


def _index(node: yaml.Node, loc: Loc, lines: dict[Loc, int], issues: list[PolicyIssue], source: str) -> None:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            path = (*loc, key)
            if key in seen:
                issues.append(
                    PolicyIssue(source, key_node.start_mark.line + 1, _format_loc(path), "duplicate key")
                )
            seen.add(key)
            lines[path] = key_node.start_mark.line + 1
            _index(value_node, path, lines, issues, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*loc, i), lines, issues, source)


def _line_for(loc: Loc, lines: dict[Loc, int]) -> int | None:
    """The line of ``loc`` or of its nearest ancestor present in the file."""
    for end in range(len(loc), -1, -1):
        line = lines.get(loc[:end])
        if line is not None:
            return line
    return None


def _format_loc(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# --- pydantic errors -> issues ---------------------------------------------------------------


def _issues_from_validation(exc: ValidationError, source: str, lines: dict[Loc, int]) -> list[PolicyIssue]:
    issues = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = _clean_loc(error["loc"])
        issues.append(PolicyIssue(source, _line_for(loc, lines), _format_loc(loc), _message(error, loc)))
    unique = {(i.line, i.path, i.message): i for i in issues}
    return sorted(unique.values(), key=lambda i: (i.line or 0, i.path))


def _clean_loc(loc: tuple[Any, ...]) -> Loc:
    """Drop pydantic's internal loc parts (validator names such as ``function-after[...]``)."""
    return tuple(p for p in loc if isinstance(p, int) or "[" not in str(p))


def _message(error: Any, loc: Loc) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = f"; allowed: {', '.join(allowed)}" if allowed else ""
        return f"unknown key '{loc[-1]}'{hint}"
    if kind == "missing":
        return "required"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _allowed_keys(loc: Loc) -> list[str]:
    """The field names of the model found at ``loc`` in the Policy schema (for 'allowed: ...')."""
    current: Any = Policy
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part)) or next(
                (f for f in current.model_fields.values() if f.alias == str(part)), None
            )
            if field is None:
                return []
            current = field.annotation
        else:
            args = typing.get_args(current)
            origin = typing.get_origin(current)
            if origin in (dict, Mapping) and len(args) == 2:
                current = args[1]
            elif origin is tuple and args:
                current = args[0]
            else:
                return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items() if not f.exclude]
    return []


def _unwrap(tp: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` to reach the model or container type."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
            continue
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if origin in (typing.Union, types.UnionType) and len(args) == 1:
            tp = args[0]
            continue
        return tp
