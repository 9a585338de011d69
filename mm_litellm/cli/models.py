"""``mm-litellm models``: the policy's models with tier, context window and prices.

(Seed 003's ``--list-models``.)
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from mm_litellm.cli.common import add_policy_option, resolve_policy

__all__ = ["model_rows", "register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "models",
        help="list the policy's models with tier, context window and prices",
        description="List the policy's models. Prices and context windows come from the policy's "
        "overrides, else from LiteLLM's price table; a model in neither is shown as unpriced.",
    )
    add_policy_option(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=handle)


def model_rows(policy: Any) -> list[dict[str, Any]]:
    """One row per policy model: alias, tier, LiteLLM model, context window, USD per 1M tokens."""
    from mm_litellm.integrations.bundled_prices import facts_for_commands

    facts = facts_for_commands()
    rows = []
    for alias, spec in policy.models.items():
        price = facts.price(spec)
        rows.append(
            {
                "model": alias,
                "tier": spec.tier,
                "litellm_model": spec.litellm_model,
                "deployments": len(spec.all_deployments),
                "context_window": price.context_window,
                "input_per_mtok": price.input_per_mtok,
                "output_per_mtok": price.output_per_mtok,
                "price_source": price.source,
                "tags": list(spec.tags),
            }
        )
    return rows


def handle(args: argparse.Namespace) -> int:
    policy = resolve_policy(args.policy)
    rows = model_rows(policy)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = f"{'model':<16} {'tier':<12} {'litellm model':<30} {'context':>9} "
    header += f"{'in $/1M':>8} {'out $/1M':>9}  tags"
    print(header)
    print("-" * len(header))
    for r in rows:
        ctx = f"{r['context_window']:,}" if r["context_window"] else "?"
        if r["input_per_mtok"] is None:
            prices = f"{'unpriced':>8} {'':>9}"
        else:
            prices = f"{r['input_per_mtok']:>8.2f} {r['output_per_mtok']:>9.2f}"
        print(
            f"{r['model']:<16} {r['tier']:<12} {r['litellm_model']:<30} {ctx:>9} {prices}  "
            f"{', '.join(r['tags'])}"
        )
    print(
        f"\n{len(rows)} models from {policy.source}; prices from the policy where overridden, "
        "else LiteLLM's table."
    )
    return 0
