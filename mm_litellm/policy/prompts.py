"""The policy's ``prompts:`` section: where prompt files live, and the A/B experiments.

```yaml
prompts:
  dir: prompts                     # one <id>.yaml per prompt (relative to the policy file)
  default_label: production        # what prompt_id alone renders (else the latest version)
  experiments:
    extraction-json-vs-plain:
      prompt: extraction
      variants:                    # the first variant is the control
        control: {label: production, weight: 1}
        candidate: {version: 2, weight: 1}
      sticky_by: [user, key, session]
      metric: success              # success (0/1) or score (a number)
      min_samples: 200             # per variant, before any decision
      alpha: 0.01
      promote_label: production    # optional: move this label to a significant winner
```
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field, model_validator

from mm_litellm.policy.types import Frozen, FrozenDict, Name

__all__ = ["ExperimentSpec", "PromptsSettings", "VariantSpec", "check_prompts"]

StickyUnit = Literal["user", "key", "session", "team"]


class VariantSpec(Frozen):
    """One arm of an experiment: a fixed version or whatever a label points at, with a weight."""

    version: int | None = Field(default=None, ge=1)
    label: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_-]*$")
    weight: float = Field(default=1.0, gt=0)
    """Relative share of the traffic (weights need not add up to 1)."""

    @model_validator(mode="after")
    def _one_target(self) -> VariantSpec:
        if (self.version is None) == (self.label is None):
            raise ValueError("give either 'version' or 'label' for a variant, not both")
        return self


class ExperimentSpec(Frozen):
    """An A/B test of a prompt's versions: which variants, how users are split, how winners are decided."""

    prompt: Name
    variants: FrozenDict[VariantSpec]
    """Variant name -> variant; the first one is the control the others are compared with."""
    sticky_by: tuple[StickyUnit, ...] = ("user", "key", "session")
    """Identity for sticky assignment, the first present wins; without any, a call is assigned at random."""
    metric: Literal["success", "score"] = "success"
    min_samples: int = Field(default=100, ge=2)
    """Outcomes each variant needs before the report may declare a winner."""
    alpha: float = Field(default=0.01, gt=0, lt=0.5)
    """Significance level (two-sided, Bonferroni-corrected across variants)."""
    promote_label: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_-]*$")
    """When set, a significant winner's version gets this label (automatic promotion)."""
    active: bool = True
    description: str = ""

    @model_validator(mode="after")
    def _two_variants(self) -> ExperimentSpec:
        if len(self.variants) < 2:
            raise ValueError("an experiment needs at least two variants")
        if len(set(self.sticky_by)) != len(self.sticky_by):
            raise ValueError("sticky_by lists a unit twice")
        return self


class PromptsSettings(Frozen):
    """Where prompts come from and which experiments run."""

    dir: str = "prompts"
    """Prompt files, relative to the policy file (``mm_litellm.policy.paths``)."""
    default_label: str = Field(default="production", pattern=r"^[a-z][a-z0-9_-]*$")
    refresh_seconds: float = Field(default=5.0, ge=0)
    """How long a process trusts its cached labels before re-reading them from the database."""
    experiments: FrozenDict[ExperimentSpec] = Field(default_factory=dict)


def check_prompts(policy: Any) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Cross-checks of the ``prompts:`` section: at most one active experiment per prompt."""
    if policy.prompts is None:
        return
    seen: dict[str, str] = {}
    for name, spec in policy.prompts.experiments.items():
        if not spec.active:
            continue
        if spec.prompt in seen:
            yield (
                ("prompts", "experiments", name),
                (
                    f"experiments '{seen[spec.prompt]}' and '{name}' are both active "
                    f"for prompt '{spec.prompt}'; "
                    "set 'active: false' on one"
                ),
            )
        else:
            seen[spec.prompt] = name
