"""``mm-litellm policy calibrate``: fit a knob or a model per group on train, report on test, write YAML.

Registered into ``mm-litellm policy`` by ``evaluate.register_policy_verbs``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import yaml

from mm_litellm.cli.common import add_policy_option, fail
from mm_litellm.cli.evaluate_options import (
    add_data_options,
    config_from_args,
    emit,
    guard,
    knob_values,
    policy_path,
)

__all__ = ["handle_calibrate", "register_calibrate"]


def register_calibrate(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``calibrate`` under ``mm-litellm policy``."""
    cal = verbs.add_parser(
        "calibrate",
        help="fit a policy's knob or a per-group model choice on the train split; report on test; write YAML",
        description="Fit on the train split, report on the held-out test split, and write the calibrated "
        "policy as a new YAML file. Either --knob PATH --values LIST (pick the best value of one setting) "
        "or --by FACT, repeatable (learn which model serves each group of rows sharing the facts' values, "
        "written as readable rules; several --by: one group per combination of values).",
    )
    add_policy_option(cal)
    add_data_options(cal)
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
        "--by",
        action="append",
        metavar="FACT",
        help="a request fact to group by: task, tier, metadata.<key>, ...; repeat it to group by several "
        "(--by task --by tier: a group per task and tier pair)",
    )
    cal.add_argument(
        "--values",
        metavar="LIST",
        help="candidate values for --knob; 'auto' for a learned route's lambda or quality_target",
    )
    cal.add_argument(
        "--position",
        choices=("first", "last"),
        default="first",
        help="--by: fitted rules before the route's own rules (default: every group is fitted on all its "
        "rows) or after them (the route's rules keep precedence; only rows they leave to the default are "
        "fitted)",
    )
    cal.add_argument(
        "--min-rows",
        type=int,
        default=10,
        help="--by: groups with fewer train rows are left to the route's default (default 10)",
    )
    cal.add_argument("--out", required=True, metavar="FILE", help="where to write the calibrated policy YAML")
    cal.set_defaults(handler=handle_calibrate)


@guard
def handle_calibrate(args: argparse.Namespace) -> int:
    from mm_litellm.evaluation.baselines import random_at_cost
    from mm_litellm.evaluation.calibrate import Target, calibrate_knob
    from mm_litellm.evaluation.dataset import load_dataset
    from mm_litellm.evaluation.groups import calibrate_groups
    from mm_litellm.evaluation.knobs import policy_from_document, read_document, rebase_paths
    from mm_litellm.evaluation.report import render_calibration
    from mm_litellm.evaluation.session import Evaluation
    from mm_litellm.policy import load_policy

    started = time.perf_counter()
    path = policy_path(args.policy)
    policy, document = load_policy(path), read_document(path)
    config = config_from_args(args)
    target = Target(args.target, args.min_quality if args.target == "quality" else args.max_cost)
    rows = load_dataset(args.data, dedupe=args.dedupe)
    train = Evaluation(rows, policy, config, split="train", resplit=config.resplit, data_source=args.data)
    test = Evaluation(rows, policy, config, split="test", resplit=config.resplit, data_source=args.data)
    if args.knob:
        if not args.values:
            fail("--knob needs --values")
        values = knob_values(train, policy, args.knob, args.values)
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
    emit(args, report, render_calibration(report))
    return 0


def _write_policy(
    out: str, document: dict[str, Any], source: str, args: argparse.Namespace, report: dict[str, Any]
) -> None:
    fit = report["fit"]
    what = (
        f"{fit['knob']} = {fit['value']}"
        if fit["method"] == "knob"
        else f"one model per value of {fit['fact']}; groups under {fit['min_rows']} train rows: default"
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
