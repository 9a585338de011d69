"""No overspend under concurrency: 64 threads, two processes, and a SIGKILL mid-stream,
on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from budget_support import BASE, MESSAGES, prompt_tokens
from sqlalchemy import text

import mm_litellm
from mm_litellm import BudgetExceeded
from mm_litellm.storage import make_engine

WORKER = Path(__file__).with_name("worker.py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "sqlite":
        value = f"sqlite:///{tmp_path / 'shared.db'}"
    else:
        value = request.getfixturevalue("pg_url")
    monkeypatch.setenv("MM_LITELLM_DATABASE_URL", value)
    return value


def _estimate(cheap: bool = False) -> float:
    """small: $0.001 per token, max_tokens=50; ``cheap``: the lower of the two token estimates."""
    from mm_litellm.routing.features import estimate_tokens

    prompt = min(prompt_tokens(), estimate_tokens(MESSAGES)[0]) if cheap else prompt_tokens()
    return (prompt + 50) * 0.001


def _policy(limit: float, ttl: float = 600) -> str:
    return (
        BASE
        + f"""
budgets:
  reservation_ttl_s: {ttl}
  limits: [{{name: cap, window: daily, limit_usd: {limit}}}]
"""
    )


def _totals(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    with engine.connect() as c:
        ledger = c.execute(
            text("SELECT COUNT(*), COALESCE(SUM(cost_usd), 0) FROM mm_ledger WHERE status = 'success'")
        ).one()
        counter = c.execute(
            text("SELECT COALESCE(SUM(spent_usd), 0), COALESCE(SUM(reserved_usd), 0) FROM mm_budget_counter")
        ).one()
        held = c.execute(
            text("SELECT COUNT(*), COALESCE(SUM(amount_usd), 0) FROM mm_budget_reservation")
        ).one()
    engine.dispose()
    return {
        "rows": ledger[0],
        "cost": float(ledger[1]),
        "spent": float(counter[0]),
        "reserved": float(counter[1]),
        "holds": held[0],
        "held": float(held[1]),
    }


def test_64_concurrent_calls_admit_only_what_the_budget_allows(
    url: str, mm_policy: Any, mm_mock: Any
) -> None:
    est = _estimate()
    limit = est * 10 + 1e-9
    mm_policy(_policy(limit))
    mm_mock.script("small", "ok", prompt_tokens=prompt_tokens(), completion_tokens=50, delay=0.02)

    def one(_: int) -> str:
        try:
            mm_litellm.completion(model="small", messages=MESSAGES, max_tokens=50)
            return "admitted"
        except BudgetExceeded:
            return "blocked"

    with ThreadPoolExecutor(64) as pool:
        outcomes = list(pool.map(one, range(64)))
    assert mm_litellm.usage.flush()
    admitted = outcomes.count("admitted")
    t = _totals(url)
    assert admitted == 10 and outcomes.count("blocked") == 54
    assert t["spent"] <= limit + est and t["cost"] == pytest.approx(t["spent"])
    assert t["rows"] == admitted  # nothing lost from the ledger
    assert t["holds"] == 0 and t["reserved"] == pytest.approx(0.0, abs=1e-9)


async def test_64_concurrent_async_calls(url: str, mm_policy: Any, mm_mock: Any) -> None:
    import asyncio

    est = _estimate()
    mm_policy(_policy(est * 10 + 1e-9))
    mm_mock.script("small", "ok", prompt_tokens=prompt_tokens(), completion_tokens=50, delay=0.02)

    async def one() -> bool:
        try:
            await mm_litellm.acompletion(model="small", messages=MESSAGES, max_tokens=50)
            return True
        except BudgetExceeded:
            return False

    admitted = sum(await asyncio.gather(*(one() for _ in range(64))))
    await asyncio.sleep(0)
    assert await asyncio.to_thread(mm_litellm.usage.flush)
    t = _totals(url)
    assert admitted == 10 and t["rows"] == 10 and t["spent"] == pytest.approx(est * 10) and t["holds"] == 0


def _worker(
    policy: Path, url: str, calls: int, threads: int, delay: float, *extra: str
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "MM_LITELLM_DATABASE_URL": url,
        "PYTHONPATH": str(ROOT),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(policy), str(calls), str(threads), str(delay), *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(ROOT),
    )


@pytest.mark.slow
def test_two_processes_enforce_one_budget(url: str, tmp_path: Path, mm_policy: Any, mm_mock: Any) -> None:
    """This process and a worker process call at the same time against one budget."""
    est = _estimate()
    limit = est * 10 + 1e-9
    policy = tmp_path / "policy.yaml"
    policy.write_text(_policy(limit))
    proc = _worker(policy, url, 20, 8, 0.02, "--wait-for-go")
    mm_policy(policy)
    mm_mock.script("small", "ok", prompt_tokens=prompt_tokens(), completion_tokens=50, delay=0.02)
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
    proc.stdin.write("go\n")
    proc.stdin.flush()

    def one(_: int) -> bool:
        try:
            mm_litellm.completion(model="small", messages=MESSAGES, max_tokens=50)
            return True
        except BudgetExceeded:
            return False

    with ThreadPoolExecutor(8) as pool:
        here = sum(pool.map(one, range(20)))
    assert mm_litellm.usage.flush()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    there = json.loads(out.strip().splitlines()[-1])
    assert there["errors"] == 0
    t = _totals(url)
    assert here + there["admitted"] == 10 and there["blocked"] + (20 - here) == 30, (
        here,
        there,
        t,
        err[-2000:],
    )
    assert t["rows"] == 10 and t["spent"] <= limit + est and t["holds"] == 0


@pytest.mark.slow
def test_sigkill_mid_stream_loses_no_spend(url: str, tmp_path: Path) -> None:
    """kill -9 under load, then the holds expire: the ledger's spend is at least the real spend (every
    call in flight at the kill counted as served) and exceeds it by at most what was held."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(_policy(1000.0, ttl=1))  # far from the limit: calls are admitted from leases
    proc = _worker(policy, url, 400, 4, 0.05, "--print-reservations")
    began: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while len(began) < 16 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("reserved "):
            began.append(line.split()[1])
    proc.send_signal(signal.SIGKILL)
    rest, _ = proc.communicate(timeout=30)
    began += [line.split()[1] for line in rest.splitlines() if line.startswith("reserved ")]
    assert proc.returncode == -signal.SIGKILL and len(began) >= 16
    engine = make_engine(url)
    with engine.connect() as c:
        settled = {
            r[0] for r in c.execute(text("SELECT reservation_id FROM mm_ledger WHERE status = 'success'"))
        }
    engine.dispose()
    unsettled = set(began) - settled
    t = _totals(url)
    # every call that began is settled (its cost is spent) or still counted by a hold (its own
    # reservation, or the lease of this process it was admitted from)
    assert t["spent"] == pytest.approx(t["cost"]) and t["reserved"] == pytest.approx(t["held"])
    assert t["held"] >= len(unsettled) * _estimate(cheap=True) - 1e-9
    assert t["rows"] == len(settled & set(began)) == len(began) - len(unsettled)
    time.sleep(1.1)  # the holds of the killed process expire
    from mm_litellm.budget.store import BudgetStore

    BudgetStore(make_engine(url), ttl_s=1)  # a restarted process: opening the store sweeps expired holds
    after = _totals(url)
    assert after["holds"] == 0 and after["reserved"] == pytest.approx(0.0, abs=1e-9)
    # the holds are charged at their estimates, each recorded as an 'expired-hold' ledger row
    assert after["spent"] == pytest.approx(t["spent"] + t["held"])
    engine = make_engine(url)
    with engine.connect() as c:
        ledger_spend = float(c.execute(text("SELECT SUM(cost_usd) FROM mm_ledger")).scalar() or 0.0)
        expired = c.execute(
            text("SELECT COUNT(*) FROM mm_ledger WHERE cost_source = 'expired-hold'")
        ).scalar()
    engine.dispose()
    assert ledger_spend == pytest.approx(after["spent"]) and expired >= 1
    worst_real = t["cost"] + len(unsettled) * _estimate()  # every call in flight was served and paid
    assert after["spent"] >= worst_real - 1e-9
    assert after["spent"] - t["cost"] <= t["held"] + 1e-9  # excess: at most what was held at the kill


def test_64_threads_on_leases_settle_to_the_cent(url: str, mm_policy: Any, mm_mock: Any) -> None:
    """Far from the limit calls are admitted from leases; after a flush nothing stays held."""
    mm_policy(_policy(1000.0))
    mm_mock.script("small", "ok", prompt_tokens=prompt_tokens(), completion_tokens=50, delay=0.005)

    def one(_: int) -> None:
        mm_litellm.completion(model="small", messages=MESSAGES, max_tokens=50)

    with ThreadPoolExecutor(64) as pool:
        list(pool.map(one, range(128)))
    assert mm_litellm.usage.flush()
    t = _totals(url)
    assert t["rows"] == 128 and t["spent"] == pytest.approx(128 * _estimate()) == pytest.approx(t["cost"])
    assert t["holds"] == 0 and t["reserved"] == pytest.approx(0.0, abs=1e-9)
