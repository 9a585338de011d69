"""Budgets through mm_litellm.completion: block, downgrade, each scope, max_cost, unpriced,
fallbacks settled on the model that served, failures released, alerts once, fail closed."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import structlog
from budget_support import BASE, MESSAGES, prompt_tokens
from sqlalchemy import text

import mm_litellm
from mm_litellm import BudgetExceeded, BudgetStoreError


def _rows(svc: Any, sql: str) -> list[Any]:
    svc.flush()
    with svc.store.engine.connect() as c:
        return list(c.execute(text(sql)))


def _call(model: str = "auto", **kw: Any) -> Any:
    kw.setdefault("max_tokens", 50)
    return mm_litellm.completion(model=model, messages=MESSAGES, **kw)


def test_block_raises_with_scope_spent_limit_and_reset(
    budget_policy: Any, mm_mock: Any, service: Any
) -> None:
    p = prompt_tokens()
    per_call = (p + 50) * 0.001
    budget_policy(f"""
budgets:
  timezone: Europe/Berlin
  limits: [{{name: daily, window: daily, limit_usd: {per_call * 3 + 1e-9}}}]
""")
    mm_mock.script("small", "ok", prompt_tokens=p, completion_tokens=50)
    for _ in range(3):
        _call()
    with pytest.raises(BudgetExceeded) as info:
        _call()
    err = info.value
    assert (err.budget, err.scope, err.unit) == ("daily", "global", "usd")
    assert err.spent == pytest.approx(per_call * 3) and err.limit == pytest.approx(per_call * 3)
    assert err.estimate == pytest.approx(per_call)
    assert isinstance(err.resets_at, datetime) and err.resets_at.utcoffset() is not None
    assert (err.resets_at.hour, err.resets_at.minute) == (0, 0)  # local midnight in Berlin
    assert "budget 'daily' (global) exceeded" in str(err)
    svc = service()
    assert _rows(svc, "SELECT COUNT(*), SUM(cost_usd) FROM mm_ledger")[0] == (3, pytest.approx(per_call * 3))
    assert _rows(svc, "SELECT spent_usd, reserved_usd FROM mm_budget_counter")[0] == (
        pytest.approx(per_call * 3),
        pytest.approx(0.0),
    )


def test_downgrade_replans_on_the_cheapest_model(budget_policy: Any, mm_mock: Any, service: Any) -> None:
    budget_policy("""
budgets:
  limits: [{name: big-spend, scope: model, match: [big], limit_tokens: 150, on_exceed: downgrade}]
""")
    mm_mock.script("big", "big answer", prompt_tokens=50, completion_tokens=50)
    mm_mock.script("small", "small answer", prompt_tokens=50, completion_tokens=50)
    first = _call(metadata={"priority": "high"})
    assert mm_litellm.decision_of(first)["model"] == "big"
    service().flush()
    with structlog.testing.capture_logs() as logs:
        second = _call(metadata={"priority": "high"})
    decision = mm_litellm.decision_of(second)
    assert (
        decision["model"] == "small"
        and "budget 'big-spend' exhausted: downgraded to 'small'" in decision["reason"]
    )
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["budget.downgrade"]
    assert second.choices[0].message.content == "small answer"


def test_downgrade_to_a_named_route(budget_policy: Any, mm_mock: Any) -> None:
    budget_policy("""
budgets:
  limits: [{name: g, limit_usd: 0.000001, on_exceed: downgrade, downgrade_to: auto}]
""")
    mm_mock.script("small", "ok", prompt_tokens=5, completion_tokens=5)
    response = _call(model="big")
    assert mm_litellm.decision_of(response)["model"] == "small"


@pytest.mark.parametrize(
    ("scope", "same", "other"),
    [
        ("user", {"user": "alice"}, {"user": "bob"}),
        ("team", {"metadata": {"team": "red"}}, {"metadata": {"team": "blue"}}),
        (
            "key",
            {"metadata": {"mm_litellm": {"identity": {"key": "k1"}}}},
            {"metadata": {"mm_litellm": {"identity": {"key": "k2"}}}},
        ),
        ("tag", {"metadata": {"tags": ["etl"]}}, {"metadata": {"tags": ["chat"]}}),
        ("model", {"model": "small"}, {"model": "big"}),
        ("route", {"model": "auto"}, {"model": "small"}),
        ("global", {}, None),
    ],
)
def test_each_scope_is_counted_separately(
    budget_policy: Any,
    mm_mock: Any,
    service: Any,
    scope: str,
    same: dict[str, Any],
    other: dict[str, Any] | None,
) -> None:
    budget_policy(f"""
