"""Calibration by groups: which model serves each value of one or more request facts.

The facts (``task``, ``tier``, ``metadata.<key>``, any fact rules can test) split the train rows
into groups, one per combination of their values (the cross product: ``--by task --by tier``
gives a group per task and tier seen together). For each group and model the train split gives
the summed score and cost; a Lagrangian sweep (each group takes the model maximising
``score - lambda * cost``) traces every efficient assignment, and the best one under the target
becomes readable rules matching all the facts, e.g. ``when: {task: math, tier: {in: [advanced,
expert]}}, use: MODEL``. Every group with at least ``min_rows`` train rows is fitted; smaller
ones (and rows missing a fact) are left to the route's default.

``position="first"`` (the default) puts the rules before the route's own rules, so every group
is fitted on all its rows, including rows the route's rules decided; a group too small to fit keeps
the route's decision. ``"last"`` appends them after the route's rules and sets the route's default
to the model chosen for all groups pooled: the route's rules keep precedence and only the rows they
leave to the default are fitted.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from mm_litellm.evaluation.calibrate import Target
from mm_litellm.evaluation.errors import EvaluationError
from mm_litellm.evaluation.session import Evaluation
from mm_litellm.policy.facts import FACTS
from mm_litellm.policy.schema import Policy

__all__ = ["calibrate_groups", "check_facts"]

Key = tuple[Any, ...]
Sums = dict[Key, dict[str, list[float]]]


def check_facts(facts: str | Sequence[str]) -> tuple[str, ...]:
    """The facts to group by, each one a rule can test; raises naming what is allowed."""
    names = (facts,) if isinstance(facts, str) else tuple(facts)
    if not names:
        raise EvaluationError("give at least one fact to group by (--by FACT)")
    for name in names:
        if name not in FACTS and not (name.startswith("metadata.") and len(name) > len("metadata.")):
            raise EvaluationError(
                f"--by '{name}' is not a request fact; allowed: {', '.join(FACTS)} or metadata.<key>"
            )
    if len(set(names)) != len(names):
        raise EvaluationError(f"--by names a fact twice: {', '.join(names)}")
    return names


def _fact_value(features: Any, fact: str) -> Any:
    if fact.startswith("metadata."):
        node: Any = features.metadata
        for part in fact.split(".")[1:]:
            node = node.get(part) if isinstance(node, dict) else None
        value = node
    else:
        value = getattr(features, fact, None)
    return value if isinstance(value, str | int | float | bool) else None


def _label(facts: Sequence[str], key: Key) -> str:
    if len(facts) == 1:
        return str(key[0])
    return ", ".join(f"{fact}={value}" for fact, value in zip(facts, key, strict=True))


def calibrate_groups(
    train: Evaluation,
    document: dict[str, Any],
    policy: Policy,
    facts: str | Sequence[str],
    target: Target,
    route: str | None = None,
    min_rows: int = 10,
    position: str = "first",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Learn a model per group of ``facts`` on train; returns (the new document, the fitting record).

    The record's ``groups_detail`` has one entry per group (fitted or left to the default): its
    label, train rows, the model it gets, and that model's mean train score and cost per 1k there.
    """
    if position not in ("first", "last"):
        raise EvaluationError(f"unknown position '{position}'; allowed: first, last")
    if min_rows < 1:
        raise EvaluationError(f"--min-rows must be at least 1, got {min_rows}")
    names = check_facts(facts)
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
    keys: list[Key | None] = []
    for feats in train.replayer.features(policy, route_name):
        values = tuple(_fact_value(feats, fact) for fact in names)
        keys.append(None if any(v is None for v in values) else values)
    if position == "first":
        sizes: dict[Key | None, int] = defaultdict(int)
        for key in keys:
            sizes[key] += 1
        fitted = [k is not None and sizes[k] >= min_rows for k in keys]
    else:
        fitted = [rule is None for rule in base.rules]
    fixed_q = fixed_c = 0.0
    sums: dict[Key | None, dict[str, list[float]]] = defaultdict(lambda: {m: [0.0, 0.0] for m in models})
    counts: dict[Key | None, int] = defaultdict(int)
    kept: dict[Key | None, dict[str, list[float]]] = defaultdict(dict)  # "first": small groups, as before
    for i, key in enumerate(keys):
        if not fitted[i]:  # decided as before (an existing rule, or a group too small to fit)
            before = base.targets[i]
            q, c = table.score[before][i], table.cost[before][i]
            fixed_q += q
            fixed_c += c
            if position == "first":
                cell = kept[key].setdefault(before, [0, 0.0, 0.0])
                cell[0], cell[1], cell[2] = cell[0] + 1, cell[1] + q, cell[2] + c
            continue
        counts[key] += 1
        for m in models:
            cell = sums[key][m]
            cell[0] += table.score[m][i]
            cell[1] += table.cost[m][i]
    if not counts and position == "last":
        raise EvaluationError(
            f"every train row is decided by an existing rule of route '{route_name}'; nothing to fit "
            "(--position first fits the groups before those rules)"
        )
    small = {k for k, n in counts.items() if k is None or n < min_rows}
    groups: list[Key] = [k for k in counts if k is not None and k not in small]
    if not groups:
        raise EvaluationError(
            f"no group of {' x '.join(names)} has {min_rows}+ train rows "
            "(set --min-rows lower or group by fewer or other facts)"
        )
    fit: Sums = {k: sums[k] for k in groups}
    rest = {m: [sum(sums[k][m][j] for k in small) for j in (0, 1)] for m in models}
    pooled = {m: [sum(sums[k][m][j] for k in counts) for j in (0, 1)] for m in models}
    n = len(table)
    b = train.baselines
    candidates = []
    for lam in _breakpoints([*fit.values(), pooled], models):
        chosen, default = _assign(lam, fit, pooled, models)
        q = fixed_q + sum(fit[k][m][0] for k, m in chosen.items()) + rest[default][0]
        c = fixed_c + sum(fit[k][m][1] for k, m in chosen.items()) + rest[default][1]
        candidates.append((q / n, c / n * 1000, (lam, chosen, default)))
    (lam, chosen, default), met = target.pick(candidates, b.strongest.quality, b.strongest.cost_per_1k)
    if met:  # the frontier is convex; a greedy pass fills what is left of the budget (or the margin)
        chosen = _refine(
            target,
            chosen,
            fit,
            models,
            b.strongest.quality * n,
            b.strongest.cost_per_1k * n / 1000,
            fixed_q + rest[default][0],
            fixed_c + rest[default][1],
        )
    if position == "first":
        default = policy.routes[route_name].default or default
    new_doc = _with_group_rules(document, route_name, names, chosen, default, position)
    train_q = fixed_q + sum(fit[k][m][0] for k, m in chosen.items()) + rest[default][0]
    train_c = fixed_c + sum(fit[k][m][1] for k, m in chosen.items()) + rest[default][1]
    detail = _detail(names, counts, sums, chosen, default, kept)
    return new_doc, {
        "method": "groups",
        "fact": " x ".join(names),
        "facts": list(names),
        "route": route_name,
        "position": position,
        "min_rows": min_rows,
        "lambda": lam,
        "met_on_train": met,
        "train_quality": train_q / n,
        "train_cost_per_1k": train_c / n * 1000,
        "groups": len(groups),
        "groups_left_to_default": len(small) + len(kept),
        "default": default,
        "assignment": {_label(names, k): m for k, m in sorted(chosen.items(), key=lambda kv: str(kv[0]))},
        "groups_detail": detail,
        "rows_fitted": sum(counts.values()),
        "rows_kept_as_before": n - sum(counts.values()),
    }


