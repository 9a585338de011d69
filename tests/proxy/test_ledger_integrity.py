"""Issue 15, ledger half, on the real proxy: hostile bodies and faulty upstreams never cost a ledger row,
and a call served after a failed attempt is charged once, on the model that served it."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import httpx
import pytest

from tests.budget.test_charged_once import EXPECTED, REQUESTS, script

pytestmark = pytest.mark.slow

HI = [{"role": "user", "content": "hi"}]


def rows_where(proxy: Any, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with sqlite3.connect(proxy.workdir / "mm_litellm.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(sql, params)]


def wait_rows(
    proxy: Any, sql: str, params: tuple[Any, ...], expect: int, timeout: float = 15
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = rows_where(proxy, sql, params)
        if len(rows) >= expect or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_a_non_string_model_never_stops_the_ledger(proxy: Any) -> None:
    headers = {"Authorization": f"Bearer {proxy.keys['alice']}"}
    for body in ({"model": 123, "messages": HI}, {"model": ["x"], "messages": HI}, {"model": None}):
        reply = httpx.post(proxy.url + "/v1/chat/completions", json=body, headers=headers, timeout=30)
        assert 400 <= reply.status_code < 500, reply.text
        httpx.post(proxy.url + "/v1/chat/completions", json=body, timeout=30)  # and without a key
    master = {"Authorization": f"Bearer {proxy.master_key}"}  # a key that declares no user
    odd = {"model": "small", "messages": HI, "user": {"a": 1}, "metadata": {"tags": [{"x": 1}], "team": [1]}}
    httpx.post(proxy.url + "/v1/chat/completions", json=odd, headers=master, timeout=30)
    ids = []
    for _ in range(5):
        raw = proxy.client(proxy.keys["alice"]).chat.completions.with_raw_response.create(
            model="small", messages=HI
        )
        ids.append(raw.headers["x-litellm-call-id"])
    for call_id in ids:
        assert proxy.ledger_row(call_id)["status"] == "success"
    assert rows_where(proxy, "SELECT call_id, error FROM mm_ledger_quarantine") == []  # all coerced


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_proxy_charges_a_served_call_once_like_the_sdk(proxy: Any, scenario: str) -> None:
    """The scenarios of tests/budget/test_charged_once.py through the proxy: the same ledger."""
    script(proxy.upstream, scenario)
    request = dict(REQUESTS[scenario])
    body = {"model": request.pop("model"), "messages": HI, **request}
    key = proxy.master_key if scenario == "client-fallback" else proxy.keys["alice"]  # where allowed
    reply = httpx.post(
        proxy.url + "/v1/chat/completions", json=body, timeout=60, headers={"Authorization": f"Bearer {key}"}
    )
    assert reply.status_code == 200, reply.text
    call_id = reply.headers["x-litellm-call-id"]
    ids = (call_id, *(f"{call_id}#{n}" for n in range(1, 4)))
    rows = wait_rows(
        proxy,
        "SELECT * FROM mm_ledger WHERE call_id IN (?, ?, ?, ?) ORDER BY status, id",
        ids,
        len(EXPECTED[scenario]),
    )
    assert [(r["status"], r["model"], pytest.approx(r["cost_usd"])) for r in rows] == EXPECTED[scenario]
    assert rows[-1]["call_id"] == call_id  # the call that served keeps the call id


def test_impossible_or_missing_usage_is_never_a_refund_or_free(proxy: Any) -> None:
    client = proxy.client(proxy.keys["alice"])
    proxy.upstream.script("fake-backup", prompt_tokens=-1_000_000_000, completion_tokens=5)
    negative = client.chat.completions.with_raw_response.create(model="backup", messages=HI, max_tokens=20)
    proxy.upstream.script("fake-backup", prompt_tokens=10, completion_tokens=5)
    proxy.upstream.script("fake-backup", fault="no_usage")
    missing = client.chat.completions.with_raw_response.create(model="backup", messages=HI, max_tokens=30)
    proxy.upstream.script("fake-backup", fault="none")
    flagged = proxy.ledger_row(negative.headers["x-litellm-call-id"])
    assert (flagged["error_class"], flagged["cost_source"], flagged["completion_tokens"]) == (
        "InvalidUsage",
        "estimated",
        20,
    )
    assert flagged["cost_usd"] > 0
    estimated = proxy.ledger_row(missing.headers["x-litellm-call-id"])
    assert (estimated["status"], estimated["cost_source"], estimated["completion_tokens"]) == (
        "success",
        "estimated",
        30,
    )
    assert estimated["cost_usd"] == pytest.approx(estimated["prompt_tokens"] * 1e-6 + 30 * 2e-6)


def test_kill_9_under_load_forgets_no_spend(tmp_path: Any) -> None:
    """A proxy killed with -9 mid-load, then its holds expire: every call that returned 200 is
    charged (its own row, or its hold at the estimate), and the excess is at most what was held."""
    import os
    import secrets
    import signal
    import threading

    from mm_litellm.budget.store import BudgetStore
    from mm_litellm.storage import make_engine
    from mm_litellm.testing.upstream import FakeUpstream
    from tests.proxy.support import ALICE_KEY, start_proxy, stop_proxy, write_workdir

    # small: 1 prompt + 20 completion tokens, within every estimate of the request (max_tokens=20)
    per_call = 1 * 1e-6 + 20 * 2e-6
    with FakeUpstream(latency=0.2, prompt_tokens=1, completion_tokens=20) as upstream:
        write_workdir(tmp_path, upstream.base_url)
        policy = tmp_path / "policy.yaml"
        policy.write_text(
            policy.read_text().replace(
                "budgets:\n  limits:\n",
                "budgets:\n  reservation_ttl_s: 2\n  limits:\n"
                "    - {name: all, scope: global, window: daily, limit_usd: 1000}\n",
            )
        )
        proc, url, _log = start_proxy(
            tmp_path, {"LITELLM_MASTER_KEY": "sk-master-" + secrets.token_urlsafe(32)}
        )
        ok: list[str] = []
        lock = threading.Lock()

        def client() -> None:
            with httpx.Client(timeout=30) as http:
                for _ in range(40):
                    try:
                        reply = http.post(
                            url + "/v1/chat/completions",
                            json={"model": "small", "messages": HI, "max_tokens": 20},
                            headers={"Authorization": f"Bearer {ALICE_KEY}"},
                        )
                    except httpx.HTTPError:
                        return  # the proxy is gone
                    if reply.status_code == 200:
                        with lock:
                            ok.append(reply.headers["x-litellm-call-id"])

        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(ok) < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        for pid in _descendants(proc.pid):  # the LiteLLM server itself, not only the wrapper
            os.kill(pid, signal.SIGKILL)
        proc.send_signal(signal.SIGKILL)
        for thread in threads:
            thread.join(timeout=60)
        stop_proxy(proc)
    served = len(ok)
    assert 30 <= served < 320  # killed under load
    db = tmp_path / "mm_litellm.db"
    with sqlite3.connect(db) as conn:
        held = conn.execute(
            "SELECT COALESCE(SUM(reserved_usd), 0) FROM mm_budget_counter WHERE budget = 'all'"
        )
        held_at_kill = float(held.fetchone()[0])
        spent_at_kill = float(
            conn.execute(
                "SELECT COALESCE(SUM(spent_usd), 0) FROM mm_budget_counter WHERE budget = 'all'"
            ).fetchone()[0]
        )
    time.sleep(2.2)  # past the TTL: a restarted instance opening the ledger charges the dead holds
    BudgetStore(make_engine(f"sqlite:///{db}"), ttl_s=2)
    with sqlite3.connect(db) as conn:
        spent, reserved = conn.execute(
            "SELECT spent_usd, reserved_usd FROM mm_budget_counter WHERE budget = 'all'"
        ).fetchone()
    assert reserved == pytest.approx(0.0, abs=1e-12)
    assert spent >= served * per_call - 1e-12  # every call that returned 200 is charged
    assert spent == pytest.approx(spent_at_kill + held_at_kill)  # the excess is what was held


def _descendants(pid: int) -> list[int]:
    """Child processes of ``pid``, deepest first (Linux /proc)."""
    from pathlib import Path

    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split() if (task / "children").exists() else []
        for child in map(int, children):
            found = [*_descendants(child), child, *found]
    return found
