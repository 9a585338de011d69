"""Fixtures for the prompt registry: a prompts directory and a registry with its own SQLite file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

QA_PROMPT = """
name: Question answering
labels: {production: 1}
versions:
  - version: 1
    variables: [question]
    model: small
    params: {temperature: 0.1, max_tokens: 50}
    messages:
      - {role: system, content: "Answer briefly."}
      - {role: user, content: "Q: {{ question }}"}
  - version: 2
    variables: [question]
    params: {temperature: 0.7, max_tokens: 200, response_format: {type: json_object}}
    messages:
      - {role: system, content: "Answer as JSON: {\\"answer\\": ...}"}
      - {role: user, content: "{{question}}"}
"""


@pytest.fixture(autouse=True)
def _no_registered_registry() -> Iterator[None]:
    """Each test starts and ends without a registered registry or an installed prompt manager."""
    from mm_litellm.prompts import apply

    apply.set_registered(None)
    yield
    apply.set_registered(None)


@pytest.fixture
def prompt_dir(tmp_path: Path) -> Path:
    """A prompts directory with one prompt, ``qa`` (v1 production, v2), plus the seed prompts' shape."""
    directory = tmp_path / "prompts"
    directory.mkdir()
    (directory / "qa.yaml").write_text(QA_PROMPT, encoding="utf-8")
    return directory


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'prompts.db'}"


@pytest.fixture
def make_registry(prompt_dir: Path, db_url: str) -> Callable[..., Any]:
    """``make_registry(settings=None, store=True)``: a registry over ``prompt_dir`` and the test database."""
    from mm_litellm import storage
    from mm_litellm.prompts.registry import PromptRegistry
    from mm_litellm.prompts.store import PromptStore

    def make(settings: Any = None, store: bool = True) -> PromptRegistry:
        return PromptRegistry(
            prompt_dir, PromptStore(storage.engine_for(db_url)) if store else None, settings
        )

    return make
