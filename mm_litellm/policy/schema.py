"""The policy file's shape: pydantic v2 models, unknown keys rejected, frozen after load.

Only the structure of each section is checked here. Checks that need the whole document
(a rule naming a model that is not declared, a route cycle) live in ``references.py`` so that
each problem can be reported with its own field path.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, PlainSerializer, PrivateAttr, model_validator

from mm_litellm.policy.budgets import BudgetSettings
from mm_litellm.policy.ensembles import EnsembleSpec
from mm_litellm.policy.prompts import PromptsSettings
from mm_litellm.policy.proxy import ProxySettings
from mm_litellm.policy.routing import ClassifierSettings, EscalationSettings, LearnedSettings, Requirements
from mm_litellm.policy.types import TIERS, FrozenDict, Name, Tier, freeze
from mm_litellm.policy.types import Frozen as _Frozen

__all__ = [
    "TIERS",
    "Deployment",
    "ModelSpec",
    "Policy",
    "Pricing",
    "Route",
    "RouterSettings",
    "Rule",
    "Tier",
]


def _check_params(value: dict[str, Any]) -> dict[str, Any]:
    model = value.get("model")
    if not isinstance(model, str) or not model:
        raise ValueError("needs 'model', the LiteLLM model string (e.g. 'openai/gpt-4o-mini')")
    return value


LiteLLMParams = Annotated[
    dict[str, Any],
    AfterValidator(_check_params),
    AfterValidator(freeze),
    PlainSerializer(dict, return_type=dict),
]
"""LiteLLM's own deployment parameters, passed to the Router as they are (``model`` required)."""


