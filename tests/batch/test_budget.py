"""Budget blocks in batches: a real BudgetExceeded from the policy's budgets stops new requests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mm_litellm
from mm_litellm import BudgetExceeded
from mm_litellm.cli.main import main

POLICY = """
version: 1
models:
  small:
    litellm_params: {{model: openai/gpt-4o-mini, api_key: test}}
    pricing: {{input_per_mtok: 1000, output_per_mtok: 1000}}
router: {{num_retries: 0}}
routes:
  auto: {{default: small}}
default_route: auto
budgets:
  limits: [{{name: daily, window: daily, limit_usd: {limit}}}]
"""
"""small costs $0.001 per token."""


@pytest.fixture(autouse=True)
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ledger per test (the environment variable wins over the policy's database)."""
    path = tmp_path / "ledger.db"
    monkeypatch.setenv("MM_LITELLM_DATABASE_URL", f"sqlite:///{path}")
    return path


def per_call(prompt: str, max_tokens: int) -> float:
    from mm_litellm.integrations.prices import count_prompt_tokens

    return (
        count_prompt_tokens("openai/gpt-4o-mini", [{"role": "user", "content": prompt}]) + max_tokens
    ) * 0.001


def test_a_budget_block_stops_the_batch_and_says_so(ledger: Path, mm_policy, mm_mock) -> None:
    cost = per_call("q", 20)
    mm_policy(POLICY.format(limit=cost * 3 + 1e-9))
    mm_mock.script("small", "ok", prompt_tokens=1, completion_tokens=20)
    report = mm_litellm.batch(["q"] * 8, max_concurrency=1, defaults={"max_tokens": 20})
    statuses = [i.status for i in report.items]
    assert statuses[:3] == ["ok"] * 3 and statuses[3] == "error" and statuses[4:] == ["skipped"] * 4, statuses
    assert report.items[3].error_type == "BudgetExceeded"
    assert (
        report.stopped is not None
        and "blocked by BudgetExceeded: budget 'daily' (global) exceeded" in report.stopped
    )
    assert len(mm_mock.calls) == 3
    # the sync batch let LiteLLM's async callbacks finish before closing its loop: all recorded
    from sqlalchemy import create_engine, text

    from mm_litellm import usage

    assert usage.flush(timeout=5)
    with create_engine(f"sqlite:///{ledger}").connect() as db:
        assert db.execute(text("SELECT COUNT(*) FROM mm_ledger WHERE status = 'success'")).scalar() == 3


def test_a_request_over_its_own_max_cost_fails_alone(mm_policy, mm_mock) -> None:
    mm_policy(POLICY.format(limit=100))
    mm_mock.script("small", "ok", prompt_tokens=1, completion_tokens=20)
    with pytest.raises(BudgetExceeded, match=r"max_cost \$0\.000001 exceeded"):
        mm_litellm.run("q", max_cost=0.000001, max_tokens=20)
    report = mm_litellm.batch(
        ["a", {"prompt": "b", "max_cost": 0.000001}, "c"], max_concurrency=1, defaults={"max_tokens": 20}
    )
    assert [(i.status, i.error_type) for i in report.items] == [
        ("ok", None),
        ("error", "BudgetExceeded"),
        ("ok", None),
    ]
    assert report.stopped is None and not report.items[1].blocked


def test_stop_errors_are_budget_blocks_and_store_failures_even_when_wrapped() -> None:
    from mm_litellm.batch.runner import is_stop_error
    from mm_litellm.errors import BudgetStoreError

    block = BudgetExceeded("daily", "global", 1.0, 1.0, None)
    try:
        try:
            raise block
        except BudgetExceeded as exc:
            raise RuntimeError("wrapped by a library") from exc
    except RuntimeError as wrapped:
        assert is_stop_error(wrapped) is block
    store = BudgetStoreError("database is locked")
    assert is_stop_error(store) is store
    assert is_stop_error(BudgetExceeded("max_cost", "request", 0.0, 1e-6, None)) is None
    assert is_stop_error(ValueError("x")) is None


def test_cli_exits_4_on_a_budget_stop_and_a_rerun_sends_the_rest(tmp_path: Path, capsys) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": f"r{i}", "prompt": "q"}) + "\n" for i in range(6)))
    out = tmp_path / "out.jsonl"
    policy = tmp_path / "policy.yaml"
    cost = per_call("q", 20)
    policy.write_text(POLICY.format(limit=cost * 2 + 1e-9))
    args = [
        "batch",
        str(source),
        "-o",
        str(out),
        "--policy",
        str(policy),
        "--mock",
        "--max-tokens",
        "20",
        "--max-concurrency",
        "1",
        "-q",
    ]
    assert main(args) == 4
    err = capsys.readouterr().err
    assert "stopped early: request 2 was blocked by BudgetExceeded" in err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["status"]) for r in rows] == [("r0", "ok"), ("r1", "ok")]  # r2 blocked: not written
    policy.write_text(POLICY.format(limit=100))
    assert main(args) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == [f"r{i}" for i in range(6)]
    assert all(r["status"] == "ok" for r in rows)
