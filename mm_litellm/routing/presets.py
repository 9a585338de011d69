"""Seed 003's command-line strategies (``cheapest``, ``fallback``) as routes over a policy.

``mm-litellm run --strategy cheapest`` uses the policy's first ``cost_optimized`` route (in the
example policy: ``cheap``), else a ``cost_optimized`` route over every priced model;
``--max-cost`` then also caps the estimated cost of the chosen model. ``--strategy fallback
--chain mixed`` (or ``--chain a,b,c``) starts at the chain's first model and escalates along
it while answers look unsure. The route is added to a copy of the policy, so the same engine,
trace and explain output apply.
"""

from __future__ import annotations

from mm_litellm.errors import ConfigurationError
from mm_litellm.policy.schema import Policy, Route

__all__ = ["DEFAULT_CHAIN", "PRESETS", "with_preset"]

PRESETS = ("auto", "cheapest", "fallback")
DEFAULT_CHAIN = "mixed"
"""Chain used by ``fallback`` when none is named (seed 003's default), if the policy has it."""


def with_preset(
    policy: Policy, strategy: str, chain: str | None = None, max_cost: float | None = None
) -> tuple[Policy, str | None]:
    """A policy with the preset's route added, and that route's name (``None`` for ``auto``)."""
    if strategy == "auto":
        if chain is not None:
            raise ConfigurationError("--chain applies to --strategy fallback")
        return policy, None
    if strategy == "cheapest":
        if chain is not None:
            raise ConfigurationError("--chain applies to --strategy fallback")
        base = next((r for r in policy.routes.values() if r.strategy == "cost_optimized"), None)
        route = base if base is not None else Route(strategy="cost_optimized")
        if max_cost is not None:
            route = route.model_copy(
                update={"require": route.require.model_copy(update={"max_cost": max_cost})}
            )
        return _add(policy, "run-cheapest", route, {}), "run-cheapest"
    if strategy != "fallback":
        raise ConfigurationError(f"unknown strategy '{strategy}'; allowed: {', '.join(PRESETS)}")
    chains = dict(policy.chains)
    if chain is None:
        if DEFAULT_CHAIN not in chains:
            raise ConfigurationError(
                "--strategy fallback needs --chain NAME or a,b,c "
                f"(no '{DEFAULT_CHAIN}' chain in the policy; chains: {', '.join(sorted(chains)) or '(none)'})"
            )
        chain = DEFAULT_CHAIN
    if chain in chains:
        members = tuple(chains[chain])
        name = chain
    else:
        members = tuple(m.strip() for m in chain.split(",") if m.strip())
        unknown = [m for m in members if m not in policy.models]
        if not members or unknown:
            raise ConfigurationError(
                f"--chain '{chain}' is neither a chain of the policy ({', '.join(sorted(chains)) or 'none'}) "
                f"nor a comma-separated list of its models (unknown: {', '.join(unknown) or 'empty list'})"
            )
        name = "run-chain"
        chains[name] = members
    # one meaning everywhere (CLI, API, batch): unsure answers escalate, errors fall back, along the chain
    route = Route(default=members[0], escalate=name, fallbacks=tuple(members[1:]))
    return _add(policy, "run-fallback", route, chains), "run-fallback"


def _add(policy: Policy, name: str, route: Route, chains: dict[str, tuple[str, ...]]) -> Policy:
    update: dict[str, object] = {"routes": {**policy.routes, name: route}}
    if chains:
        update["chains"] = chains
    copy = policy.model_copy(update=update)
    copy._source = policy.source
    return copy
