"""mm_litellm's exceptions, one hierarchy.

LiteLLM's own provider exceptions (``litellm.RateLimitError``, ``litellm.Timeout``, ...) pass
through mm_litellm unchanged; the classes below are raised only for what mm_litellm itself
decides::

    MMLiteLLMError
    ├── PolicyError              the policy file is invalid (every problem, with file:line and field path)
    ├── ConfigurationError       the process is set up wrongly for the call being made
    │   └── MissingSecretError   an ``os.environ/NAME`` secret a model needs is not set
    ├── InvalidRequestError      a request field is malformed or not the caller's to set (``field`` names it)
    ├── RoutingError             the policy cannot choose a model for this request
    ├── EnsembleError            an ensemble cannot answer
    │   ├── QuorumLostError      too few members answered (every member and why it failed)
    │   └── NoAgreementError     the members disagree and the ensemble is set to fail then
    ├── BudgetExceeded           a budget (or the request's max_cost) does not admit the call
    └── BudgetStoreError         the budget store failed and the policy fails closed
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "BudgetExceeded",
    "BudgetStoreError",
    "ConfigurationError",
    "EnsembleError",
    "InvalidRequestError",
    "MMLiteLLMError",
    "MissingSecretError",
    "NoAgreementError",
    "PolicyError",
    "PolicyIssue",
    "QuorumLostError",
    "RoutingError",
]


class MMLiteLLMError(Exception):
    """Base class of every exception mm_litellm raises itself."""


@dataclass(frozen=True)
class PolicyIssue:
    """One problem in a policy file: where it is and what is wrong."""

    source: str
    """The file name (or ``<string>`` for a policy given as text)."""
    line: int | None
    """1-based line of the offending key or value, when known."""
    path: str
    """Dotted field path, e.g. ``routes.auto.rules[2].use``; empty for the whole document."""
    message: str
    """What is wrong and what is allowed."""

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class PolicyError(MMLiteLLMError, ValueError):
    """The policy file is invalid. ``issues`` lists every problem found, in file order."""

    def __init__(self, issues: list[PolicyIssue]) -> None:
        self.issues = tuple(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


class ConfigurationError(MMLiteLLMError):
    """The process is not set up for the call being made (for example a missing secret)."""


class MissingSecretError(ConfigurationError):
    """A model's ``litellm_params`` refer to ``os.environ/NAME`` and ``NAME`` is not set."""

    def __init__(self, model: str, variable: str) -> None:
        self.model = model
        self.variable = variable
        super().__init__(
            f"model '{model}' needs the environment variable {variable} "
            f"(from 'os.environ/{variable}' in its litellm_params), and it is not set"
        )


class InvalidRequestError(MMLiteLLMError, ValueError):
    """A request field is malformed (``status`` 400) or not the caller's to set (403).

    ``field`` names the offending field (``body`` for the body itself); ``message`` says what
    is wrong and what is allowed, without echoing the value (it may be a secret).
    """

    def __init__(self, field: str, message: str, *, status: int = 400) -> None:
        self.field = field
        self.message = message
        self.status = status
        super().__init__(message)


class RoutingError(MMLiteLLMError):
    """The policy cannot choose a model for this request (no rule matched and no default)."""

    def __init__(self, route: str, message: str) -> None:
        self.route = route
        super().__init__(f"route '{route}': {message}")


class BudgetExceeded(MMLiteLLMError):
    """A budget does not admit the call. Carries the budget, its scope, spend, limit and reset time.

    ``spent`` includes what concurrent calls have reserved; ``unit`` is ``usd`` or ``tokens``;
    ``resets_at`` is when the window ends (``None`` for a per-request ``max_cost``).
    """

    def __init__(
        self,
        budget: str,
        scope: str,
        spent: float,
        limit: float,
        resets_at: datetime | None,
        unit: str = "usd",
        estimate: float = 0.0,
        reason: str | None = None,
    ) -> None:
        self.budget = budget
        self.scope = scope
        self.spent = spent
        self.limit = limit
        self.resets_at = resets_at
        self.unit = unit
        self.estimate = estimate
        when = f"; resets at {resets_at.isoformat()}" if resets_at is not None else ""
        super().__init__(
            reason
            or (
                f"budget '{budget}' ({scope}) exceeded: "
                f"spent {_amount(spent, unit)} of {_amount(limit, unit)}, "
                f"this call needs up to {_amount(estimate, unit)}{when}"
            )
        )


def _amount(value: float, unit: str) -> str:
    return f"${value:.6f}" if unit == "usd" else f"{int(value)} tokens"


class BudgetStoreError(MMLiteLLMError):
    """The budget store could not be read or written, and the policy fails closed."""


class EnsembleError(MMLiteLLMError):
    """An ensemble could not answer. ``failures`` maps each failed member to its error.

    ``status_code`` is what LiteLLM reports when it wraps this error (the ensemble runs as a
    LiteLLM provider): 503 for a lost quorum, 422 for a disagreement.
    """

    status_code = 500

    def __init__(self, ensemble: str, message: str, failures: dict[str, str] | None = None) -> None:
        self.ensemble = ensemble
        self.failures = dict(failures or {})
        self.message = f"ensemble '{ensemble}': {message}"
        super().__init__(self.message)


class QuorumLostError(EnsembleError):
    """Fewer members answered than the ensemble's quorum."""

    status_code = 503


class NoAgreementError(EnsembleError):
    """The members disagree (a tie or too little agreement) and ``on_disagreement`` is ``fail``."""

    status_code = 422
