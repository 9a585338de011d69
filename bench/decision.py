"""How long one routing decision takes (features + rules), beside a mocked ``litellm.completion``.

Variants, all in one run on the same machine:

- a short prompt, 50 rules (metadata, task, size, priority, any/not), the match near the end
- a short prompt, 5,000 rules (per-customer rules, indexed by their equality facts)
- a 100k-token prompt, 50 rules (estimate far from every threshold: no exact count)
- a 100k-token prompt near a threshold: the exact ``litellm.token_counter`` count runs
- the example policy's ``auto`` (seed 001 table) and ``cheap`` (cost_optimized) routes
- the baseline: ``litellm.completion`` with ``mock_response`` (no network)

Targets (issue 3): < 50 us for 50 rules, < 1 ms at 5,000 rules, < 5 ms for a 100k-token prompt.

    python bench/decision.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm

from mm_litellm import load_policy, parse_policy
from mm_litellm.routing.engine import RoutingEngine

ROOT = Path(__file__).resolve().parents[1]
MODELS = """
models:
  small: {litellm_params: {model: openai/gpt-4o-mini}, tier: basic}
  big: {litellm_params: {model: openai/gpt-4o}, tier: advanced}
  claude: {litellm_params: {model: anthropic/claude-sonnet-4-5}, tier: advanced}
  wide: {litellm_params: {model: gemini/gemini-2.5-pro}, tier: advanced}
"""
GENERIC = [
    "{{name: vision{i}, when: {{has_images: true, metadata.region: r{i}}}, use: big}}",
    "{{name: huge{i}, when: {{input_tokens: {{gt: {t}}}, metadata.region: r{i}}}, use: wide}}",
    "{{name: code{i}, when: {{task: code, metadata.team: t{i}}}, use: claude}}",
    "{{name: vip{i}, when: {{priority: {{in: [high, urgent]}}, metadata.plan: p{i}}}, use: claude}}",
    "{{name: any{i}, when: {{any: [{{budget_mode: true}}, {{latency_critical: true}}], "
    "metadata.region: r{i}}}, use: small}}",
    "{{name: not{i}, when: {{not: {{stream: true}}, tags: {{contains: t{i}}}}}, use: small}}",
    "{{name: tier{i}, when: {{tier: expert, metadata.customer: x{i}}}, use: big}}",
    "{{name: json{i}, when: {{json_mode: true, metadata.customer: j{i}}}, use: small}}",
]


def generic_rules(n: int, threshold: int) -> list[str]:
    # The first rule cannot be indexed and tests the classifier's facts: every decision pays
    # for task and tier classification (head and tail of the prompt).
    first = "{name: classified, when: {any: [{task: math, tier: expert}, {task: creative}]}, use: big}"
    return [first, *(GENERIC[i % len(GENERIC)].format(i=i, t=threshold) for i in range(n - 1))]


def policy_text(rules: list[str]) -> str:
    body = "\n".join(f"      - {r}" for r in rules)
    return f"{MODELS}routes:\n  auto:\n    rules:\n{body}\n    default: small\n"


def per_customer_rules(n: int) -> list[str]:
    generic = generic_rules(40, 8000)
    customers = [
        f"{{name: cust{i}, when: {{metadata.customer: c{i}, priority: high}}, "
        f"use: {'big' if i % 2 else 'claude'}}}"
        for i in range(n - len(generic) - 1)
    ]
    return [*generic, *customers, "{name: last, when: {metadata.customer: c_last}, use: big}"]


def median_us(fn: Callable[[], object], rounds: int, batch: int) -> float:
    """Median over ``rounds`` batches of the time per call, in microseconds."""
    for _ in range(batch):
        fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter() - start) / batch * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=200, help="timed batches per variant (default 200)")
    args = parser.parse_args()
    litellm.suppress_debug_info = True

    short = [
        {"role": "user", "content": "Please refactor this small Python helper so that it is easier to test."}
    ]
    filler = "The quarterly report lists revenue, costs and headcount for every region. "
    long_text = (filler * (400_000 // len(filler) + 1))[:400_000]  # ~100k tokens
    long_msgs = [{"role": "user", "content": "Summarize the document below.\n" + long_text}]
    meta = {"metadata": {"customer": "c_last", "team": "t-none", "region": "none", "plan": "none"}}

    e50 = RoutingEngine(
        parse_policy(
            policy_text(
                [*generic_rules(49, 8000), "{name: last, when: {metadata.customer: c_last}, use: big}"]
            )
        )
    )
    e5k = RoutingEngine(parse_policy(policy_text(per_customer_rules(5000))))
    e_near = RoutingEngine(
        parse_policy(
            policy_text(
                [*generic_rules(49, 100000), "{name: last, when: {metadata.customer: c_last}, use: big}"]
            )
        )
    )
    example = RoutingEngine(load_policy(ROOT / "config" / "policy.yaml"))
    _ = example.catalog  # prices are read once per policy, not per decision

    checks = {
        "50 rules": e50.plan("auto", short, meta),
        "5,000 rules": e5k.plan("auto", short, meta),
        "100k tokens": e50.plan("auto", long_msgs, meta),
        "100k near": e_near.plan("auto", long_msgs, meta),
    }
    for name, plan in checks.items():
        assert plan.rule == "last", (name, plan)
    assert not checks["100k tokens"].features.input_tokens_exact
    assert checks["100k near"].features.input_tokens_exact
    assert len(e5k.policy.routes["auto"].rules) == 5000

    def mocked() -> object:
        return litellm.completion(model="gpt-4o-mini", messages=short, mock_response="ok")

    rows = [
        (
            "decision, short prompt, 50 rules",
            median_us(lambda: e50.plan("auto", short, meta), args.rounds, 50),
            50,
        ),
        (
            "decision, short prompt, 5,000 rules",
            median_us(lambda: e5k.plan("auto", short, meta), args.rounds, 50),
            1000,
        ),
        (
            "decision, 100k-token prompt, 50 rules",
            median_us(lambda: e50.plan("auto", long_msgs, meta), args.rounds // 4, 5),
            5000,
        ),
        (
            "decision, 100k-token prompt near a threshold (exact count)",
            median_us(lambda: e_near.plan("auto", long_msgs, meta), max(5, args.rounds // 20), 1),
            None,
        ),
        (
            "example policy 'auto' (seed 001 table)",
            median_us(lambda: example.plan("auto", short), args.rounds, 50),
            None,
        ),
        (
            "example policy 'cheap' (cost_optimized)",
            median_us(lambda: example.plan("cheap", short), args.rounds, 50),
            None,
        ),
        ("mocked litellm.completion (baseline)", median_us(mocked, max(10, args.rounds // 4), 10), None),
    ]
    baseline = rows[-1][1]
    print(f"{'variant':<62} {'median':>12} {'target':>10} {'vs completion':>14}")
    for name, us, target in rows:
        shown = f"{us:,.1f} us" if us < 10_000 else f"{us / 1000:,.1f} ms"
        goal = "" if target is None else (f"< {target} us" if target < 1000 else f"< {target // 1000} ms")
        status = "" if target is None else (" ok" if us < target else " MISSED")
        print(f"{name:<62} {shown:>12} {goal:>10} {us / baseline:>13.3f}x{status}")


if __name__ == "__main__":
    main()
