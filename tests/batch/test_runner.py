"""mm_litellm.batch / abatch: order, partial failures, concurrency bound, rpm, budget stop."""

from __future__ import annotations

import time

import pytest

import mm_litellm
from mm_litellm.batch import BatchItem, abatch, batch
from mm_litellm.errors import BudgetExceeded
from tests.conftest import TEST_POLICY


def upstream_policy(base_url: str, *models: str) -> str:
    lines = ["version: 1", "router: {num_retries: 0}", "models:"]
    for name in models:
        lines.append(
            f"  {name}: {{litellm_params: {{model: openai/{name}, api_base: '{base_url}', "
            "api_key: sk-fake}, pricing: {input_per_mtok: 1, output_per_mtok: 2}}"
        )
    lines += ["routes:", f"  auto: {{default: {models[0]}}}", "default_route: auto"]
    return "\n".join(lines) + "\n"


async def test_results_keep_input_order_whatever_the_completion_order(mm_policy, fake_upstream) -> None:
    mm_policy(upstream_policy(fake_upstream.base_url, "slow", "fast"))
    fake_upstream.script("slow", latency=0.15, reply="slow answer")
    fake_upstream.script("fast", latency=0.0, reply="fast answer")
    rows = [{"id": f"r{i}", "prompt": f"q{i}", "model": "slow" if i % 2 == 0 else "fast"} for i in range(8)]
    finished: list[int] = []
    report = await abatch(rows, max_concurrency=8, on_result=lambda item: finished.append(item.index))
    assert [i.id for i in report.items] == [f"r{i}" for i in range(8)]
    assert [i.result.text for i in report.items] == ["slow answer", "fast answer"] * 4  # type: ignore[union-attr]
    assert finished != sorted(finished)  # they really finished out of order
    m = report.metrics
    assert (m.total, m.succeeded, m.failed, m.skipped, m.success_rate) == (8, 8, 0, 0, 1.0)
    assert m.per_model == {"slow": 4, "fast": 4}
    assert m.latency_p50 is not None and m.latency_p99 is not None and m.latency_p99 >= 0.15
    assert m.total_cost > 0 and m.unpriced == 0 and m.input_tokens > 0 and m.output_tokens > 0
    assert report.stopped is None


async def test_partial_failures_are_reported_and_the_batch_goes_on(mm_policy, fake_upstream) -> None:
    mm_policy(upstream_policy(fake_upstream.base_url, "good", "bad"))
    fake_upstream.script("bad", fault="500")
    rows: list[object] = [
        {"prompt": "a"},
        {"prompt": "b", "model": "bad"},
        {"prompt": "c"},
        {"prompt": "d", "colour": "red"},
        42,
        "plain prompt",
    ]
    report = await abatch(rows, max_concurrency=3)
    statuses = [(i.status, i.error_type) for i in report.items]
    assert statuses == [
        ("ok", None),
        ("error", "InternalServerError"),
        ("ok", None),
        ("error", "InvalidRequest"),
        ("error", "InvalidRequest"),
        ("ok", None),
    ]
    assert "unknown key(s) colour; allowed:" in (report.items[3].error or "")
    assert "got int" in (report.items[4].error or "")
    assert report.metrics.success_rate == pytest.approx(3 / 6)
    assert report.metrics.errors == {"InvalidRequest": 2, "InternalServerError": 1}
    assert report.items[1].to_dict()["status"] == "error" and "result" not in report.items[1].to_dict()


async def test_concurrency_bound_is_never_exceeded(mm_policy, fake_upstream) -> None:
    mm_policy(upstream_policy(fake_upstream.base_url, "m"))
    fake_upstream.script("m", latency=0.05)
    report = await abatch([f"q{i}" for i in range(24)], max_concurrency=4)
    assert report.metrics.succeeded == 24
    assert fake_upstream.stats()["max_in_flight"] == 4  # reached, and never above


async def test_rpm_paces_request_starts_across_the_batch(mm_policy, fake_upstream, monkeypatch) -> None:
    from mm_litellm import api

    starts: list[float] = []
    real = api.arun

    async def timed_arun(*args: object, **kwargs: object) -> object:
        starts.append(time.monotonic())  # the moment the batch lets a call start
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(api, "arun", timed_arun)
    mm_policy(upstream_policy(fake_upstream.base_url, "m"))
    report = await abatch([f"q{i}" for i in range(8)], max_concurrency=8, rpm=600)  # one per 0.1 s
    assert report.metrics.succeeded == 8 and fake_upstream.stats()["requests"] == 8
    assert len(starts) == 8
    for i in range(len(starts)):
        for j in range(i + 1, len(starts)):  # any window: at most 1 + rate * width starts
            assert starts[j] - starts[i] >= (j - i) * 0.1 - 0.005, (i, j)


