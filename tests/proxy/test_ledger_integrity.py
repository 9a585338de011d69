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
    ids = []
    for _ in range(5):
        raw = proxy.client(proxy.keys["alice"]).chat.completions.with_raw_response.create(
            model="small", messages=HI
        )
        ids.append(raw.headers["x-litellm-call-id"])
    for call_id in ids:
        assert proxy.ledger_row(call_id)["status"] == "success"


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
