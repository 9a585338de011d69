"""What mm_litellm adds to a LiteLLM call, measured against LiteLLM itself in one run.

Four variants, all mocked with LiteLLM's ``mock_response`` (so the whole LiteLLM pipeline
runs: logging objects, callbacks, cost), measured round-robin, one call of each variant in
turn, so that machine noise and LiteLLM's background success-callback work (a thread pool
that runs after each call) hit every variant alike:

- bare ``litellm.completion``                     vs  ``mm_litellm.completion`` pass-through
- bare ``Router.completion`` with the same models  vs  ``mm_litellm.completion`` routed via a rule
  (the baseline calls the same Router that mm_litellm routes through)

Targets (issue 2): pass-through within 1.05x, routed within 1.10x.

    python bench/overhead.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm

import mm_litellm

POLICY = Path(__file__).resolve().parents[1] / "config" / "policy.yaml"
MESSAGES = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
MOCK = {"mock_response": "Paris"}


def round_robin(variants: dict[str, Callable[[], object]], calls: int) -> dict[str, list[float]]:
    """Per-call times of each variant: ``calls`` rounds, one call of each, in a shuffled order."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants.items())
    rng = random.Random(7)
    for _ in range(calls):
        rng.shuffle(order)
        for name, fn in order:
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000, help="calls per variant (default 2000)")
    args = parser.parse_args()
    litellm.suppress_debug_info = True

    runtime = mm_litellm.configure(POLICY)
    assert runtime is not None
    # The baseline is the very Router mm_litellm routes through, called directly: the
    # difference between the two is exactly mm_litellm's own work (plan, trace, checks).
    bare_router = runtime.router

    def bare() -> object:
        return litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, **MOCK)

    def passthrough() -> object:
        return mm_litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, **MOCK)

    def bare_routed() -> object:
        return bare_router.completion(model="gpt-4o", messages=MESSAGES, **MOCK)

    def routed() -> object:  # rule 'high-priority' -> gpt-4o, with route fallbacks attached
        return mm_litellm.completion(model="auto", messages=MESSAGES, metadata={"priority": "high"}, **MOCK)

    variants = {
        "litellm.completion": bare,
        "mm pass-through": passthrough,
        "Router.completion": bare_routed,
        "mm routed": routed,
    }
    assert mm_litellm.decision_of(routed())["model"] == "gpt-4o"
    round_robin(variants, 50)  # warm-up: imports, clients, caches
    samples = round_robin(variants, args.calls)

    async def async_samples() -> dict[str, list[float]]:
        async def bare_a() -> object:
            return await bare_router.acompletion(model="gpt-4o", messages=MESSAGES, **MOCK)

        async def routed_a() -> object:
            return await mm_litellm.acompletion(
                model="auto", messages=MESSAGES, metadata={"priority": "high"}, **MOCK
            )

        pairs = (("Router.acompletion", bare_a), ("mm routed (async)", routed_a))
        out: dict[str, list[float]] = {name: [] for name, _ in pairs}
        for i in range(args.calls + 20):
            for name, fn in pairs:
                start = time.perf_counter()
                await fn()
                if i >= 20:  # the first rounds warm up
                    out[name].append(time.perf_counter() - start)
        return out

    samples |= asyncio.run(async_samples())
    median = {name: statistics.median(times) * 1e3 for name, times in samples.items()}
    print(f"median per-call time, {args.calls} mocked calls of each variant, round-robin")
    for name, ms in median.items():
        print(f"  {name:<22} {ms:8.3f} ms")
    print()
    rows = [
        ("pass-through / litellm.completion", median["mm pass-through"] / median["litellm.completion"], 1.05),
        ("routed / Router.completion", median["mm routed"] / median["Router.completion"], 1.10),
        (
            "routed async / Router.acompletion",
            median["mm routed (async)"] / median["Router.acompletion"],
            1.10,
        ),
    ]
    for label, ratio, target in rows:
        verdict = "ok" if ratio <= target else "OVER TARGET"
        print(f"  {label:<36} {ratio:6.3f}x  (target <= {target:.2f}x: {verdict})")


if __name__ == "__main__":
    main()
