"""How long one routing decision takes (features + rules), beside a mocked ``litellm.completion``.

Variants, all in one run on the same machine:

- a short prompt, 50 rules (metadata, task, size, priority, any/not), the match near the end
- a short prompt, 5,000 rules (per-customer rules, indexed by their equality facts)
- a 100k-token prompt, 50 rules (estimate far from every threshold: no exact count)
- a 100k-token prompt near a threshold: the exact ``litellm.token_counter`` count runs
- the example policy's ``auto`` (seed 001 table) and ``cheap`` (cost_optimized) routes
- the regex task classifier and the example policy's learned route (``smart``) on 2,000- and
  200-character prompts (30 different prose prompts in turn, so nothing is cached between calls)
- the baseline: ``litellm.completion`` with ``mock_response`` (no network)

Targets (issue 3): < 50 us for 50 rules, < 1 ms at 5,000 rules, < 5 ms for a 100k-token prompt.
Targets (issue 17): the classifier and the learned route < 300 us (2,000 characters) and < 100 us
(200 characters); loading the learned route's router < 200 ms.

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


FILLER_WORDS = [
    "the",
    "quarterly",
    "report",
    "lists",
    "revenue",
    "costs",
    "and",
    "headcount",
    "for",
    "every",
    "region",
    "while",
    "the",
    "team",
    "reviews",
    "which",
    "customers",
    "renewed",
    "their",
    "contracts",
    "and",
    "why",
    "some",
    "of",
    "them",
    "asked",
    "about",
    "pricing",
    "history",
    "travel",
    "plans",
    "recipes",
    "weather",
    "gardens",
    "rivers",
    "mountains",
    "books",
    "films",
    "music",
    "markets",
]


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


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

    prose = [
        " ".join(FILLER_WORDS[(i * 7 + j * 3) % len(FILLER_WORDS)] for j in range(400)) + f" question {i}?"
        for i in range(30)
    ]
    long_prompts = [[{"role": "user", "content": p[:2000]}] for p in prose]
    short_prompts = [[{"role": "user", "content": p[:200]}] for p in prose]
    classifier = example.classifier

    def rotate(
        prompts: list[list[dict[str, str]]], fn: Callable[[list[dict[str, str]]], object]
    ) -> Callable[[], None]:
        state = {"i": 0}

        def call() -> None:
            state["i"] = (state["i"] + 1) % len(prompts)
            fn(prompts[state["i"]])

        return call

    def classify(messages: list[dict[str, str]]) -> object:
        text = messages[0]["content"]
        return classifier.task(text), classifier.tier(text)

    assert example.plan("smart", long_prompts[0]).strategy == "learned"
    from mm_litellm.learned import artifact

    router_dir = example.policy.routers["smart"].router.path
    load_ms = statistics.median(
        _timed(lambda: artifact._load(router_dir)) for _ in range(max(3, args.rounds // 40))
    )

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
        (
            "regex classifier (task + tier), 2,000-char prompt",
            median_us(rotate(long_prompts, classify), args.rounds, 30),
            300,
        ),
        (
            "regex classifier (task + tier), 200-char prompt",
            median_us(rotate(short_prompts, classify), args.rounds, 30),
            100,
        ),
        (
            "example policy 'auto' (classifier rules), 2,000-char prompt",
            median_us(rotate(long_prompts, lambda m: example.plan("auto", m)), args.rounds, 30),
            300,
        ),
        (
            "example policy 'smart' (learned route), 2,000-char prompt",
            median_us(rotate(long_prompts, lambda m: example.plan("smart", m)), args.rounds, 30),
            300,
        ),
        (
            "example policy 'smart' (learned route), 200-char prompt",
            median_us(rotate(short_prompts, lambda m: example.plan("smart", m)), args.rounds, 30),
            100,
        ),
        ("loading the learned route's router (from disk, checksums checked)", load_ms * 1e6, 200_000),
        ("mocked litellm.completion (baseline)", median_us(mocked, max(10, args.rounds // 4), 10), None),
    ]
    baseline = rows[-1][1]
    print(f"{'variant':<62} {'median':>12} {'target':>10} {'vs completion':>14}")
    for name, us, target in rows:
        shown = f"{us:,.1f} us" if us < 10_000 else f"{us / 1000:,.1f} ms"
        goal = "" if target is None else (f"< {target} us" if target < 1000 else f"< {target // 1000:,} ms")
        status = "" if target is None else (" ok" if us < target else " MISSED")
        print(f"{name:<62} {shown:>12} {goal:>10} {us / baseline:>13.3f}x{status}")


if __name__ == "__main__":
    main()
