"""Knobs: a numeric setting of a policy file named by a path, changed and re-validated.

A path walks the policy document: ``.`` between mapping keys, ``[i]`` for a list position and
``[name]`` for the list item whose ``name`` is ``name`` (rules), brackets also for keys that
contain dots::

    routes.auto.rules[long-context].when.input_tokens.gt
    routes.auto.rules[3].when.input_tokens.gt
    models[gpt-4o].quality

Every changed document goes through the normal loader, so a value the policy does not allow
is reported the way ``mm-litellm policy check`` would.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import yaml

from mm_litellm.errors import PolicyError
from mm_litellm.evaluation.errors import EvaluationError
from mm_litellm.policy.loader import parse_policy
from mm_litellm.policy.schema import Policy

__all__ = [
    "get_knob",
    "parse_path",
    "parse_values",
    "policy_from_document",
    "read_document",
    "rebase_paths",
    "set_knob",
]

_TOKEN = re.compile(r"\[([^\]]+)\]|([^.\[\]]+)")


def parse_path(path: str) -> list[str]:
    """Split a knob path into its steps (brackets kept as ``[x]`` so names and positions differ)."""
    steps: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(path):
        gap = path[pos : match.start()]
        if gap not in ("", "."):
            raise EvaluationError(f"knob path '{path}': unexpected '{gap}' at character {pos + 1}")
        steps.append(f"[{match.group(1)}]" if match.group(1) is not None else match.group(2))
        pos = match.end()
    if pos != len(path) or not steps:
        raise EvaluationError(
            f"knob path '{path}' is not a path like routes.auto.rules[name].when.input_tokens.gt"
        )
    return steps


def _step(node: Any, step: str, walked: str) -> tuple[Any, Any]:
    """The child container key (or index) for ``step`` under ``node``."""
    key = step[1:-1] if step.startswith("[") else step
    if isinstance(node, dict):
        if key not in node:
            raise EvaluationError(
                f"knob path: '{walked}' has no key '{key}'; keys: {', '.join(map(str, node)) or '(none)'}"
            )
        return node, key
    if isinstance(node, list):
        if key.lstrip("-").isdigit():
            index = int(key)
            if not -len(node) <= index < len(node):
                raise EvaluationError(f"knob path: '{walked}' has {len(node)} items; no item {index}")
            return node, index
        named = [i for i, item in enumerate(node) if isinstance(item, dict) and item.get("name") == key]
        if not named:
            names = [str(item.get("name")) for item in node if isinstance(item, dict) and "name" in item]
            raise EvaluationError(
                f"knob path: '{walked}' has no item named '{key}'; names: {', '.join(names) or '(none)'}"
            )
        return node, named[0]
    raise EvaluationError(f"knob path: '{walked}' is a value, not a mapping or list")


def get_knob(document: dict[str, Any], path: str) -> Any:
    node: Any = document
    walked = ""
    for step in parse_path(path):
        container, key = _step(node, step, walked or "(top)")
        node = container[key]
        walked = f"{walked}.{step}" if walked and not step.startswith("[") else walked + step
    return node


def set_knob(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``document`` with the setting at ``path`` replaced by ``value``."""
    changed = copy.deepcopy(document)
    steps = parse_path(path)
    node: Any = changed
    walked = ""
    for step in steps[:-1]:
        container, key = _step(node, step, walked or "(top)")
        node = container[key]
        walked = f"{walked}.{step}" if walked and not step.startswith("[") else walked + step
    container, key = _step(node, steps[-1], walked or "(top)")
    container[key] = value
    return changed


def read_document(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The policy file as a plain YAML document (validated separately)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise EvaluationError(f"{path}: cannot read the policy file: {exc.strerror}") from exc
    if not isinstance(data, dict):
        raise EvaluationError(f"{path}: the policy must be a mapping at the top level")
    return data


def policy_from_document(
    document: dict[str, Any], source: str, base_dir: str | os.PathLike[str] | None = None
) -> Policy:
    """Validate a (changed) document with the policy loader.

    ``base_dir``: the folder the document's relative paths start from (its file's folder).
    """
    try:
        return parse_policy(
            yaml.safe_dump(document, sort_keys=False, allow_unicode=True), source=source, base_dir=base_dir
        )
    except PolicyError as exc:
        raise EvaluationError(f"the changed policy is invalid:\n{exc}") from exc


def rebase_paths(
    document: dict[str, Any], old_base: str | os.PathLike[str], new_base: str | os.PathLike[str]
) -> dict[str, Any]:
    """A copy of ``document`` whose relative paths (learned routes' artifacts) work from ``new_base``."""
    changed = copy.deepcopy(document)
    for route in (changed.get("routes") or {}).values():
        learned = route.get("learned") if isinstance(route, dict) else None
        artifact = learned.get("artifact") if isinstance(learned, dict) else None
        if (
            isinstance(learned, dict)
            and isinstance(artifact, str)
            and not os.path.isabs(os.path.expanduser(artifact))
        ):
            target = os.path.abspath(os.path.join(old_base, artifact))
            learned["artifact"] = os.path.relpath(target, os.path.abspath(new_base))
    return changed


def parse_values(text: str) -> list[float | int]:
    """``100,200,400`` or ``START:STOP:COUNT`` (COUNT evenly spaced values, ends included)."""

    def number(raw: str) -> float | int:
        value = float(raw)
        return int(value) if value.is_integer() and "." not in raw and "e" not in raw.lower() else value

    try:
        if ":" in text:
            start_s, stop_s, count_s = text.split(":")
            start, stop, count = float(start_s), float(stop_s), int(count_s)
            if count < 2:
                raise ValueError
            integral = all("." not in s for s in (start_s, stop_s))
            values = [start + (stop - start) * i / (count - 1) for i in range(count)]
            return sorted({round(v) for v in values}) if integral else values
        return [number(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise EvaluationError(
            f"--values expects a list like 100,200,400 or START:STOP:COUNT (COUNT >= 2), got '{text}'"
        ) from None
