"""The LiteLLM proxy config for a policy: the base ``config/proxy.yaml`` plus what the policy declares.

LiteLLM's proxy reads its ``model_list`` and ``router_settings`` from the YAML file and nowhere
else, so ``mm-litellm proxy`` writes one generated file: the base config (callbacks, custom
auth, anything else the operator put there) with

- ``model_list``: every policy model as a Router group (the same entries the SDK's Router gets),
  plus any entries the base file declares itself;
- ``router_settings``: the policy's ``router:`` section (base file keys win);
- ``router_settings.model_group_alias``: each route and legacy alias as a listed model name,
  so ``GET /v1/models`` shows ``auto``; the pre-call hook decides before LiteLLM ever resolves it;
- ``environment_variables.MM_LITELLM_POLICY``: the absolute policy path, which the hook loads.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from mm_litellm.errors import ConfigurationError, RoutingError
from mm_litellm.policy.schema import Policy
from mm_litellm.routing.engine import RoutingEngine
from mm_litellm.runtime import POLICY_ENV

__all__ = ["MM_SECTION", "build_proxy_config", "policy_path_of", "read_base_config"]

MM_SECTION = "mm_litellm"
"""Top-level section of the base config read by ``mm-litellm proxy`` (``policy:``, ``watch:``),
dropped from the output."""


def read_base_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The base proxy config (a LiteLLM config file) as a dict."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read the proxy config {os.fspath(path)}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"the proxy config {os.fspath(path)} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigurationError(f"the proxy config {os.fspath(path)} must be a mapping at the top level")
    return data


def policy_path_of(base: Mapping[str, Any], base_path: str | os.PathLike[str]) -> Path | None:
    """The policy named in the base config's ``mm_litellm.policy`` (relative to that file)."""
    section = base.get(MM_SECTION) or {}
    name = section.get("policy") if isinstance(section, Mapping) else None
    if not name:
        return None
    path = Path(str(name))
    return path if path.is_absolute() else Path(base_path).resolve().parent / path


def build_proxy_config(
    base: Mapping[str, Any], policy: Policy, policy_path: str | os.PathLike[str]
) -> dict[str, Any]:
    """The full LiteLLM proxy config for ``policy`` (see the module docstring)."""
    from mm_litellm.integrations.router import model_list, router_settings

    config = copy.deepcopy(dict(base))
    config.pop(MM_SECTION, None)
    own = [e for e in (config.get("model_list") or []) if isinstance(e, Mapping)]
    config["model_list"] = model_list(policy) + own
    settings = router_settings(policy) | dict(config.get("router_settings") or {})
    aliases = dict(settings.get("model_group_alias") or {})
    for name, target in listed_names(policy).items():
        aliases.setdefault(name, target)
    if aliases:
        settings["model_group_alias"] = aliases
    config["router_settings"] = settings
    env = dict(config.get("environment_variables") or {})
    env[POLICY_ENV] = str(Path(policy_path).resolve())
    watch = (base.get(MM_SECTION) or {}).get("watch") if isinstance(base.get(MM_SECTION), Mapping) else None
    if watch:  # hot reload: seconds between checks of the policy file (mm_litellm.proxy.attach)
        env["MM_LITELLM_WATCH"] = str(float(watch))
    config["environment_variables"] = env
    return config


def listed_names(policy: Policy) -> dict[str, str]:
    """Route and alias names -> a representative model group (what ``/v1/models`` lists them as).

    The target only matters if the mm_litellm hook is missing from the config: then LiteLLM
    itself resolves the name to the route's default model instead of failing.
    """
    from mm_litellm.integrations.bundled_prices import facts_for_commands

    engine = RoutingEngine(policy, facts=facts_for_commands())
    names: dict[str, str] = {}
    for name in [*policy.routes, *policy.aliases]:
        try:
            target = engine.plan(name, [], {}).target
        except RoutingError:
            route = policy.routes.get(name)
            if route is None or not route.rules:
                continue
            target = policy.aliases.get(route.rules[0].use, route.rules[0].use)
        if target in policy.models:
            names[name] = target
    return names
