"""Building blocks every policy section uses: frozen models, names, read-only mappings, tiers.

Sections that live in their own modules (budgets, ensembles, prompts, keys) import these
instead of ``schema`` so that ``schema`` can import them without a cycle.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer

__all__ = ["TIERS", "Frozen", "FrozenDict", "Name", "Tier", "freeze"]

Tier = Literal["basic", "intermediate", "advanced", "expert"]
TIERS: tuple[Tier, ...] = ("basic", "intermediate", "advanced", "expert")
"""Capability tiers in increasing order; a model of a tier covers every tier before it."""

Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")]


def freeze(value: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only view of a validated mapping, so a loaded policy cannot be changed in place."""
    return types.MappingProxyType(dict(value))


V = TypeVar("V")

FrozenDict = Annotated[
    Mapping[str, V],
    AfterValidator(freeze),
    PlainSerializer(dict, return_type=dict),
]
"""``FrozenDict[X]``: a ``str -> X`` mapping, read-only after validation, dumped as a plain dict."""


class Frozen(BaseModel):
    """Base of every policy section: unknown keys rejected, immutable after load."""

    model_config = ConfigDict(extra="forbid", frozen=True)
