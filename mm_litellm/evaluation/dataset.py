"""Outcome datasets: one prompt a line, what each model scored on it and what it cost.

The format (JSON Lines, optionally gzipped; ``docs/evaluation.md`` documents it)::

    {"id": "mmlu/anatomy/3",                 # unique; seeds the train/test split
     "task": "mmlu-anatomy",                 # optional; the per-task breakdown groups by it
     "split": "train" | "test" | null,       # optional; null rows get a seeded split
     "prompt": "...",                        # the user message the router sees
     "messages": [...],                      # optional: full chat messages instead of prompt
     "prompt_tokens": 46,                    # optional; for pricing rows without cost_usd
     "labels": {"task_type": "...", ...},    # optional; --meta-label exposes keys as metadata
     "metadata": {...},                      # optional; request metadata the rules can test
     "outcomes": {"<model>": {"score": 0..1 | null, "cost_usd": float | null,
                              "prompt_tokens": int | null, "completion_tokens": int | null,
                              "answer": str | null}}}

It is the format of ``shared/data/routing`` plus ``messages`` and ``metadata``, so recorded
public evaluations and a team's own exported traffic (``export.py``) load the same way.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mm_litellm.evaluation.errors import EvaluationError

__all__ = ["Outcome", "OutcomeRow", "Rows", "assign_split", "load_dataset", "row_to_json", "write_dataset"]

SPLITS = ("train", "test")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one model did on one prompt."""

    score: float | None
    cost_usd: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    answer: str | None = None


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    """One recorded prompt and every model's outcome on it."""

    id: str
    prompt: str
    outcomes: Mapping[str, Outcome]
    task: str | None = None
    split: str | None = None
    prompt_tokens: int | None = None
    labels: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    messages: tuple[Mapping[str, Any], ...] | None = None

    def chat(self) -> list[Mapping[str, Any]]:
        """The messages the router sees: recorded ones, else the prompt as one user message."""
        if self.messages is not None:
            return list(self.messages)
        return [{"role": "user", "content": self.prompt}]


def _open(path: Path, mode: str) -> Any:
    if path.suffix == ".gz":
        return gzip.open(path, mode + "t", encoding="utf-8")
    return path.open(mode, encoding="utf-8")


class Rows(list[OutcomeRow]):
    """The rows of a dataset, and how many duplicated ids ``dedupe`` left out."""

    duplicates: int = 0


def load_dataset(path: str | os.PathLike[str], *, dedupe: bool = False) -> Rows:
    """Read a JSONL (or ``.jsonl.gz``) outcome file; every bad line is reported with its number.

    Rows without outcomes (e.g. a labels-only file) are refused: there is nothing to evaluate.
    A repeated id is a bad line too (ids seed the split), unless ``dedupe``: then the first row
    of each id is kept and the others are counted in ``rows.duplicates``.
    """
    source = Path(path)
    try:
        handle = _open(source, "r")
    except OSError as exc:
        raise EvaluationError(f"{source}: cannot read the dataset: {exc.strerror}") from exc
    rows = Rows()
    problems: list[str] = []
    seen: dict[str, int] = {}
    duplicates = 0
    with handle:
        try:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = _parse(json.loads(line))
                except (json.JSONDecodeError, ValueError, TypeError) as exc:
                    problems.append(f"{source}:{number}: {exc}")
                    continue
                if row.id in seen:
                    duplicates += 1
                    if not dedupe:
                        problems.append(
                            f"{source}:{number}: duplicate id '{row.id}' (first on line {seen[row.id]})"
                        )
                    continue
                seen[row.id] = number
                rows.append(row)
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            problems.append(f"{source}: unreadable ({exc})")
    if problems:
        shown = "\n".join(problems[:20])
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        hint = (
            f"\n{duplicates} duplicate id(s): ids must be unique (they seed the split); --dedupe keeps "
            "the first row of each"
            if duplicates and not dedupe
            else ""
        )
        raise EvaluationError(f"{len(problems)} bad line(s) in the dataset:\n{shown}{more}{hint}")
    if not rows:
        raise EvaluationError(f"{source}: no rows")
    rows.duplicates = duplicates
    return rows


