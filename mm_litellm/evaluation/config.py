"""How a dataset meets a policy: which recorded model stands in for which policy model, and more.

An evaluation config is a small YAML file (``config/evaluation/*.yaml``), every key optional and
each one overridable on the command line::

    models:                      # policy model -> dataset model whose recorded outcomes stand in for it
      gpt-4o: gpt-4-1106-preview
      gpt-4o-mini: mistralai/Mixtral-8x7B-Instruct-v0.1
    route: auto                  # the route replayed (default: the policy's default_route)
    prices: ../../shared/data/routing/prices_pinned.json   # relative to this file
    default_completion_tokens: 1 # for outcomes that recorded no completion tokens
    metadata_labels: [mmlu_domain]   # row labels the router may see as request metadata
    test_fraction: 0.3           # rows without a split: share assigned to test (seeded)
    seed: 0
    resplit: false               # true: ignore the rows' own split (same as --resplit)
    strict: false                # true: a row the route cannot serve stops the run (same as --strict)
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mm_litellm.evaluation.errors import EvaluationError

__all__ = ["EvalConfig", "load_eval_config", "parse_mapping"]


class EvalConfig(BaseModel):
    """The evaluation settings; see the module docstring for each key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, str] = Field(default_factory=dict)
    route: str | None = None
    prices: str | None = None
    default_completion_tokens: int | None = Field(default=None, ge=0)
    metadata_labels: tuple[str, ...] = ()
    test_fraction: float = Field(default=0.3, gt=0, lt=1)
    seed: int = 0
    resplit: bool = False
    """Ignore the rows' own split and assign a seeded one (GSM8K's rows all say ``test``)."""
    strict: bool = False
    """Stop at a row the route cannot serve (default: count it as a failed request and go on)."""


def load_eval_config(path: str | os.PathLike[str] | None) -> EvalConfig:
    """Read an evaluation config; a relative ``prices`` path is resolved against the file's folder."""
    if path is None:
        return EvalConfig()
    source = Path(path)
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise EvaluationError(f"{source}: cannot read the evaluation config: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise EvaluationError(f"{source}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise EvaluationError(f"{source}: the evaluation config must be a mapping")
    try:
        config = EvalConfig.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"{source} {'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        ]
        allowed = ", ".join(EvalConfig.model_fields)
        raise EvaluationError("\n".join(lines) + f"\n(allowed keys: {allowed})") from None
    if config.prices is not None and not Path(config.prices).is_absolute():
        config = config.model_copy(update={"prices": str(source.parent / config.prices)})
    return config


def parse_mapping(items: list[str]) -> dict[str, str]:
    """``POLICY_MODEL=DATASET_MODEL`` pairs from ``--map`` options."""
    mapping: dict[str, str] = {}
    for item in items:
        left, sep, right = item.partition("=")
        if not sep or not left or not right:
            raise EvaluationError(f"--map expects POLICY_MODEL=DATASET_MODEL, got '{item}'")
        mapping[left] = right
    return mapping
