"""Policy sections the routing engine reads: ``classifier:``, ``chains:``, ``escalation:``, route filters.

The classifier's patterns ship with defaults taken from seed 003 (complexity levels) and
seed 001 (task types); a policy's ``classifier:`` section overrides them per task or tier, so
a team tunes its routing in YAML without touching code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from mm_litellm.policy.types import TIERS, FrozenDict, Name, Tier
from mm_litellm.policy.types import Frozen as _Frozen

if TYPE_CHECKING:
    from mm_litellm.policy.schema import Policy

__all__ = [
    "DEFAULT_HIGH_CONFIDENCE",
    "DEFAULT_LOW_CONFIDENCE",
    "DEFAULT_TASK_PATTERNS",
    "DEFAULT_TIER_PATTERNS",
    "ClassifierSettings",
    "EscalationSettings",
    "LearnedSettings",
    "Requirements",
    "check_routing_references",
]

DEFAULT_TASK_PATTERNS: dict[str, tuple[str, ...]] = {
    # Order matters: the first task with a matching pattern wins.
    "code": (
        r"```",
        r"\b(python|javascript|typescript|java|rust|golang|c\+\+|sql|bash|regex)\b",
        r"\b(function|method|compile|stack ?trace|traceback|refactor|unit tests?|api endpoint)\b",
        r"\bwrite (a |the )?(code|script|program)\b",
        r"\bdebug\b",
    ),
    "extraction": (
        r"\bextract\b",
        r"\bpull (out )?(the |all )?\w+ from\b",
        r"\bparse\b",
        r"\bfind all\b",
        r"\b(fields?|entities|named entities)\b.*\bfrom\b",
        r"\breturn (a |the )?json\b",
    ),
    "classification": (
        r"\bclassify\b",
        r"\bcategori[sz]e\b",
        r"\b(label|tag) (this|the|each)\b",
        r"\bsentiment\b",
        r"\bwhich (category|class|label)\b",
        r"\bis (this|it) (spam|positive|negative|toxic)\b",
    ),
    "summarization": (r"\bsummari[sz]e\b", r"\bsummary\b", r"\btl;?dr\b", r"\bcondense\b", r"\bkey points\b"),
    "math": (
        r"\bcalculate\b",
        r"\bsolve\b",
        r"\bequation\b",
        r"\bintegral\b",
        r"\bderivative\b",
        r"\d+\s*[-+*/^]\s*\d+",
        r"\bhow (many|much)\b.*\d",
        r"\bprobability\b",
        r"\bprove\b",
    ),
    "creative": (
        r"\bwrite (a |an )?(story|poem|song|haiku|limerick|novel|script)\b",
        r"\bbrainstorm\b",
        r"\bslogan\b",
        r"\bcreative\b",
        r"\bfiction\b",
    ),
    "reasoning": (
        r"\bwhy\b",
        r"\bexplain\b",
        r"\breason(ing)?\b",
        r"\bstep[- ]by[- ]step\b",
        r"\banaly[sz]e\b",
        r"\bcompare\b",
        r"\bevaluate\b",
        r"\bplan\b",
        r"\btrade-?offs?\b",
        r"\bshould i\b",
    ),
}
"""Task types and their patterns (case-insensitive regular expressions); none matching is ``general``."""

DEFAULT_TIER_PATTERNS: dict[str, tuple[str, ...]] = {
    # Seed 003's complexity levels, checked from expert down: the highest matching tier wins.
    "expert": (
        r"\bresearch\b",
        r"\banaly[sz]e deeply\b",
        r"\bcomprehensive\b",
        r"\bcompare multiple\b",
        r"\bprove\b",
        r"\bderive\b",
        r"\bformali[sz]e\b",
        r"\bmulti-step\b",
    ),
    "advanced": (
        r"\bexplain why\b",
        r"\bimplement\b",
        r"\bdesign\b",
        r"\bdebug\b",
        r"\bcompare\b",
        r"\bevaluate\b",
        r"\boptimi[sz]e\b",
        r"\barchitect",
    ),
    "intermediate": (
        r"\bwrite (some |a |the )?code\b",
        r"\bsummari[sz]e\b",
        r"\bcalculate\b",
        r"\blist\b",
        r"\bidentify\b",
        r"\bsolve\b",
    ),
    "basic": (r"\bwhat is\b", r"\bdefine\b", r"\bformat\b", r"\bsimple\b", r"\bbasic\b", r"\bquick\b"),
}
"""Complexity tiers and their patterns (seed 003)."""

DEFAULT_LOW_CONFIDENCE: tuple[str, ...] = (
    r"\bnot sure\b",
    r"\buncertain\b",
    r"\bmight be\b",
    r"\bpossibly\b",
    r"\bi think\b",
    r"\bseems like\b",
    r"\bappears to\b",
    r"\bneed more context\b",
    r"\bwould need to\b",
    r"\bi don'?t know\b",
)
"""Seed 003's low-confidence indicators."""

