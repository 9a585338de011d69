"""One runtime per policy: replacing a policy never loses enforcement (issue 14)."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "budget"))
from budget_support import BASE, MESSAGES

import mm_litellm
from mm_litellm import runtime

BUDGET = """
database: {{url: "sqlite:///{db}"}}
budgets:
  limits:
    - {{name: {name}, scope: global, window: daily, limit_usd: 1000000}}
"""


@pytest.fixture(autouse=True)
def _own_ledgers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each policy here names its own database; the suite-wide override would merge them."""
    monkeypatch.delenv("MM_LITELLM_DATABASE_URL", raising=False)


def _policy(path: Path, db: Path, name: str) -> Path:
    path.write_text(BASE + BUDGET.format(db=db, name=name), encoding="utf-8")
    return path


def _mm_callbacks() -> list[Any]:
    import litellm

    every = [
        *litellm.callbacks,
        *litellm.success_callback,
        *litellm._async_success_callback,
        *litellm.failure_callback,
        *litellm._async_failure_callback,
    ]
    unique = {id(cb): cb for cb in every if type(cb).__module__.startswith("mm_litellm")}
    return list(unique.values())


def _spent(source: Any, budget: str) -> float:
    report = mm_litellm.usage_report(source)
    return sum(b.spent for b in report.budgets if b.budget == budget)


def _rows(source: Any) -> int:
    return mm_litellm.usage_report(source).totals.requests


def test_reconfigure_charges_the_new_policys_budget(tmp_path: Path) -> None:
    """The issue's repro: after configure(p2), p2's budget is charged, once per call."""
    db = tmp_path / "ledger.db"
    p1 = _policy(tmp_path / "p1.yaml", db, "old_budget")
    p2 = _policy(tmp_path / "p2.yaml", db, "new_budget")
    mm_litellm.configure(p1)
    for _ in range(3):
        mm_litellm.completion(model="auto", messages=MESSAGES, mock_response="hi")
    mm_litellm.configure(p2)
    for _ in range(5):
        mm_litellm.completion(model="auto", messages=MESSAGES, mock_response="hi")
    policy2 = mm_litellm.load_policy(p2)
    assert _rows(policy2) == 8
    per_call = _spent(mm_litellm.load_policy(p1), "old_budget") / 3
    assert per_call > 0
    assert _spent(policy2, "new_budget") == pytest.approx(
        per_call * 5
    )  # charged under the policy that admitted it
    assert len(_mm_callbacks()) == 1  # one mm_litellm callback, however many policies were loaded


def test_swapping_three_times_under_concurrent_load_charges_each_call_once(tmp_path: Path) -> None:
    """Threads call while the policy is swapped three times: every call is in the ledger once,
    charged to the budget of the policy that admitted it; one set of callbacks at the end."""
    db = tmp_path / "ledger.db"
    paths = [_policy(tmp_path / f"p{i}.yaml", db, f"budget_{i}") for i in range(4)]
    mm_litellm.configure(paths[0])
    stop = threading.Event()
    done: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        n = 0
        try:
            while not stop.is_set():
                mm_litellm.completion(model="auto", messages=MESSAGES, mock_response="hi")
                n += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        done.append(n)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for path in paths[1:]:
        stop.wait(0.4)
        mm_litellm.configure(path)
    stop.wait(0.4)
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    total = sum(done)
    last = mm_litellm.load_policy(paths[-1])
    assert _rows(last) == total  # exactly once each
    spent = sum(_spent(mm_litellm.load_policy(p), f"budget_{i}") for i, p in enumerate(paths))
    report = mm_litellm.usage_report(last)
    assert spent == pytest.approx(report.totals.cost_usd)  # every dollar charged to exactly one budget
    assert all(_spent(mm_litellm.load_policy(p), f"budget_{i}") > 0 for i, p in enumerate(paths))
    assert len(_mm_callbacks()) == 1
    # the replaced runtimes are closed: nothing of theirs is still registered or held
    assert runtime.wait_retired(10)
    ours = {str(p) for p in paths}
    assert [rt for rt in runtime.live_runtimes() if rt.policy.source in ours] == [runtime.current()]


def test_two_gateways_side_by_side_charge_their_own_ledgers(tmp_path: Path) -> None:
    a = mm_litellm.Gateway(_policy(tmp_path / "a.yaml", tmp_path / "a.db", "team_a"))
    b = mm_litellm.Gateway(_policy(tmp_path / "b.yaml", tmp_path / "b.db", "team_b"))
    try:
        for _ in range(2):
            a.completion(model="auto", messages=MESSAGES, mock_response="hi")

        async def three() -> None:
            from mm_litellm.integrations.callbacks_drain import drain_callbacks

            for _ in range(3):
                await b.acompletion(model="auto", messages=MESSAGES, mock_response="hi")
            await drain_callbacks()  # LiteLLM's async callbacks run on this loop: let them finish

        asyncio.run(three())
        assert a.flush() and b.flush()
        assert _rows(a.policy) == 2
        assert _rows(b.policy) == 3
        assert _spent(a.policy, "team_a") > 0 and _spent(b.policy, "team_b") > 0
    finally:
        a.close()
        b.close()
    import gc

    from mm_litellm.integrations import dispatch

    gc.collect()  # runtimes of earlier tests nobody holds any more leave the dispatcher
    assert dispatch.attached() == []
    assert _mm_callbacks() == []


def test_close_unregisters_flushes_and_returns_leases(tmp_path: Path) -> None:
    gw = mm_litellm.Gateway(_policy(tmp_path / "p.yaml", tmp_path / "p.db", "g"))
    gw.completion(model="auto", messages=MESSAGES, mock_response="hi")
    assert _mm_callbacks()
    service = gw.runtime.budget
    policy = gw.policy
    assert service is not None
    assert gw.close()
    import gc

    from mm_litellm.integrations import dispatch

    gc.collect()  # runtimes of earlier tests nobody holds any more leave the dispatcher
    assert dispatch.attached() == []
    assert _mm_callbacks() == []
    assert service.leases.surrender_all() == []
    assert _rows(policy) == 1
    with pytest.raises(mm_litellm.ConfigurationError, match="closed"):
        gw.completion(model="auto", messages=MESSAGES, mock_response="hi")
