"""``mm-litellm policy ...``: validate policy files and test their routing; evaluate, diff, calibrate."""

from __future__ import annotations

import argparse

from mm_litellm.cli.evaluate import register_policy_verbs
from mm_litellm.errors import PolicyError
from mm_litellm.policy import load_policy

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "policy", help="validate and inspect policy files", description="Work with policy files."
    )
    verbs = p.add_subparsers(dest="policy_command", metavar="COMMAND", required=True)
    check = verbs.add_parser(
        "check",
        help="validate a policy file; exit 1 listing every problem with its line",
        description="Validate a policy file without calling any provider. Prints every problem as "
        "file:line field.path: message and exits 1, or prints a summary and exits 0.",
    )
    check.add_argument("file", help="the policy YAML file")
    check.set_defaults(handler=handle_check)
    test = verbs.add_parser(
        "test",
        help="decide sample prompts and compare with the expected model/route/rule; exit 1 on a mismatch",
        description=(
            "Run a YAML file of routing cases (prompt or messages + metadata -> expected model, route, "
            "rule, task, tier) through the policy without calling any provider. "
            "Exit 1 with a diff on a mismatch."
        ),
    )
    test.add_argument("cases", help="the cases YAML file (see docs/routing.md)")
    test.add_argument(
        "--policy",
        metavar="FILE",
        help="policy file (default: the cases file's 'policy:', "
        "else $MM_LITELLM_POLICY or config/policy.yaml)",
    )
    test.add_argument(
        "-v", "--verbose", action="store_true", help="also list the cases that pass, with the reason"
    )
    test.set_defaults(handler=handle_test)
    register_policy_verbs(verbs)


def handle_check(args: argparse.Namespace) -> int:
    try:
        policy = load_policy(args.file)
    except PolicyError as exc:
        print(exc)
        print(f"\n{len(exc.issues)} problem(s) in {args.file}")
        return 1
    from mm_litellm.proxy.keys_file import keys_file_issues, keys_file_of

    key_issues = keys_file_issues(policy)
    if key_issues:
        for issue in key_issues:
            print(issue)
        print(f"\n{len(key_issues)} problem(s) in the keys file {keys_file_of(policy)}")
        return 1
    keys = f", keys file {policy.proxy.keys_file}" if policy.proxy.keys_file else ""
    print(
        f"{args.file}: OK ({len(policy.models)} models, {len(policy.routes)} routes, "
        f"{len(policy.aliases)} aliases{keys})"
    )
    return 0


def handle_test(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mm_litellm.cli.common import resolve_policy
    from mm_litellm.integrations.bundled_prices import facts_for_commands
    from mm_litellm.routing.cases import load_cases, run_cases
    from mm_litellm.routing.engine import RoutingEngine

    try:
        cases = load_cases(args.cases)
    except PolicyError as exc:
        print(exc)
        return 1
    path = args.policy
    if path is None and cases.policy is not None:
        path = str(Path(args.cases).parent / cases.policy)
    policy = resolve_policy(path)
    results = run_cases(RoutingEngine(policy, facts=facts_for_commands()), cases.cases)
    failed = [r for r in results if not r.passed]
    for r in results:
        if not r.passed:
            print(f"FAIL {r.case.name}")
            for line in r.mismatches:
                print(f"     {line}")
            if r.reason:
                print(f"     why: {r.reason}")
        elif args.verbose:
            print(f"ok   {r.case.name}: {r.actual['model']} ({r.reason})")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed ({args.cases} against {policy.source})")
    return 1 if failed else 0
