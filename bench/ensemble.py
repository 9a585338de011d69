"""An ensemble's wall time against one member's, measured in the same run.

Three members, each answering after a 200 ms mocked delay (LiteLLM's ``mock_delay``: the full
LiteLLM pipeline runs, the delay does not block the event loop). Members run concurrently, so
the ensemble should take about one member's time plus its own overhead (panel, strategy,
response assembly, the outer LiteLLM call). Target (issue 4): at most 1.15x a single member.

Variants, measured round-robin (one call of each per round, shuffled):

- ``single``          ``mm_litellm.acompletion(model="mini")``: one member alone, through the Router
- ``ensemble``        ``mm_litellm.acompletion(model="ensemble/vote")``: the three members + voting
- ``single-sync`` / ``ensemble-sync``: the same through the sync ``mm_litellm.completion``

    python bench/ensemble.py [--rounds 30] [--delay 0.2]    (from a source tree: PYTHONPATH=. first)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm

import mm_litellm
from mm_litellm.testing import MockLLM

POLICY = """
models:
  mini: {litellm_params: {model: openai/gpt-4o-mini, api_key: none}, tier: basic}
  flash: {litellm_params: {model: gemini/gemini-2.5-flash, api_key: none}}
  haiku: {litellm_params: {model: anthropic/claude-haiku-4-5, api_key: none}}
router: {num_retries: 0}
ensembles:
  vote: {strategy: voting, members: [mini, flash, haiku], normalise: number, timeout: 10}
"""
MESSAGES = [{"role": "user", "content": "What is 6 * 7?"}]


async def measure(rounds: int, settle: float) -> dict[str, list[float]]:
    async def single() -> object:
        return await mm_litellm.acompletion(model="mini", messages=MESSAGES)

    async def ensemble() -> object:
        return await mm_litellm.acompletion(model="ensemble/vote", messages=MESSAGES)

    def single_sync() -> object:
        return mm_litellm.completion(model="mini", messages=MESSAGES)

    def ensemble_sync() -> object:
        return mm_litellm.completion(model="ensemble/vote", messages=MESSAGES)

    variants = {
        "single": single,
        "ensemble": ensemble,
        "single-sync": single_sync,
        "ensemble-sync": ensemble_sync,
    }
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for fn in variants.values():  # warm-up: Router, clients, provider registration
        await fn() if asyncio.iscoroutinefunction(fn) else fn()
    order = list(variants.items())
    rng = random.Random(7)
    for _ in range(rounds):
        rng.shuffle(order)
        for name, fn in order:
            start = time.perf_counter()
            if asyncio.iscoroutinefunction(fn):
                await fn()
            else:
                fn()
            samples[name].append(time.perf_counter() - start)
            # let LiteLLM's background success logging (tasks on this loop, 4 calls' worth after an
            # ensemble) finish before the next timed call, as between requests of a real service
            await asyncio.sleep(settle)
    return samples


def p90(values: list[float]) -> float:
    return sorted(values)[int(0.9 * len(values))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--delay", type=float, default=0.2, help="each member's mocked latency in seconds")
    parser.add_argument("--settle", type=float, default=0.05, help="pause between timed calls, seconds")
    args = parser.parse_args()
    litellm.suppress_debug_info = True
    mm_litellm.configure(mm_litellm.parse_policy(POLICY))
    mock = MockLLM()
    for model in ("mini", "flash", "haiku"):
        mock.script(model, "The answer is 42.", delay=args.delay)
    with mock.installed():
        samples = asyncio.run(measure(args.rounds, args.settle))
    med = {name: statistics.median(values) for name, values in samples.items()}
    print(f"3 members, {args.delay * 1000:.0f} ms mocked delay each, {args.rounds} rounds (median wall time)")
    for name in samples:
        print(f"  {name:<14} {med[name] * 1000:8.1f} ms   (p90 {p90(samples[name]) * 1000:.1f} ms)")
    for mode in ("", "-sync"):
        ratio = med[f"ensemble{mode}"] / med[f"single{mode}"]
        verdict = "OK" if ratio <= 1.15 else "ABOVE TARGET"
        extra = (med[f"ensemble{mode}"] - med[f"single{mode}"]) * 1000
        print(f"ensemble{mode} / single{mode}: {ratio:.3f}x, +{extra:.1f} ms  (target <= 1.15x: {verdict})")


if __name__ == "__main__":
    main()
