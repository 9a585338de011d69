"""Prompt files: ``config/prompts/<id>.yaml``, one prompt per file with all its versions.

Files are the reviewable form of prompts (changes go through git review); versions created
from the CLI or API live in the database next to them. A file's ``labels`` are the starting
point of each label; a label moved in the database overrides it.

```yaml
name: Product field extraction
labels: {production: 1, staging: 2}
versions:
  - version: 1
    variables: [target_fields, html_content]
    params: {temperature: 0, max_tokens: 800, response_format: {type: json_object}}
    messages:
      - {role: system, content: "You are a web scraping agent."}
      - {role: user, content: "Target fields: {{ target_fields }}\\n\\nHTML:\\n{{ html_content }}"}
```
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from mm_litellm.policy.types import Frozen, FrozenDict, Name
from mm_litellm.prompts.errors import PromptError
from mm_litellm.prompts.template import CompiledPrompt, Message, ModelParams, PromptVersion, compile_prompt

__all__ = ["PromptFile", "PromptFileSet", "load_prompt_dir", "load_prompt_file"]

LABEL_PATTERN = r"^[a-z][a-z0-9_-]*$"


class VersionEntry(Frozen):
    """One version as written in a prompt file."""

    version: int = Field(ge=1)
    description: str = ""
    variables: tuple[str, ...] = ()
    messages: tuple[Message, ...] = Field(min_length=1)
    model: str | None = None
    params: ModelParams = Field(default_factory=ModelParams)


class PromptFile(Frozen):
    """The shape of a prompt file."""

    id: Name | None = None
    """Optional; when given it must equal the file name without ``.yaml``."""
    name: str = ""
    description: str = ""
    labels: FrozenDict[int] = Field(default_factory=dict)
    versions: tuple[VersionEntry, ...] = Field(min_length=1)


@dataclass(frozen=True)
class PromptFileSet:
    """Everything read from a prompts directory: compiled versions and the labels the files set."""

    versions: dict[str, dict[int, CompiledPrompt]]
    labels: dict[str, dict[str, int]]


def load_prompt_file(path: str | os.PathLike[str]) -> tuple[dict[int, CompiledPrompt], dict[str, int]]:
    """Read and check one prompt file: its versions (compiled) and its labels."""
    path = Path(path)
    prompt_id = path.stem
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PromptError(f"{path}: cannot read the prompt file: {exc}") from exc
    try:
        spec = PromptFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise PromptError(f"{path}: invalid prompt file: {problems}") from None
    if spec.id is not None and spec.id != prompt_id:
        raise PromptError(f"{path}: id '{spec.id}' must equal the file name '{prompt_id}'")
    versions: dict[int, CompiledPrompt] = {}
    for entry in spec.versions:
        if entry.version in versions:
            raise PromptError(f"{path}: version {entry.version} of '{prompt_id}' is defined twice")
        try:
            version = PromptVersion(
                id=prompt_id,
                name=spec.name or prompt_id,
                source=f"file:{path}",
                **entry.model_dump(exclude={"params"}),
                params=entry.params,
            )
        except ValidationError as exc:
            raise PromptError(f"{path}: version {entry.version}: {exc.errors()[0]['msg']}") from None
        versions[entry.version] = compile_prompt(version)
    labels = dict(spec.labels)
    for label, number in labels.items():
        if not re.fullmatch(LABEL_PATTERN, label):
            raise PromptError(f"{path}: label '{label}' must be lower-case letters, digits, '-' or '_'")
        if number not in versions:
            raise PromptError(
                f"{path}: label '{label}' points at version {number}, which the file does not define "
                f"(versions: {', '.join(map(str, sorted(versions)))})"
            )
    return versions, labels


def load_prompt_dir(directory: str | os.PathLike[str]) -> PromptFileSet:
    """Every ``*.yaml`` / ``*.yml`` file of ``directory`` (a missing directory is an error)."""
    root = Path(directory)
    if not root.is_dir():
        raise PromptError(
            f"prompts directory '{root}' does not exist (policy 'prompts.dir', or register_prompts(dir=...))"
        )
    versions: dict[str, dict[int, CompiledPrompt]] = {}
    labels: dict[str, dict[str, int]] = {}
    for path in sorted([*root.glob("*.yaml"), *root.glob("*.yml")]):
        if path.stem in versions:
            raise PromptError(f"{path}: prompt '{path.stem}' is defined by two files")
        versions[path.stem], labels[path.stem] = load_prompt_file(path)
    return PromptFileSet(versions, labels)
