"""The ``ensembles:`` policy section: several models answer one request, one strategy decides.

An ensemble is served as the model ``ensemble/<name>`` (a LiteLLM custom provider). Each
strategy has its own options, picked by ``strategy:`` (a discriminated union), so a voting
option on a ranking ensemble is refused at load time instead of being silently ignored.

Only shapes are checked here; whether the models a member, judge or validator names exist is
checked against the whole policy by :func:`check_ensemble_references`.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from mm_litellm.policy.types import Frozen, Name

if TYPE_CHECKING:  # schema imports this module
    from mm_litellm.policy.schema import Policy

__all__ = [
    "ENSEMBLE_PREFIX",
    "EnsembleSpec",
    "FusionEnsemble",
    "MemberSpec",
    "RankingEnsemble",
    "SynthesisEnsemble",
    "SynthesisWeights",
    "VerificationEnsemble",
    "VotingEnsemble",
    "check_ensemble_references",
    "ensemble_name",
    "resized",
]

ENSEMBLE_PREFIX = "ensemble/"
"""Model strings starting with this name an ensemble: ``ensemble/<name>``."""

Loc = tuple[str | int, ...]


def ensemble_name(model: str) -> str | None:
    """``"x"`` for ``"ensemble/x"``, else ``None``."""
    return model[len(ENSEMBLE_PREFIX) :] if model.startswith(ENSEMBLE_PREFIX) else None


def _member_shorthand(value: Any) -> Any:
    return {"model": value} if isinstance(value, str) else value


class MemberSpec(Frozen):
    """One panel member: a policy model (or a route, which picks the model per request)."""

    model: Name
    """A model alias or a route of the policy."""
    weight: float = Field(default=1.0, gt=0)
    """Vote weight (voting, fusion) and tie-break priority."""
    timeout: float | None = Field(default=None, gt=0)
    """Seconds this member may take; overrides the ensemble's ``timeout``."""
    name: Name | None = None
    """Label in results; defaults to ``model`` (``model#2`` for a repeated model)."""


Member = Annotated[MemberSpec, BeforeValidator(_member_shorthand)]
"""A member is written as a model name, or as ``{model, weight, timeout, name}``."""


class _Base(Frozen):
    timeout: float = Field(default=30.0, gt=0)
    """Seconds each member call may take (``asyncio.wait_for``); members may override it."""
    description: str = ""

    def labelled_members(self) -> list[tuple[str, MemberSpec]]:
        """Every model the ensemble calls up front, with a unique label each."""
        members: tuple[MemberSpec, ...] = getattr(self, "members", ())
        labels: list[tuple[str, MemberSpec]] = []
        seen: dict[str, int] = {}
        for member in members:
            base = member.name or member.model
            seen[base] = seen.get(base, 0) + 1
            labels.append((base if seen[base] == 1 else f"{base}#{seen[base]}", member))
        return labels

    def model_refs(self) -> Iterator[tuple[Loc, str]]:
        """Every (field path, name) of a model or route this ensemble calls."""
        for i, member in enumerate(getattr(self, "members", ())):
            yield ("members", i, "model"), member.model


class _Panel(_Base):
    members: tuple[Member, ...] = Field(min_length=1)
    quorum: int | None = Field(default=None, ge=1)
    """Members that must answer for the ensemble to answer; default: a majority."""

    @property
    def required(self) -> int:
        """The quorum in effect (the explicit one, else a strict majority of the members)."""
        return self.quorum if self.quorum is not None else len(self.members) // 2 + 1

    @model_validator(mode="after")
    def _quorum_fits(self) -> _Panel:
        if self.quorum is not None and self.quorum > len(self.members):
            raise ValueError(f"quorum {self.quorum} is more than the {len(self.members)} members")
        return self


class VotingEnsemble(_Panel):
    """Majority vote over normalised answers (classification, extraction, maths)."""

    strategy: Literal["voting"]
    normalise: str = "text"
    """``number`` (final number), ``label`` (choice letter or label), ``json`` (JSON value),
    ``text`` (trimmed, case-folded), or ``package.module:function`` (your extractor)."""
    min_agreement: float = Field(default=0.67, gt=0, le=1)
    """Share of the (weighted) answers the winner needs."""
    on_disagreement: Literal["fail", "weight", "escalate"] = "fail"
    """A tie or too little agreement: ``fail`` clearly, take the plurality (ties broken by member
    ``weight``), or ask ``escalate_to`` and take its answer."""
    escalate_to: Name | None = None
    reply: Literal["member", "value"] = "member"
    """Answer with a winning member's full text, or with the normalised value alone."""

    @model_validator(mode="after")
    def _escalation_target(self) -> VotingEnsemble:
        if self.on_disagreement == "escalate" and self.escalate_to is None:
            raise ValueError("on_disagreement 'escalate' needs 'escalate_to' (a model or route)")
        if self.escalate_to is not None and self.on_disagreement != "escalate":
            raise ValueError("'escalate_to' is used only with on_disagreement: escalate")
        if self.normalise not in ("number", "label", "json", "text") and ":" not in self.normalise:
            raise ValueError(
                f"unknown normaliser '{self.normalise}'; allowed: number, label, json, text, "
                "or 'package.module:function'"
            )
        return self

    def model_refs(self) -> Iterator[tuple[Loc, str]]:
        yield from super().model_refs()
        if self.escalate_to is not None:
            yield ("escalate_to",), self.escalate_to


