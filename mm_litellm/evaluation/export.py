"""Export the project's own traffic as an outcome dataset, so a team evaluates on its own requests.

Input is a small interface, not another package's classes:

- ``LedgerCall``: the fields of one ledger row (the budget ledger's ``mm_ledger`` table has
  them: ``call_id, model, prompt_tokens, completion_tokens, cost_usd, task, route, tags,
  parent_id, status``). :func:`read_ledger` reads them from a database by table reflection.
- scores: ``call_id -> 0..1``, from the prompt registry's recorded outcomes
  (``prompt_assignments.score`` / ``success``, written by ``record_outcome``; see
  :func:`read_recorded_outcomes`) or from a user's own labels (:func:`read_scores_file`).
- prompts (optional): ``call_id -> prompt text``. The ledger stores no prompt text (by design),
  so without it the exported rows carry only metadata (task, tags, route) for the rules to test.

Calls that share a ``parent_id`` (an ensemble's members, whose ``parent_id`` is the ensemble
call's id, and escalation hops, whose ``parent_id`` is the first call's id, together with that
call) are one prompt answered by several models: they become one row with several outcomes,
which is what a replay needs to compare models. A call answered by one model only is still
exported; a replay that routes it elsewhere drops it (counted in the report).
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mm_litellm.evaluation.dataset import Outcome, OutcomeRow
from mm_litellm.evaluation.errors import EvaluationError

__all__ = ["LedgerCall", "export_rows", "read_ledger", "read_recorded_outcomes", "read_scores_file"]

LEDGER_TABLE = "mm_ledger"
OUTCOME_TABLE = "prompt_assignments"


@dataclass(frozen=True, slots=True)
class LedgerCall:
    """One recorded call, as the exporter needs it."""

    call_id: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    task: str | None = None
    route: str | None = None
    tags: tuple[str, ...] = ()
    parent_id: str | None = None
    status: str = "success"


def export_rows(
    calls: Iterable[LedgerCall],
    scores: Mapping[str, float],
    *,
    prompts: Mapping[str, str] | None = None,
    only_scored: bool = True,
) -> list[OutcomeRow]:
    """Group calls into outcome rows (by ``parent_id``, else by call), attaching scores and prompts.

    Failed calls are skipped (they have no answer to score). With ``only_scored``, a row whose
    calls have no score at all is left out.
    """
    groups: dict[str, list[LedgerCall]] = {}
    for call in calls:
        if call.status != "success":
            continue
        groups.setdefault(call.parent_id or call.call_id, []).append(call)
    prompts = prompts or {}
    rows = []
    for key, members in groups.items():
        outcomes: dict[str, Outcome] = {}
        for c in members:
            earlier = outcomes.get(c.model)
            if earlier is not None and (earlier.score is not None or scores.get(c.call_id) is None):
                continue  # one model twice in a group (an ensemble member, then a hop): the first scored
            outcomes[c.model] = Outcome(
                score=scores.get(c.call_id),
                cost_usd=c.cost_usd,
                prompt_tokens=c.prompt_tokens,
                completion_tokens=c.completion_tokens,
            )
        if only_scored and all(o.score is None for o in outcomes.values()):
            continue
        first = members[0]
        text = next((prompts[c.call_id] for c in members if c.call_id in prompts), prompts.get(key, ""))
        metadata: dict[str, Any] = {"tags": list(first.tags)} if first.tags else {}
        if first.route:
            metadata["route"] = first.route
        rows.append(
            OutcomeRow(
                id=key,
                prompt=text,
                outcomes=outcomes,
                task=first.task,
                prompt_tokens=first.prompt_tokens,
                labels={"source": "mm_litellm ledger", "has_prompt_text": bool(text)},
                metadata=metadata,
            )
        )
    return rows


def _engine(url: str) -> Any:
    from sqlalchemy import create_engine

    return create_engine(url)


def read_ledger(url: str) -> list[LedgerCall]:
    """Every call of the ledger table at the SQLAlchemy ``url`` (reflected: no import of its models)."""
    from sqlalchemy import MetaData, Table, select
    from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

    try:
        engine = _engine(url)
        table = Table(LEDGER_TABLE, MetaData(), autoload_with=engine)
        with engine.connect() as conn:
            records = conn.execute(select(table)).mappings().all()
    except NoSuchTableError:
        raise EvaluationError(
            f"{url}: no '{LEDGER_TABLE}' table: is it the database of a policy with a ledger?"
        ) from None
    except SQLAlchemyError as exc:
        raise EvaluationError(f"{url}: cannot read the ledger: {exc}") from exc
    calls = []
    for r in records:
        tags = r.get("tags") or ""
        calls.append(
            LedgerCall(
                call_id=str(r["call_id"]),
                model=str(r.get("model") or r.get("requested_model") or "?"),
                prompt_tokens=r.get("prompt_tokens"),
                completion_tokens=r.get("completion_tokens"),
                cost_usd=r.get("cost_usd"),
                task=r.get("task"),
                route=r.get("route"),
                tags=tuple(t for t in str(tags).split(",") if t),
                parent_id=r.get("parent_id"),
                status=str(r.get("status") or "success"),
            )
        )
    return calls


def read_recorded_outcomes(url: str, *, overridden: Collection[str] = ()) -> dict[str, float]:
    """Scores recorded with ``record_outcome`` (``success`` counts as 1/0), by call id.

    Calls in ``overridden`` (scored by the user's own labels) are left out.
    """
    from sqlalchemy import MetaData, Table, select
    from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

    try:
        engine = _engine(url)
        table = Table(OUTCOME_TABLE, MetaData(), autoload_with=engine)
        with engine.connect() as conn:
            records = conn.execute(select(table)).mappings().all()
    except NoSuchTableError:
        return {}
    except SQLAlchemyError as exc:
        raise EvaluationError(f"{url}: cannot read recorded outcomes: {exc}") from exc
    scores: dict[str, float] = {}
    outside: list[str] = []
    for r in records:
        if str(r["call_id"]) in overridden:
            continue
        if r.get("score") is not None:
            value = float(r["score"])
            if not 0 <= value <= 1:
                outside.append(str(r["call_id"]))
            scores[str(r["call_id"])] = value
        elif r.get("success") is not None:
            scores[str(r["call_id"])] = 1.0 if r["success"] else 0.0
    if outside:
        raise EvaluationError(
            f"{len(outside)} recorded score(s) are outside 0..1 (e.g. call '{outside[0]}'); outcome datasets "
            "score 0..1: give rescaled scores with --scores FILE, which override the recorded ones"
        )
    return scores


def read_scores_file(path: str | os.PathLike[str]) -> dict[str, float]:
    """A user's labels: JSON Lines ``{"call_id": ..., "score": 0..1}`` (or ``"success": true``)."""
    scores: dict[str, float] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EvaluationError(f"{path}: cannot read the scores file: {exc.strerror}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            call_id = str(item["call_id"])
            value = item["score"] if "score" in item else (1.0 if item["success"] else 0.0)
            value = float(value)
            if not 0 <= value <= 1:
                raise ValueError("score must be between 0 and 1")
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise EvaluationError(
                f'{path}:{number}: expected {{"call_id", "score" 0..1 or "success"}}: {exc}'
            ) from None
        scores[call_id] = value
    return scores
