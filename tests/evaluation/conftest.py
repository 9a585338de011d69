"""Synthetic outcome datasets whose right answers are known by construction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

TWO_MODEL_POLICY = """
version: 1
models:
  weak:
    litellm_params: {model: openai/weak-model}
    pricing: {input_per_mtok: 1, output_per_mtok: 1}
  strong:
    litellm_params: {model: openai/strong-model}
    pricing: {input_per_mtok: 10, output_per_mtok: 10}
routes:
  auto:
    rules:
      - {name: long, when: {input_tokens: {gt: 50}}, use: strong}
    default: weak
default_route: auto
"""

ALWAYS_WEAK = """
version: 1
models:
  weak: {litellm_params: {model: openai/weak-model}}
  strong: {litellm_params: {model: openai/strong-model}}
routes:
  auto: {default: weak}
default_route: auto
"""


def make_rows(n_easy: int = 60, n_hard: int = 40) -> list[dict[str, Any]]:
    """Easy rows: short prompt, both models right. Hard rows: long prompt, only the strong one right.

    Costs are explicit: weak $0.001 and strong $0.010 per request, so always-weak costs $1 per
    1k, always-strong $10, and a router sending exactly the hard rows to strong is the oracle.
    """
    rows = []
    for i in range(n_easy + n_hard):
        hard = i >= n_easy
        rows.append(
            {
                "id": f"r{i}",
                "task": "hard" if hard else "easy",
                "split": None,
                "prompt": ("x" * 400) if hard else "short question",
                "labels": {"category": "B" if hard else "A"},
                "outcomes": {
                    "weak-model": {"score": 0.0 if hard else 1.0, "cost_usd": 0.001},
                    "strong-model": {"score": 1.0, "cost_usd": 0.010},
                },
            }
        )
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def synthetic(tmp_path: Path) -> dict[str, Path]:
    """A dataset file, the two-model policy and an always-weak policy, on disk."""
    data = write_jsonl(tmp_path / "data.jsonl", make_rows())
    policy = tmp_path / "policy.yaml"
    policy.write_text(TWO_MODEL_POLICY, encoding="utf-8")
    weak = tmp_path / "weak.yaml"
    weak.write_text(ALWAYS_WEAK, encoding="utf-8")
    return {"data": data, "policy": policy, "weak": weak, "dir": tmp_path}


@pytest.fixture
def rows_factory() -> Any:
    return make_rows
