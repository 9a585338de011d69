"""``mm-litellm run``: one prompt through the policy; prints the answer, the model and why, the cost."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mm_litellm.cli.common import MOCK_ANSWER, add_policy_option, fail, quiet_litellm, resolve_policy
from mm_litellm.errors import ConfigurationError

__all__ = ["MOCK_ANSWER", "register", "result_record"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="send one prompt through the policy and show the answer, the chosen model, why, and the cost",
        description="Send one prompt through the policy. The policy picks the model (see --model/--route); "
        "the answer, the chosen model with the reason, tokens and cost are printed.",
    )
    p.add_argument("prompt", help="the user message to send")
    add_policy_option(p)
    target = p.add_mutually_exclusive_group()
    target.add_argument("--model", help="a route, alias or model of the policy, or any LiteLLM model string")
    target.add_argument("--route", help="a route of the policy (default: the policy's default_route)")
    p.add_argument(
        "-s",
        "--strategy",
        choices=("auto", "cheapest", "fallback"),
        default="auto",
        help="auto: the route (default); cheapest: the policy's cost_optimized route; fallback: "
        "escalate along --chain while answers look unsure (seed 003)",
    )
    p.add_argument(
        "--chain",
        metavar="NAME|a,b,c",
        help="for --strategy fallback: a chain of the policy or a comma-separated list of its models "
        "(default: the 'mixed' chain)",
    )
    p.add_argument(
        "-c",
        "--max-cost",
        type=float,
        metavar="USD",
        help="cap in USD: escalation stops before exceeding it; cheapest skips models estimated above it",
    )
    target.add_argument(
        "--ensemble", metavar="NAME", help="an ensemble of the policy (served as ensemble/NAME)"
    )
    p.add_argument(
        "--ensemble-size",
        type=int,
        metavar="N",
        help="with --ensemble: ask only its first N members (fewer members cost less)",
    )
    p.add_argument("--system", help="a system message to send before the prompt")
    p.add_argument("--max-tokens", type=int, metavar="N", help="limit the answer's length")
    p.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="request metadata the rules can test (repeatable), e.g. --meta priority=high",
    )
    p.add_argument(
        "--mock",
        nargs="?",
        const=MOCK_ANSWER,
        metavar="TEXT",
        help="answer offline with TEXT instead of calling a provider (the routing, Router, "
        "callbacks and cost calculation still run; token counts are real; the ledger is a "
        "scratch database in the temp directory unless MM_LITELLM_DATABASE_URL is set); without "
        "TEXT a confident stand-in answer, so escalation stops at the routed model",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="also write the result as JSON to FILE")
    p.add_argument("--json", action="store_true", help="print the JSON result instead of the summary")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="log the routing decision and LiteLLM's activity"
    )
    p.set_defaults(handler=handle)


def parse_meta(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values parsed as JSON when they are (true, 3, [..]), else strings."""
    meta: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            fail(f"--meta expects KEY=VALUE, got '{item}'")
        try:
            meta[key] = json.loads(raw)
        except json.JSONDecodeError:
            meta[key] = raw
    return meta