budgets:
  limits: [{{name: b, scope: {scope}, limit_tokens: {prompt_tokens() + 50 + 10}}}]
""")
    mm_mock.script("*", "ok", prompt_tokens=10, completion_tokens=10)

    def call(kw: dict[str, Any]) -> Any:
        kw = dict(kw)
        return _call(model=kw.pop("model", "auto"), **kw)

    call(same)  # reserves the estimate, settles 20 tokens
    service().flush()
    with pytest.raises(BudgetExceeded) as info:
        call(same)  # 20 spent + a full estimate does not fit
    assert info.value.scope.startswith(scope)
    if other is not None:
        call(other)  # another scope value has its own budget


def test_max_cost_refuses_a_call_that_may_cost_more(budget_policy: Any, mm_mock: Any) -> None:
    budget_policy("budgets: {limits: []}\n")
    mm_mock.script("small", "ok")
    estimate = (prompt_tokens() + 50) * 0.001
    with pytest.raises(
        BudgetExceeded, match=r"max_cost \$0.010000 exceeded: model 'small' may cost up to"
    ) as info:
        _call(max_cost=0.01)
    assert info.value.scope == "request" and info.value.estimate == pytest.approx(estimate)
    assert mm_litellm.decision_of(_call(max_cost=estimate + 0.001))["model"] == "small"
    assert "max_cost" not in mm_mock.calls[-1].kwargs  # never sent to the provider


def test_unpriced_model_is_recorded_as_unpriced_and_reported(
    budget_policy: Any, mm_mock: Any, service: Any
) -> None:
    policy = budget_policy("budgets: {limits: [{name: t, limit_tokens: 100000}]}\n")
    mm_mock.script("local", "ok", prompt_tokens=7, completion_tokens=3)
    mm_mock.script("small", "ok", prompt_tokens=7, completion_tokens=3)
    _call(model="local")
    _call(model="small")
    svc = service()
    assert _rows(svc, "SELECT model, cost_usd, priced, cost_source FROM mm_ledger ORDER BY model") == [
        ("local", None, False, "unpriced"),
        ("small", pytest.approx(0.01), True, "policy"),
    ]
    report = mm_litellm.usage_report(policy, by="model")
    assert report.totals.cost_usd == pytest.approx(0.01) and report.totals.unpriced_calls == 1
    assert [(g.key, g.requests, g.total_tokens) for g in report.unpriced] == [("local", 1, 10)]


def test_unpriced_model_under_a_usd_budget_can_be_refused(budget_policy: Any, mm_mock: Any) -> None:
    budget_policy("budgets: {on_unpriced: block, limits: [{name: usd, limit_usd: 5}]}\n")
    mm_mock.script("local", "ok")
    with pytest.raises(BudgetExceeded, match="model 'local' has no known price and budget 'usd' is in USD"):
        _call(model="local")


def test_fallback_is_settled_on_the_model_that_served(budget_policy: Any, mm_mock: Any, service: Any) -> None:
    budget_policy(
        """
budgets:
  limits: [{name: per-model, scope: model, limit_usd: 100}]
""",
        base=BASE.replace("    default: small", "    default: small\n    fallbacks: [big]"),
    )
    mm_mock.script("small", error="internal")
    mm_mock.script("big", "from big", prompt_tokens=10, completion_tokens=10)
    response = _call()
    assert mm_litellm.decision_of(response)["served_model"] == "big"
    svc = service()
    spent = dict(_rows(svc, "SELECT scope_key, spent_usd FROM mm_budget_counter WHERE spent_usd > 0"))
    assert spent == {"big": pytest.approx(20 * 0.004)}
    assert _rows(svc, "SELECT COALESCE(SUM(reserved_usd), 0) FROM mm_budget_counter")[0][0] == pytest.approx(
        0
    )
    assert sorted(r[0] for r in _rows(svc, "SELECT status FROM mm_ledger")) == ["error", "success"]


def test_spent_fallback_is_dropped_from_the_chain(budget_policy: Any, mm_mock: Any, service: Any) -> None:
    budget_policy(
        """
