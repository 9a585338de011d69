"""The proxy reloads its policy under load: every call is charged once, under the policy that admitted it."""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from mm_litellm.testing.upstream import FakeUpstream
from tests.proxy.support import start_proxy, stop_proxy

POLICY = """
version: 1
models:
  small:
    litellm_params: {{model: openai/fake-small, api_base: "{base}", api_key: sk-fake}}
    pricing: {{input_per_mtok: 1000, output_per_mtok: 1000}}
router: {{num_retries: 0}}
routes:
  auto: {{default: small}}
budgets:
  limits:
    - {{name: {name}, scope: global, window: daily, limit_usd: 1000000}}
"""


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # a reader never sees a half-written file


def _wait_for_rows(db_path: Path, expected: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(db_path) as db:
            if db.execute("SELECT COUNT(*) FROM mm_ledger").fetchone()[0] >= expected:
                return
        time.sleep(0.2)


@pytest.mark.slow
def test_three_reloads_under_load_charge_each_call_once_under_its_policy(tmp_path: Path) -> None:
    master = "sk-master-" + secrets.token_urlsafe(32)
    with FakeUpstream() as upstream:
        upstream.script(reply="ok", prompt_tokens=10, completion_tokens=5)
        policy = tmp_path / "policy.yaml"
        policy.write_text(POLICY.format(base=upstream.base_url, name="budget_0"), encoding="utf-8")
        proc, url, _log = start_proxy(tmp_path, {"LITELLM_MASTER_KEY": master, "MM_LITELLM_WATCH": "0.2"})
        try:
            ok: list[int] = []
            failed: list[str] = []
            stop = threading.Event()

            def client() -> None:
                with httpx.Client(timeout=30) as http:
                    while not stop.is_set():
                        r = http.post(
                            url + "/v1/chat/completions",
                            headers={"Authorization": f"Bearer {master}"},
                            json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
                        )
                        (ok.append(1) if r.status_code == 200 else failed.append(r.text[:200]))

            threads = [threading.Thread(target=client) for _ in range(4)]
            for t in threads:
                t.start()
            for i in range(1, 4):
                served = len(ok)
                deadline = time.monotonic() + 30
                while len(ok) < served + 20 and time.monotonic() < deadline:  # calls under this policy
                    time.sleep(0.05)
                time.sleep(0.3)
                _write_atomically(policy, POLICY.format(base=upstream.base_url, name=f"budget_{i}"))
            time.sleep(1.5)
            stop.set()
            for t in threads:
                t.join()
            _wait_for_rows(tmp_path / "mm_litellm.db", len(ok))
        finally:
            stop_proxy(proc)  # SIGTERM: the writer flushes at exit
    assert not failed, failed[:3]
    with sqlite3.connect(tmp_path / "mm_litellm.db") as db:
        rows, dup = db.execute(
            "SELECT COUNT(*), COUNT(*) - COUNT(DISTINCT call_id) FROM mm_ledger"
        ).fetchone()
        cost = db.execute("SELECT SUM(cost_usd) FROM mm_ledger WHERE status = 'success'").fetchone()[0]
        spent = dict(db.execute("SELECT budget, SUM(spent_usd) FROM mm_budget_counter GROUP BY budget"))
    assert (rows, dup) == (len(ok), 0)
    assert set(spent) == {"budget_0", "budget_1", "budget_2", "budget_3"}  # every policy charged its own
    assert all(v > 0 for v in spent.values()), spent
    assert sum(spent.values()) == pytest.approx(cost)  # every dollar charged to exactly one budget
