"""The routing engine: a policy's routes compiled once, deciding a :class:`Plan` per request.

Pure Python over our own types; it never calls LiteLLM. The gateway, the Router plugin and
the proxy hook all call :meth:`RoutingEngine.plan`, so there is one implementation of the
decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mm_litellm.errors import RoutingError
from mm_litellm.policy.ensembles import ENSEMBLE_PREFIX
from mm_litellm.policy.schema import Policy, Route, Rule
from mm_litellm.routing.conditions import Condition, compile_when
from mm_litellm.routing.features import RequestFeatures, extract_features
from mm_litellm.routing.plan import Plan, RuleTrial

__all__ = ["RoutingEngine"]


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    rule: Rule
    condition: Condition


@dataclass(frozen=True, slots=True)
class _CompiledRoute:
    name: str
    route: Route
    rules: tuple[_CompiledRule, ...]


class RoutingEngine:
    """Decides, for a requested model name, which policy model serves it."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._routes = {
            name: _CompiledRoute(name, route, tuple(_CompiledRule(r, compile_when(r.when)) for r in route.rules))
            for name, route in policy.routes.items()
        }

    def handles(self, model: str) -> bool:
        """True when ``model`` is a route, alias or model of the policy (else: pass-through)."""
        policy = self.policy
        return (
            model in policy.routes or model in policy.aliases or model in policy.models
            or (model.startswith(ENSEMBLE_PREFIX) and model[len(ENSEMBLE_PREFIX):] in policy.ensembles)
        )

    def plan(
        self,
        model: str,
        messages: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        *,
        features: RequestFeatures | None = None,
        explain: bool = False,
    ) -> Plan:
        """Decide the plan for a request to ``model`` (which must satisfy :meth:`handles`)."""
        policy = self.policy
        reason = ""
        name = model
        alias_target = policy.aliases.get(model)
        if alias_target is not None:
            reason = f"legacy alias '{model}' -> '{alias_target}'; "
            name = alias_target
        if name in policy.models:
            return Plan(requested=model, target=name, reason=reason + f"model '{name}' declared in the policy")
        if name.startswith(ENSEMBLE_PREFIX):  # a Router group served by the ensemble provider
            why = f"ensemble '{name[len(ENSEMBLE_PREFIX):]}' declared in the policy"
            return Plan(requested=model, target=name, reason=reason + why)
        if features is None:
            features = extract_features(model, messages, kwargs or {})
        return self._route(model, name, features, reason, explain)

    def _route(self, requested: str, name: str, features: RequestFeatures, reason: str, explain: bool) -> Plan:
        trials: list[RuleTrial] = []
        visited: list[str] = []
        route_name = name
        while True:
            compiled = self._routes[name]
            visited.append(name)
            chosen: Rule | None = None
            for crule in compiled.rules:
                if explain:
                    matched, lines = crule.condition.explain(features)
                    trials.append(RuleTrial(name, crule.rule.name, matched, tuple(lines)))
                else:
                    matched = crule.condition.matches(features)
                if matched:
                    chosen = crule.rule
                    break
            if chosen is not None:
                target, why = chosen.use, f"route '{name}' rule '{chosen.name}' matched"
                fallbacks = chosen.fallbacks if chosen.fallbacks is not None else compiled.route.fallbacks
            elif compiled.route.default is not None:
                target, why = compiled.route.default, f"route '{name}': no rule matched, default"
                fallbacks = compiled.route.fallbacks
            else:
                raise RoutingError(name, "no rule matched this request and the route has no 'default'")
            reason += why
            target = self.policy.aliases.get(target, target)
            if target in self._routes:  # a rule may hand over to another route (cycles refused at load)
                reason += f" -> route '{target}'; "
                name = target
                continue
            return Plan(
                requested=requested,
                target=target,
                route=route_name if len(visited) == 1 else " > ".join(visited),
                rule=chosen.name if chosen is not None else None,
                fallbacks=tuple(f for f in fallbacks if f != target),
                reason=reason,
                trials=tuple(trials),
            )
