"""Ensembles: several models answer one request concurrently and a strategy decides the answer.

Strategies (one module each): ``voting``, ``ranking``, ``fusion``, ``verification``,
``synthesis``. :func:`run_ensemble` runs one request given a model-calling function; the
LiteLLM custom provider that serves ``model="ensemble/<name>"`` lives in
``mm_litellm.integrations.ensemble_provider``. Importing this package does not import LiteLLM.
"""

from __future__ import annotations

from mm_litellm.ensemble.base import Answer, Outcome, Reply, Strategy
from mm_litellm.ensemble.runner import STRATEGIES, EnsembleResult, run_ensemble

__all__ = [
    "STRATEGIES",
    "Answer",
    "EnsembleResult",
    "Outcome",
    "Reply",
    "Strategy",
    "run_ensemble",
]
