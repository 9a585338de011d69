"""Own traffic -> outcome dataset: grouping by parent, scores attached, and the database readers."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path

import pytest
import sqlalchemy as sa

from mm_litellm.cli.main import main
from mm_litellm.evaluation.dataset import load_dataset
from mm_litellm.evaluation.errors import EvaluationError
from mm_litellm.evaluation.export import (
    LedgerCall,
    export_rows,
    read_ledger,
    read_recorded_outcomes,
    read_scores_file,
)


def test_ensemble_members_become_one_row_with_several_outcomes() -> None:
    calls = [
        LedgerCall("a1", "small", 10, 5, 0.001, task="math", parent_id="p1", tags=("t",)),
        LedgerCall("a2", "big", 10, 7, 0.010, task="math", parent_id="p1"),
        LedgerCall("b1", "small", 3, 2, 0.0005, task="chat"),
        LedgerCall("c1", "big", 3, 2, 0.002, status="error"),
        LedgerCall("d1", "small", 3, 2, 0.0005),
    ]
    rows = export_rows(calls, {"a1": 0.0, "a2": 1.0, "b1": 1.0}, prompts={"a1": "2+2?"})
    assert [r.id for r in rows] == ["p1", "b1"]  # the failed call and the unscored one are left out
    p1 = rows[0]
    assert p1.prompt == "2+2?" and p1.task == "math" and p1.metadata == {"tags": ["t"]}
    assert {m: (o.score, o.cost_usd) for m, o in p1.outcomes.items()} == {
        "small": (0.0, 0.001),
        "big": (1.0, 0.010),
    }


def test_an_escalated_call_and_its_hops_are_one_row_and_a_repeated_model_keeps_its_scored_answer() -> None:
    calls = [  # an ensemble call (small + big members) whose unsure answer escalated to big again
        LedgerCall("e1", "ensemble/pair", 20, 12, 0.011),
        LedgerCall("m1", "small", 10, 5, 0.001, parent_id="e1"),
        LedgerCall("m2", "big", 10, 7, 0.010, parent_id="e1"),
        LedgerCall("h1", "big", 10, 9, 0.012, parent_id="e1"),
    ]
    (row,) = export_rows(calls, {"m1": 0.0, "h1": 1.0})
    assert row.id == "e1"
    assert {m: (o.score, o.cost_usd) for m, o in row.outcomes.items()} == {
        "ensemble/pair": (None, 0.011),
        "small": (0.0, 0.001),
        "big": (1.0, 0.012),
    }
    (row,) = export_rows(calls, {"m1": 0.0, "m2": 0.5, "h1": 1.0})
    assert row.outcomes["big"].score == 0.5  # both scored: the first answer of that model


def test_reads_ledger_and_recorded_outcomes_by_reflection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'mm.db'}"
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    ledger = sa.Table(
        "mm_ledger",
        meta,
        sa.Column("call_id", sa.String, primary_key=True),
        sa.Column("model", sa.String),
        sa.Column("prompt_tokens", sa.Integer),
        sa.Column("completion_tokens", sa.Integer),
        sa.Column("cost_usd", sa.Float),
        sa.Column("task", sa.String),
        sa.Column("route", sa.String),
        sa.Column("tags", sa.String),
        sa.Column("parent_id", sa.String),
        sa.Column("status", sa.String),
    )
    outcomes = sa.Table(
        "prompt_assignments",
        meta,
        sa.Column("call_id", sa.String, primary_key=True),
        sa.Column("success", sa.Boolean),
        sa.Column("score", sa.Float),
    )
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            ledger.insert(),
            [
                {
                    "call_id": "x",
                    "model": "small",
                    "prompt_tokens": 5,
                    "completion_tokens": 1,
                    "cost_usd": 0.1,
                    "task": "qa",
                    "route": "auto",
                    "tags": "a,b",
                    "parent_id": None,
                    "status": "success",
                },
                {
                    "call_id": "y",
                    "model": "big",
                    "prompt_tokens": 5,
                    "completion_tokens": 1,
                    "cost_usd": 0.3,
                    "task": "qa",
                    "route": "auto",
                    "tags": "",
                    "parent_id": None,
                    "status": "success",
                },
            ],
        )
        conn.execute(outcomes.insert(), [{"call_id": "x", "success": True, "score": None}])
    calls = read_ledger(url)
    assert calls[0] == LedgerCall("x", "small", 5, 1, 0.1, "qa", "auto", ("a", "b"), None, "success")
    assert read_recorded_outcomes(url) == {"x": 1.0}
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"call_id": "y", "score": 0.5}) + "\n")
    out = tmp_path / "own.jsonl.gz"
    assert main(["policy", "export-outcomes", "--db", url, "--scores", str(labels), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote 2 rows to {out} from 2 ledger calls and 2 scores"
    rows = load_dataset(out)
    assert [(r.id, r.outcomes[next(iter(r.outcomes))].score) for r in rows] == [("x", 1.0), ("y", 0.5)]


def test_missing_ledger_and_bad_scores_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="no 'mm_ledger' table"):
        read_ledger(f"sqlite:///{tmp_path / 'empty.db'}")
    bad = tmp_path / "s.jsonl"
    bad.write_text('{"call_id": "a", "score": 3}\n')
    with pytest.raises(EvaluationError, match=r"s.jsonl:1: expected"):
        read_scores_file(bad)


def test_reads_outcomes_recorded_in_the_prompt_registrys_own_table(tmp_path: Path) -> None:
    from sqlmodel import Session, SQLModel

    from mm_litellm.prompts.store import Assignment

    url = f"sqlite:///{tmp_path / 'p.db'}"
    engine = sa.create_engine(url)
    SQLModel.metadata.create_all(engine, tables=[Assignment.__table__])  # type: ignore[attr-defined]
    with Session(engine) as s:
        s.add(Assignment(call_id="c1", experiment="e", variant="A", prompt_id="p", version=1, success=False))
        s.add(Assignment(call_id="c2", experiment="e", variant="B", prompt_id="p", version=2, score=0.75))
        s.add(Assignment(call_id="c3", experiment="e", variant="B", prompt_id="p", version=2))
        s.commit()
    assert read_recorded_outcomes(url) == {"c1": 0.0, "c2": 0.75}


def test_recorded_scores_outside_0_1_must_be_rescaled(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    table = sa.Table(
        "prompt_assignments",
        meta,
        sa.Column("call_id", sa.String, primary_key=True),
        sa.Column("success", sa.Boolean),
        sa.Column("score", sa.Float),
    )
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"call_id": "a", "success": None, "score": 7.0}])
    with pytest.raises(EvaluationError, match=r"1 recorded score\(s\) are outside 0..1 \(e.g. call 'a'\)"):
        read_recorded_outcomes(url)
    assert read_recorded_outcomes(url, overridden={"a"}) == {}


def test_exports_the_budget_ledger_written_by_its_own_schema(tmp_path: Path) -> None:
    from datetime import datetime

    from sqlmodel import Session

    from mm_litellm.budget.models import LedgerRow
    from mm_litellm.storage import ensure_schema, make_engine

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = make_engine(url)
    ensure_schema(engine)
    now = datetime.now(UTC)
    with Session(engine) as s:
        # an ensemble call (its own ledger row) and its two members (parent_id = the ensemble's call id)
        s.add(
            LedgerRow(
                call_id="e1",
                ts=now,
                model="ensemble/vote",
                prompt_tokens=24,
                completion_tokens=12,
                cost_usd=0.0021,
                task="math",
                route="auto",
                tags=",team-a,",
            )
        )
        s.add(
            LedgerRow(
                call_id="m1",
                ts=now,
                model="gpt-4o-mini",
                prompt_tokens=12,
                completion_tokens=3,
                cost_usd=0.0001,
                task="math",
                parent_id="e1",
                tags=",team-a,",
            )
        )
        s.add(
            LedgerRow(
                call_id="m2",
                ts=now,
                model="gpt-4o",
                prompt_tokens=12,
                completion_tokens=9,
                cost_usd=0.002,
                task="math",
                parent_id="e1",
                tags=",team-a,",
            )
        )
        s.add(LedgerRow(call_id="z", ts=now, model="gpt-4o", status="error", error_class="Timeout"))
        s.commit()
    rows = export_rows(read_ledger(url), {"e1": 1.0, "m1": 0.0, "m2": 1.0})
    assert len(rows) == 1
    row = rows[0]
    assert row.id == "e1" and row.task == "math" and row.metadata == {"tags": ["team-a"], "route": "auto"}
    assert {m: (o.score, o.cost_usd, o.completion_tokens) for m, o in row.outcomes.items()} == {
        "ensemble/vote": (1.0, 0.0021, 12),
        "gpt-4o-mini": (0.0, 0.0001, 3),
        "gpt-4o": (1.0, 0.002, 9),
    }


def test_export_cli_takes_the_database_from_the_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mm_litellm.storage import DATABASE_ENV, ensure_schema, make_engine

    monkeypatch.delenv(DATABASE_ENV, raising=False)  # the test set-up points it at a scratch database

    db = tmp_path / "own.db"
    ensure_schema(make_engine(f"sqlite:///{db}"))
    policy = tmp_path / "p.yaml"
    policy.write_text(f"version: 1\ndatabase: {{url: 'sqlite:///{db}'}}\n")
    out = tmp_path / "out.jsonl"
    assert main(["policy", "export-outcomes", "--policy", str(policy), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote 0 rows to {out} from 0 ledger calls and 0 scores"
