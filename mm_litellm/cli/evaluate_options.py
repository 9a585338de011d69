"""The options ``policy evaluate | diff | calibrate`` share: the data, the eval config, the output.

Also the steps they share: the policy path, the evaluation config from the flags, ``--values``,
printing or writing the report, and turning library errors into one clear CLI line.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from mm_litellm.cli.common import DEFAULT_POLICY, fail
from mm_litellm.errors import MMLiteLLMError, PolicyError
from mm_litellm.runtime import POLICY_ENV

__all__ = ["add_data_options", "config_from_args", "emit", "guard", "knob_values", "policy_path"]


def add_data_options(p: argparse.ArgumentParser) -> None:
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


def policy_path(path: str | None) -> str:
    chosen = path or os.environ.get(POLICY_ENV) or (str(DEFAULT_POLICY) if DEFAULT_POLICY.exists() else None)
    if chosen is None:
        fail(f"no policy file: pass --policy FILE or set {POLICY_ENV}")
    return chosen


def config_from_args(args: argparse.Namespace) -> Any:
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


def knob_values(evaluation: Any, policy: Any, knob: str, text: str) -> list[Any]:
    """``--values``: a list, START:STOP:COUNT, or 'auto' (a learned route's knob, from its predictions)."""
    from mm_litellm.evaluation.knobs import parse_values

    if text.strip() == "auto":
        from mm_litellm.learned.evaluate import auto_values

        return auto_values(evaluation, policy, knob)
    return parse_values(text)


def emit(args: argparse.Namespace, report: dict[str, Any], text: str) -> None:
    clean = {k: v for k, v in report.items() if not k.startswith("_")}
    if args.output:
        Path(args.output).write_text(json.dumps(clean, indent=2, default=str) + "\n", encoding="utf-8")
    print(json.dumps(clean, indent=2, default=str) if args.json else text)


def guard(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(fn(args) or 0)
        except PolicyError as exc:
            fail(f"invalid policy:\n{exc}")
        except MMLiteLLMError as exc:
            fail(str(exc))

    return run