def _detail(
    names: Sequence[str],
    counts: dict[Key | None, int],
    sums: dict[Key | None, dict[str, list[float]]],
    chosen: dict[Key, str],
    default: str,
    kept: dict[Key | None, dict[str, list[float]]],
) -> list[dict[str, Any]]:
    """One entry per group, largest first: fitted ones, ones given the default, ones kept as the route
    decides them (the model, or models, it used), with the mean train score and cost there."""
    out = []
    for key, rows in counts.items():
        model = chosen.get(key, default) if key is not None else default
        score, cost = sums[key][model]
        how = "fitted" if key in chosen else "default"
        out.append((key, rows, model, how, score, cost))
    for key, by_model in kept.items():
        rows = int(sum(cell[0] for cell in by_model.values()))
        model = "/".join(sorted(by_model))
        score, cost = sum(cell[1] for cell in by_model.values()), sum(cell[2] for cell in by_model.values())
        out.append((key, rows, model, "route", score, cost))
    return [
        {
            "group": "(a fact missing)" if key is None else _label(names, key),
            "values": None if key is None else list(key),
            "rows": rows,
            "model": model,
            "fitted": how == "fitted",
            "how": how,
            "train_quality": score / rows,
            "train_cost_per_1k": cost / rows * 1000,
        }
        for key, rows, model, how, score, cost in sorted(out, key=lambda g: (-g[1], str(g[0])))
    ]


