"""pytest plugin (registered through the ``pytest11`` entry point): fixtures for testing code
that calls LiteLLM or mm_litellm, with no network and no API keys.

Fixtures:

- ``mm_mock``: a strict :class:`~mm_litellm.testing.MockLLM` installed for the test; script
  replies per model with ``mm_mock.script("gpt-4o-mini", "Paris", prompt_tokens=12)``.
- ``mm_policy``: ``mm_policy(text_or_path_or_Policy)`` makes a policy active for the test
  and restores the previous state afterwards.
- ``fake_upstream``: a started :class:`~mm_litellm.testing.FakeUpstream` (loopback
  OpenAI-compatible server); point deployments at ``fake_upstream.base_url``.

Importing this module does not import LiteLLM.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["fake_upstream", "mm_mock", "mm_policy"]


@pytest.fixture
def mm_mock() -> Iterator[Any]:
    """Scripted LiteLLM responses per model for this test (strict: unscripted models fail)."""
    from mm_litellm.testing.mocks import MockLLM

    mock = MockLLM()
    with mock.installed():
        yield mock


@pytest.fixture
def mm_policy() -> Iterator[Callable[[Any], Any]]:
    """Activate a policy (YAML text, a path, or a Policy) for this test only."""
    from mm_litellm import runtime
    from mm_litellm.policy import Policy, load_policy, parse_policy

    saved = runtime.DEFAULT.peek()

    def activate(source: Any) -> Policy:
        if isinstance(source, Policy):
            policy = source
        elif isinstance(source, Path) or (
            isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml"))
        ):
            policy = load_policy(source)
        else:
            policy = parse_policy(str(source))
        runtime.configure(policy)
        return policy

    try:
        yield activate
    finally:  # the test's runtime closes (ledger written, callbacks unregistered)
        runtime.configure(saved.policy if saved is not None else None)
        runtime.wait_retired(10)


@pytest.fixture
def fake_upstream() -> Iterator[Any]:
    """A loopback fake OpenAI-compatible upstream, started for this test."""
    from mm_litellm.testing.upstream import FakeUpstream

    with FakeUpstream() as upstream:
        yield upstream