budgets:
  limits: [{name: big-cap, scope: model, match: [big], limit_usd: 0.00001}]
""",
        base=BASE.replace("    default: small", "    default: small\n    fallbacks: [big]"),
    )
    mm_mock.script("small", "ok", prompt_tokens=10, completion_tokens=10)
    response = _call()
    assert mm_litellm.decision_of(response)["fallbacks"] == []
    assert "fallbacks" not in mm_mock.calls[-1].kwargs or mm_mock.calls[-1].kwargs["fallbacks"] in (None, [])


def test_a_failed_call_releases_its_reservation(budget_policy: Any, mm_mock: Any, service: Any) -> None:
    budget_policy("budgets: {limits: [{name: g, limit_usd: 10}]}\n")
    mm_mock.script("small", error="rate_limit")
    import litellm

    with pytest.raises(litellm.RateLimitError):
        _call()
    svc = service()
    assert svc.flush()
    assert _rows(svc, "SELECT spent_usd, reserved_usd FROM mm_budget_counter") == [(0.0, pytest.approx(0.0))]
    assert _rows(svc, "SELECT COUNT(*) FROM mm_budget_reservation")[0][0] == 0
    assert _rows(svc, "SELECT status, error_class FROM mm_ledger") == [("error", "RateLimitError")]


def test_alert_once_per_threshold_log_callback_and_webhook(
    budget_policy: Any, mm_mock: Any, service: Any
) -> None:
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    handled: list[dict[str, Any]] = []
    mm_litellm.budget.alerts.add_alert_handler(handled.append)
    try:
        budget_policy(f"""
budgets:
  webhook: http://127.0.0.1:{server.server_port}/alerts
  limits: [{{name: g, limit_tokens: 1000, alert_at: [0.5, 0.8]}}]
""")
        mm_mock.script("small", "ok", prompt_tokens=100, completion_tokens=100)
        with structlog.testing.capture_logs() as logs:
            for _ in range(5):  # 200, 400, 600, 800, 1000 tokens
                _call(max_tokens=100)
                service().flush()
        alerts = [e for e in logs if e["event"] == "budget.alert"]
        assert [(a["threshold"], a["spent"]) for a in alerts] == [(0.5, 600), (0.8, 800)]
        assert [h["threshold"] for h in handled] == [0.5, 0.8]
        for _ in range(50):
            if len(received) == 2:
                break
            threading.Event().wait(0.05)
        assert sorted(r["threshold"] for r in received) == [0.5, 0.8]
    finally:
        mm_litellm.budget.alerts.remove_alert_handler(handled.append)
        server.shutdown()


def test_store_failure_fails_closed_unless_allowed(
    budget_policy: Any, mm_mock: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("MM_LITELLM_DATABASE_URL", "sqlite:////nonexistent-dir/for/sure/ledger.db")
    mm_mock.script("small", "ok")
    budget_policy("budgets: {limits: [{name: g, limit_usd: 10}]}\n")
    with pytest.raises(BudgetStoreError, match="budget store failed, call refused"):
        _call()
    budget_policy("budgets: {on_store_error: allow, limits: [{name: g, limit_usd: 10}]}\n")
    assert _call().choices[0].message.content == "ok"


def test_register_callbacks_records_plain_litellm_calls(tmp_path: Any) -> None:
    import litellm

    from mm_litellm.integrations.callbacks import register_callbacks
    from mm_litellm.storage import make_engine

    policy = mm_litellm.parse_policy("version: 1\nbudgets: {limits: [{name: g, limit_usd: 10}]}\n")
    svc = register_callbacks(policy, engine=make_engine(f"sqlite:///{tmp_path / 'plain.db'}"))
    litellm.completion(
        model="openai/gpt-4o-mini", messages=MESSAGES, mock_response="hi", api_key="x", user="carol"
    )
    for _ in range(100):
        if _rows(svc, "SELECT COUNT(*) FROM mm_ledger")[0][0]:
            break
        threading.Event().wait(0.02)
    rows = _rows(svc, "SELECT model, deployment, user, cost_usd, priced, prompt_tokens FROM mm_ledger")
    assert rows == [
        ("gpt-4o-mini", "openai/gpt-4o-mini", "carol", pytest.approx(10 * 0.15e-6 + 20 * 0.6e-6), True, 10)
    ]
    assert _rows(svc, "SELECT spent_usd FROM mm_budget_counter")[0][0] == pytest.approx(rows[0][3])


def test_a_stream_is_settled_when_it_has_been_read(budget_policy: Any, mm_mock: Any, service: Any) -> None:
    budget_policy("budgets: {limits: [{name: t, limit_tokens: 100000}]}\n")
    mm_mock.script("small", "one two three four five six")
    stream = mm_litellm.completion(model="small", messages=MESSAGES, max_tokens=50, stream=True)
    text_out = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text_out == "one two three four five six"
    svc = service()
    assert svc.flush()
    ((completion, status, held),) = _rows(
        svc, "SELECT completion_tokens, status, (SELECT COUNT(*) FROM mm_budget_reservation) FROM mm_ledger"
    )
    assert completion > 0 and status == "success" and held == 0
    assert _rows(svc, "SELECT spent_tokens, reserved_tokens FROM mm_budget_counter")[0][1] == 0


async def test_an_ensemble_reserves_all_members_and_counts_money_once(
    budget_policy: Any, mm_mock: Any, service: Any
) -> None:
    base = (
        BASE
        + """ensembles:
  pair: {strategy: voting, members: [small, big], quorum: 1}
