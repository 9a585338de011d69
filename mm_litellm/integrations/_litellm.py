"""Lazy access to the ``litellm`` module, so that ``import mm_litellm`` does not import it."""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

__all__ = ["litellm", "mocks_active"]

_module: ModuleType | None = None


def litellm() -> Any:  # LiteLLM ships no usable stubs: its module is untyped here
    """The imported ``litellm`` module (imported on first use, with the local price map)."""
    global _module
    if _module is None:
        # LiteLLM downloads its price map at import unless told otherwise; offline that costs
        # seconds of retries. Respect an explicit choice made by the caller.
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm as module

        _module = module
    return _module


_mock_depth = 0


def mocks_active() -> bool:
    """True while a :class:`mm_litellm.testing.MockLLM` answers LiteLLM calls.

    Checks that only matter when a real provider is called (for example that an API key
    variable is set) are skipped then, as LiteLLM's own ``mock_response`` needs no key.
    """
    return _mock_depth > 0


def _enter_mocking(delta: int) -> None:
    global _mock_depth
    _mock_depth += delta
