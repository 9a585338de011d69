"""A served call is charged once, on the model that served it, whatever the path (SDK side).

The same scenarios run against the real proxy in tests/proxy/test_ledger_integrity.py; both must
give the ledger in ``EXPECTED``: the failed attempt recorded as an error at $0 on its model, the
call that served recorded once, with its cost, on the model that served it.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

import mm_litellm
from mm_litellm.budget.service import BudgetService
from mm_litellm.budget.windows import utcnow
from mm_litellm.storage import make_engine

HI = [{"role": "user", "content": "hi"}]

POLICY = """
version: 1
models:
  small:
    litellm_params: {{model: openai/fake-small, api_base: "{base}", api_key: sk-fake}}
    pricing: {{input_per_mtok: 1, output_per_mtok: 2}}
  flaky:
    litellm_params: {{model: openai/fake-flaky, api_base: "{base}", api_key: sk-fake}}
    pricing: {{input_per_mtok: 1, output_per_mtok: 2}}
  backup:
    litellm_params: {{model: openai/fake-backup, api_base: "{base}", api_key: sk-fake}}
    pricing: {{input_per_mtok: 1, output_per_mtok: 2}}
router: {{num_retries: 0, retry_after: 0}}
routes:
  auto:
    rules:
      - {{name: flaky-path, when: {{metadata.path: flaky}}, use: flaky, fallbacks: [backup]}}
    default: small
budgets:
  limits: [{{name: g, limit_usd: 10}}]
"""

COST = 1000e-6 + 500 * 2e-6
EXPECTED = {
    "route-fallback": [("error", "flaky", 0.0), ("success", "backup", COST)],
    "retry": [("error", "small", 0.0), ("success", "small", COST)],
    "client-fallback": [("error", "small", 0.0), ("success", "backup", COST)],
}
"""Per scenario: (status, model, cost) of its ledger rows, failed attempts first."""


def script(upstream: Any, scenario: str) -> None:
    """The faulty upstream of each scenario (shared with the proxy test)."""
    upstream.script("fake-backup", reply="backup answered", prompt_tokens=1000, completion_tokens=500)
    upstream.script("fake-small", reply="small answered", prompt_tokens=1000, completion_tokens=500)
    upstream.script("fake-flaky", fault="500")
    if scenario in ("retry", "client-fallback"):
        upstream.script("fake-small", fault="500", times=1)


REQUESTS: dict[str, dict[str, Any]] = {
    "route-fallback": {"model": "auto", "metadata": {"path": "flaky"}},
    "retry": {"model": "small", "num_retries": 1},
    "client-fallback": {"model": "small", "fallbacks": ["backup"]},
}


def ledger(engine: Any) -> list[tuple[str, str, float]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status, model, cost_usd FROM mm_ledger ORDER BY status, id")).all()
    return [(r[0], r[1], pytest.approx(r[2])) for r in rows]  # type: ignore[misc]


@pytest.mark.slow
@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_sdk_charges_a_served_call_once(
    scenario: str, fake_upstream: Any, mm_policy: Any, db_url: str
) -> None:
    mm_policy(POLICY.format(base=fake_upstream.base_url))
    script(fake_upstream, scenario)
    response = mm_litellm.completion(messages=HI, **REQUESTS[scenario])
    assert response.choices[0].message.content.endswith("answered")
    from mm_litellm import runtime

    svc = runtime.current().budget  # type: ignore[union-attr]
    assert svc is not None and svc.flush(timeout=10)
    assert ledger(svc.store.engine) == EXPECTED[scenario]
    with svc.store.engine.connect() as conn:
        spent, held = conn.execute(text("SELECT spent_usd, reserved_usd FROM mm_budget_counter")).one()
    assert (spent, held) == (pytest.approx(COST), pytest.approx(0.0, abs=1e-12))


# -- the store's side: one call id, several attempts (what the proxy reports) ------------------

POLICY_PLAIN = "version: 1\nbudgets: {limits: [{name: g, limit_usd: 100}]}\n"


def _row(call_id: str, status: str, model: str, cost: float, latency: float) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "ts": utcnow(),
        "model": model,
        "deployment": f"openai/{model}",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": cost,
        "priced": True,
        "cost_source": "policy",
        "status": status,
        "error_class": None if status == "success" else "InternalServerError",
        "latency_ms": latency,
        "tags": "",
        "reservation_id": None,
    }


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("together", [False, True], ids=["separate-batches", "one-batch"])
@pytest.mark.parametrize("order", ["error-first", "success-first"])
def test_attempts_sharing_a_call_id_are_kept_and_the_served_one_charged_once(
    tmp_path: Any, order: str, together: bool, backend: str, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    svc = BudgetService(mm_litellm.parse_policy(POLICY_PLAIN), make_engine(url))
    failed = _row("c1", "error", "flaky", 0.0, 12.5)
    served = _row("c1", "success", "backup", 0.25, 40.0)
    events = [failed, served] if order == "error-first" else [served, failed]
    events += [dict(failed), dict(served)]  # every event delivered twice: duplicates insert nothing
    for event in events:
        svc.record(event)
        if not together:
            assert svc.flush(timeout=5)
    assert svc.flush(timeout=5)
    with svc.store.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT call_id, status, model, cost_usd FROM mm_ledger ORDER BY call_id")
        ).all()
        spent = conn.execute(text("SELECT spent_usd FROM mm_budget_counter")).scalar()
    assert [tuple(r) for r in rows] == [("c1", "success", "backup", 0.25), ("c1#1", "error", "flaky", 0.0)]
    assert spent == pytest.approx(0.25)
