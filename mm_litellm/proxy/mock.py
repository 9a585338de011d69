"""``mm-litellm proxy --mock``: the policy with every deployment pointed at a loopback fake upstream.

The proxy is real (LiteLLM's server, our hooks, keys, budgets, headers, real HTTP); only the
providers are replaced by :class:`mm_litellm.testing.upstream.FakeUpstream`, an
OpenAI-compatible server on 127.0.0.1. :func:`mock_policy_text` rewrites the policy file:

- every deployment becomes ``openai/<alias>`` at the fake upstream's URL with a dummy key, so
  no provider key is needed and every provider's models answer (Anthropic and Gemini
  deployments included);
- each model keeps what it costs and its context window: a model without a ``pricing:``
  override gets one from LiteLLM's price table for its real model (budgets and ``x-mm-cost``
  show real-looking numbers);
- paths (``proxy.keys_file``, ``prompts.dir``, a learned route's ``artifact``, resolved relative to
  the original policy file)
  are made absolute, since the rewritten file lives in a temporary directory (the ledger is a
  scratch database, or ``MM_LITELLM_DATABASE_URL``).

Ensembles, routes, aliases, budgets and prompts are left as they are.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from mm_litellm.policy.schema import Policy

__all__ = ["MOCK_API_KEY", "mock_policy_text"]

MOCK_API_KEY = "sk-mm-litellm-mock-upstream"


def mock_policy_text(policy: Policy, policy_path: str | os.PathLike[str], base_url: str) -> str:
    """The policy file at ``policy_path`` (already loaded as ``policy``) served by ``base_url``."""
    from mm_litellm.integrations.bundled_prices import facts_for_commands

    source = Path(policy_path).resolve()
    raw: dict[str, Any] = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    facts = facts_for_commands()
    for alias, spec in policy.models.items():
        entry = raw["models"][alias]
        params = {"model": f"openai/{alias}", "api_base": base_url, "api_key": MOCK_API_KEY}
        if entry.get("deployments"):
            entry["deployments"] = [{**d, "litellm_params": dict(params)} for d in entry["deployments"]]
        else:
            entry["litellm_params"] = dict(params)
        price = facts.price(spec)
        if spec.pricing is None and price.input_per_mtok is not None:
            entry["pricing"] = {
                "input_per_mtok": price.input_per_mtok,
                "output_per_mtok": price.output_per_mtok or 0.0,
            }
        if spec.context_window is None and price.context_window:
            entry["context_window"] = int(price.context_window)
    proxy = raw.get("proxy")
    if isinstance(proxy, dict) and proxy.get("keys_file"):
        proxy["keys_file"] = str(_absolute(proxy["keys_file"], source.parent))
    prompts = raw.get("prompts")
    if isinstance(prompts, dict) and prompts.get("dir"):
        from mm_litellm.policy.paths import resolve_path

        prompts["dir"] = str(resolve_path(policy, prompts["dir"], field="prompts.dir").resolve())
    for route in (raw.get("routes") or {}).values():  # a learned route's router artifact
        learned = route.get("learned") if isinstance(route, dict) else None
        if isinstance(learned, dict) and learned.get("artifact"):
            learned["artifact"] = str(_absolute(learned["artifact"], source.parent))
    return str(yaml.safe_dump(raw, sort_keys=False))


def _absolute(value: str, base: Path) -> Path:
    path = Path(value)
    return path if path.is_absolute() else (base / path).resolve()
