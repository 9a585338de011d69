"""Reports: usage_report by dimension, the CLI dashboard, CSV/JSON export; leases settle exactly."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from budget_support import BASE, MESSAGES
from sqlalchemy import text

import mm_litellm
from mm_litellm.budget.report import parse_time
from mm_litellm.cli.main import main


@pytest.fixture
def recorded(budget_policy: Any, mm_mock: Any, service: Any) -> Any:
    policy = budget_policy("""
budgets:
  timezone: Europe/Berlin
  limits:
    - {name: daily, limit_usd: 100, alert_at: [0.0000001]}
    - {name: per-user, scope: user, window: monthly, limit_tokens: 100000}
""")
    mm_mock.script("small", "ok", prompt_tokens=10, completion_tokens=10)
    mm_mock.script("big", "ok", prompt_tokens=10, completion_tokens=10)
    mm_mock.script("local", "ok", prompt_tokens=5, completion_tokens=5)
    for user, model, tags in [
        ("alice", "small", ["etl"]),
        ("alice", "big", ["etl", "nightly"]),
        ("bob", "small", []),
        ("bob", "local", ["chat"]),
    ]:
        mm_litellm.completion(
            model=model, messages=MESSAGES, max_tokens=20, user=user, metadata={"tags": tags}
        )
    assert service().flush()
    return policy


def test_report_by_model_user_tag_day(recorded: Any) -> None:
    by_model = mm_litellm.usage_report(recorded, by="model")
    assert by_model.totals.requests == 4 and by_model.totals.total_tokens == 70
    assert by_model.totals.cost_usd == pytest.approx(20 * 0.001 * 2 + 20 * 0.004)
    assert [(g.key, g.requests, round(g.cost_usd, 6)) for g in by_model.groups] == [
        ("big", 1, 0.08),
        ("small", 2, 0.04),
        ("local", 1, 0.0),
    ]
    assert [(g.key, g.unpriced_calls) for g in by_model.unpriced] == [("local", 1)]
    by_user = {g.key: g for g in mm_litellm.usage_report(recorded, by="user").groups}
    assert by_user["alice"].cost_usd == pytest.approx(0.1) and by_user["bob"].unpriced_calls == 1
    by_tag = {g.key: g.requests for g in mm_litellm.usage_report(recorded, by="tag").groups}
    assert by_tag == {"etl": 2, "nightly": 1, "chat": 1, "-": 1}
    by_day = mm_litellm.usage_report(recorded, by="day")
    assert len(by_day.groups) == 1 and by_day.groups[0].requests == 4
    budgets = {(b.budget, b.scope_key): b for b in by_model.budgets}
    assert budgets[("daily", "*")].spent == pytest.approx(0.12) and budgets[("daily", "*")].alerts_sent == [
        1e-7
    ]
    assert budgets[("per-user", "alice")].spent == 40 and budgets[("per-user", "alice")].unit == "tokens"
    assert mm_litellm.usage_report(recorded, since=datetime.now() + timedelta(days=1)).totals.requests == 0


def test_cli_dashboard_and_exports(recorded: Any, tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(
        BASE + "budgets:\n  timezone: Europe/Berlin\n  limits: [{name: daily, limit_usd: 100}]\n"
    )
    assert main(["usage", "--policy", str(policy), "--since", "7d"]) == 0
    out = capsys.readouterr().out
    assert (
        "Token Usage & Cost (last 7d)" in out
        and "Total Cost:    $0.1200  (+ 1 unpriced calls, not included)" in out
    )
    assert "Requests:      4" in out and "Unpriced calls" in out and "local 1 calls, 10 tokens" in out
    assert "Budget daily, daily: $0.1200 / $100.00 (0% used)" in out
    assert main(["usage", "--policy", str(policy), "--by", "user", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {g["key"] for g in data["groups"]} == {"alice", "bob"} and data["totals"]["unpriced_calls"] == 1
    assert main(["usage", "export", "--policy", str(policy), "--csv", str(tmp_path / "costs.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "costs.csv").open()))
    assert len(rows) == 4 and {r["model"] for r in rows} == {"small", "big", "local"}
    unpriced = next(r for r in rows if r["model"] == "local")
    assert unpriced["cost_usd"] == "" and unpriced["priced"] == "False" and unpriced["user"] == "bob"
    assert main(["usage", "export", "--policy", str(policy), "--format", "json", "--since", "all"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 4
    with pytest.raises(SystemExit):
        main(["usage", "--policy", str(policy), "--by", "colour"])
    assert "--by 'colour' is not known; allowed: model, route" in capsys.readouterr().err


def test_parse_time_forms() -> None:
    now = datetime(2026, 3, 1, 12, 0)
    assert parse_time("24h", now) == datetime(2026, 2, 28, 12, 0)
    assert parse_time("2w", now) == datetime(2026, 2, 15, 12, 0)
    assert parse_time("2026-01-31") == datetime(2026, 1, 31)
    with pytest.raises(ValueError, match="'yesterday' is not a time: use 30m, 24h, 7d, 2w or an ISO date"):
        parse_time("yesterday")


def test_leases_admit_far_from_the_limit_and_settle_exactly(
    budget_policy: Any, mm_mock: Any, service: Any
) -> None:
    budget_policy("budgets: {limits: [{name: big-cap, limit_usd: 1000}]}\n")
    mm_mock.script("small", "ok", prompt_tokens=10, completion_tokens=10)
    from mm_litellm.budget.service import BudgetService

    calls = []
    original = BudgetService._reserve_in_store

    def counting(self: Any, *args: Any) -> Any:
        calls.append(1)
        return original(self, *args)

    BudgetService._reserve_in_store = counting  # type: ignore[method-assign]
    try:
        for _ in range(40):
            mm_litellm.completion(model="small", messages=MESSAGES, max_tokens=20)
    finally:
        BudgetService._reserve_in_store = original  # type: ignore[method-assign]
    assert len(calls) <= 3  # one store round trip per 33 calls
    svc = service()
    assert svc.flush()
    with svc.store.engine.connect() as c:
        spent, reserved = c.execute(text("SELECT spent_usd, reserved_usd FROM mm_budget_counter")).one()
        holds = c.execute(text("SELECT COUNT(*) FROM mm_budget_reservation")).scalar()
    assert spent == pytest.approx(40 * 20 * 0.001) and reserved == pytest.approx(0.0, abs=1e-9) and holds == 0
