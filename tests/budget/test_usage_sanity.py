"""Upstream usage is not trusted: impossible usage never refunds a budget, missing usage is estimated."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

import mm_litellm

pytestmark = pytest.mark.slow

HI = [{"role": "user", "content": "Summarise the quarterly report in two sentences."}]
POLICY = """
version: 1
models:
  small:
    litellm_params: {{model: openai/fake-small, api_base: "{base}", api_key: sk-fake}}
    pricing: {{input_per_mtok: 1000, output_per_mtok: 2000}}
router: {{num_retries: 0}}
budgets:
  limits: [{{name: g, limit_usd: 100}}]
"""


def _service() -> Any:
    from mm_litellm import runtime

    svc = runtime.current().budget  # type: ignore[union-attr]
    assert svc is not None
    return svc


def _ledger(svc: Any) -> list[dict[str, Any]]:
    assert svc.flush(timeout=10)
    with svc.store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text("SELECT * FROM mm_ledger ORDER BY id"))]


def _spent(svc: Any) -> float:
    assert svc.flush(timeout=10)
    with svc.store.engine.connect() as conn:
        return float(conn.execute(text("SELECT spent_usd FROM mm_budget_counter")).scalar() or 0.0)


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": -1_000_000, "completion_tokens": 5},
        {"prompt_tokens": 10, "completion_tokens": -3},
        {"prompt_tokens": 10, "completion_tokens": 10**12},
    ],
)
def test_impossible_usage_is_flagged_and_never_refunds(
    usage: dict[str, int], fake_upstream: Any, mm_policy: Any, db_url: str
) -> None:
    mm_policy(POLICY.format(base=fake_upstream.base_url))
    fake_upstream.script("fake-small", prompt_tokens=10, completion_tokens=10)
    mm_litellm.completion(model="small", messages=HI, max_tokens=20)
    svc = _service()
    before = _spent(svc)
    assert before > 0
    fake_upstream.script("fake-small", **usage)
    try:
        mm_litellm.completion(model="small", messages=HI, max_tokens=20)
    except OverflowError:  # LiteLLM 1.110's Router core also refuses negative usage: the caller
        # sees a failed call; the ledger still charges it at the estimate, flagged, a moment later
        import time

        deadline = time.monotonic() + 10
        while len(_ledger(svc)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    row = _ledger(svc)[-1]
    assert row["error_class"] == "InvalidUsage"
    assert row["cost_source"] == "estimated"
    assert row["prompt_tokens"] >= 0 and row["completion_tokens"] == 20  # the estimate's bound
    assert row["cost_usd"] > 0
    assert _spent(svc) == pytest.approx(before + row["cost_usd"])
    with svc.store.engine.connect() as conn:
        assert conn.execute(text("SELECT reserved_usd FROM mm_budget_counter")).scalar() == pytest.approx(0.0)


@pytest.mark.parametrize("stream", [False, True])
def test_missing_usage_is_charged_at_the_estimate(
    stream: bool, fake_upstream: Any, mm_policy: Any, db_url: str
) -> None:
    mm_policy(POLICY.format(base=fake_upstream.base_url))
    fake_upstream.script("fake-small", fault="no_usage")
    response = mm_litellm.completion(model="small", messages=HI, max_tokens=40, stream=stream)
    if stream:
        for _ in response:
            pass
    svc = _service()
    row = _ledger(svc)[-1]
    from mm_litellm.integrations.prices import count_prompt_tokens

    prompt = count_prompt_tokens("openai/fake-small", HI)
    if stream and row["cost_source"] == "policy":  # LiteLLM 1.110 counts a usage-less stream itself
        assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
        assert _spent(svc) == pytest.approx(row["cost_usd"])
        return
    assert (row["status"], row["cost_source"]) == ("success", "estimated")
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, 40)
    assert row["cost_usd"] == pytest.approx(prompt * 1e-3 + 40 * 2e-3)
    assert _spent(svc) == pytest.approx(row["cost_usd"])
