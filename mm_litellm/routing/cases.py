"""Policy tests: sample requests with the decision each must get (``mm-litellm policy test``).

A team keeps its routing under CI: a YAML file of cases, each a prompt (or messages) plus
metadata and the expected model, route, rule, task or tier. Decisions are made by the same
engine as real calls, without calling any provider.

.. code-block:: yaml

    policy: policy.yaml           # optional; relative to this file (else --policy)
    cases:
      - name: images go to the vision model
        prompt: What is in this picture?
        images: 1                 # adds image parts to the user message
        # pad_tokens: 60000       # appends filler: tests input-size rules
        expect: {model: gpt-4o, rule: vision}
      - name: vip
        model: auto               # default: the policy's default_route
        prompt: hello
        metadata: {priority: high}
        expect: {model: gpt-4o}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from mm_litellm.errors import MMLiteLLMError, PolicyError, PolicyIssue
from mm_litellm.policy.types import Frozen

__all__ = ["CaseFile", "CaseResult", "PolicyCase", "load_cases", "run_cases"]

EXPECTABLE = ("model", "route", "rule", "task", "tier", "strategy")


class Expect(Frozen):
    """What the decision must be; only the keys given are compared (``rule: null`` means no rule)."""

    model: str | None = None
    route: str | None = None
    rule: str | None = None
    task: str | None = None
    tier: str | None = None
    strategy: str | None = None
    error: str | None = None
    """Instead of a decision, a routing error whose message contains this text."""


class PolicyCase(Frozen):
    """One sample request and its expected decision."""

    name: str
    model: str | None = None
    prompt: str | None = None
    messages: tuple[dict[str, Any], ...] | None = None
    images: int = Field(default=0, ge=0)
    pad_tokens: int = Field(default=0, ge=0)
    """Append filler so the prompt is about this many tokens longer (for input-size rules)."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    """Other ``completion`` arguments the rules can see (tools, response_format, max_tokens, user)."""
    expect: Expect

    @model_validator(mode="after")
    def _one_input(self) -> PolicyCase:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give either 'prompt' or 'messages'")
        return self

    def request(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The case as ``completion`` arguments: messages and keyword arguments."""
        if self.messages is not None:
            messages = [dict(m) for m in self.messages]
        else:
            content: Any = self.prompt
            if self.pad_tokens:
                content = f"{content}\n" + "data " * (
                    self.pad_tokens * 4 // 5
                )  # 'data ' is 5 chars, ~1.25 tokens
            if self.images:
                content = [{"type": "text", "text": self.prompt}] + [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,"}}
                    for _ in range(self.images)
                ]
            messages = [{"role": "user", "content": content}]
        return messages, {**self.kwargs, "metadata": dict(self.metadata)}


class CaseFile(Frozen):
    """A policy test file."""

    policy: str | None = None
    cases: tuple[PolicyCase, ...] = Field(min_length=1)


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one case: ``mismatches`` is empty when it passed."""

    case: PolicyCase
    actual: dict[str, Any]
    mismatches: tuple[str, ...]
    reason: str = ""

    @property
    def passed(self) -> bool:
        return not self.mismatches


def load_cases(path: str | Path) -> CaseFile:
    """Read and validate a cases file; problems are a :class:`PolicyError` with field paths."""
    source = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError([PolicyIssue(source, None, "", f"cannot read the cases file: {exc}")]) from exc
    try:
        return CaseFile.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(
            [
                PolicyIssue(
                    source, None, ".".join(str(p) for p in e["loc"]), e["msg"].removeprefix("Value error, ")
                )
                for e in exc.errors()
            ]
        ) from None


def run_cases(engine: Any, cases: Sequence[PolicyCase]) -> list[CaseResult]:
    """Decide every case with ``engine`` and compare with its expectation."""
    default = engine.policy.default_route
    results = []
    for case in cases:
        model = case.model or default or ""
        messages, kwargs = case.request()
        expected = case.expect.model_dump(exclude_unset=True)
        try:
            plan = engine.plan(model, messages, kwargs) if engine.handles(model) else None
        except MMLiteLLMError as exc:
            wanted = expected.get("error")
            ok = wanted is not None and wanted in str(exc)
            results.append(CaseResult(case, {"error": str(exc)}, () if ok else (f"routing error: {exc}",)))
            continue
        if plan is None:
            actual: dict[str, Any] = {"model": model, "route": None, "rule": None}
            reason = "not named by the policy: passed through"
        else:
            f = plan.features
            actual = {
                "model": plan.target,
                "route": plan.route,
                "rule": plan.rule,
                "strategy": plan.strategy,
                "task": f.task if f else None,
                "tier": f.tier if f else None,
            }
            reason = plan.reason
        mismatches = tuple(
            f"{key}: expected {expected[key]!r}, got {actual.get(key)!r}"
            for key in EXPECTABLE
            if key in expected and expected[key] != actual.get(key)
        )
        if "error" in expected:
            mismatches += (
                f"error: expected a routing error containing {expected['error']!r}, got a decision",
            )
        results.append(CaseResult(case, actual, mismatches, reason))
    return results
