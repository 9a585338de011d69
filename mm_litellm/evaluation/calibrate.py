"""Calibration: fit a policy's knob, or a per-group model choice, on the train split; report on test.

Two methods, both ending in an ordinary policy file a person can review:

- ``knob``: try each value of one numeric setting (a token threshold, a tier boundary, a
  confidence threshold, a cost weight) on the train split and keep the best under the target.
- ``groups``: learn which model serves each value of a request fact (``task``, ``tier``, or a
  ``metadata.<key>`` the caller sends, e.g. a product area or subject). For each group and model
  the train split gives the summed score and cost; a Lagrangian sweep (each group takes the
  model maximising ``score - lambda * cost``) traces every efficient assignment, and the best
  one under the target becomes readable rules: ``when: {FACT: {in: [...]}}, use: MODEL`` appended
  after the route's own rules, with the route's default set to the model chosen for all groups
  pooled. Rules the route already has keep precedence; only rows they leave to the default are
  fitted.

Targets: ``quality`` (cheapest configuration keeping at least ``min_quality`` x always-strongest
quality) or ``cost`` (best quality within ``max_cost`` x always-strongest cost), measured on train.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mm_litellm.evaluation.errors import EvaluationError
from mm_litellm.evaluation.knobs import set_knob
from mm_litellm.evaluation.session import Evaluation
from mm_litellm.policy.schema import Policy

__all__ = ["Target", "calibrate_groups", "calibrate_knob"]


@dataclass(frozen=True, slots=True)
class Target:
    """What "best" means: ``quality`` (min cost with quality >= ratio x strongest) or ``cost``."""

    kind: str
    ratio: float

    def __post_init__(self) -> None:
        if self.kind not in ("quality", "cost"):
            raise EvaluationError(f"unknown target '{self.kind}'; allowed: quality, cost")
        if not 0 < self.ratio <= 1.5:
            raise EvaluationError("the target ratio must be between 0 and 1.5 (a share of always-strongest)")

    def pick(
        self, candidates: Sequence[tuple[float, float, Any]], strong_q: float, strong_c: float
    ) -> tuple[Any, bool]:
        """The best (quality, cost, item) candidate, and whether it meets the target."""
        if self.kind == "quality":
            ok = [c for c in candidates if c[0] >= self.ratio * strong_q - 1e-12]
            if ok:
                return min(ok, key=lambda c: (c[1], -c[0]))[2], True
            return max(candidates, key=lambda c: (c[0], -c[1]))[2], False
        ok = [c for c in candidates if c[1] <= self.ratio * strong_c + 1e-12]
        if ok:
            return max(ok, key=lambda c: (c[0], -c[1]))[2], True
        return min(candidates, key=lambda c: (c[1], -c[0]))[2], False


def calibrate_knob(
    train: Evaluation,
    document: dict[str, Any],
    source: str,
    path: str,
    values: Sequence[Any],
    target: Target,
    route: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The best value of ``path`` on train; returns (the changed document, the fitting record)."""
    curve = train.curve(document, source, path, values, route)
    b = train.baselines
    candidates = [(p["quality"], p["cost_per_1k"], p["value"]) for p in curve["points"]]
    value, met = target.pick(candidates, b.strongest.quality, b.strongest.cost_per_1k)
    return set_knob(document, path, value), {
        "method": "knob",
        "knob": path,
        "value": value,
        "met_on_train": met,
        "train_points": curve["points"],
        "train_metrics": curve["metrics"],
    }


def _group_value(features: Any, fact: str) -> Any:
    if fact.startswith("metadata."):
        node: Any = features.metadata
        for part in fact.split(".")[1:]:
            node = node.get(part) if isinstance(node, dict) else None
        return node
    return getattr(features, fact, None)