def test_a_budget_block_stops_new_requests_cleanly(mm_policy, mm_mock, monkeypatch) -> None:
    from mm_litellm import gateway

    real = gateway.acompletion

    async def budgeted(model: str, messages: object = None, **kwargs: object) -> object:
        if model == "big":  # what the budget check does before a call it refuses
            raise BudgetExceeded(
                "daily", "global", 1.0, 1.0, None, reason="global daily budget of $1.00 reached"
            )
        return await real(model, messages, **kwargs)

    monkeypatch.setattr(gateway, "acompletion", budgeted)
    mm_policy(TEST_POLICY)
    mm_mock.script("small", "fine")
    rows = [{"prompt": "a"}, {"prompt": "b"}, {"prompt": "c", "model": "big"}] + [
        {"prompt": f"d{i}"} for i in range(5)
    ]
    seen: list[BatchItem] = []
    report = batch(rows, max_concurrency=1, on_result=seen.append)
    assert [i.status for i in report.items] == ["ok", "ok", "error"] + ["skipped"] * 5
    assert report.items[2].error_type == "BudgetExceeded"
    assert report.stopped is not None and report.stopped.startswith(
        "request 2 was blocked by BudgetExceeded: global daily budget of $1.00 reached"
    )
    assert report.items[3].error == "not sent: " + report.stopped
    assert report.metrics.skipped == 5 and report.metrics.success_rate == pytest.approx(2 / 3)
    assert len(mm_mock.calls) == 2 and len(seen) == 8
    assert "stopped: request 2" in report.summary()


def test_sync_batch_refuses_a_running_loop_and_validates_arguments() -> None:
    import asyncio

    async def inside() -> None:
        with pytest.raises(RuntimeError, match="use 'await abatch"):
            batch(["x"])

    asyncio.run(inside())
    with pytest.raises(ValueError, match="max_concurrency must be at least 1"):
        batch(["x"], max_concurrency=0)


def test_defaults_apply_under_each_request(mm_policy, mm_mock) -> None:
    mm_policy(TEST_POLICY)
    mm_mock.script("small", "s")
    mm_mock.script("big", "b")
    report = mm_litellm.batch(
        ["one", {"prompt": "two", "model": "big", "metadata": {"k": 2}}],
        defaults={"max_tokens": 5, "metadata": {"job": "j1"}},
    )
    assert [r.model_used for r in report.results if r] == ["small", "big"]
    seen = {
        c.model_group: (c.kwargs["metadata"].get("k"), c.kwargs["metadata"]["job"], c.kwargs["max_tokens"])
        for c in mm_mock.calls
    }
    assert seen == {"small": (None, "j1", 5), "big": (2, "j1", 5)}


def test_an_on_result_error_aborts_the_batch_with_that_error(mm_policy, mm_mock) -> None:
    mm_policy(TEST_POLICY)
    mm_mock.script("small", "s")

    def full_disk(item: BatchItem) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left on device"):
        batch(["a", "b", "c"], max_concurrency=2, on_result=full_disk)


QA_PROMPT = """
name: Question answering
labels: {production: 1}
versions:
  - version: 1
    variables: [question]
    model: small
    messages:
      - {role: system, content: "Answer briefly."}
      - {role: user, content: "Q: {{ question }}"}
"""


def test_rows_may_name_a_registered_prompt(tmp_path, mm_policy, fake_upstream) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "qa.yaml").write_text(QA_PROMPT, encoding="utf-8")
    mm_policy(
        upstream_policy(fake_upstream.base_url, "small")
        + f'database: {{url: "sqlite:///{tmp_path / "p.db"}"}}\n'
        + f'prompts: {{dir: "{prompts}", refresh_seconds: 0}}\n'
    )
    report = batch([{"id": "a", "prompt_id": "qa", "prompt_variables": {"question": "Why is the sky blue?"}}])
    assert report.items[0].status == "ok", report.items[0].error
    assert fake_upstream.requests[-1]["body"]["messages"] == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Q: Why is the sky blue?"},
    ]
    assert report.items[0].result.decision["prompt"]["id"] == "qa"  # type: ignore[union-attr]
