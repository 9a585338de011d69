"""``mm-litellm policy evaluate | diff | export-outcomes``: measure a policy on recorded outcomes, offline.

Registered into ``mm-litellm policy`` by one call from ``policy_cmd.py``, with ``calibrate`` (from
``cli/calibrate.py``). No provider is called: the routing engine decides every recorded row and the
recorded scores and costs are read back.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mm_litellm.cli.calibrate import register_calibrate
from mm_litellm.cli.common import add_policy_option, fail
from mm_litellm.cli.evaluate_options import (
    add_data_options,
    config_from_args,
    emit,
    guard,
    knob_values,
    policy_path,
)

__all__ = ["register_policy_verbs"]


def register_policy_verbs(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``evaluate``, ``diff`` and ``calibrate`` under ``mm-litellm policy``."""
    ev = verbs.add_parser(
        "evaluate",
        help="replay recorded outcomes through a policy: quality, cost, shares, beside baselines",
        description="Run the routing engine over every row of an outcome dataset (no provider calls) and "
        "report quality, cost per 1,000 requests, share per model and per task, beside always-cheapest, "
        "always-strongest, random at matched cost and the oracle. With --sweep/--values: the cost-quality "
        "curve with APGR, CPT(50%/80%) and AIQ; --plot writes it as a PNG. Docs: docs/evaluation.md.",
    )
    add_policy_option(ev)
    add_data_options(ev)
    ev.add_argument(
        "--sweep", metavar="PATH", help="a numeric knob, e.g. routes.auto.rules[long].when.input_tokens.gt"
    )
    ev.add_argument(
        "--values",
        metavar="LIST",
        help="values for --sweep: 100,200,400 or START:STOP:COUNT; 'auto' for a learned route's lambda or "
        "quality_target (from the router's predictions on these rows)",
    )
    ev.add_argument("--plot", metavar="PNG", help="with --sweep: write the curve and baselines as a PNG")
    ev.set_defaults(handler=handle_evaluate)

    df = verbs.add_parser(
        "diff",
        help="which requests change model between two policies, and the cost/quality change with CIs",
        description="Replay the same rows under OLD and NEW: requests that change model, and the predicted "
        "change in quality and cost per 1,000 requests with seeded paired-bootstrap confidence intervals.",
    )
    df.add_argument("old", help="the current policy file")
    df.add_argument("new", help="the proposed policy file")
    add_data_options(df)
    df.add_argument("--samples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    df.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")
    df.set_defaults(handler=handle_diff)

    register_calibrate(verbs)

    ex = verbs.add_parser(
        "export-outcomes",
        help="write your own traffic (ledger + recorded outcomes or your labels) as an outcome dataset",
        description="Read the ledger of a policy's database and the outcomes recorded with record_outcome "
        "(and/or a scores file), and write them in the outcome dataset format that evaluate reads.",
    )
    ex.add_argument(
        "--policy", metavar="FILE", help="take the database URL from this policy's database section"
    )
    ex.add_argument("--db", metavar="URL", help="SQLAlchemy URL of the database (instead of --policy)")
    ex.add_argument("--scores", metavar="FILE", help="your labels: JSONL {call_id, score 0..1 | success}")
    ex.add_argument(
        "--prompts", metavar="FILE", help="prompt texts: JSONL {call_id, prompt} (the ledger keeps none)"
    )
    ex.add_argument("--out", required=True, metavar="FILE", help="dataset to write (.jsonl or .jsonl.gz)")
    ex.set_defaults(handler=handle_export)


@guard
def handle_evaluate(args: argparse.Namespace) -> int:
    from mm_litellm.evaluation.knobs import read_document
    from mm_litellm.evaluation.report import render_curve, render_evaluation
    from mm_litellm.evaluation.session import Evaluation
    from mm_litellm.policy import load_policy

    path = policy_path(args.policy)
    policy = load_policy(path)
    if (args.sweep is None) != (args.values is None):
        fail("--sweep and --values go together")
    if args.plot and not args.sweep:
        fail("--plot draws a curve: give --sweep PATH --values LIST")
    config = config_from_args(args)
    evaluation = Evaluation.from_file(
        args.data, policy, config, split=args.split, resplit=config.resplit, dedupe=args.dedupe
    )
    if args.sweep is None:
        report = evaluation.report(policy)
        emit(args, report, render_evaluation(report))
        return 0
    values = knob_values(evaluation, policy, args.sweep, args.values)
    report = evaluation.curve(read_document(path), path, args.sweep, values)
    if args.plot:
        from mm_litellm.evaluation.plot import plot_curve

        plot_curve(
            args.plot,
            report["_points"],
            report["baselines"],
            title=f"{Path(path).name}: {args.sweep}\n{Path(args.data).name} ({args.split} split)",
        )
    emit(args, report, render_curve(report) + (f"\nwrote {args.plot}" if args.plot else ""))
    return 0


@guard
def handle_diff(args: argparse.Namespace) -> int:
    from mm_litellm.evaluation.diff import diff_policies
    from mm_litellm.evaluation.report import render_diff
    from mm_litellm.evaluation.session import Evaluation
    from mm_litellm.policy import load_policy

    old, new = load_policy(args.old), load_policy(args.new)
    if not 0 < args.confidence < 1 or args.samples < 10:
        fail("--confidence must be between 0 and 1 and --samples at least 10")
    config = config_from_args(args)
    evaluation = Evaluation.from_file(
        args.data, new, config, split=args.split, resplit=config.resplit, dedupe=args.dedupe
    )
    report = diff_policies(
        evaluation, old, new, samples=args.samples, seed=config.seed, confidence=args.confidence
    )
    emit(args, report, render_diff(report))
    return 0


@guard
def handle_export(args: argparse.Namespace) -> int:
    from mm_litellm.evaluation.dataset import write_dataset
    from mm_litellm.evaluation.export import (
        export_rows,
        read_ledger,
        read_recorded_outcomes,
        read_scores_file,
    )

    if args.db:
        url = args.db
    else:
        from mm_litellm.policy import load_policy
        from mm_litellm.storage import database_url

        url = database_url(load_policy(policy_path(args.policy)))  # $MM_LITELLM_DATABASE_URL wins
    calls = read_ledger(url)
    labels = read_scores_file(args.scores) if args.scores else {}
    scores = read_recorded_outcomes(url, overridden=labels) | labels
    prompts: dict[str, str] = {}
    if args.prompts:
        for line in Path(args.prompts).read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                prompts[str(item["call_id"])] = str(item["prompt"])
    count = write_dataset(export_rows(calls, scores, prompts=prompts), args.out)
    print(f"wrote {count} rows to {args.out} from {len(calls)} ledger calls and {len(scores)} scores")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run through: mm-litellm policy evaluate|diff|calibrate")