class Pricing(_Frozen):
    """Price override in USD per million tokens (for self-hosted or negotiated prices)."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class Deployment(_Frozen):
    """One LiteLLM deployment of a model: what ``litellm.Router`` gets as one ``model_list`` entry."""

    litellm_params: LiteLLMParams
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)

    def __repr_args__(self) -> Any:  # never show api keys in a repr
        yield "model", self.litellm_params["model"]


class ModelSpec(_Frozen):
    """A model alias: one or more deployments plus what routing needs to know about it.

    Write either ``litellm_params`` (one deployment, with optional ``rpm``/``tpm``) or
    ``deployments`` (several, which LiteLLM's Router balances between).
    """

    litellm_params: LiteLLMParams | None = None
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    deployments: tuple[Deployment, ...] | None = Field(default=None, min_length=1)
    tier: Tier = "intermediate"
    tags: tuple[str, ...] = ()
    pricing: Pricing | None = None
    context_window: int | None = Field(default=None, gt=0)
    """Maximum input tokens; overrides LiteLLM's price table."""
    latency_ms: float | None = Field(default=None, gt=0)
    """Typical latency hint, used until real latencies have been observed."""
    quality: float | None = Field(default=None, ge=0, le=1)
    """Relative quality score 0..1 for quality filters and strategies."""
    description: str = ""

    @model_validator(mode="after")
    def _one_form(self) -> ModelSpec:
        if (self.litellm_params is None) == (self.deployments is None):
            raise ValueError(
                "give either 'litellm_params' (one deployment) or 'deployments' (a list), not both"
            )
        if self.deployments is not None and (self.rpm is not None or self.tpm is not None):
            raise ValueError("with 'deployments', set rpm/tpm on each deployment")
        return self

    @property
    def all_deployments(self) -> tuple[Deployment, ...]:
        """Every deployment, whichever form the file used."""
        if self.deployments is not None:
            return self.deployments
        assert self.litellm_params is not None
        return (Deployment(litellm_params=self.litellm_params, rpm=self.rpm, tpm=self.tpm),)

    @property
    def litellm_model(self) -> str:
        """The LiteLLM model string of the first deployment (for prices and display)."""
        return str(self.all_deployments[0].litellm_params["model"])

    def __repr_args__(self) -> Any:  # never show api keys in a repr
        yield "model", self.litellm_model
        yield "tier", self.tier


class RetryPolicy(_Frozen):
    """Retries per LiteLLM exception class (LiteLLM's ``RetryPolicy``)."""

    BadRequestErrorRetries: int | None = Field(default=None, ge=0)
    AuthenticationErrorRetries: int | None = Field(default=None, ge=0)
    TimeoutErrorRetries: int | None = Field(default=None, ge=0)
    RateLimitErrorRetries: int | None = Field(default=None, ge=0)
    ContentPolicyViolationErrorRetries: int | None = Field(default=None, ge=0)
    InternalServerErrorRetries: int | None = Field(default=None, ge=0)
    ServiceUnavailableErrorRetries: int | None = Field(default=None, ge=0)


class RouterSettings(_Frozen):
    """Settings handed to ``litellm.Router``: LiteLLM does retries, cooldowns and error fallbacks."""

    num_retries: int = Field(default=2, ge=0)
    timeout: float | None = Field(default=None, gt=0)
    allowed_fails: int | None = Field(default=None, ge=0)
    cooldown_time: float | None = Field(default=None, ge=0)
    retry_after: float = Field(default=0, ge=0)
    routing_strategy: Literal[
        "simple-shuffle",
        "least-busy",
        "usage-based-routing",
        "latency-based-routing",
        "cost-based-routing",
        "usage-based-routing-v2",
    ] = "simple-shuffle"
    fallbacks: FrozenDict[tuple[Name, ...]] = Field(default_factory=dict)
    """On any error of model X, try these models in order (LiteLLM ``fallbacks``)."""
    context_window_fallbacks: FrozenDict[tuple[Name, ...]] = Field(default_factory=dict)
    content_policy_fallbacks: FrozenDict[tuple[Name, ...]] = Field(default_factory=dict)
    default_fallbacks: tuple[Name, ...] = ()
    retry_policy: RetryPolicy | None = None


class Rule(_Frozen):
    """``when`` the request matches, ``use`` this target. First matching rule wins."""

    name: Name
    when: FrozenDict[Any] = Field(default_factory=dict)
    use: Name
    fallbacks: tuple[Name, ...] | None = None
    """Overrides the route's fallbacks for requests this rule decides."""
    description: str = ""


class Route(_Frozen):
    """A name callers use as ``model=``; the policy decides which model serves it."""

    strategy: Literal["task_based", "cost_optimized", "quality_optimized", "speed_optimized", "learned"] = (
        "task_based"
    )
    """How a request no rule decides is served: the ``default`` (task_based) or the best candidate."""
    rules: tuple[Rule, ...] = ()
    default: Name | None = None
    """Target when no rule matches; without it an unmatched request is a ``RoutingError``."""
    fallbacks: tuple[Name, ...] = ()
    """Models tried in order when the chosen one fails (LiteLLM Router fallbacks, per request)."""
    candidates: tuple[Name, ...] = ()
    """Models a strategy chooses among (default: every model of the policy)."""
    require: Requirements = Field(default_factory=Requirements)
    expected_output_tokens: int = Field(default=500, gt=0)
    """Output size assumed when estimating a candidate's cost (the request's max_tokens wins)."""
    escalate: Name | None = None
    """A chain (``chains:``): when the answer looks unsure, try its next model (``escalation:``)."""
    learned: LearnedSettings | None = None
    """The trained router and its cost knob, for ``strategy: learned`` (docs/routing.md)."""
    description: str = ""

    @model_validator(mode="after")
    def _learned_settings(self) -> Route:
        if self.strategy == "learned" and self.learned is None:
            raise ValueError(
                "strategy 'learned' needs a 'learned:' section: {artifact: DIR, lambda: N} or "
                "{artifact: DIR, quality_target: N}"
            )
        if self.learned is not None and self.strategy != "learned":
            raise ValueError("'learned:' applies to routes with strategy: learned")
        return self


class DatabaseSettings(_Frozen):
    """Where mm_litellm keeps its ledger, budgets and prompt versions (SQLAlchemy URL)."""

    url: str = "sqlite:///mm_litellm.db"
    """``sqlite:///relative/or/absolute.db`` (relative to the working directory) or
    ``postgresql+psycopg://user:password@host/db``; ``os.environ/NAME`` reads it from the environment."""


class Policy(_Frozen):
    """A validated, immutable policy. Build one with :func:`mm_litellm.load_policy`."""

    version: Literal[1] = 1
    models: FrozenDict[ModelSpec] = Field(default_factory=dict)
    aliases: FrozenDict[Name] = Field(default_factory=dict)
    """Legacy names kept working during a migration: old name -> model or route."""
    router: RouterSettings = Field(default_factory=RouterSettings)
    routes: FrozenDict[Route] = Field(default_factory=dict)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    classifier: ClassifierSettings = Field(default_factory=ClassifierSettings)
    chains: FrozenDict[tuple[Name, ...]] = Field(default_factory=dict)
    escalation: EscalationSettings = Field(default_factory=EscalationSettings)
    ensembles: FrozenDict[EnsembleSpec] = Field(default_factory=dict)
    prompts: PromptsSettings | None = None
    budgets: BudgetSettings | None = None
    default_route: Name | None = None
    """What ``mm-litellm run`` uses when neither ``--model`` nor ``--route`` is given."""
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    _source: str = PrivateAttr(default="<string>")
    _base_dir: str = PrivateAttr(default=".")
    _routers: dict[str, Any] = PrivateAttr(default_factory=dict)

    @property
    def source(self) -> str:
        """Where the policy was loaded from: a file path, or ``<string>``."""
        return self._source

    @property
    def base_dir(self) -> str:
        """The folder relative paths in the policy (a learned route's artifact) start from."""
        return self._base_dir

    @property
    def routers(self) -> dict[str, Any]:
        """Route name -> its loaded router (``strategy: learned`` routes; loaded with the policy)."""
        return self._routers

    def kind_of(self, name: str) -> Literal["route", "alias", "model"] | None:
        """Whether ``name`` is a route, a legacy alias or a declared model of this policy."""
        if name in self.routes:
            return "route"
        if name in self.aliases:
            return "alias"
        if name in self.models:
            return "model"
        return None