"""
    )
    per_call = (prompt_tokens() + 50) * 0.001 + (prompt_tokens("openai/gpt-4o") + 50) * 0.004
    budget_policy(f"budgets: {{limits: [{{name: g, limit_usd: {per_call + 0.05}}}]}}\n", base=base)
    mm_mock.script("small", "42", prompt_tokens=10, completion_tokens=5)
    mm_mock.script("big", "42", prompt_tokens=10, completion_tokens=5)
    response = await mm_litellm.acompletion(model="ensemble/pair", messages=MESSAGES, max_tokens=50)
    assert response.choices[0].message.content == "42"
    svc = service()
    assert await asyncio.to_thread(svc.flush)  # LiteLLM reports async calls on this event loop
    rows = _rows(svc, "SELECT model, parent_id IS NOT NULL, cost_usd FROM mm_ledger ORDER BY model")
    assert sorted(r[0] for r in rows) == ["big", "ensemble/pair", "small"]
    members_cost = sum(r[2] for r in rows if r[1])
    assert members_cost == pytest.approx(15 * 0.001 + 15 * 0.004)
    spent, reserved = _rows(svc, "SELECT spent_usd, reserved_usd FROM mm_budget_counter")[0]
    assert spent == pytest.approx(members_cost) and reserved == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(BudgetExceeded):  # spent + a whole panel estimate no longer fits
        await mm_litellm.acompletion(model="ensemble/pair", messages=MESSAGES, max_tokens=50)


async def test_acompletion_never_reserves_in_the_store_on_the_event_loop(
    budget_policy: Any, mm_mock: Any, service: Any
) -> None:
    """A store round trip (PostgreSQL hop, SQLite write lock) would stall every request the loop
    serves: lease-covered calls are admitted in place, the store is asked from a worker thread."""
    budget_policy("budgets: {limits: [{name: g, limit_usd: 1000000}]}\n")
    mm_mock.script("small", "ok", prompt_tokens=10, completion_tokens=5)
    await mm_litellm.acompletion(model="auto", messages=MESSAGES, max_tokens=50)  # builds the service
    svc = service()
    loop_thread = threading.get_ident()
    store_threads: list[int] = []
    real = svc.store.reserve_leased

    def spy(*args: Any, **kwargs: Any) -> Any:
        store_threads.append(threading.get_ident())
        return real(*args, **kwargs)

    svc.store.reserve_leased = spy
    for _ in range(40):  # more than one lease's worth (32 calls): at least one refill
        await mm_litellm.acompletion(model="auto", messages=MESSAGES, max_tokens=50)
    assert store_threads and loop_thread not in store_threads
    assert len(store_threads) < 40  # the others were admitted from leases, on the loop
    assert await asyncio.to_thread(svc.flush)
    assert not svc._open  # no reservation left open by a lease attempt that fell back
    assert _rows(svc, "SELECT COUNT(*) FROM mm_ledger")[0][0] == 41
    spent, reserved = _rows(svc, "SELECT spent_usd, reserved_usd FROM mm_budget_counter")[0]
    assert spent == pytest.approx(41 * 15 * 0.001) and reserved == pytest.approx(0.0, abs=1e-9)


async def test_a_request_cancelled_while_the_store_decides_holds_nothing(
    budget_policy: Any, mm_mock: Any, service: Any
) -> None:
    """The store is asked from a worker thread, which finishes even when the caller gives up
    (a timeout, a client gone): what it reserved is given back, not held until it expires."""
    import time

    budget_policy("budgets: {limits: [{name: g, limit_usd: 0.5}]}\n")  # near the limit: no lease
    mm_mock.script("small", "ok", prompt_tokens=10, completion_tokens=5)
    await mm_litellm.acompletion(model="auto", messages=MESSAGES, max_tokens=50)
    svc = service()
    assert await asyncio.to_thread(svc.flush)
    real = svc.store.reserve_leased

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)  # a slow PostgreSQL round trip, a wait for SQLite's write lock
        return real(*args, **kwargs)

    svc.store.reserve_leased = slow
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(mm_litellm.acompletion(model="auto", messages=MESSAGES, max_tokens=50), 0.1)
    await asyncio.sleep(0.5)  # the worker thread has reserved by now
    assert not svc._open
    assert await asyncio.to_thread(svc.flush, 5.0)
    spent, reserved = _rows(svc, "SELECT spent_usd, reserved_usd FROM mm_budget_counter")[0]
    assert spent == pytest.approx(15 * 0.001) and reserved == pytest.approx(0.0, abs=1e-12)


def test_a_ledger_that_cannot_be_written_fails_admission_closed(
    budget_policy: Any, mm_mock: Any, service: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the writer cannot write (database down), new calls are refused (on_store_error: block)
    instead of spending with no record; once it writes again, calls are admitted."""
    import time

    from sqlalchemy.exc import OperationalError

    budget_policy("""
budgets:
  limits: [{name: g, scope: global, window: daily, limit_usd: 1000}]
""")
    mm_mock.script("small", "ok")
    svc = service()
    real_settle = svc.store.settle

    def down(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(svc.store, "settle", down)
    _call()  # admitted before the outage was known; its row waits in the queue
    deadline = time.monotonic() + 10
    while svc.writer_healthy() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not svc.writer_healthy()
    with pytest.raises(BudgetStoreError, match=r"ledger cannot be written.*disk I/O error"):
        _call()
    monkeypatch.setattr(svc.store, "settle", real_settle)  # the database is back
    assert svc.flush(timeout=15)
    assert svc.writer_healthy()
    _call()
    assert len(_rows(svc, "SELECT call_id FROM mm_ledger WHERE status = 'success'")) == 2  # nothing lost


def test_register_callbacks_keeps_recording_when_its_result_is_dropped(tmp_path: Any) -> None:
    """``register_callbacks(policy)`` as a statement (result not kept) records until closed."""
    import gc

    import litellm
    from sqlalchemy import create_engine

    from mm_litellm.integrations.callbacks import register_callbacks
    from mm_litellm.storage import make_engine

    policy = mm_litellm.parse_policy("version: 1\nbudgets: {limits: [{name: g, limit_usd: 10}]}\n")
    register_callbacks(policy, engine=make_engine(f"sqlite:///{tmp_path / 'kept.db'}"))
    gc.collect()
    litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, mock_response="hi", api_key="x")
    reader = create_engine(f"sqlite:///{tmp_path / 'kept.db'}")
    for _ in range(200):
        with reader.connect() as c:
            if c.execute(text("SELECT COUNT(*) FROM mm_ledger")).scalar():
                break
        threading.Event().wait(0.02)
    with reader.connect() as c:
        assert c.execute(text("SELECT COUNT(*) FROM mm_ledger")).scalar() == 1
    from mm_litellm import runtime

    for rt in runtime.live_runtimes():  # close what the test registered
        if rt.ambient and rt is not runtime.current():
            rt.close(5)