DEFAULT_HIGH_CONFIDENCE: tuple[str, ...] = (
    r"\bdefinitely\b",
    r"\bcertainly\b",
    r"\bclearly\b",
    r"\bproven\b",
    r"\bestablished\b",
    r"\bconfirmed\b",
)
"""Seed 003's high-confidence indicators."""

DEFAULT_REFUSALS: tuple[str, ...] = (
    r"\bI (?:can(?:no|')t|am unable to|'m unable to|won'?t be able to) (?:help|assist|answer|provide|do)\b",
    r"\bas an ai\b",
    r"\bI'?m sorry,? but\b",
)
"""Refusal phrases: an answer that refuses is treated as unsure."""


def _check_patterns(patterns: tuple[str, ...]) -> tuple[str, ...]:
    for i, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"pattern {i} is not a valid regular expression: {exc}") from None
    return patterns


Patterns = tuple[str, ...]


class ClassifierSettings(_Frozen):
    """How a request's task type and complexity tier are read from its text.

    ``tasks`` and ``tiers`` are merged over the defaults per key: give a task's list to replace
    its patterns, ``[]`` to switch it off, a new name to add a task (checked after the defaults).
    """

    tasks: FrozenDict[Patterns] = Field(default_factory=dict)
    tiers: FrozenDict[Patterns] = Field(default_factory=dict)
    default_task: Name = "general"
    default_tier: Tier = "basic"
    """Tier of a request no tier pattern matches."""
    tier_by_tokens: FrozenDict[int] = Field(default_factory=dict)
    """Minimum tier by input size, e.g. ``{intermediate: 2000, advanced: 20000}`` (estimated tokens)."""
    scan_chars: int = Field(default=4000, gt=0)
    """Only the first and last ``scan_chars`` characters are scanned, so huge prompts stay cheap."""
    exact_count_band: float = Field(default=0.15, ge=0, le=1)
    """Count input tokens exactly (``litellm.token_counter``) when the cheap estimate is within
    this fraction of a threshold a rule or a context window uses."""

    @field_validator("tasks", "tiers", mode="before")
    @classmethod
    def _patterns_valid(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for name, patterns in value.items():
                if isinstance(patterns, list | tuple):
                    try:
                        _check_patterns(tuple(patterns))
                    except ValueError as exc:
                        raise ValueError(f"{name}: {exc}") from None
        return value

    @field_validator("tiers", "tier_by_tokens")
    @classmethod
    def _known_tiers(cls, value: Any) -> Any:

        for name in value:
            if name not in TIERS:
                raise ValueError(f"unknown tier '{name}'; allowed: {', '.join(TIERS)}")
        return value


class EscalationSettings(_Frozen):
    """When an answer looks unsure, try the next model of the route's chain (seed 003)."""

    min_confidence: float = Field(default=0.6, ge=0, le=1)
    """An answer scoring below this escalates."""
    scorer: Name = "heuristic"
    """Name of a registered confidence scorer (``mm_litellm.routing.confidence.register_scorer``)."""
    low_confidence: Patterns = DEFAULT_LOW_CONFIDENCE
    high_confidence: Patterns = DEFAULT_HIGH_CONFIDENCE
    refusals: Patterns = DEFAULT_REFUSALS
    short_answer_words: int = Field(default=20, ge=0)
    """Answers with fewer words are unsure (seed 003); 0 switches the rule off."""
    max_cost: float | None = Field(default=None, gt=0)
    """Default cap in USD on the whole escalation of one request (per request: ``metadata.max_cost``)."""
    max_hops: int = Field(default=4, ge=0)

    @field_validator("low_confidence", "high_confidence", "refusals")
    @classmethod
    def _patterns_valid(cls, value: Patterns) -> Patterns:
        return _check_patterns(value)


class Requirements(_Frozen):
    """Filters a strategy applies before choosing (seed 004's quality, latency and cost budgets)."""

    min_tier: Tier | None = None
    """At least this tier, whatever the request's own tier."""
    min_quality: float | None = Field(default=None, ge=0, le=1)
    max_latency_ms: float | None = Field(default=None, gt=0)
    max_cost: float | None = Field(default=None, ge=0)
    """Estimated USD per request (input estimate + expected output)."""
    max_output_per_mtok: float | None = Field(default=None, ge=0)
    """Output price cap, USD per million tokens (seed 004 ``cost_budget_per_1m``)."""


class LearnedSettings(_Frozen):
    """A ``strategy: learned`` route: a trained router predicts each candidate's quality from the
    prompt, and the route pays for a better model only where the prediction says it helps.

    Set ``lambda`` (quality given up per USD per 1,000 requests: pick the candidate maximising
    ``predicted quality - lambda x expected cost per 1k``) or ``quality_target`` (the cheapest
    candidate whose predicted quality is within this much of the best).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    artifact: str = Field(min_length=1)
    """Directory of a router trained by ``mm-litellm router train`` (relative to the policy file)."""
    cost_weight: float | None = Field(default=None, alias="lambda", ge=0)
    quality_target: float | None = Field(default=None, ge=0, le=1)
    prices: Literal["recorded", "policy"] = "recorded"
    """Expected cost per candidate: ``recorded`` (the router's cost model, fitted on the costs the
    outcomes recorded) or ``policy`` (the policy's prices; the route's expected output tokens)."""
    models: FrozenDict[Name] = Field(default_factory=dict)
    """Policy model -> the name the router predicts it under, where they differ."""

    @model_validator(mode="after")
    def _one_knob(self) -> LearnedSettings:
        if (self.cost_weight is None) == (self.quality_target is None):
            raise ValueError("set exactly one of 'lambda' (a cost weight) and 'quality_target'")
        return self


Loc = tuple[str | int, ...]


def check_routing_references(policy: Policy) -> Iterator[tuple[Loc, str]]:
    """Chains name models; a route's candidates name models; a route's ``escalate`` names a chain."""
    models = policy.models
    known = ", ".join(sorted(models)) or "(none declared)"
    for chain, members in policy.chains.items():
        if not members:
            yield ("chains", chain), "a chain needs at least one model"
        for i, member in enumerate(members):
            if member not in models:
                yield ("chains", chain, i), f"unknown model '{member}'; known: {known}"
    for name, route in policy.routes.items():
        for i, member in enumerate(route.candidates):
            if member not in models:
                yield ("routes", name, "candidates", i), f"unknown model '{member}'; known: {known}"
        if route.escalate is not None and route.escalate not in policy.chains:
            chains = ", ".join(sorted(policy.chains)) or "(none declared)"
            yield ("routes", name, "escalate"), f"unknown chain '{route.escalate}'; known: {chains}"
        if route.strategy == "learned" and route.require != Requirements():
            yield (
                ("routes", name, "require"),
                "'require' does not apply to a learned route: the router's predictions choose; pin special "
                "cases (images, long context) with rules, which go first",
            )
        if route.strategy == "task_based" and (route.candidates or route.require != Requirements()):
            yield (
                ("routes", name, "strategy"),
                (
                    "'candidates' and 'require' apply to cost_optimized, quality_optimized and "
                    "speed_optimized routes; set 'strategy' or remove them"
                ),
            )
