"""mm_litellm: routing policy, ensembles, budgets and prompt versions over LiteLLM.

``from mm_litellm import completion`` is a drop-in for ``litellm.completion``: a model the
policy does not name passes straight through. Importing this package does not import
LiteLLM; that happens on the first call that needs it.
"""

from __future__ import annotations

from typing import Any

from mm_litellm.api import RunResult, arun, route_to_model, run, run_ensemble, run_with_fallback
from mm_litellm.batch import BatchReport, abatch, batch
from mm_litellm.errors import (
    BudgetExceeded,
    BudgetStoreError,
    ConfigurationError,
    EnsembleError,
    InvalidRequestError,
    MissingSecretError,
    MMLiteLLMError,
    PolicyError,
    RoutingError,
)
from mm_litellm.gateway import Gateway, acompletion, completion, decision_of, explain
from mm_litellm.policy import Policy, load_policy, parse_policy
from mm_litellm.prompting import record_outcome, register_prompts
from mm_litellm.registration import register_ensembles
from mm_litellm.routing.explain import Explanation
from mm_litellm.routing.plan import Plan
from mm_litellm.runtime import configure
from mm_litellm.usage import usage_report


def __getattr__(name: str) -> Any:
    """``__version__``, read from the installed metadata on first use (importlib.metadata costs
    a tenth of a second at start-up, which commands that never print the version need not pay)."""
    if name != "__version__":
        raise AttributeError(f"module 'mm_litellm' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("mm-litellm")
    except PackageNotFoundError:  # running from a source tree that was not installed
        value = "0.0.0"
    globals()["__version__"] = value
    return value


__all__ = [
    "BatchReport",
    "BudgetExceeded",
    "BudgetStoreError",
    "ConfigurationError",
    "EnsembleError",
    "Explanation",
    "Gateway",
    "InvalidRequestError",
    "MMLiteLLMError",
    "MissingSecretError",
    "Plan",
    "Policy",
    "PolicyError",
    "RoutingError",
    "RunResult",
    "__version__",
    "abatch",
    "acompletion",
    "arun",
    "batch",
    "completion",
    "configure",
    "decision_of",
    "explain",
    "load_policy",
    "parse_policy",
    "record_outcome",
    "register_ensembles",
    "register_prompts",
    "route_to_model",
    "run",
    "run_ensemble",
    "run_with_fallback",
    "usage_report",
]
