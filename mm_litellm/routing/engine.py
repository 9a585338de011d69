"""The routing engine: a policy's routes compiled once, deciding a :class:`Plan` per request.

Pure Python over our own types: what it needs from LiteLLM (prices and context windows, an
exact token count) is handed in as a :class:`~mm_litellm.routing.facts.ModelFacts` (default:
``integrations.prices.LiteLLMFacts``; commands that call no provider pass
``integrations.bundled_prices.BundledFacts``, which does not import LiteLLM). The
gateway, the Router hook, explain and the proxy all call :meth:`RoutingEngine.plan`, so there
is one implementation of the decision.

Large routes are indexed: a rule whose ``when:`` has a top-level equality (``task: code``,
``metadata.customer: acme``) is only evaluated for requests with that value, so thousands of
per-customer rules cost a few dictionary lookups, and the first match still wins.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mm_litellm.errors import RoutingError
from mm_litellm.policy.conditions import Check, Condition, compile_when
from mm_litellm.policy.ensembles import ENSEMBLE_PREFIX
from mm_litellm.policy.schema import Policy, Route, Rule
from mm_litellm.routing.catalog import Catalog
from mm_litellm.routing.classifier import Classifier
from mm_litellm.routing.facts import ModelFacts
from mm_litellm.routing.features import RequestFeatures, extract_features, near
from mm_litellm.routing.latency import LATENCY, LatencyTracker
from mm_litellm.routing.plan import Plan, RuleTrial
from mm_litellm.routing.strategies import Candidate, chooser_for, evaluate, rank

__all__ = ["RoutingEngine"]

INDEX_MIN_RULES = 16
"""Routes with fewer rules are scanned in order (faster than indexing them)."""
_NUMERIC_OPS = frozenset({"gt", "gte", "lt", "lte", "eq", "ne"})


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    rule: Rule
    condition: Condition


class _CompiledRoute:
    """A route's rules, compiled, with an index over their top-level equality checks."""

    __slots__ = ("index", "name", "route", "rules", "unindexed")

    def __init__(self, name: str, route: Route) -> None:
        self.name = name
        self.route = route
        self.rules = tuple(_CompiledRule(r, compile_when(r.when)) for r in route.rules)
        self.index: list[tuple[Callable[[RequestFeatures], Any], dict[Any, list[int]]]] = []
        unindexed: list[int] = []
        if len(self.rules) >= INDEX_MIN_RULES:
            by_fact: dict[str, tuple[Callable[[RequestFeatures], Any], dict[Any, list[int]]]] = {}
            for i, crule in enumerate(self.rules):
                check = _equality_check(crule.condition)
                if check is None:
                    unindexed.append(i)
                    continue
                _getter, table = by_fact.setdefault(check.fact, (check.get, {}))
                table.setdefault(check.value, []).append(i)
            self.index = list(by_fact.values())
        self.unindexed = tuple(unindexed) if self.index else tuple(range(len(self.rules)))

    def order(self, features: RequestFeatures) -> Sequence[int]:
        """Indices of the rules that can match ``features``, in declaration order."""
        if not self.index:
            return self.unindexed
        picked: list[int] = list(self.unindexed)
        for getter, table in self.index:
            try:
                hits = table.get(getter(features))
            except TypeError:  # an unhashable value equals no hashable rule value
                hits = None
            if hits:
                picked.extend(hits)
        picked.sort()
        return picked


_LAZY_FACTS = frozenset({"task", "tier"})


def _equality_check(condition: Condition) -> Check | None:
    """The check a rule is indexed by: a top-level equality, preferring facts that cost nothing."""
    if condition.mode != "all":
        return None
    found: list[Check] = []
    for check in condition.checks:
        if isinstance(check, Check) and check.op == "eq":
            try:
                hash(check.value)
            except TypeError:
                continue
            found.append(check)
    found.sort(key=lambda c: c.fact in _LAZY_FACTS)
    return found[0] if found else None


def _thresholds(condition: Condition, out: set[int]) -> None:
    for check in condition.checks:
        if isinstance(check, Condition):
            _thresholds(check, out)
        elif (
            check.fact == "input_tokens" and check.op in _NUMERIC_OPS and isinstance(check.value, int | float)
        ):
            out.add(int(check.value))


