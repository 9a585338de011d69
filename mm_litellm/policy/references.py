"""Whole-document checks: every name a policy uses must be declared, and routes must not loop.

Each check yields ``(field path, message)``; the loader adds the file and line.
"""

from __future__ import annotations

from collections.abc import Iterator

from mm_litellm.policy.budgets import budget_references
from mm_litellm.policy.conditions import ConditionError, compile_when
from mm_litellm.policy.ensembles import ENSEMBLE_PREFIX, check_ensemble_references
from mm_litellm.policy.prompts import check_prompts
from mm_litellm.policy.routing import check_routing_references
from mm_litellm.policy.schema import Policy

__all__ = ["check_references", "known_targets"]

Loc = tuple[str | int, ...]


def _listing(names: object) -> str:
    items = sorted(str(n) for n in names)  # type: ignore[attr-defined]
    return ", ".join(items) if items else "(none declared)"


def known_targets(policy: Policy) -> set[str]:
    """Names a route or alias may point at: models, routes and aliases."""
    return set(policy.models) | set(policy.routes) | set(policy.aliases)


def check_references(policy: Policy) -> list[tuple[Loc, str]]:
    """Every cross-reference problem in ``policy``, as (path, message) pairs."""
    return [
        *_names(policy),
        *_aliases(policy),
        *_router(policy),
        *_routes(policy),
        *_cycles(policy),
        *check_ensemble_references(policy),
        *check_prompts(policy),
        *check_routing_references(policy),
        *budget_references(policy),
        *_key_caps(policy),
    ]


def _key_caps(policy: Policy) -> Iterator[tuple[Loc, str]]:
    """A key's ``limits.max_budget_usd`` is enforced from the ledger: the policy must keep one."""
    if policy.budgets is not None:
        return
    for key, spec in policy.proxy.keys.items():
        if spec.limits.max_budget_usd is not None:
            yield (
                ("proxy", "keys", key, "limits", "max_budget_usd"),
                "a key's spend cap needs the policy's 'budgets:' section (the ledger enforces it)",
            )


def _names(policy: Policy) -> Iterator[tuple[Loc, str]]:
    for name in policy.routes:
        if name in policy.models:
            yield ("routes", name), f"'{name}' is both a route and a model; a name must mean one thing"
    for name in policy.aliases:
        if name in policy.models or name in policy.routes:
            yield ("aliases", name), f"'{name}' is already a model or route; an alias needs a new name"
    if policy.default_route is not None and policy.default_route not in policy.routes:
        yield ("default_route",), f"unknown route '{policy.default_route}'; known: {_listing(policy.routes)}"


def _model_ref(policy: Policy, name: str, loc: Loc) -> Iterator[tuple[Loc, str]]:
    if name not in policy.models:
        yield loc, f"unknown model '{name}'; known: {_listing(policy.models)}"


def _target_ref(policy: Policy, name: str, loc: Loc) -> Iterator[tuple[Loc, str]]:
    """A rule's ``use`` / a route's ``default``: a model, a route or a legacy alias."""
    if name.startswith(ENSEMBLE_PREFIX):
        if name[len(ENSEMBLE_PREFIX) :] not in policy.ensembles:
            yield (
                loc,
                f"unknown ensemble '{name}'; "
                f"known: {_listing(ENSEMBLE_PREFIX + e for e in policy.ensembles)}",
            )
    elif name not in known_targets(policy):
        yield (
            loc,
            (
                f"unknown model or route '{name}'; known models: {_listing(policy.models)}; "
                f"routes: {_listing(policy.routes)}"
            ),
        )


def _aliases(policy: Policy) -> Iterator[tuple[Loc, str]]:
    for alias, target in policy.aliases.items():
        if target in policy.aliases:
            yield (
                ("aliases", alias),
                f"'{alias}' points at another alias '{target}'; point it at a model or route",
            )
        elif target not in policy.models and target not in policy.routes:
            yield (
                ("aliases", alias),
                (
                    f"unknown model or route '{target}'; known models: {_listing(policy.models)}; "
                    f"routes: {_listing(policy.routes)}"
                ),
            )


def _router(policy: Policy) -> Iterator[tuple[Loc, str]]:
    settings = policy.router
    for field in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
        mapping = getattr(settings, field)
        for model, chain in mapping.items():
            yield from _model_ref(policy, model, ("router", field, model))
            for i, target in enumerate(chain):
                yield from _model_ref(policy, target, ("router", field, model, i))
    for i, target in enumerate(settings.default_fallbacks):
        yield from _model_ref(policy, target, ("router", "default_fallbacks", i))


def _routes(policy: Policy) -> Iterator[tuple[Loc, str]]:
    for name, route in policy.routes.items():
        base: Loc = ("routes", name)
        seen: set[str] = set()
        for i, rule in enumerate(route.rules):
            loc: Loc = (*base, "rules", i)
            if rule.name in seen:
                yield (*loc, "name"), f"duplicate rule name '{rule.name}' in route '{name}'"
            seen.add(rule.name)
            try:
                compile_when(rule.when)
            except ConditionError as exc:
                yield (*loc, "when", *exc.loc), str(exc)
            yield from _target_ref(policy, rule.use, (*loc, "use"))
            for j, fb in enumerate(rule.fallbacks or ()):
                yield from _model_ref(policy, fb, (*loc, "fallbacks", j))
        if route.default is not None:
            yield from _target_ref(policy, route.default, (*base, "default"))
        for j, fb in enumerate(route.fallbacks):
            yield from _model_ref(policy, fb, (*base, "fallbacks", j))


def _cycles(policy: Policy) -> Iterator[tuple[Loc, str]]:
    """A route whose rules lead back to itself (directly or through other routes or aliases)."""

    def next_routes(route_name: str) -> set[str]:
        route = policy.routes[route_name]
        targets = [r.use for r in route.rules] + ([route.default] if route.default else [])
        resolved = {policy.aliases.get(t, t) for t in targets}
        return {t for t in resolved if t in policy.routes}

    for start in policy.routes:
        stack: list[tuple[str, tuple[str, ...]]] = [(start, (start,))]
        seen: set[str] = set()
        while stack:
            current, path = stack.pop()
            for nxt in next_routes(current):
                if nxt == start:
                    yield ("routes", start), f"routes loop back to themselves: {' -> '.join((*path, nxt))}"
                    stack.clear()
                    break
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, (*path, nxt)))
