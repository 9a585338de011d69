"""``mm-litellm batch --workers N``: N processes, one shard each, then one merged output.

One process tops out near LiteLLM's own CPU cost per call (a few ms), whatever the
concurrency; N processes on N cores scale that. Each worker is ``mm-litellm batch --shard K/N``
writing ``OUTPUT.shard-K-of-N`` (resumable on its own), and all share the policy's ledger and
budgets through its database (the scratch ledger for ``--mock``). When the workers are done,
their rows are merged into OUTPUT in input order and the shard files removed; after an
interruption, rerunning the same command resumes every shard and merges again.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from mm_litellm.batch.shards import Shard, merge_outputs, shard_output

__all__ = ["run_workers", "worker_command"]

_SEVERITY = (130, 4, 3)  # interrupted, stopped by a budget, failed rows: the worst one wins


def worker_command(args: argparse.Namespace, shard: Shard, output: Path) -> list[str]:
    """The ``mm-litellm batch`` command line of one worker."""
    cmd = [
        sys.executable,
        "-m",
        "mm_litellm.cli.main",
        "batch",
        str(args.input),
        "--output",
        str(output),
        "--shard",
        str(shard),
        "--quiet",
        "--max-concurrency",
        str(args.max_concurrency),
        "--strategy",
        args.strategy,
    ]
    options: list[tuple[str, Any]] = [
        ("--policy", args.policy),
        ("--model", args.model),
        ("--max-tokens", args.max_tokens),
        ("--mock", args.mock),
        ("--mock-delay", args.mock_delay),
        ("--rpm", args.rpm / shard.count if args.rpm else None),
        ("--tpm", args.tpm / shard.count if args.tpm else None),
    ]
    for flag, value in options:
        if value is not None:
            cmd += [flag, str(value)]
    if args.verbose:
        cmd.append("--verbose")
    return cmd


def run_workers(args: argparse.Namespace) -> int:
    output = Path(args.output)
    shards = [Shard(k, args.workers) for k in range(1, args.workers + 1)]
    parts = [shard_output(output, s) for s in shards]
    children = [subprocess.Popen(worker_command(args, s, p)) for s, p in zip(shards, parts, strict=True)]

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        codes = [child.wait() for child in children]
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    added, present = merge_outputs(output, [p for p in parts if p.exists()])
    print(f"{args.workers} workers: merged {added} rows into {output} ({present} were there already)")
    status = next((c for c in _SEVERITY if c in codes), max(codes))
    if status == 0:
        for part in parts:
            part.unlink(missing_ok=True)
    else:
        print(
            f"mm-litellm: worker exit statuses {codes}; shard outputs kept ({parts[0].name}, ...); rerun "
            "the same command to resume",
            file=sys.stderr,
        )
    return status
