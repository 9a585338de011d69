"""``mm-litellm policy ...``: validate policy files (later: test, evaluate, diff, calibrate)."""

from __future__ import annotations

import argparse

from mm_litellm.cli.evaluate import register_policy_verbs
from mm_litellm.errors import PolicyError
from mm_litellm.policy import load_policy

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("policy", help="validate and inspect policy files", description="Work with policy files.")
    verbs = p.add_subparsers(dest="policy_command", metavar="COMMAND", required=True)
    check = verbs.add_parser(
        "check",
        help="validate a policy file; exit 1 listing every problem with its line",
        description="Validate a policy file without calling any provider. Prints every problem as "
        "file:line field.path: message and exits 1, or prints a summary and exits 0.",
    )
    check.add_argument("file", help="the policy YAML file")
    check.set_defaults(handler=handle_check)
    register_policy_verbs(verbs)


def handle_check(args: argparse.Namespace) -> int:
    try:
        policy = load_policy(args.file)
    except PolicyError as exc:
        print(exc)
        print(f"\n{len(exc.issues)} problem(s) in {args.file}")
        return 1
    print(
        f"{args.file}: OK ({len(policy.models)} models, {len(policy.routes)} routes, "
        f"{len(policy.aliases)} aliases)"
    )
    return 0
