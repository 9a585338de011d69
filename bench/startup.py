"""Wall time of mm-litellm commands from start to exit, against ``python -c pass`` in one run.

Each command runs as a fresh process (the way a user or CI runs it), round-robin with the
baselines so machine noise hits every variant alike; the median of ``--runs`` is printed with
the ratio to the bare interpreter and to ``import litellm``. Targets (issue 18): commands
that call no provider under 1.0 s wall, ``run --mock`` under 3 s.

    python bench/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MM = [sys.executable, "-m", "mm_litellm.cli.main"]
VARIANTS: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import litellm": [sys.executable, "-c", "import litellm"],
    "policy check": [*MM, "policy", "check", "config/policy.yaml"],
    "policy test": [*MM, "policy", "test", "config/policy_tests.yaml"],
    "route --explain": [*MM, "route", "Design a cache and evaluate it", "--route", "cheap", "--explain"],
    "explain()": [
        sys.executable,
        "-c",
        "import mm_litellm; mm_litellm.explain('auto', prompt='hi', policy='config/policy.yaml')",
    ],
    "models": [*MM, "models"],
    "run --mock": [*MM, "run", "What is the capital of France?", "--mock"],
}
TARGETS = {"run --mock": 3.0, "python -c pass": None, "import litellm": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True")
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.runs):
        for name, cmd in VARIANTS.items():
            started = time.perf_counter()
            subprocess.run(
                cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            times[name].append(time.perf_counter() - started)
    base = statistics.median(times["python -c pass"])
    lit = statistics.median(times["import litellm"])
    print(f"{'command':<18}{'median s':>10}{'x python':>10}{'x import litellm':>18}  target")
    for name, samples in times.items():
        median = statistics.median(samples)
        target = TARGETS.get(name, 1.0)
        verdict = "" if target is None else f"< {target:.1f} s {'ok' if median < target else 'MISSED'}"
        print(f"{name:<18}{median:>10.3f}{median / base:>10.1f}{median / lit:>18.2f}  {verdict}")


if __name__ == "__main__":
    main()
