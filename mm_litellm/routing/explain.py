"""Explain a routing decision without calling any provider: ``mm_litellm.explain(...)``.

The same engine decides (with ``explain=True``, so every rule is evaluated in order with a
reason per check); this module only gathers what it saw into a typed :class:`Explanation`
and renders it for people (``mm-litellm route --explain``) or as a dict (``--json``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mm_litellm.routing.plan import Plan, RuleTrial
from mm_litellm.routing.strategies import Candidate

__all__ = ["Explanation", "explain_with"]


@dataclass(frozen=True)
class Explanation:
    """Everything the engine considered for one request, and what it decided."""

    requested: str
    kind: str
    """``route``, ``alias``, ``model``, or ``passthrough`` (not named by the policy)."""
    features: dict[str, Any] = field(default_factory=dict)
    classifier: dict[str, Any] = field(default_factory=dict)
    """Which task and tier patterns matched, on which words."""
    trials: tuple[RuleTrial, ...] = ()
    candidates: tuple[Candidate, ...] = ()
    plan: Plan | None = None
    costs: dict[str, float | None] = field(default_factory=dict)
    """Estimated USD of one call for the target, each fallback and each escalation model."""
    output_tokens: int = 0
    """Output size assumed for the cost estimates."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        plan = self.plan
        return {
            "requested": self.requested,
            "kind": self.kind,
            "features": self.features,
            "classifier": self.classifier,
            "rules": [
                {"route": t.route, "rule": t.rule, "matched": t.matched, "checks": list(t.checks)}
                for t in self.trials
            ],
            "candidates": [c.as_dict() for c in self.candidates],
            "plan": None
            if plan is None
            else {
                **plan.trace(),
                "escalation": list(plan.escalation),
                "strategy": plan.strategy,
            },
            "estimated_costs": self.costs,
            "assumed_output_tokens": self.output_tokens,
        }

    def render(self) -> str:
        """Human-readable explanation, one section per stage."""
        lines = [f"request: model={self.requested!r} ({self.kind})"]
        if self.kind == "passthrough":
            lines.append("decision: not named by the policy: passed straight through to LiteLLM")
            return "\n".join(lines)
        if self.features:
            f = self.features
            lines.append(
                f"features: task={f['task']} tier={f['tier']} input_tokens={f['input_tokens']}"
                f"{' (exact)' if f['input_tokens_exact'] else ' (estimated)'} images={f['has_images']} "
                f"tools={f['has_tools']} json={f['json_mode']}"
            )
            meta = {
                k: f[k]
                for k in ("priority", "budget_mode", "latency_critical", "preferred_model", "user", "team")
                if f.get(k) is not None
            }
            if f.get("tags"):
                meta["tags"] = list(f["tags"])
            if meta:
                lines.append("caller:   " + " ".join(f"{k}={v}" for k, v in meta.items()))
            matched = self.classifier
            if matched:
                lines.append(
                    f"matched:  task patterns {matched['task_matches'] or '{}'}; "
                    f"tier patterns {matched['tier_matches'] or '{}'}"
                )
        if self.trials:
            lines.append("rules:")
            for t in self.trials:
                lines.append(
                    f"  [{'x' if t.matched else ' '}] {t.route}/{t.rule}: {'; '.join(t.checks) or 'always'}"
                )
        if self.candidates:
            lines.append("candidates:")
            for c in self.candidates:
                cost = "unpriced" if c.est_cost is None else f"${c.est_cost:.6f}"
                lat = "?" if c.latency_ms is None else f"{c.latency_ms:.0f} ms ({c.latency_source})"
                verdict = "kept" if c.kept else "filtered: " + "; ".join(c.rejected)
                note = getattr(c, "note", "")  # a learned route: prediction, expected cost, margin
                if note:
                    lines.append(f"  {c.model:<16} {c.tier:<12} {note}")
                    continue
                lines.append(f"  {c.model:<16} {c.tier:<12} q={c.quality:.2f} {cost:>10} {lat:<16} {verdict}")
        plan = self.plan
        if plan is not None:
            lines.append(f"decision: {plan.target}  ({plan.reason})")
            lines.append(f"fallbacks (on errors, LiteLLM Router): {', '.join(plan.fallbacks) or '(none)'}")
            lines.append(f"escalation (on unsure answers): {', '.join(plan.escalation) or '(none)'}")
            costs = ", ".join(
                f"{m} {'unpriced' if v is None else f'${v:.6f}'}" for m, v in self.costs.items()
            )
            lines.append(f"estimated cost per call ({self.output_tokens} output tokens assumed): {costs}")
        return "\n".join(lines)


def _estimate(policy: Any, catalog: Any, name: str, tokens: int, output_tokens: int) -> float | None:
    """One call of ``name``; for ``ensemble/x``, the sum of its members' calls (a judge, aggregator
    or escalation comes on top). ``None`` when a price is unknown."""
    entry = catalog.get(name)
    if entry is not None:
        cost: float | None = entry.cost(tokens, output_tokens)
        return cost
    if name.startswith("ensemble/"):
        spec = policy.ensembles.get(name[len("ensemble/") :])
        if spec is None:
            return None
        total = 0.0
        for _label, member in spec.labelled_members():
            member_cost = _estimate(policy, catalog, member.model, tokens, output_tokens)
            if member_cost is None:
                return None
            total += member_cost
        return total
    return None


def explain_with(
    engine: Any, model: str, messages: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None
) -> Explanation:
    """Explain what ``engine`` (a :class:`~mm_litellm.routing.engine.RoutingEngine`) decides."""
    kwargs = kwargs or {}
    policy = engine.policy
    kind = policy.kind_of(model)
    if kind is None:
        return Explanation(requested=model, kind="passthrough")
    features = engine.features(model, messages, kwargs)
    plan = engine.plan(model, messages, kwargs, features=features, explain=True)
    route_name = (plan.route or "").split(" > ")[-1]
    route = policy.routes.get(route_name)
    output_tokens = features.max_tokens or (route.expected_output_tokens if route is not None else 500)
    costs: dict[str, float | None] = {}
    try:
        catalog = engine.catalog
    except Exception:  # prices are a nicety here: explain must work without LiteLLM's table
        catalog = {}
    for name in (plan.target, *plan.fallbacks, *plan.escalation):
        costs[name] = _estimate(policy, catalog, name, features.input_tokens, output_tokens)
    return Explanation(
        requested=model,
        kind=kind,
        features=features.as_dict(),
        classifier=engine.classifier.explain(features.text),
        trials=plan.trials,
        candidates=plan.candidates,
        plan=plan,
        costs=costs,
        output_tokens=output_tokens,
    )
