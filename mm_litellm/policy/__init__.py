"""The policy: one YAML file that decides models, routes, budgets and prompts."""

from __future__ import annotations

from mm_litellm.policy.loader import load_policy, parse_policy
from mm_litellm.policy.schema import TIERS, ModelSpec, Policy, Route, Rule, Tier

__all__ = ["TIERS", "ModelSpec", "Policy", "Route", "Rule", "Tier", "load_policy", "parse_policy"]