def calibrate_groups(
    train: Evaluation,
    document: dict[str, Any],
    policy: Policy,
    fact: str,
    target: Target,
    route: str | None = None,
    min_rows: int = 10,
    position: str = "last",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Learn a model per value of ``fact`` on train; returns (the new document, the fitting record).

    ``position="last"``: the fitted rules go after the route's rules and set its default (rows
    the existing rules decide stay fixed). ``"first"``: they go before them and override them for
    every fitted group; rows of other groups keep the original decision.
    """
    if position not in ("first", "last"):
        raise EvaluationError(f"unknown position '{position}'; allowed: first, last")
    route_name = train.route_for(policy, route)
    if route_name not in policy.routes:
        raise EvaluationError(
            f"'{route_name}' is not a route of the policy; groups calibration adds rules to a route"
        )
    if getattr(policy.routes[route_name], "strategy", "task_based") != "task_based":
        raise EvaluationError(f"route '{route_name}' is not task_based; groups calibration writes rules")
    base = train.run(policy, route_name)
    table = train.table
    models = table.models
    features = train.replayer.features(policy, route_name)
    fixed_q = fixed_c = 0.0
    sums: dict[Any, dict[str, list[float]]] = defaultdict(lambda: {m: [0.0, 0.0] for m in models})
    counts: dict[Any, int] = defaultdict(int)
    keys: list[Any] = []
    for feats in features:
        value = _group_value(feats, fact)
        keys.append(value if isinstance(value, str | int | float | bool) else None)
    if position == "first":
        sizes: dict[Any, int] = defaultdict(int)
        for key in keys:
            sizes[key] += 1
        fitted = [k is not None and sizes[k] >= min_rows for k in keys]
    else:
        fitted = [rule is None for rule in base.rules]
    for i, key in enumerate(keys):
        if not fitted[i]:  # decided as before (an existing rule, or a group too small to fit)
            fixed_q += table.score[base.targets[i]][i]
            fixed_c += table.cost[base.targets[i]][i]
            continue
        counts[key] += 1
        for m in models:
            cell = sums[key][m]
            cell[0] += table.score[m][i]
            cell[1] += table.cost[m][i]
    if not counts:
        raise EvaluationError(
            f"every train row is decided by an existing rule of route '{route_name}'; nothing to fit"
        )
    small = {k for k, n in counts.items() if k is None or n < min_rows}
    groups = [k for k in counts if k not in small]
    if not groups:
        raise EvaluationError(
            f"no value of '{fact}' has {min_rows}+ train rows (set --min-rows lower or pick another fact)"
        )
    rest: dict[str, list[float]] = {
        m: [sum(sums[k][m][0] for k in small), sum(sums[k][m][1] for k in small)] for m in models
    }
    pooled: dict[str, list[float]] = {
        m: [sum(sums[k][m][0] for k in counts), sum(sums[k][m][1] for k in counts)] for m in models
    }

    def assign(lam: float) -> tuple[dict[Any, str], str]:
        def best(cell: dict[str, list[float]]) -> str:
            return max(models, key=lambda m: (cell[m][0] - lam * cell[m][1], -cell[m][1]))

        return {k: best(sums[k]) for k in groups}, best(pooled)

    lambdas = {0.0, 1e12}
    cells: list[dict[str, list[float]]] = [*(sums[k] for k in groups), pooled]
    for group_cell in cells:
        for m1 in models:
            for m2 in models:
                dq = group_cell[m1][0] - group_cell[m2][0]
                dcost = group_cell[m1][1] - group_cell[m2][1]
                if dcost > 0 and dq > 0:
                    lam = dq / dcost
                    lambdas.update({lam * (1 - 1e-9), lam * (1 + 1e-9)})
    n = len(table)
    candidates = []
    for lam in sorted(lambdas):
        chosen, default = assign(lam)
        q = fixed_q + sum(sums[k][m][0] for k, m in chosen.items()) + rest[default][0]
        c = fixed_c + sum(sums[k][m][1] for k, m in chosen.items()) + rest[default][1]
        candidates.append((q / n, c / n * 1000, (lam, chosen, default)))
    b = train.baselines
    (lam, chosen, default), met = target.pick(candidates, b.strongest.quality, b.strongest.cost_per_1k)
    if met:  # the frontier is convex; a greedy pass fills what is left of the budget (or the margin)
        chosen = _refine(
            target,
            chosen,
            sums,
            models,
            b.strongest.quality * n,
            b.strongest.cost_per_1k * n / 1000,
            fixed_q + rest[default][0],
            fixed_c + rest[default][1],
        )
    if position == "first":
        default = policy.routes[route_name].default or default
    new_doc = _with_group_rules(document, route_name, fact, chosen, default, position)
    train_q = fixed_q + sum(sums[k][m][0] for k, m in chosen.items()) + rest[default][0]
    train_c = fixed_c + sum(sums[k][m][1] for k, m in chosen.items()) + rest[default][1]
    return new_doc, {
        "method": "groups",
        "fact": fact,
        "route": route_name,
        "position": position,
        "lambda": lam,
        "met_on_train": met,
        "train_quality": train_q / n,
        "train_cost_per_1k": train_c / n * 1000,
        "groups": len(groups),
        "groups_left_to_default": len(small),
        "default": default,
        "assignment": {str(k): m for k, m in sorted(chosen.items(), key=lambda kv: str(kv[0]))},
        "rows_fitted": sum(counts.values()),
        "rows_kept_as_before": n - sum(counts.values()),
    }


def _refine(
    target: Target,
    chosen: dict[Any, str],
    sums: dict[Any, dict[str, list[float]]],
    models: Sequence[str],
    strong_q: float,
    strong_c: float,
    base_q: float,
    base_c: float,
) -> dict[Any, str]:
    """Greedy moves (one group to another model) that keep the target and improve it, until none does.

    ``strong_q``/``strong_c``: always-strongest's summed quality and cost on the fitted rows;
    ``base_q``/``base_c``: what the rows outside the groups contribute.
    """
    chosen = dict(chosen)
    q = base_q + sum(sums[k][m][0] for k, m in chosen.items())
    c = base_c + sum(sums[k][m][1] for k, m in chosen.items())
    budget, goal, eps = target.ratio * strong_c, target.ratio * strong_q, 1e-9
    while True:
        best: tuple[float, Any, str, float, float] | None = None
        for k, current in chosen.items():
            for m in models:
                dq = sums[k][m][0] - sums[k][current][0]
                dc = sums[k][m][1] - sums[k][current][1]
                if target.kind == "cost":
                    gain, ok = dq, c + dc <= budget + eps
                else:
                    gain, ok = -dc, q + dq >= goal - eps
                if ok and gain > eps and (best is None or gain > best[0]):
                    best = (gain, k, m, dq, dc)
        if best is None:
            return chosen
        _gain, k, m, dq, dc = best
        chosen[k] = m
        q, c = q + dq, c + dc


def _with_group_rules(
    document: dict[str, Any], route: str, fact: str, chosen: dict[Any, str], default: str, position: str
) -> dict[str, Any]:
    by_model: dict[str, list[Any]] = defaultdict(list)
    for value, model in chosen.items():
        if model != default or position == "first":
            by_model[model].append(value)
    existing = list(document["routes"][route].get("rules") or [])
    taken = {r.get("name") for r in existing if isinstance(r, dict)}
    fitted_rules = []
    for model, values in sorted(by_model.items()):
        name = f"calibrated-{model}"
        while name in taken:
            name += "-2"
        taken.add(name)
        fitted_rules.append(
            {
                "name": name,
                "when": {fact: {"in": sorted(values, key=str)}},
                "use": model,
                "description": f"fitted by mm-litellm policy calibrate: {len(values)} value(s) of {fact}",
            }
        )
    changed = copy.deepcopy(document)
    changed["routes"][route]["rules"] = (
        fitted_rules + existing if position == "first" else existing + fitted_rules
    )
    if position == "last" or "default" not in changed["routes"][route]:
        changed["routes"][route]["default"] = default
    return changed
