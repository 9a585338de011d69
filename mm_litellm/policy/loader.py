"""Load a policy file: YAML with line numbers, pydantic validation, cross-references.

Every problem is reported, not only the first, as ``file:line field.path: message``. Messages
never echo the offending value: a policy holds secrets (``api_key``) and an error must not
print them.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mm_litellm.errors import PolicyError, PolicyIssue
from mm_litellm.policy.references import check_references
from mm_litellm.policy.schema import Policy

__all__ = ["load_policy", "parse_policy"]

Loc = tuple[str | int, ...]


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read, validate and freeze the policy at ``path`` (a learned route's router is loaded with it).

    Raises :class:`~mm_litellm.errors.PolicyError` listing every problem with its line.
    """
    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError([PolicyIssue(source, None, "", f"cannot read the policy file: {exc.strerror}")]) from exc
    return parse_policy(text, source=source)


def parse_policy(
    text: str, *, source: str = "<string>", base_dir: str | os.PathLike[str] | None = None
) -> Policy:
    """Validate a policy given as YAML text (``source`` names it in error messages).

    Relative paths in the policy (a learned route's ``artifact``) start from ``base_dir``:
    default, the folder of the file ``source`` names, else the working directory.
    """
    data, lines, issues = _read_yaml(text, source)
    if issues:
        raise PolicyError(issues)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError([PolicyIssue(source, 1, "", "the policy must be a mapping (key: value) at the top level")])
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


def _read_yaml(text: str, source: str) -> tuple[Any, dict[Loc, int], list[PolicyIssue]]:
    """Parse YAML safely; return the data, a map of field path -> 1-based line, and issues."""
    loader = yaml.SafeLoader(text)
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
    except yaml.YAMLError as exc:
        return None, {}, [PolicyIssue(source, None, "", f"YAML error: {exc}")]
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
            if origin is dict and len(args) == 2:
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