def _breakpoints(cells: Sequence[dict[str, list[float]]], models: Sequence[str]) -> list[float]:
    """Every ``lambda`` at which some group changes model (just below and above), plus the ends."""
    lambdas = {0.0, 1e12}
    for cell in cells:
        for m1 in models:
            for m2 in models:
                dq = cell[m1][0] - cell[m2][0]
                dcost = cell[m1][1] - cell[m2][1]
                if dcost > 0 and dq > 0:
                    lam = dq / dcost
                    lambdas.update({lam * (1 - 1e-9), lam * (1 + 1e-9)})
    return sorted(lambdas)


def _assign(
    lam: float, fit: Sums, pooled: dict[str, list[float]], models: Sequence[str]
) -> tuple[dict[Key, str], str]:
    def best(cell: dict[str, list[float]]) -> str:
        return max(models, key=lambda m: (cell[m][0] - lam * cell[m][1], -cell[m][1]))

    return {k: best(cell) for k, cell in fit.items()}, best(pooled)


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
    document: dict[str, Any],
    route: str,
    facts: Sequence[str],
    chosen: dict[Key, str],
    default: str,
    position: str,
) -> dict[str, Any]:
    """The route's rules with the fitted ones: per model, one rule per value of all facts but the
    last, matching those values and the last fact's value (or values, ``in`` a list)."""
    existing = list(document["routes"][route].get("rules") or [])
    by_rule: dict[tuple[str, Key], list[Any]] = defaultdict(list)
    for key, model in chosen.items():  # the default's groups need a rule only ahead of the route's rules
        if model != default or (position == "first" and existing):
            by_rule[(model, key[:-1])].append(key[-1])
    taken = {r.get("name") for r in existing if isinstance(r, dict)}
    fitted_rules = []
    for (model, prefix), values in sorted(by_rule.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        name = "-".join(["calibrated", model, *(str(v) for v in prefix)])
        while name in taken:
            name += "-2"
        taken.add(name)
        when: dict[str, Any] = dict(zip(facts[:-1], prefix, strict=True))
        when[facts[-1]] = values[0] if len(values) == 1 else {"in": sorted(values, key=str)}
        what = " and ".join(f"{f}={v}" for f, v in zip(facts[:-1], prefix, strict=True))
        fitted_rules.append(
            {
                "name": name,
                "when": when,
                "use": model,
                "description": f"fitted by mm-litellm policy calibrate: {len(values)} value(s) of "
                f"{facts[-1]}" + (f" where {what}" if what else ""),
            }
        )
    changed = copy.deepcopy(document)
    changed["routes"][route]["rules"] = (
        fitted_rules + existing if position == "first" else existing + fitted_rules
    )
    if position == "last" or "default" not in changed["routes"][route]:
        changed["routes"][route]["default"] = default
    return changed
