"""How long offline evaluation takes on the 14,042-row RouteLLM MMLU set, beside a bare loop.

- load + price: read the gzipped JSONL, assign splits, price every outcome (once per run)
- replay: the real routing engine decides every row (features cached after the first policy)
- baseline: the same two-model threshold rule as a hand-written Python loop over the same
  table (no engine, no features); the ratio is the engine's price for being the real thing
- sweep: a 10-value threshold sweep, each value a re-validated policy replayed over all rows

Target (issue 8): evaluating 14,000 rows in under 10 s.

    python bench/evaluation.py [--data PATH] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from mm_litellm.evaluation.config import load_eval_config
from mm_litellm.evaluation.knobs import read_document
from mm_litellm.evaluation.session import Evaluation
from mm_litellm.policy import load_policy

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "routing" / "routellm_mmlu_gpt4_vs_mixtral.jsonl.gz"
POLICY = ROOT / "config" / "evaluation" / "gpt4_mixtral_policy.yaml"
CONFIG = ROOT / "config" / "evaluation" / "routellm.yaml"
KNOB = "routes.auto.rules[long-prompt].when.input_tokens.gt"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    policy = load_policy(POLICY)
    started = time.perf_counter()
    ev = Evaluation.from_file(args.data, policy, load_eval_config(CONFIG), split="all")
    load = time.perf_counter() - started
    n = len(ev.table)
    first = time.perf_counter()
    ev.run(policy)
    cold = time.perf_counter() - first
    engine_times, loop_times = [], []
    table = ev.table
    for _ in range(args.repeat):
        t = time.perf_counter()
        result = ev.run(policy).result
        engine_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        feats = ev.replayer.features(policy, "auto")
        q = c = 0.0
        for i, f in enumerate(feats):  # the same rule, written by hand
            m = "gpt-4" if f.input_tokens > 120 else "mixtral"
            q += table.score[m][i]
            c += table.cost[m][i]
        loop_times.append(time.perf_counter() - t)
        assert abs(q / n - result.quality) < 1e-12 and abs(c / n * 1000 - result.cost_per_1k) < 1e-9
    t = time.perf_counter()
    ev.curve(read_document(POLICY), str(POLICY), KNOB, [0, 40, 60, 80, 100, 120, 160, 200, 400, 100000])
    sweep = time.perf_counter() - t
    engine, loop = statistics.median(engine_times), statistics.median(loop_times)
    print(f"rows: {n:,} ({Path(args.data).name})")
    print(f"load + price:                 {load:.2f} s")
    print(f"replay, first policy (features computed): {cold:.3f} s")
    print(
        f"replay, cached features (median of {args.repeat}): {engine:.3f} s  "
        f"({engine / n * 1e6:.1f} us per row)"
    )
    print(f"hand-written loop, same rule: {loop:.3f} s  -> engine/loop ratio {engine / loop:.1f}x")
    print(f"10-point sweep:               {sweep:.2f} s")
    total = load + cold
    print(
        f"evaluating {n:,} rows end to end: {total:.2f} s "
        f"(target < 10 s: {'met' if total < 10 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
