"""``mm-litellm batch``: a JSONL file of prompts through the policy, resumable, with progress.

Exit status: 0 every row answered; 3 finished with failed rows; 4 stopped by a budget block
(the blocked and unsent rows are not written, so a rerun sends them); 130 interrupted (Ctrl-C or
SIGTERM; finished rows are on disk, rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from mm_litellm.cli.common import MOCK_ANSWER, add_policy_option, fail, quiet_litellm, resolve_policy

__all__ = ["EXIT_FAILED_ROWS", "EXIT_STOPPED", "Progress", "register"]

EXIT_FAILED_ROWS = 3
EXIT_STOPPED = 4
EXIT_INTERRUPTED = 130
BAR_WIDTH = 20
LEDGER_WAIT_S = 10.0
"""How long a finished row waits for its ledger row to be written before its result line is."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "batch",
        help="run a JSONL file of prompts through the policy concurrently (resumable)",
        description='Run every row of INPUT (JSONL: {"id": ..., "prompt": ...} or {"messages": [...]}, '
        "optionally strategy, model, metadata, max_tokens...) through the policy and append one result "
        "line per row to OUTPUT. Rerunning with the same OUTPUT skips the rows already there.",
        epilog="Exit status: 0 all rows ok, 3 some rows failed, 4 stopped by a budget, 130 interrupted.",
    )
    p.add_argument("input", metavar="INPUT.jsonl", help="one request per line")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT.jsonl",
        help="results, one line per row (appended; rows already in it are skipped)",
    )
    add_policy_option(p)
    p.add_argument(
        "--max-concurrency", type=int, default=8, metavar="N", help="calls in flight at once (default 8)"
    )
    p.add_argument("--rpm", type=float, metavar="N", help="at most N requests per minute, across the batch")
    p.add_argument("--tpm", type=float, metavar="N", help="at most N tokens per minute, across the batch")
    p.add_argument(
        "--strategy",
        default="auto",
        choices=("auto", "cheapest", "fallback", "ensemble"),
        help="default strategy for rows that do not name one (default auto)",
    )
    p.add_argument("--model", help="default model, route or ensemble for rows that do not name one")
    p.add_argument("--max-tokens", type=int, metavar="N", help="default answer length limit")
    p.add_argument(
        "--mock",
        nargs="?",
        const=MOCK_ANSWER,
        metavar="TEXT",
        help="answer offline with TEXT (LiteLLM's mock_response: routing, Router and cost still run)",
    )
    p.add_argument(
        "--mock-delay", type=float, metavar="SECONDS", help="with --mock: simulated latency per call"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="run N processes (shards 1/N..N/N of the input) sharing the policy's ledger and "
        "budgets, then merge their outputs into OUTPUT in input order (--rpm/--tpm are split)",
    )
    p.add_argument(
        "--shard",
        metavar="K/N",
        help="run only shard K of N (rows K, K+N, ...): for several machines sharing a "
        "PostgreSQL ledger; combine the outputs with 'mm-litellm batch-merge'",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="log routing decisions and LiteLLM's activity"
    )
    p.set_defaults(handler=handle)
    m = sub.add_parser(
        "batch-merge",
        help="merge shard outputs of 'mm-litellm batch --shard' into one output, in input order",
        description="Append the rows of each PART (outputs of 'mm-litellm batch --shard K/N') that OUTPUT "
        "does not have yet, in input order. Safe to rerun after a shard was resumed.",
    )
    m.add_argument("output", metavar="OUT.jsonl")
    m.add_argument("parts", metavar="PART.jsonl", nargs="+")
    m.set_defaults(handler=handle_merge)


class Progress:
    """One progress line on stderr: rewritten in place on a terminal, every few seconds otherwise."""

    def __init__(self, total: int, already: int, stream: TextIO = sys.stderr, quiet: bool = False) -> None:
        self.total, self.already, self.stream, self.quiet = total, already, stream, quiet
        self.done = self.failed = 0
        self.cost = 0.0
        self.started = self._last = time.monotonic()
        self._tty = stream.isatty()

    def update(self, ok: bool, cost: float | None) -> None:
        self.done += 1
        self.failed += 0 if ok else 1
        self.cost += cost or 0.0
        now = time.monotonic()
        if now - self._last >= (0.2 if self._tty else 5.0):
            self._last = now
            self.show()

    def line(self) -> str:
        rate = self.done / max(time.monotonic() - self.started, 1e-9)
        finished = self.already + self.done
        filled = int(BAR_WIDTH * finished / self.total) if self.total else BAR_WIDTH
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        return (
            f"[{bar}] {finished}/{self.total} done ({self.done} this run, "
            f"{self.failed} failed), ${self.cost:.6f} so far, {rate:.1f} rows/s"
        )

    def show(self, final: bool = False) -> None:
        if self.quiet:
            return
        if self._tty:
            self.stream.write("\r\x1b[K" + self.line() + ("\n" if final else ""))
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()


