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
    actual = 30 * 0.001  # a string mock reports 10 prompt + 20 completion tokens
    # each result line waits for its ledger row, so request 1 is admitted on the real spend of request 0
    policy.write_text(POLICY.format(limit=actual + cost + 1e-9))
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


@pytest.mark.slow
def test_sigkill_then_resume_ledger_and_results_agree_row_for_row(tmp_path: Path, ledger: Path) -> None:
    """Each result line is written after its call's ledger row is in the store; calls in flight at
    the kill are charged when their holds expire. So after a resume every result has its ledger row,
    and the ledger's spend covers every call the upstream served."""
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    from mm_litellm.testing.upstream import FakeUpstream
    from tests.conftest import ROOT

    total = 120
    source = tmp_path / "in.jsonl"
    lines = (json.dumps({"id": f"q{i}", "prompt": f"question {i}"}) + "\n" for i in range(total))
    source.write_text("".join(lines))
    out = tmp_path / "out.jsonl"
    with FakeUpstream(latency=0.05, prompt_tokens=10, completion_tokens=5) as upstream:
        policy = tmp_path / "policy.yaml"
        policy.write_text(
            POLICY.format(limit=1000)
            .replace(
                "{model: openai/gpt-4o-mini, api_key: test}",
                f'{{model: openai/fake-small, api_key: test, api_base: "{upstream.base_url}"}}',
            )
            .replace("budgets:\n", "budgets:\n  reservation_ttl_s: 1\n")
        )
        env = dict(
            os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", MM_LITELLM_DATABASE_URL=f"sqlite:///{ledger}"
        )
        args = [
            sys.executable,
            "-m",
            "mm_litellm.cli.main",
            "batch",
            str(source),
            "-o",
            str(out),
            "--policy",
            str(policy),
            "--max-tokens",
            "20",
            "--max-concurrency",
            "8",
            "-q",
        ]
        first = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not out.exists() or out.read_bytes().count(b"\n") < 30):
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
        time.sleep(1.2)  # the killed process's holds pass their TTL; the resumed run charges them
        second = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        assert second.returncode == 0, second.stderr[-3000:]
        served = len(upstream.requests)
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    assert sorted(r["id"] for r in rows) == sorted(f"q{i}" for i in range(total))
    with sqlite3.connect(ledger) as db:
        ledger_ids = {r[0] for r in db.execute("SELECT call_id FROM mm_ledger WHERE status = 'success'")}
        spend = db.execute("SELECT SUM(cost_usd) FROM mm_ledger").fetchone()[0]
        spent = db.execute("SELECT spent_usd, reserved_usd FROM mm_budget_counter").fetchone()
    assert all(r["call_id"] in ledger_ids for r in rows)  # row for row
    assert len(ledger_ids) >= total and served >= total
    per_call = 15 * 0.001
    assert spend == pytest.approx(spent[0]) and spent[1] == pytest.approx(0.0, abs=1e-9)
    assert spend >= served * per_call - 1e-9  # every call the upstream served is charged
