"""Plain LiteLLM served by the policy: ``register_ensembles`` (``register_prompts`` is in
:mod:`mm_litellm.prompting`). Importing this module does not import LiteLLM."""

from __future__ import annotations

from typing import Any

__all__ = ["register_ensembles"]


def register_ensembles(policy: Any = None) -> Any:
    """Serve ``model="ensemble/<name>"`` in plain ``litellm.completion`` and any ``litellm.Router``.

    Adds mm_litellm's ensemble provider to ``litellm.custom_provider_map`` (once). With
    ``policy`` (a :class:`~mm_litellm.Policy` or a file path) the ensembles and their members
    come from that policy; without it, from the active policy at call time. Returns the handler.
    """
    from mm_litellm.integrations.ensemble_provider import register

    return register(policy)
