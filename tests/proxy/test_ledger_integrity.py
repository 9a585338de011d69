"""Issue 15, ledger half, on the real proxy: hostile bodies and faulty upstreams never cost a ledger row,
and a call served after a failed attempt is charged once, on the model that served it."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

HI = [{"role": "user", "content": "hi"}]


def rows_where(proxy: Any, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with sqlite3.connect(proxy.workdir / "mm_litellm.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(sql, params)]


def wait_rows(proxy: Any, sql: str, params: tuple[Any, ...], expect: int, timeout: float = 15) -> list[dict[str, Any]]:
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
    ids = []
    for _ in range(5):
        raw = proxy.client(proxy.keys["alice"]).chat.completions.with_raw_response.create(model="small", messages=HI)
        ids.append(raw.headers["x-litellm-call-id"])
    for call_id in ids:
        assert proxy.ledger_row(call_id)["status"] == "success"


def test_a_route_fallback_is_charged_once_on_the_model_that_served(proxy: Any) -> None:
    proxy.upstream.script("fake-flaky", fault="500")
    proxy.upstream.script("fake-backup", reply="backup answered", prompt_tokens=1000, completion_tokens=500)
    raw = proxy.client(proxy.keys["alice"]).chat.completions.with_raw_response.create(
        model="auto", messages=HI, extra_body={"metadata": {"path": "flaky"}})
    assert raw.parse().choices[0].message.content == "backup answered"
    call_id = raw.headers["x-litellm-call-id"]
    served = proxy.ledger_row(call_id)
    assert (served["status"], served["model"]) == ("success", "backup")
    assert served["cost_usd"] == pytest.approx(1000e-6 + 500 * 2e-6)
    attempts = wait_rows(proxy, "SELECT * FROM mm_ledger WHERE call_id LIKE ?", (call_id + "#%",), 1)
    assert [(a["status"], a["model"], a["cost_usd"]) for a in attempts] == [("error", "flaky", 0.0)]
