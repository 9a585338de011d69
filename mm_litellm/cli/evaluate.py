"""``mm-litellm policy evaluate | diff | calibrate``: measure a policy on recorded outcomes, offline.

Registered into ``mm-litellm policy`` by one call from ``policy_cmd.py``. No provider is called:
the routing engine decides every recorded row and the recorded scores and costs are read back.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from mm_litellm.cli.common import DEFAULT_POLICY, fail
from mm_litellm.errors import MMLiteLLMError, PolicyError
from mm_litellm.runtime import POLICY_ENV

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
    ev.add_argument(
        "--policy", metavar="FILE", help=f"policy file (default: ${POLICY_ENV}, else {DEFAULT_POLICY})"
    )
    _data_options(ev)
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
    _data_options(df)
    df.add_argument("--samples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    df.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")
    df.set_defaults(handler=handle_diff)

    cal = verbs.add_parser(
        "calibrate",
        help="fit a policy's knob or a per-group model choice on the train split; report on test; write YAML",
        description="Fit on the train split, report on the held-out test split, and write the calibrated "
        "policy as a new YAML file. Either --knob PATH --values LIST (pick the best value of one setting) "
        "or --by FACT (learn which model serves each value of a request fact, written as readable rules).",
    )
    cal.add_argument(
        "--policy", metavar="FILE", help=f"policy file (default: ${POLICY_ENV}, else {DEFAULT_POLICY})"
    )
    _data_options(cal)
    cal.add_argument(
        "--target",
        choices=("quality", "cost"),
        default="cost",
        help="quality: cheapest fit keeping --min-quality; cost: best quality within --max-cost",
    )
    cal.add_argument(
        "--min-quality", type=float, default=0.95, help="share of always-strongest quality (default 0.95)"
    )
    cal.add_argument(
        "--max-cost", type=float, default=0.5, help="share of always-strongest cost (default 0.5)"
    )
    how = cal.add_mutually_exclusive_group(required=True)
    how.add_argument("--knob", metavar="PATH", help="the setting to fit (needs --values)")
    how.add_argument(
        "--by", metavar="FACT", help="a request fact to group by: task, tier, metadata.<key>, ..."
    )
    cal.add_argument(
        "--values",
        metavar="LIST",
        help="candidate values for --knob; 'auto' for a learned route's lambda or quality_target",
    )
    cal.add_argument(
        "--position",
        choices=("last", "first"),
        default="last",
        help="--by: fitted rules after the route's rules (default; they keep precedence) or before them",
    )
    cal.add_argument(
        "--min-rows", type=int, default=10, help="--by: groups with fewer train rows use the default"
    )
    cal.add_argument("--out", required=True, metavar="FILE", help="where to write the calibrated policy YAML")
    cal.set_defaults(handler=handle_calibrate)

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


def _data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="FILE", help="outcome dataset (.jsonl or .jsonl.gz)")
    p.add_argument(
        "--eval-config", metavar="FILE", help="evaluation config YAML (model mapping, route, prices...)"
    )
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="POLICY_MODEL=DATASET_MODEL",
        help="which recorded model stands in for a policy model (repeatable)",
    )
    p.add_argument(
        "--route", help="the route to replay (default: eval config, else the policy's default_route)"
    )
    p.add_argument(
        "--split", choices=("test", "train", "all"), default="test", help="rows to report on (default test)"
    )
    p.add_argument("--resplit", action="store_true", help="ignore the rows' own split; assign a seeded one")
    p.add_argument(
        "--dedupe",
        action="store_true",
        help="keep the first row of each duplicated id (default: refuse the file)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="stop at a row the route cannot serve (default: count it as a failed request, reported)",
    )
    p.add_argument("--seed", type=int, help="split and bootstrap seed (default: eval config, else 0)")
    p.add_argument("--test-fraction", type=float, help="share of unsplit rows assigned to test (default 0.3)")
    p.add_argument(
        "--prices", metavar="FILE", help="pinned price table (default: prices_pinned.json beside the data)"
    )
    p.add_argument(
        "--meta-label",
        action="append",
        default=[],
        metavar="KEY",
        help="let the router see this row label (or 'task') as request metadata (repeatable)",
    )
    p.add_argument(
        "--default-completion-tokens",
        type=int,
        metavar="N",
        help="completion tokens for outcomes that recorded none",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("-o", "--output", metavar="FILE", help="also write the JSON report to FILE")


def _policy_path(path: str | None) -> str:
    chosen = path or os.environ.get(POLICY_ENV) or (str(DEFAULT_POLICY) if DEFAULT_POLICY.exists() else None)
    if chosen is None:
        fail(f"no policy file: pass --policy FILE or set {POLICY_ENV}")
    return chosen


def _config(args: argparse.Namespace) -> Any:
    from mm_litellm.evaluation.config import load_eval_config, parse_mapping

    config = load_eval_config(args.eval_config)
    update: dict[str, Any] = {}
    if args.map:
        update["models"] = {**config.models, **parse_mapping(args.map)}
    if args.route:
        update["route"] = args.route
    if args.seed is not None:
        update["seed"] = args.seed
    if args.test_fraction is not None:
        if not 0 < args.test_fraction < 1:
            fail("--test-fraction must be between 0 and 1")
        update["test_fraction"] = args.test_fraction
    if args.prices:
        update["prices"] = args.prices
    if args.meta_label:
        update["metadata_labels"] = (*config.metadata_labels, *args.meta_label)
    if args.default_completion_tokens is not None:
        update["default_completion_tokens"] = args.default_completion_tokens
    if args.resplit:
        update["resplit"] = True
    if args.strict:
        update["strict"] = True
    return config.model_copy(update=update)


def _values(evaluation: Any, policy: Any, knob: str, text: str) -> list[Any]:
    """``--values``: a list, START:STOP:COUNT, or 'auto' (a learned route's knob, from its predictions)."""
    from mm_litellm.evaluation.knobs import parse_values

    if text.strip() == "auto":
        from mm_litellm.learned.evaluate import auto_values

        return auto_values(evaluation, policy, knob)
    return parse_values(text)


def _emit(args: argparse.Namespace, report: dict[str, Any], text: str) -> None:
    clean = {k: v for k, v in report.items() if not k.startswith("_")}
    if args.output:
        Path(args.output).write_text(json.dumps(clean, indent=2, default=str) + "\n", encoding="utf-8")
    print(json.dumps(clean, indent=2, default=str) if args.json else text)


def _guard(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(fn(args) or 0)
        except PolicyError as exc:
            fail(f"invalid policy:\n{exc}")
        except MMLiteLLMError as exc:
            fail(str(exc))

    return run


@_guard
def handle_evaluate(args: argparse.Namespace) -> int:
    from mm_litellm.evaluation.knobs import read_document
    from mm_litellm.evaluation.report import render_curve, render_evaluation
    from mm_litellm.evaluation.session import Evaluation
    from mm_litellm.policy import load_policy

    path = _policy_path(args.policy)
    policy = load_policy(path)
    if (args.sweep is None) != (args.values is None):
        fail("--sweep and --values go together")
    if args.plot and not args.sweep:
        fail("--plot draws a curve: give --sweep PATH --values LIST")
    config = _config(args)
    evaluation = Evaluation.from_file(
        args.data, policy, config, split=args.split, resplit=config.resplit, dedupe=args.dedupe
    )
    if args.sweep is None:
        report = evaluation.report(policy)
        _emit(args, report, render_evaluation(report))
        return 0
    values = _values(evaluation, policy, args.sweep, args.values)
    report = evaluation.curve(read_document(path), path, args.sweep, values)
    if args.plot:
        from mm_litellm.evaluation.plot import plot_curve

        plot_curve(
            args.plot,
            report["_points"],
            report["baselines"],
            title=f"{Path(path).name}: {args.sweep}\n{Path(args.data).name} ({args.split} split)",
        )
    _emit(args, report, render_curve(report) + (f"\nwrote {args.plot}" if args.plot else ""))
    return 0


@_guard
def handle_diff(args: argparse.Namespace) -> int:
    from mm_litellm.evaluation.diff import diff_policies
    from mm_litellm.evaluation.report import render_diff
    from mm_litellm.evaluation.session import Evaluation
    from mm_litellm.policy import load_policy

    old, new = load_policy(args.old), load_policy(args.new)
    if not 0 < args.confidence < 1 or args.samples < 10:
        fail("--confidence must be between 0 and 1 and --samples at least 10")
    config = _config(args)
    evaluation = Evaluation.from_file(
        args.data, new, config, split=args.split, resplit=config.resplit, dedupe=args.dedupe
    )
    report = diff_policies(
        evaluation, old, new, samples=args.samples, seed=config.seed, confidence=args.confidence
    )
    _emit(args, report, render_diff(report))
    return 0


@_guard
def handle_calibrate(args: argparse.Namespace) -> int:
    from mm_litellm.evaluation.baselines import random_at_cost
    from mm_litellm.evaluation.calibrate import Target, calibrate_groups, calibrate_knob
    from mm_litellm.evaluation.dataset import load_dataset
    from mm_litellm.evaluation.knobs import policy_from_document, read_document, rebase_paths
    from mm_litellm.evaluation.report import render_calibration
    from mm_litellm.evaluation.session import Evaluation
    from mm_litellm.policy import load_policy

    started = time.perf_counter()
    path = _policy_path(args.policy)
    policy, document = load_policy(path), read_document(path)
    config = _config(args)
    target = Target(args.target, args.min_quality if args.target == "quality" else args.max_cost)
    rows = load_dataset(args.data, dedupe=args.dedupe)
    train = Evaluation(rows, policy, config, split="train", resplit=config.resplit, data_source=args.data)
    test = Evaluation(rows, policy, config, split="test", resplit=config.resplit, data_source=args.data)
    if args.knob:
        if not args.values:
            fail("--knob needs --values")
        values = _values(train, policy, args.knob, args.values)
        new_doc, fit = calibrate_knob(train, document, path, args.knob, values, target)
    else:
        new_doc, fit = calibrate_groups(
            train, document, policy, args.by, target, min_rows=args.min_rows, position=args.position
        )
    calibrated = policy_from_document(new_doc, args.out, base_dir=Path(path).parent)
    new_doc = rebase_paths(new_doc, Path(path).parent, Path(args.out).parent)
    before = test.report(policy)
    after = test.run(calibrated).result
    rel = test.relative(after.quality, after.cost_per_1k)
    report = {
        "target": f"{args.target} ({'min quality' if args.target == 'quality' else 'max cost'} "
        f"{target.ratio:g} x always-strongest)",
        "train_rows": len(train.table),
        "fit": fit,
        "test": before,
        "calibrated": after.as_dict() | rel,
        "random_at_calibrated": random_at_cost(
            test.baselines.cheapest, test.baselines.strongest, after.cost_per_1k
        ).as_dict(),
        "goal": {
            "quality_vs_strongest": rel["quality_vs_strongest"],
            "cost_vs_strongest": rel["cost_vs_strongest"],
        },
        "output": args.out,
        "seconds": round(time.perf_counter() - started, 2),
    }
    report["calibrated"].pop("per_task", None)
    _write_policy(args.out, new_doc, path, args, report)
    _emit(args, report, render_calibration(report))
    return 0


@_guard
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

        url = database_url(load_policy(_policy_path(args.policy)))  # $MM_LITELLM_DATABASE_URL wins
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


def _write_policy(
    out: str, document: dict[str, Any], source: str, args: argparse.Namespace, report: dict[str, Any]
) -> None:
    fit = report["fit"]
    what = (
        f"{fit['knob']} = {fit['value']}"
        if fit["method"] == "knob"
        else f"one model per value of {fit['fact']}"
    )
    goal = report["goal"]
    cal, test = report["calibrated"], report["test"]
    q_share, c_share = (goal["quality_vs_strongest"] or 0) * 100, (goal["cost_vs_strongest"] or 0) * 100
    header = [
        f"# Calibrated from {source} by: mm-litellm policy calibrate ({what})",
        f"# Fitted on the train split of {args.data} ({report['train_rows']} rows, seed {test['seed']}), "
        f"target: {report['target']}.",
        f"# Held-out test split ({test['rows_evaluated']} rows): quality {cal['quality']:.4f} "
        f"({q_share:.1f}% of always-strongest) at ${cal['cost_per_1k']:.4f} per 1k requests "
        f"({c_share:.1f}% of its cost).",
        "# Review the rules below before deploying; comments of the original file are not kept.",
    ]
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)
    Path(out).write_text("\n".join(header) + "\n" + body, encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run through: mm-litellm policy evaluate|diff|calibrate")
