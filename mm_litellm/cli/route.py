"""``mm-litellm route PROMPT [--explain]`` and ``mm-litellm explain PROMPT``: the decision, no call made."""

from __future__ import annotations

import argparse
import json
from typing import Any

from mm_litellm.cli.common import add_policy_option, fail, resolve_policy
from mm_litellm.errors import MMLiteLLMError

__all__ = ["register"]


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompt", help="the user message to decide for")
    add_policy_option(p)
    target = p.add_mutually_exclusive_group()
    target.add_argument(
        "--model", help="a route, alias or model of the policy (default: the policy's default_route)"
    )
    target.add_argument("--route", help="a route of the policy")
    p.add_argument("--system", help="a system message before the prompt")
    p.add_argument("--images", type=int, default=0, metavar="N", help="pretend the message carries N images")
    p.add_argument(
        "--max-tokens", type=int, metavar="N", help="the request's max_tokens (changes cost estimates)"
    )
    p.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="request metadata the rules can test (repeatable), e.g. --meta priority=high",
    )
    p.add_argument("--json", action="store_true", help="print the explanation as JSON")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "route",
        help="show which model the policy picks for a prompt (no provider is called)",
        description="Decide a prompt's model with the policy, without calling any provider. With --explain, "
        "print the features, every rule tried and why, the strategy's candidates, the plan and its costs.",
    )
    _arguments(p)
    p.add_argument("--explain", action="store_true", help="show the whole reasoning, not only the decision")
    p.set_defaults(handler=handle)
    e = sub.add_parser(
        "explain", help="same as 'route --explain'", description="Same as 'mm-litellm route --explain'."
    )
    _arguments(e)
    e.set_defaults(handler=handle, explain=True)


def handle(args: argparse.Namespace) -> int:
    from mm_litellm.cli.run import parse_meta
    from mm_litellm.integrations.bundled_prices import facts_for_commands
    from mm_litellm.routing.engine import RoutingEngine
    from mm_litellm.routing.explain import explain_with

    policy = resolve_policy(args.policy)
    model = args.model or args.route or policy.default_route
    if model is None:
        fail("no model: pass --model or --route, or set default_route in the policy")
    if args.route and args.route not in policy.routes:
        fail(f"unknown route '{args.route}'; known: {', '.join(policy.routes) or '(none)'}")
    content: Any = args.prompt
    if args.images:
        content = [{"type": "text", "text": args.prompt}] + [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,"}} for _ in range(args.images)
        ]
    messages = ([{"role": "system", "content": args.system}] if args.system else []) + [
        {"role": "user", "content": content}
    ]
    kwargs: dict[str, Any] = {"metadata": parse_meta(args.meta)}
    if args.max_tokens:
        kwargs["max_tokens"] = args.max_tokens
    try:
        explanation = explain_with(RoutingEngine(policy, facts=facts_for_commands()), model, messages, kwargs)
    except MMLiteLLMError as exc:
        fail(str(exc))
    if args.json:
        print(json.dumps(explanation.to_dict(), indent=2, default=str))
    elif args.explain:
        print(explanation.render())
    elif explanation.plan is None:
        print(f"{model}: not named by the policy: passed straight through to LiteLLM")
    else:
        plan = explanation.plan
        print(f"{plan.target}  ({plan.reason})")
    return 0