def handle(args: argparse.Namespace) -> int:
    import mm_litellm
    from mm_litellm.runtime import configure

    if args.mock is not None:
        from mm_litellm.cli.common import keep_mocks_out_of_the_ledger

        keep_mocks_out_of_the_ledger()

    from mm_litellm.routing.presets import with_preset

    policy = resolve_policy(args.policy)
    try:
        policy, preset = with_preset(policy, args.strategy, args.chain, args.max_cost)
    except ConfigurationError as exc:
        fail(str(exc))
    if preset is not None and (args.model or args.route or args.ensemble):
        fail(f"--strategy {args.strategy} chooses the route itself; drop --model/--route/--ensemble")
    rt = configure(policy)
    quiet_litellm()
    if args.ensemble and args.ensemble not in policy.ensembles:
        fail(f"unknown ensemble '{args.ensemble}'; known: {', '.join(policy.ensembles) or '(none)'}")
    if args.ensemble_size is not None:
        if not args.ensemble:
            fail("--ensemble-size needs --ensemble NAME")
        from mm_litellm.policy.ensembles import resized

        try:
            policy = resized(policy, args.ensemble, args.ensemble_size)
        except ValueError as exc:
            fail(str(exc))
        rt = configure(policy)
    model = preset or (
        f"ensemble/{args.ensemble}" if args.ensemble else args.model or args.route or policy.default_route
    )
    if model is None:
        fail("no model: pass --model, --route or --ensemble, or set default_route in the policy")
    if args.route and args.route not in policy.routes:
        fail(f"unknown route '{args.route}'; known: {', '.join(policy.routes) or '(none)'}")
    messages = ([{"role": "system", "content": args.system}] if args.system else []) + [
        {"role": "user", "content": args.prompt}
    ]
    kwargs: dict[str, Any] = {"metadata": parse_meta(args.meta)}
    if args.max_cost is not None:
        kwargs["metadata"]["max_cost"] = args.max_cost
    if args.max_tokens:
        kwargs["max_tokens"] = args.max_tokens
    mocked_members = None
    if args.mock is not None and args.ensemble:  # every member answers the mock text; the strategy still runs
        from mm_litellm.testing.mocks import MockLLM

        mocked_members = MockLLM().script("*", _ensemble_mock_text(policy, args.ensemble, args.mock))
    elif args.mock is not None:
        kwargs["mock_response"] = _mock_reply(policy, model, messages, args.mock)
    if rt is not None and rt.engine.handles(model):
        _ = rt.router  # build the Router before timing the call
    started = time.perf_counter()
    try:
        if mocked_members is not None:
            with mocked_members.installed():
                response = mm_litellm.completion(model=model, messages=messages, **kwargs)
        else:
            response = mm_litellm.completion(model=model, messages=messages, **kwargs)
    except mm_litellm.MMLiteLLMError as exc:
        fail(str(exc))
    except Exception as exc:  # a provider error from LiteLLM: say which, without a traceback
        fail(f"{type(exc).__name__}: {exc}")
    record = result_record(
        response,
        strategy="ensemble" if args.ensemble else args.strategy,
        latency=time.perf_counter() - started,
        mocked=args.mock is not None,
        policy=policy,
    )
    if args.output:
        Path(args.output).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        _print_summary(record)
    return 0


MOCK_FOR_NORMALISER = {"number": "42", "json": '{"mocked": true}'}
"""Default ``--mock`` answers an ensemble's normaliser can read (the demo then votes as documented)."""


def _ensemble_mock_text(policy: Any, name: str, text: str) -> str:
    """``--mock`` without TEXT: an answer the ensemble's normaliser reads (``42`` for ``number``)."""
    spec = policy.ensembles.get(name) if policy is not None else None
    if text != MOCK_ANSWER or spec is None:
        return text
    return MOCK_FOR_NORMALISER.get(str(getattr(spec, "normalise", "text")), text)


def _mock_reply(policy: Any, model: str, messages: list[dict[str, str]], text: str) -> Any:
    """A mocked response whose usage is the routing engine's size estimate of this prompt and answer
    (a tokenizer would cost more start-up than the whole mocked call: ~0.4 s to load)."""
    from mm_litellm.routing.features import estimate_tokens
    from mm_litellm.testing.mocks import model_response

    prompt_tokens = estimate_tokens(messages)[0]
    completion_tokens = max(1, estimate_tokens([{"role": "assistant", "content": text}])[0] - 4)
    response = model_response(
        text, model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
    )
    # As a dict, LiteLLM builds a fresh response per call (escalation hops each get their own).
    return response.model_dump()