class RankingEnsemble(_Panel):
    """Every member answers; a judge model (or a local heuristic) scores them; the best wins."""

    strategy: Literal["ranking"]
    scorer: Literal["judge", "heuristic"] = "heuristic"
    judge: Name | None = None
    """The model that scores the answers when ``scorer: judge``."""
    criteria: tuple[Literal["coherence", "accuracy", "completeness"], ...] = Field(
        default=("accuracy",), min_length=1
    )

    @model_validator(mode="after")
    def _judge_given(self) -> RankingEnsemble:
        if self.scorer == "judge" and self.judge is None:
            raise ValueError("scorer 'judge' needs 'judge' (a model or route)")
        return self

    def model_refs(self) -> Iterator[tuple[Loc, str]]:
        yield from super().model_refs()
        if self.judge is not None:
            yield ("judge",), self.judge


class FusionEnsemble(_Panel):
    """JSON answers merged field by field (weighted majority per field, with provenance)."""

    strategy: Literal["fusion"]
    weight_by: Literal["weight", "confidence"] = "weight"
    """Member ``weight``, or the number each answer gives in ``confidence_field``."""
    confidence_field: str = "confidence"


class VerificationEnsemble(_Base):
    """A generator answers, a validator checks it; optionally one regeneration on rejection."""

    strategy: Literal["verification"]
    generator: Member
    validator: Member
    accept_threshold: float = Field(default=0.5, ge=0, le=1)
    """A ``pass`` verdict below this confidence counts as a rejection."""
    regenerate: bool = False
    """On rejection, ask the generator once more with the validator's issues."""
    on_reject: Literal["answer", "fail"] = "answer"
    """After the last rejection: answer anyway (low confidence, verdict in the details) or fail."""

    def labelled_members(self) -> list[tuple[str, MemberSpec]]:
        return [("generator", self.generator), ("validator", self.validator)]

    def model_refs(self) -> Iterator[tuple[Loc, str]]:
        yield ("generator", "model"), self.generator.model
        yield ("validator", "model"), self.validator.model


class SynthesisWeights(Frozen):
    """Seed 003's weights of the synthesis score."""

    confidence: float = Field(default=0.5, ge=0)
    capability: float = Field(default=0.3, ge=0)
    completeness: float = Field(default=0.2, ge=0)
    consensus_bonus: float = Field(default=0.1, ge=0)


class SynthesisEnsemble(_Panel):
    """Seed 003's synthesis: weighted choice of the best answer, or an aggregator writes one."""

    strategy: Literal["synthesis"]
    mode: Literal["weighted", "aggregator"] = "weighted"
    weights: SynthesisWeights = Field(default_factory=SynthesisWeights)
    aggregator: Name | None = None
    """The model that writes the final answer from the panel's answers (``mode: aggregator``)."""

    @model_validator(mode="after")
    def _aggregator_given(self) -> SynthesisEnsemble:
        if self.mode == "aggregator" and self.aggregator is None:
            raise ValueError("mode 'aggregator' needs 'aggregator' (a model or route)")
        return self

    def model_refs(self) -> Iterator[tuple[Loc, str]]:
        yield from super().model_refs()
        if self.aggregator is not None:
            yield ("aggregator",), self.aggregator


EnsembleSpec = Annotated[
    VotingEnsemble | RankingEnsemble | FusionEnsemble | VerificationEnsemble | SynthesisEnsemble,
    Field(discriminator="strategy"),
]
"""One ensemble; ``strategy:`` (voting, ranking, fusion, verification, synthesis) picks the shape."""


def check_ensemble_references(policy: Policy) -> Iterator[tuple[Loc, str]]:
    """Every model or route an ensemble calls must be declared (and must not be an ensemble)."""
    models, routes, aliases, ensembles = policy.models, policy.routes, policy.aliases, policy.ensembles
    known = ", ".join(sorted([*models, *routes])) or "(none declared)"
    for section, names in (("models", models), ("routes", routes), ("aliases", aliases)):
        for declared in names:
            if declared.startswith(ENSEMBLE_PREFIX):
                yield (
                    (section, declared),
                    f"names starting with '{ENSEMBLE_PREFIX}' are reserved for ensembles",
                )
    for name, spec in ensembles.items():
        for loc, target in spec.model_refs():
            resolved = aliases.get(target, target)
            if resolved.startswith(ENSEMBLE_PREFIX):
                yield ("ensembles", name, *loc), f"'{target}': an ensemble cannot call another ensemble"
            elif resolved not in models and resolved not in routes:
                yield ("ensembles", name, *loc), f"unknown model or route '{target}'; known: {known}"


def resized(policy: Any, name: str, size: int) -> Any:
    """A copy of ``policy`` whose ensemble ``name`` keeps only its first ``size`` members.

    Seed 003's ``--ensemble-size``: fewer members cost less. The quorum shrinks with the panel
    when it no longer fits. Raises ``ValueError`` for an ensemble without members or a bad size.
    """
    spec = policy.ensembles[name]
    members = getattr(spec, "members", None)
    if members is None:
        raise ValueError(f"ensemble '{name}' ({spec.strategy}) has no members list to resize")
    if not 1 <= size <= len(members):
        raise ValueError(f"ensemble '{name}' has {len(members)} members; a size must be 1 to {len(members)}")
    quorum = min(spec.quorum, size) if spec.quorum is not None else None
    smaller = spec.model_copy(update={"members": members[:size], "quorum": quorum})
    ensembles = {**policy.ensembles, name: smaller}
    copy = policy.model_copy(update={"ensembles": MappingProxyType(ensembles)})
    copy._source = policy.source
    return copy
