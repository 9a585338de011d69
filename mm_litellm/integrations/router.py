"""Build a ``litellm.Router`` from a policy: every policy model becomes one Router model group.

LiteLLM then picks the deployment, retries, cools failing deployments down and runs the
error-class fallbacks. mm_litellm only decides which group a request goes to.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from typing import Any

from mm_litellm.errors import MissingSecretError
from mm_litellm.integrations._litellm import litellm, mocks_active
from mm_litellm.policy.ensembles import ENSEMBLE_PREFIX
from mm_litellm.policy.schema import ModelSpec, Policy, RetryPolicy

__all__ = [
    "CLIENT_ERROR_ALLOWED_FAILS",
    "SecretCheck",
    "build_router",
    "model_list",
    "router_settings",
    "secret_refs",
]

_ENV_PREFIX = "os.environ/"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def model_list(policy: Policy) -> list[dict[str, Any]]:
    """The Router's ``model_list``: one entry per deployment, grouped under the policy alias."""
    entries = []
    for alias, spec in policy.models.items():
        for i, deployment in enumerate(spec.all_deployments):
            params = dict(deployment.litellm_params)
            if deployment.rpm is not None:
                params["rpm"] = deployment.rpm
            if deployment.tpm is not None:
                params["tpm"] = deployment.tpm
            info: dict[str, Any] = {"mm_alias": alias, "mm_tier": spec.tier}
            if spec.pricing is not None:
                # In model_info, not litellm_params: the Router registers these once under the
                # deployment's id and prices its calls from there; in litellm_params LiteLLM
                # would re-register them (and rebuild its cost-map index) on every request.
                # The policy's price wins over one the deployment's litellm_params also give.
                per_token_in = spec.pricing.input_per_mtok / 1e6
                params.pop("input_cost_per_token", None)
                params.pop("output_cost_per_token", None)
                info["input_cost_per_token"] = per_token_in
                info["output_cost_per_token"] = spec.pricing.output_per_mtok / 1e6
                # Cache prices are not in the override: charge cached input like fresh input,
                # so a budget never under-counts (and LiteLLM does not warn about them).
                for cache_key in ("cache_read_input_token_cost", "cache_creation_input_token_cost"):
                    info[cache_key] = params.pop(cache_key, per_token_in)
            if spec.context_window is not None:
                info["max_input_tokens"] = spec.context_window
            info["id"] = _deployment_id(alias, i, info)
            entries.append({"model_name": alias, "litellm_params": params, "model_info": info})
    for name in policy.ensembles:  # served by the ensemble provider (integrations/ensemble_provider.py)
        group = ENSEMBLE_PREFIX + name
        info = {"id": group, "mm_ensemble": name}
        entries.append({"model_name": group, "litellm_params": {"model": group}, "model_info": info})
    return entries


def _deployment_id(alias: str, index: int, info: Mapping[str, Any]) -> str:
    """``<alias>#<n>``, plus a digest of the prices and context window when the policy sets them.

    LiteLLM keeps a deployment's model info (prices, context window) process-wide under this id,
    so two Routers whose policies give one alias different prices (a reloaded policy, two
    policies in one process) must not share an id: the last one built would price both.
    """
    overrides = {k: v for k, v in info.items() if not k.startswith("mm_")}
    if not overrides:
        return f"{alias}#{index}"
    digest = hashlib.sha256(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:10]
    return f"{alias}#{index}@{digest}"


CLIENT_ERROR_ALLOWED_FAILS: dict[str, int] = {
    "BadRequestErrorAllowedFails": 1_000_000_000,
    "NotFoundErrorAllowedFails": 1_000_000_000,
}
"""LiteLLM ``allowed_fails_policy``: an upstream 400/404/413/422 is the request's fault, so it never
puts a shared deployment into cooldown (LiteLLM cools a deployment on its first 404 otherwise).
Other failures cool a deployment after ``router.allowed_fails`` (LiteLLM's default: 3) in a minute."""


def router_settings(policy: Policy) -> dict[str, Any]:
    """The Router's keyword arguments from the policy's ``router:`` section."""
    s = policy.router
    settings: dict[str, Any] = {
        "num_retries": s.num_retries,
        "retry_after": s.retry_after,
        "routing_strategy": s.routing_strategy,
    }
    for name in ("timeout", "allowed_fails", "cooldown_time"):
        value = getattr(s, name)
        if value is not None:
            settings[name] = value
    for name in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
        mapping = getattr(s, name)
        if mapping:
            settings[name] = [{model: list(chain)} for model, chain in mapping.items()]
    if s.default_fallbacks:
        settings["default_fallbacks"] = list(s.default_fallbacks)
    if s.retry_policy is not None:
        settings["retry_policy"] = s.retry_policy.model_dump(exclude_none=True)
    settings["allowed_fails_policy"] = dict(CLIENT_ERROR_ALLOWED_FAILS)
    if policy.ensembles:  # members are retried; retrying the whole ensemble would repeat every member
        no_retries = {"DefaultRetries": 0, **{f: 0 for f in RetryPolicy.model_fields}}
        settings["model_group_retry_policy"] = {ENSEMBLE_PREFIX + n: no_retries for n in policy.ensembles}
    return settings


def build_router(policy: Policy, **overrides: Any) -> Any:
    """A new ``litellm.Router`` serving every model of ``policy`` (``overrides`` win)."""
    if policy.ensembles:
        from mm_litellm.integrations.ensemble_provider import ensure_registered

        ensure_registered()
    return litellm().Router(model_list=model_list(policy), **(router_settings(policy) | overrides))


def secret_refs(spec: ModelSpec) -> tuple[str, ...]:
    """Environment variable names a model's deployments refer to as ``os.environ/NAME``."""
    names: list[str] = []
    for deployment in spec.all_deployments:
        for value in deployment.litellm_params.values():
            if isinstance(value, str) and value.startswith(_ENV_PREFIX):
                name = value[len(_ENV_PREFIX) :]
                if _ENV_NAME.match(name) and name not in names:
                    names.append(name)
    return tuple(names)


class SecretCheck:
    """Checks, cheaply and per call, that the secrets a model needs are set.

    LiteLLM resolves ``os.environ/NAME`` itself when it calls the provider; this check only
    turns "the variable is not set" into a clear error naming the variable and the model,
    before a provider answers with an opaque authentication error.
    """

    def __init__(self, policy: Policy) -> None:
        self._refs = {alias: secret_refs(spec) for alias, spec in policy.models.items()}
        self._mocked = {
            alias
            for alias, spec in policy.models.items()
            if all("mock_response" in d.litellm_params for d in spec.all_deployments)
        }

    def check(self, model: str, kwargs: Mapping[str, Any]) -> None:
        """Raise :class:`MissingSecretError` when ``model`` needs a variable that is not set."""
        refs = self._refs.get(model)
        if not refs or model in self._mocked or "mock_response" in kwargs or "api_key" in kwargs:
            return
        if mocks_active():
            return
        environ = os.environ
        for name in refs:
            if name not in environ:
                raise MissingSecretError(model, name)
