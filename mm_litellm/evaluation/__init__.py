"""Offline policy evaluation: replay recorded outcomes through the routing engine, no provider call.

``load_dataset`` reads outcome files; ``Evaluation`` prices them once and evaluates any policy
beside the baselines; ``diff_policies``, ``calibrate_knob`` / ``calibrate_groups`` and the curve
metrics build on it. The CLI is ``mm-litellm policy evaluate | diff | calibrate | export-outcomes``.
Docs: ``docs/evaluation.md``.
"""

from __future__ import annotations

from mm_litellm.evaluation.calibrate import Target, calibrate_knob
from mm_litellm.evaluation.config import EvalConfig, load_eval_config
from mm_litellm.evaluation.dataset import Outcome, OutcomeRow, load_dataset, write_dataset
from mm_litellm.evaluation.diff import diff_policies
from mm_litellm.evaluation.errors import EvaluationError
from mm_litellm.evaluation.export import LedgerCall, export_rows
from mm_litellm.evaluation.groups import calibrate_groups
from mm_litellm.evaluation.metrics import aiq, apgr, cpt, pgr
from mm_litellm.evaluation.session import Evaluation

__all__ = [
    "EvalConfig",
    "Evaluation",
    "EvaluationError",
    "LedgerCall",
    "Outcome",
    "OutcomeRow",
    "Target",
    "aiq",
    "apgr",
    "calibrate_groups",
    "calibrate_knob",
    "cpt",
    "diff_policies",
    "export_rows",
    "load_dataset",
    "load_eval_config",
    "pgr",
    "write_dataset",
]