def handle(args: argparse.Namespace) -> int:
    from mm_litellm.batch.journal import OutputJournal, count_rows
    from mm_litellm.batch.shards import parse_shard
    from mm_litellm.runtime import configure

    if args.mock is not None:
        from mm_litellm.cli.common import keep_mocks_out_of_the_ledger

        keep_mocks_out_of_the_ledger()
    if args.workers < 1:
        fail("--workers must be at least 1")
    if args.workers > 1 and args.shard:
        fail("--workers splits the input itself; --shard is for one process of a split you run yourself")
    try:
        shard = parse_shard(args.shard) if args.shard else None
    except ValueError as exc:
        fail(str(exc))
    if args.workers > 1:
        if not Path(args.input).is_file():
            fail(f"no input file '{args.input}'")
        from mm_litellm.cli.batch_workers import run_workers

        return run_workers(args)

    source, output = Path(args.input), Path(args.output)
    if not source.is_file():
        fail(f"no input file '{source}'")
    if args.max_concurrency < 1:
        fail("--max-concurrency must be at least 1")
    if args.mock_delay is not None and args.mock is None:
        fail("--mock-delay needs --mock")
    configure(resolve_policy(args.policy))
    quiet_litellm()
    journal = OutputJournal(output)
    try:
        journal.open()
    except ValueError as exc:
        fail(str(exc))
    try:
        if journal.torn_bytes:
            print(
                f"mm-litellm: {output}: cut a torn last line ({journal.torn_bytes} bytes) left by an "
                "interrupted run",
                file=sys.stderr,
            )
        total = count_rows(source)
        if shard is not None:
            total = shard.size(total)
        if total and len(journal.done) >= total and not journal.torn_bytes:
            print(f"nothing to do: all {total} rows of {source} are already in {output}")
            return 0
        progress = Progress(total, len(journal.done), quiet=args.quiet)
        return asyncio.run(_run(args, source, journal, progress, shard))
    finally:
        journal.close()


def _call_id(item: Any) -> str | None:
    """LiteLLM's call id of a finished row's answer (the key of its ledger row), if any."""
    raw = item.result.raw if item.result is not None else None
    hidden = getattr(raw, "_hidden_params", None) or {}
    call_id = hidden.get("litellm_call_id") if isinstance(hidden, dict) else None
    return call_id if isinstance(call_id, str) else None


async def _run(
    args: argparse.Namespace, source: Path, journal: Any, progress: Progress, shard: Any = None
) -> int:
    from mm_litellm.batch import BatchItem, abatch
    from mm_litellm.batch.journal import InputRow, read_rows
    from mm_litellm.batch.requests import Unrunnable
    from mm_litellm.batch.results import LedgeredOutput

    sent: list[InputRow] = []

    def pending() -> Iterator[Any]:
        for row in read_rows(source):
            if row.key in journal.done or (shard is not None and not shard.owns(row.index)):
                continue
            sent.append(row)
            yield Unrunnable(row.problem, row.id) if row.problem else row.request

    output = LedgeredOutput(journal, ledger_wait_s=LEDGER_WAIT_S)

    def record(item: BatchItem) -> None:  # returns at once: the worker takes its next row
        if item.status == "skipped" or item.blocked:  # refused by a budget before any call:
            return  # not written, so a rerun (after the budget resets or is raised) sends it
        row = sent[item.index]
        extra: dict[str, Any] = {"index": row.index, "id": row.id}
        call_id = _call_id(item)
        if call_id is not None:  # the ledger row first, durably: a crash never leaves a result unbilled
            extra["call_id"] = call_id
        cost = item.result.cost if item.result is not None else None
        output.add(item.to_dict() | extra, lambda: progress.update(item.ok, cost))

    defaults: dict[str, Any] = {"strategy": args.strategy}
    for key, value in (
        ("model", args.model),
        ("max_tokens", args.max_tokens),
        ("mock_response", args.mock),
        ("mock_delay", args.mock_delay),
    ):
        if value is not None:
            defaults[key] = value
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        report = await abatch(
            pending(),
            max_concurrency=args.max_concurrency,
            rpm=args.rpm,
            tpm=args.tpm,
            on_result=record,
            defaults=defaults,
        )
    except asyncio.CancelledError:
        await output.close(5.0)  # rows that finished before the signal are paid for: keep them
        await _drain_quietly(5.0)
        progress.show(final=True)
        print(
            f"mm-litellm: interrupted; {len(journal.done)} rows are in {journal.path}; rerun the same "
            "command to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    unwritten = await output.close(LEDGER_WAIT_S + 5.0)
    if unwritten:
        print(f"mm-litellm: {unwritten} finished rows could not be written; rerun to resume", file=sys.stderr)
    await _drain_quietly(10.0)
    progress.show(final=True)
    print(report.summary())
    if report.stopped:
        print(f"mm-litellm: stopped early: {report.stopped}; rerun to send the rest", file=sys.stderr)
        return EXIT_STOPPED
    return EXIT_FAILED_ROWS if report.metrics.failed else 0


def handle_merge(args: argparse.Namespace) -> int:
    from mm_litellm.batch.shards import merge_outputs

    parts = [Path(p) for p in args.parts]
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        fail(f"no such shard output: {', '.join(missing)}")
    try:
        added, present = merge_outputs(Path(args.output), parts)
    except ValueError as exc:
        fail(str(exc))
    print(f"merged {added} rows into {args.output} ({present} were there already)")
    return 0


async def _drain_quietly(timeout: float) -> None:
    """LiteLLM's queued callbacks (the ledger) before the loop closes; never fails the command."""
    from mm_litellm.integrations.callbacks_drain import drain_callbacks

    try:
        if not await drain_callbacks(timeout):
            print(f"mm-litellm: LiteLLM callbacks still running after {timeout:.0f} s", file=sys.stderr)
    except Exception as exc:  # a callback's own error must not lose the batch's output
        print(f"mm-litellm: LiteLLM callbacks failed at shutdown: {exc}", file=sys.stderr)
