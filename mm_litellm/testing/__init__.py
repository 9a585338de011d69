"""Helpers for testing code that uses LiteLLM or mm_litellm, offline.

- :class:`MockLLM`: scripted replies per model through LiteLLM's own ``mock_response``.
- :class:`FakeUpstream`: a loopback OpenAI-compatible HTTP server with scripted latency and
  faults, for anything that must cross HTTP (the LiteLLM proxy, ``api_base`` deployments).
- The pytest fixtures ``mm_mock``, ``mm_policy`` and ``fake_upstream`` (``mm_litellm.testing.plugin``,
  registered automatically when mm_litellm is installed).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ERRORS", "FakeUpstream", "MockLLM", "UnscriptedModelError", "model_response"]


def __getattr__(name: str) -> Any:  # lazy: keep `import mm_litellm.testing` light for pytest startup
    if name in ("ERRORS", "MockLLM", "UnscriptedModelError", "model_response"):
        from mm_litellm.testing import mocks

        return getattr(mocks, name)
    if name == "FakeUpstream":
        from mm_litellm.testing.upstream import FakeUpstream

        return FakeUpstream
    raise AttributeError(f"module 'mm_litellm.testing' has no attribute {name!r}")