def result_record(
    response: Any, *, strategy: str, latency: float, mocked: bool, policy: Any = None
) -> dict[str, Any]:
    """Seed 003's JSON result: response, model_used, cost, latency, tokens, strategy, metadata."""
    from mm_litellm.gateway import decision_of

    hidden = getattr(response, "_hidden_params", {}) or {}
    trace = decision_of(response) or {}
    usage = getattr(response, "usage", None)
    ensemble = trace.pop("ensemble", None)
    metadata: dict[str, Any] = {
        "decision": trace,
        "mocked": mocked,
        "litellm_model": hidden.get("litellm_model_name"),
    }
    if ensemble is not None:
        metadata |= _ensemble_metadata(ensemble)
    return {
        "response": response.choices[0].message.content,
        "model_used": trace.get("served_model") or response.model,
        "cost": hidden.get("response_cost"),
        "latency": round(latency, 4),
        "confidence": ensemble["confidence"] if ensemble else _confidence(response, trace, policy),
        "input_tokens": getattr(usage, "prompt_tokens", None),
        "output_tokens": getattr(usage, "completion_tokens", None),
        "strategy": strategy,
        "ensemble_models": [c["served_by"] or c["model"] for c in ensemble["calls"] if c["role"] == "member"]
        if ensemble
        else [],
        "metadata": metadata,
        "timestamp": datetime.now(UTC).isoformat(),
    }


def _confidence(response: Any, trace: dict[str, Any], policy: Any) -> float | None:
    """The escalation's score of the chosen answer, else the policy's scorer on the answer."""
    escalation = trace.get("escalation")
    if escalation:
        return float(escalation["hops"][escalation["chosen_hop"]]["confidence"])
    if policy is None:
        return None
    from mm_litellm.routing.confidence import scorer_for

    return scorer_for(policy.escalation).score(response.choices[0].message.content or "", response).score


def _ensemble_metadata(ensemble: dict[str, Any]) -> dict[str, Any]:
    """Seed 003's ensemble fields (size, per-member confidences) plus the full details."""
    from mm_litellm.ensemble.heuristics import confidence

    members = [c for c in ensemble["calls"] if c["role"] == "member"]
    confidences = ensemble.get("all_confidences") or [
        confidence(c["answer"]) if c["ok"] else None for c in members
    ]
    return {"ensemble_size": len(members), "all_confidences": confidences, "ensemble": ensemble}


def _print_summary(record: dict[str, Any]) -> None:
    trace = record["metadata"]["decision"]
    cost = record["cost"]
    lines = [
        f"answer:  {record['response']}",
        f"model:   {record['model_used']} ({record['metadata']['litellm_model']})",
    ]
    if trace:
        lines.append(f"why:     {trace.get('reason')}")
        for hop in (trace.get("escalation") or {}).get("hops", []):
            spent = "unpriced" if hop["cost"] is None else f"${hop['cost']:.6f}"
            lines.append(
                f"         hop {hop['model']}: confidence {hop['confidence']:.2f} ({spent})"
                f"{'' if hop['confident'] else ' unsure: ' + ', '.join(hop['reasons'])}"
            )
        if trace.get("escalation"):
            esc = trace["escalation"]
            lines.append(
                f"         escalation stopped: {esc['stopped']} (all hops: ${esc['total_cost']:.6f})"
            )
        if trace.get("attempted_fallbacks"):
            lines.append(
                f"         fell back from '{trace.get('model')}' ({trace['attempted_fallbacks']} fallback(s))"
            )
    else:
        lines.append("why:     not named by the policy: passed straight through to LiteLLM")
    ensemble = record["metadata"].get("ensemble")
    if ensemble:
        failed = ", ".join(f"{m} ({f['error_class']})" for m, f in ensemble["failures"].items()) or "none"
        lines.append(
            f"ensemble: {ensemble['name']} ({ensemble['strategy']}), members "
            f"{', '.join(ensemble['members'])}; confidence {ensemble['confidence']:.2f}; "
            f"failed: {failed}"
        )
    tokens = f"{record['input_tokens']} input + {record['output_tokens']} output tokens"
    if cost is None:
        lines.append(
            f"cost:    unpriced: the model is not in LiteLLM's price table; add pricing: to it ({tokens})"
        )
    else:
        lines.append(f"cost:    ${cost:.6f} for {tokens} at the model's prices")
    lines.append(f"latency: {record['latency'] * 1000:.0f} ms")
    if record["metadata"]["mocked"]:
        lines.append(
            "note:    the answer is mocked (--mock): no provider was called and nothing was charged;"
        )
        lines.append("         the cost is what the call would cost with these token counts (estimated from")
        lines.append("         the text's length)")
    print("\n".join(lines), file=sys.stdout)
