"""Ensembles: several models answer one request concurrently and a strategy decides the answer.

Strategies (one module each): ``voting``, ``ranking``, ``fusion``, ``verification``,
``synthesis``. :func:`run_ensemble` runs one request given a model-calling function; the
LiteLLM custom provider that serves ``model="ensemble/<name>"`` lives in
``mm_litellm.integrations.ensemble_provider``. Importing this package does not import LiteLLM.
"""

from __future__ import annotations

from typing import Any

from mm_litellm.ensemble.base import Answer, Outcome, Reply, Strategy
from mm_litellm.ensemble.runner import STRATEGIES, EnsembleResult, run_ensemble

__all__ = [
    "STRATEGIES",
    "Answer",
    "EnsembleResult",
    "Outcome",
    "Reply",
    "Strategy",
    "register_ensembles",
    "run_ensemble",
]


def register_ensembles(policy: Any = None) -> Any:
    """Serve ``model="ensemble/<name>"`` in plain ``litellm.completion`` and any ``litellm.Router``.

    Adds mm_litellm's ensemble provider to ``litellm.custom_provider_map`` (once). With
    ``policy`` (a :class:`~mm_litellm.Policy` or a file path) the ensembles and their members
    come from that policy; without it, from the active policy at call time. Returns the handler.
    """
    from mm_litellm.integrations.ensemble_provider import register

    return register(policy)
