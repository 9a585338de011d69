"""What a prompt_id costs, measured against LiteLLM with the same messages rendered by hand.

Variants, mocked with LiteLLM's ``mock_response`` and measured round-robin (one call of each in
turn, shuffled) so that machine noise hits every variant alike:

- ``litellm.completion`` with the messages already rendered (the baseline);
- ``mm_litellm.completion(prompt_id=...)``: registry lookup, safe render, parameters, metadata;
- the same with an active A/B experiment (sticky assignment plus one database row per call);
- the render alone (``CompiledPrompt.render``) against ``str.format`` of the same text.

    python bench/prompts.py [--calls 1000]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm

import mm_litellm

ROOT = Path(__file__).resolve().parents[1]
VARIABLES = {"target_fields": "price, title", "html_content": "<div><b>$49.99</b> Widget</div>" * 20}
MOCK = {"mock_response": "{}"}
POLICY = """
version: 1
database: {{url: "sqlite:///{db}"}}
prompts:
  dir: "{dir}"
  experiments:
    ab:
      prompt: reasoning
      variants: {{a: {{version: 1}}, b: {{version: 1}}}}
"""


def round_robin(variants: dict[str, Callable[[], object]], calls: int) -> dict[str, list[float]]:
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
    parser.add_argument("--calls", type=int, default=1000, help="calls per variant (default 1000)")
    args = parser.parse_args()
    litellm.suppress_debug_info = True

    with tempfile.TemporaryDirectory() as tmp:
        policy = POLICY.format(db=Path(tmp) / "bench.db", dir=ROOT / "config" / "prompts")
        mm_litellm.configure(mm_litellm.parse_policy(policy))
        registry = mm_litellm.register_prompts(install=False)
        compiled = registry.get("extraction", version=1)
        rendered = compiled.render(VARIABLES)
        messages = [dict(m) for m in rendered.messages]
        reasoning_vars = {"goal": "price", "url": "https://x", "actions": "click", "history": "none"}
        seed_text = compiled.spec.messages[0].content.replace("{{ ", "{").replace(" }}", "}")
        seed_text = seed_text.replace('{\n  "', '{{\n  "').replace('"\n}', '"\n}}')

        def bare() -> object:
            return litellm.completion(
                model="openai/gpt-4o-mini", messages=messages, **rendered.params, **MOCK
            )

        def prompt() -> object:
            return mm_litellm.completion(
                model="openai/gpt-4o-mini", prompt_id="extraction", prompt_variables=VARIABLES, **MOCK
            )

        users = iter(range(10**9))

        def experiment() -> object:
            return mm_litellm.completion(
                model="openai/gpt-4o-mini",
                prompt_id="reasoning",
                prompt_variables=reasoning_vars,
                user=f"u{next(users)}",
                **MOCK,
            )

        variants = {"litellm.completion": bare, "mm prompt_id": prompt, "mm prompt_id + A/B": experiment}
        round_robin(variants, 30)
        samples = round_robin(variants, args.calls)

        render_times, format_times = [], []
        for _ in range(20_000):
            start = time.perf_counter()
            compiled.render(VARIABLES)
            render_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            seed_text.format(**VARIABLES)
            format_times.append(time.perf_counter() - start)

    median = {name: statistics.median(times) * 1e3 for name, times in samples.items()}
    print(f"median per-call time, {args.calls} mocked calls of each variant, round-robin")
    for name, ms in median.items():
        print(f"  {name:<22} {ms:8.3f} ms")
    base = median["litellm.completion"]
    print(f"  prompt_id / litellm.completion          {median['mm prompt_id'] / base:6.3f}x")
    print(f"  prompt_id + A/B / litellm.completion    {median['mm prompt_id + A/B'] / base:6.3f}x")
    r, f = statistics.median(render_times) * 1e6, statistics.median(format_times) * 1e6
    print(f"render alone: {r:.2f} us (safe renderer) vs {f:.2f} us (str.format): {r / f:.2f}x")


if __name__ == "__main__":
    main()
