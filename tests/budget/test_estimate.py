"""The estimate is an upper bound of what a request may cost, whatever its arguments."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from budget_support import MESSAGES, prompt_tokens

import mm_litellm
from mm_litellm import BudgetExceeded

MAX_OUT = 16384  # gpt-4o-mini's max_output_tokens in LiteLLM's table (the 'small' model)


def _service(budget_policy: Any, service: Any, limits: str = "[]") -> Any:
    budget_policy(f"budgets: {{limits: {limits}}}\n")
    return service()


@pytest.mark.parametrize(
    "kwargs, completion",
    [
        ({}, MAX_OUT),  # absent: the model's maximum output, not a default guess
        ({"max_tokens": 50}, 50),
        ({"max_completion_tokens": 70}, 70),
        ({"max_tokens": -1000}, MAX_OUT),  # garbage never lowers the bound
        ({"max_tokens": 0}, MAX_OUT),
        ({"max_tokens": "abc"}, MAX_OUT),
        ({"max_tokens": True}, MAX_OUT),
        ({"max_tokens": 2.5}, MAX_OUT),
        ({"max_tokens": math.nan}, MAX_OUT),
        ({"max_tokens": {"a": 1}}, MAX_OUT),
        ({"max_tokens": "60"}, 60),
        ({"max_tokens": 50, "n": 50}, 2500),  # n choices: n times the completion
        ({"max_tokens": 50, "best_of": 4, "n": 2}, 200),  # best_of completions are generated
        ({"max_tokens": 50, "n": -3}, 50),
        ({"max_tokens": 50, "n": "x"}, 50),
    ],
)
def test_estimate_is_an_upper_bound_and_never_negative(
    budget_policy: Any, service: Any, kwargs: dict[str, Any], completion: int
) -> None:
    svc = _service(budget_policy, service)
    est = svc.estimate("small", MESSAGES, kwargs)
    assert est.completion_tokens == completion
    assert est.prompt_tokens == prompt_tokens()
    assert est.usd == pytest.approx((prompt_tokens() + completion) * 0.001)
    cheap = svc.estimate("small", MESSAGES, kwargs, exact=False, cheap_prompt=3)
    assert cheap.completion_tokens == completion and cheap.usd is not None and cheap.usd > 0


def test_an_unknown_model_falls_back_to_default_max_tokens(budget_policy: Any, service: Any) -> None:
    svc = _service(budget_policy, service)
    assert svc.estimate("local", MESSAGES, {}).completion_tokens == 1024
    assert svc.estimate("local", MESSAGES, {"max_tokens": -5, "n": 2}).completion_tokens == 2048


@pytest.mark.slow
def test_overspend_is_bounded_by_actual_minus_estimate(
    budget_policy: Any, mm_mock: Any, service: Any
) -> None:
    """32 concurrent calls with n=2 against a budget for 5 such calls: the budget is never passed
    while usage stays within the estimate, and a call that overruns its estimate (a provider
    billing more than max_tokens) passes it by at most that overrun."""
    per_call = (prompt_tokens() + 2 * 50) * 0.001  # n=2 choices of at most 50 tokens
    limit = per_call * 5 + 1e-9
    budget_policy(f"budgets: {{limits: [{{name: cap, limit_usd: {limit}}}]}}\n")
    mm_mock.script("small", "ok", prompt_tokens=prompt_tokens(), completion_tokens=100, delay=0.02)

    def one(_: int) -> str:
        try:
            mm_litellm.completion(model="small", messages=MESSAGES, max_tokens=50, n=2)
            return "admitted"
        except BudgetExceeded:
            return "blocked"

    with ThreadPoolExecutor(32) as pool:
        outcomes = list(pool.map(one, range(32)))
    svc = service()
    assert svc.flush(timeout=10)
    spent = _spent(svc)
    assert outcomes.count("admitted") == 5 and spent <= limit  # exactly at the bound, never past it
    overrun = 30  # tokens billed past the estimate by a misbehaving provider
    mm_mock.script("small", "ok", prompt_tokens=prompt_tokens(), completion_tokens=overrun, delay=0)
    budget_policy(
        f"budgets: {{limits: [{{name: cap, limit_usd: {spent + (prompt_tokens() + 20) * 0.001}}}]}}\n"
    )
    svc = service()
    mm_litellm.completion(model="small", messages=MESSAGES, max_tokens=20)
    assert svc.flush(timeout=10)
    cap = spent + (prompt_tokens() + 20) * 0.001
    assert _spent(svc) - cap == pytest.approx((overrun - 20) * 0.001)  # actual minus estimate
    with pytest.raises(BudgetExceeded):
        mm_litellm.completion(model="small", messages=MESSAGES, max_tokens=1)


def _spent(svc: Any) -> float:
    from sqlalchemy import text

    with svc.store.engine.connect() as conn:
        return float(
            conn.execute(text("SELECT COALESCE(SUM(spent_usd), 0) FROM mm_budget_counter")).scalar() or 0
        )