def _int_or_none(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{what} must be a non-negative number or null")
    return int(value)


def _float_or_none(value: Any, what: str, upper: float | None = None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{what} must be a non-negative number or null")
    if upper is not None and value > upper:
        raise ValueError(f"{what} must be between 0 and {upper}")
    return float(value)


def _parse(data: Any) -> OutcomeRow:
    if not isinstance(data, dict):
        raise ValueError("a row must be a JSON object")
    row_id = data.get("id")
    if not isinstance(row_id, str | int) or row_id == "":
        raise ValueError("'id' (a string) is required")
    outcomes = data.get("outcomes")
    if not isinstance(outcomes, dict) or not outcomes:
        raise ValueError(f"row '{row_id}': 'outcomes' must map model name -> {{score, cost_usd, ...}}")
    parsed: dict[str, Outcome] = {}
    for model, raw in outcomes.items():
        if not isinstance(raw, dict):
            raise ValueError(f"row '{row_id}': outcome of '{model}' must be an object")
        where = f"row '{row_id}' model '{model}'"
        answer = raw.get("answer")
        parsed[str(model)] = Outcome(
            score=_float_or_none(raw.get("score"), f"{where}: score", upper=1.0),
            cost_usd=_float_or_none(raw.get("cost_usd"), f"{where}: cost_usd"),
            prompt_tokens=_int_or_none(raw.get("prompt_tokens"), f"{where}: prompt_tokens"),
            completion_tokens=_int_or_none(raw.get("completion_tokens"), f"{where}: completion_tokens"),
            answer=answer if isinstance(answer, str) else None,
        )
    messages = data.get("messages")
    prompt = data.get("prompt")
    if messages is not None:
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise ValueError(f"row '{row_id}': 'messages' must be a list of chat messages")
        messages = tuple(messages)
        if not isinstance(prompt, str):
            prompt = next((str(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    elif not isinstance(prompt, str):
        raise ValueError(f"row '{row_id}': 'prompt' (a string) or 'messages' is required")
    split = data.get("split")
    if split is not None and split not in SPLITS:
        raise ValueError(f"row '{row_id}': split must be one of {', '.join(SPLITS)} or null")
    labels = data.get("labels") or {}
    metadata = data.get("metadata") or {}
    if not isinstance(labels, dict) or not isinstance(metadata, dict):
        raise ValueError(f"row '{row_id}': 'labels' and 'metadata' must be objects")
    task = data.get("task")
    return OutcomeRow(
        id=str(row_id),
        prompt=prompt,
        outcomes=parsed,
        task=str(task) if task is not None else None,
        split=split,
        prompt_tokens=_int_or_none(data.get("prompt_tokens"), f"row '{row_id}': prompt_tokens"),
        labels=labels,
        metadata=metadata,
        messages=messages,
    )


def assign_split(row_id: str, seed: int, test_fraction: float) -> str:
    """A stable seeded split: the same id, seed and fraction give the same split on any machine."""
    digest = hashlib.sha256(f"{seed}:{row_id}".encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2**64 < test_fraction else "train"


def row_to_json(row: OutcomeRow) -> dict[str, Any]:
    """The row as the documented JSON object (the inverse of loading)."""
    out: dict[str, Any] = {"id": row.id, "task": row.task, "split": row.split, "prompt": row.prompt}
    if row.messages is not None:
        out["messages"] = list(row.messages)
    if row.prompt_tokens is not None:
        out["prompt_tokens"] = row.prompt_tokens
    out["labels"] = dict(row.labels)
    if row.metadata:
        out["metadata"] = dict(row.metadata)
    out["outcomes"] = {
        model: {
            k: v
            for k, v in (
                ("score", o.score),
                ("cost_usd", o.cost_usd),
                ("prompt_tokens", o.prompt_tokens),
                ("completion_tokens", o.completion_tokens),
                ("answer", o.answer),
            )
            if v is not None or k == "score"
        }
        for model, o in row.outcomes.items()
    }
    return out


def write_dataset(rows: Iterable[OutcomeRow], path: str | os.PathLike[str]) -> int:
    """Write rows as JSONL (gzipped when the name ends in ``.gz``); returns the count."""
    target = Path(path)
    count = 0
    with _open(target, "w") as handle:
        for row in rows:
            handle.write(json.dumps(row_to_json(row), ensure_ascii=False) + "\n")
            count += 1
    return count
