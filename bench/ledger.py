"""The ledger's throughput, and what a budget check plus recording adds to a mocked call.

1. Ledger rows per second on SQLite: rows queued to the background writer and settled
   (ledger insert, spend added to a global and a per-user budget counter), timed from the
   first submit to the end of ``flush()``. Target: at least 5,000 rows/s.
2. The median time of ``litellm.completion`` (LiteLLM's ``mock_response`` with explicit
   usage) bare, beside the same call with the budget check (estimate with
   ``litellm.token_counter``, atomic reservation in SQLite) before it and the ledger callback
   recording it (queued; written by the background writer), measured round-robin in one run.
   Target: added time under 25% of the bare call (stretch: 10%).

    python bench/ledger.py [--rows 20000] [--calls 1000]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm

from mm_litellm import parse_policy
from mm_litellm.budget.service import BudgetService
from mm_litellm.budget.windows import CallContext, utcnow
from mm_litellm.integrations.callbacks import register_callbacks
from mm_litellm.storage import make_engine
from mm_litellm.testing import model_response

POLICY = """
version: 1
models:
  small: {litellm_params: {model: openai/gpt-4o-mini, api_key: bench}}
budgets:
  limits:
    - {name: daily, scope: global, window: daily, limit_usd: 1000000, alert_at: [0.8]}
    - {name: per-user, scope: user, window: monthly, limit_tokens: 1000000000000}
"""
GAP_S = 0.004
MESSAGES = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


def bench_rows(service: BudgetService, rows: int) -> float:
    """Rows per second through the batch writer into SQLite."""
    items = [
        {
            "call_id": uuid.uuid4().hex,
            "ts": utcnow(),
            "route": None,
            "rule": None,
            "requested_model": "small",
            "model": "small",
            "deployment": "openai/gpt-4o-mini",
            "prompt_tokens": 12,
            "completion_tokens": 3,
            "cost_usd": 3.6e-6,
            "priced": True,
            "cost_source": "litellm",
            "latency_ms": 0.8,
            "status": "success",
            "error_class": None,
            "task": None,
            "user": f"user{i % 50}",
            "team": None,
            "api_key": None,
            "tags": "",
            "parent_id": None,
            "escalation_hop": None,
            "prompt_id": None,
            "prompt_version": None,
            "prompt_variant": None,
            "reservation_id": None,
        }
        for i in range(rows)
    ]
    start = time.perf_counter()
    for item in items:
        service.record(item)
    assert service.writer.flush(timeout=300), "writer did not finish"
    return rows / (time.perf_counter() - start)


def bench_calls(service: BudgetService, calls: int) -> tuple[float, float]:
    """Median seconds per call: bare mocked ``litellm.completion``, and with budget check + recording."""
    lt = litellm
    mock = model_response("Paris", model="gpt-4o-mini", prompt_tokens=20, completion_tokens=2)
    ctx = CallContext(model="small", user="bench-user")
    from mm_litellm.integrations.dispatch import dispatcher

    callback = dispatcher()  # mm_litellm's one LiteLLM callback (the ledger's events go through it)

    def bare() -> None:
        lt.completion(
            model="openai/gpt-4o-mini", messages=MESSAGES, mock_response=mock, api_key="bench", max_tokens=16
        )

    def budgeted() -> None:
        kwargs = {"max_tokens": 16}
        estimate = service.estimate("small", MESSAGES, kwargs, exact=False)  # as the gateway does
        rid, denial = service.reserve(
            ctx, [estimate], refine=lambda: [service.estimate("small", MESSAGES, kwargs)]
        )
        assert denial is None
        lt.completion(
            model="openai/gpt-4o-mini",
            messages=MESSAGES,
            mock_response=mock,
            api_key="bench",
            user="bench-user",
            metadata={"mm_litellm": {"reservation": rid}},
            **kwargs,
        )

    # LiteLLM fires callbacks for every registered logger on every call: the bare variant runs
    # with our callback removed, the budgeted one with it present
    variants = {"bare": bare, "budgeted": budgeted}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(50):  # warm-up: imports, tokenizer, connection pool
        bare()
        budgeted()
    rng = random.Random(7)
    order = list(variants.items())
    for _ in range(calls):
        rng.shuffle(order)
        for name, fn in order:
            if name == "bare":
                lt.callbacks.remove(callback)
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
            if name == "bare":
                lt.callbacks.append(callback)
            # LiteLLM finishes each call's logging in background threads (and our writer writes
            # the row there): let that finish outside the timings, so that it does not land on
            # whichever call happens to come next
            time.sleep(GAP_S)
    assert service.flush(timeout=60), "ledger rows were not all written"
    return statistics.median(samples["bare"]), statistics.median(samples["budgeted"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=20000, help="ledger rows to write (default 20000)")
    parser.add_argument("--calls", type=int, default=1000, help="calls per variant (default 1000)")
    args = parser.parse_args()
    litellm.suppress_debug_info = True
    policy = parse_policy(POLICY)
    with tempfile.TemporaryDirectory(prefix="mm-ledger-bench-") as tmp:
        rows_service = BudgetService(policy, make_engine(f"sqlite:///{Path(tmp) / 'rows.db'}"))
        rate = bench_rows(rows_service, args.rows)
        print(
            f"ledger writes (SQLite, WAL, batched): {rate:,.0f} rows/s over {args.rows:,} rows "
            f"(target >= 5,000) {'OK' if rate >= 5000 else 'BELOW TARGET'}"
        )
        # an ambient runtime's service: LiteLLM's events reach it through mm_litellm's dispatcher
        call_service = register_callbacks(policy, engine=make_engine(f"sqlite:///{Path(tmp) / 'calls.db'}"))
        bare, budgeted = bench_calls(call_service, args.calls)
        added = budgeted - bare
        ratio = added / bare
        verdict = "OK (stretch met)" if ratio < 0.10 else "OK" if ratio < 0.25 else "ABOVE TARGET"
        print(f"mocked litellm.completion, median of {args.calls} calls each, round-robin:")
        print(f"  bare                          {bare * 1e3:8.3f} ms")
        print(f"  + budget check + recording    {budgeted * 1e3:8.3f} ms")
        print(
            f"  added                         {added * 1e6:8.1f} us = {ratio:.1%} of the bare call "
            f"(target < 25%, stretch < 10%) {verdict}"
        )


if __name__ == "__main__":
    main()