class RoutingEngine:
    """Decides, for a requested model name, which policy model serves it."""

    def __init__(
        self,
        policy: Policy,
        *,
        catalog: Catalog | Callable[[], Catalog] | None = None,
        latency: LatencyTracker | None = None,
        counter: Callable[[Sequence[Any]], int] | None = None,
        facts: ModelFacts | None = None,
        embed: Callable[[Any, Sequence[str]], Any] | None = None,
    ) -> None:
        self.policy = policy
        self._facts = facts
        self.embed = embed
        """How a learned route with embedding features fetches a prompt's vector (a runtime gives
        LiteLLM's, ``integrations.embeddings.decision_fetch``); None: never fetched (only memory and
        the persistent cache are read; explain never fetches)."""
        self.may_block = embed is not None and any(
            getattr(r, "lookup", None) is not None for r in policy.routers.values()
        )
        """Whether a decision may wait on a provider (a learned route's prompt embedding): the
        async doors then decide in a worker thread, not on their event loop."""
        self.classifier = Classifier(policy.classifier)
        self.latency = latency if latency is not None else LATENCY
        self._catalog = catalog
        self._counter = counter
        self._routes = {name: _CompiledRoute(name, route) for name, route in policy.routes.items()}
        thresholds: set[int] = set()
        for compiled in self._routes.values():
            for crule in compiled.rules:
                _thresholds(crule.condition, thresholds)
        thresholds.update(s.context_window for s in policy.models.values() if s.context_window)
        self.thresholds = tuple(sorted(thresholds))
        self._band = policy.classifier.exact_count_band

    # --- collaborators (LiteLLM-backed by default, built on first use) -------------------

    @property
    def catalog(self) -> Catalog:
        """Prices, windows and hints of the policy's models (built on first use)."""
        if not isinstance(self._catalog, Catalog):
            if self._catalog is None:
                from mm_litellm.routing.catalog import build_catalog

                self._catalog = build_catalog(self.policy, self.facts.price)
            else:
                self._catalog = self._catalog()
        return self._catalog

    def count_tokens(self, messages: Sequence[Any]) -> int:
        """Exact input tokens (LiteLLM's ``token_counter`` unless another counter was given)."""
        if self._counter is None:
            self._counter = self.facts.count_tokens
        return self._counter(messages)

    @property
    def facts(self) -> ModelFacts:
        """Where prices, windows and exact counts come from (LiteLLM's live tables by default)."""
        if self._facts is None:
            from mm_litellm.integrations.prices import LiteLLMFacts

            self._facts = LiteLLMFacts()
        return self._facts

    # --- the decision -------------------------------------------------------------------------

    def handles(self, model: str) -> bool:
        """True when ``model`` is a route, alias or model of the policy (else: pass-through)."""
        policy = self.policy
        return (
            model in policy.routes
            or model in policy.aliases
            or model in policy.models
            or (model.startswith(ENSEMBLE_PREFIX) and model[len(ENSEMBLE_PREFIX) :] in policy.ensembles)
        )

    def features(
        self, model: str, messages: Sequence[Any] | None, kwargs: Mapping[str, Any] | None = None
    ) -> RequestFeatures:
        """The request's features, with an exact token count only near a rule's threshold."""
        return extract_features(
            model,
            messages,
            kwargs or {},
            classifier=self.classifier,
            thresholds=self.thresholds,
            counter=self.count_tokens,
            band=self._band,
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
        """Decide the plan for a request to ``model`` (which must satisfy :meth:`handles`).

        With ``explain=True`` every rule is evaluated in order with a reason per check (slower;
        for explain output and policy tests).
        """
        policy = self.policy
        reason = ""
        name = model
        alias_target = policy.aliases.get(model)
        if alias_target is not None:
            reason = f"legacy alias '{model}' -> '{alias_target}'; "
            name = alias_target
        if name in policy.models:
            return Plan(
                requested=model,
                target=name,
                reason=reason + f"model '{name}' declared in the policy",
                features=features,
            )
        if name.startswith(ENSEMBLE_PREFIX):  # a Router group served by the ensemble provider
            why = f"ensemble '{name[len(ENSEMBLE_PREFIX) :]}' declared in the policy"
            return Plan(requested=model, target=name, reason=reason + why, features=features)
        if features is None:
            features = self.features(model, messages, kwargs)
        return self._route(model, name, features, reason, explain, messages)

    def _route(
        self,
        requested: str,
        name: str,
        features: RequestFeatures,
        reason: str,
        explain: bool,
        messages: Sequence[Any] | None,
    ) -> Plan:
        trials: list[RuleTrial] = []
        visited: list[str] = []
        route_name = name
        while True:
            compiled = self._routes[name]
            route = compiled.route
            visited.append(name)
            chosen: Rule | None = None
            for i in range(len(compiled.rules)) if explain else compiled.order(features):
                crule = compiled.rules[i]
                if explain:
                    matched, lines = crule.condition.explain(features)
                    trials.append(RuleTrial(name, crule.rule.name, matched, tuple(lines)))
                else:
                    matched = crule.condition.matches(features)
                if matched:
                    chosen = crule.rule
                    break
            candidates: tuple[Candidate, ...] = ()
            strategy = None
            if chosen is not None:
                target, why = chosen.use, f"route '{name}' rule '{chosen.name}' matched"
                fallbacks = chosen.fallbacks if chosen.fallbacks is not None else route.fallbacks
            elif route.strategy != "task_based":
                strategy = route.strategy
                target, why, fallbacks, candidates = self._strategy(name, route, features, messages, explain)
            elif route.default is not None:
                target, why = route.default, f"route '{name}': no rule matched, default"
                fallbacks = route.fallbacks
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
                fallbacks=tuple(dict.fromkeys(f for f in fallbacks if f != target)),
                reason=reason,
                trials=tuple(trials),
                strategy=strategy,
                escalation=self._escalation(visited, target),
                candidates=candidates,
                features=features,
            )

    def _strategy(
        self,
        name: str,
        route: Route,
        features: RequestFeatures,
        messages: Sequence[Any] | None,
        explain: bool,
    ) -> tuple[str, str, tuple[str, ...], tuple[Candidate, ...]]:
        chooser = chooser_for(route.strategy)  # e.g. learned: reads the prompt, not only the catalog
        if chooser is not None:
            return chooser(self, name, route, features, explain)
        catalog = self.catalog
        if (
            messages
            and not features.input_tokens_exact
            and near(features.input_tokens, catalog.windows(), self._band)
        ):
            features.input_tokens = self.count_tokens(messages)  # a context window decides: count exactly
            features.input_tokens_exact = True
        candidates = evaluate(route, features, catalog, self.latency, detail=explain)
        ranked = rank(route.strategy, candidates)
        if ranked:
            best = ranked[0]
            cost = "unpriced" if best.est_cost is None else f"est. ${best.est_cost:.6f}"
            why = (
                f"route '{name}' {route.strategy}: '{best.model}' ({best.tier}, {cost}) "
                f"best of {len(ranked)} for a request of tier {features.tier}"
            )
            fallbacks = route.fallbacks or tuple(c.model for c in ranked[1:3])
            return best.model, why, fallbacks, tuple(candidates)
        if route.default is not None:
            return (
                route.default,
                f"route '{name}' {route.strategy}: no candidate passed the filters, default",
                route.fallbacks,
                tuple(candidates),
            )
        candidates = evaluate(route, features, catalog, self.latency)  # again, with every reason
        detail = "; ".join(f"{c.model}: {', '.join(c.rejected)}" for c in candidates) or "no candidates"
        raise RoutingError(
            name, f"no candidate model passes the route's filters ({detail}) and it has no 'default'"
        )

    def _escalation(self, visited: list[str], target: str) -> tuple[str, ...]:
        for route_name in reversed(visited):
            chain_name = self._routes[route_name].route.escalate
            if chain_name is not None:
                chain = self.policy.chains[chain_name]
                if target in chain:
                    return tuple(chain[chain.index(target) + 1 :])
                return tuple(m for m in chain if m != target)
        return ()
