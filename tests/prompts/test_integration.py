"""prompt_id through mm_litellm.completion / acompletion and through litellm.completion / acompletion
after register_prompts(), against the loopback fake provider (so the sent request is inspected)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

import mm_litellm
from mm_litellm.prompts.errors import PromptNotFoundError, RenderError

VARS = {"question": "Why is the sky blue?"}


def policy_text(base_url: str, db_url: str, prompt_dir: Path, experiments: str = "") -> str:
    return f"""
version: 1
models:
  small: {{litellm_params: {{model: openai/gpt-4o-mini, api_key: sk-fake, api_base: "{base_url}"}}}}
router: {{num_retries: 0}}
routes:
  auto: {{default: small}}
database: {{url: "{db_url}"}}
prompts:
  dir: "{prompt_dir}"
  refresh_seconds: 0
{experiments}
"""


EXPERIMENT = """
  experiments:
    qa-ab:
      prompt: qa
      variants: {control: {label: production}, candidate: {version: 2}}
      min_samples: 2
"""


@pytest.fixture
def setup(fake_upstream: Any, mm_policy: Any, db_url: str, prompt_dir: Path) -> Any:
    fake_upstream.script(reply="ok")

    def activate(experiments: str = "") -> Any:
        return mm_policy(policy_text(fake_upstream.base_url, db_url, prompt_dir, experiments))

    return activate


def sent(upstream: Any) -> dict[str, Any]:
    return upstream.requests[-1]["body"]  # type: ignore[no-any-return]


def test_mm_litellm_completion_renders_before_routing_and_applies_params(
    setup: Any, fake_upstream: Any
) -> None:
    setup()
    response = mm_litellm.completion(
        model="auto",
        prompt_id="qa",
        prompt_variables=VARS,
        messages=[{"role": "user", "content": "and at night?"}],
    )
    body = sent(fake_upstream)
    assert body["messages"] == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Q: Why is the sky blue?"},
        {"role": "user", "content": "and at night?"},
    ]
    assert (body["temperature"], body["max_tokens"]) == (0.1, 50)
    trace = mm_litellm.decision_of(response)
    assert trace is not None and trace["route"] == "auto"
    prompt = trace["prompt"]
    assert {k: prompt[k] for k in ("id", "version", "label", "variant", "experiment")} == {
        "id": "qa",
        "version": 1,
        "label": "production",
        "variant": None,
        "experiment": None,
    }
    assert prompt["call_id"] is None  # only experiment calls carry an id for record_outcome


def test_explicit_caller_arguments_win_and_the_template_model_is_the_default(
    setup: Any, fake_upstream: Any
) -> None:
    setup()
    mm_litellm.completion(
        prompt_id="qa", prompt_variables=VARS, temperature=0.9
    )  # no model: the template's "small"
    body = sent(fake_upstream)
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("gpt-4o-mini", 0.9, 50)
    mm_litellm.completion(
        model="small", prompt_id="qa", prompt_version=2, prompt_variables=VARS, max_tokens=7
    )
    body = sent(fake_upstream)
    assert (body["temperature"], body["max_tokens"], body["response_format"]) == (
        0.7,
        7,
        {"type": "json_object"},
    )
    assert body["messages"][1] == {"role": "user", "content": "Why is the sky blue?"}


def test_metadata_record_reaches_litellm_callbacks(setup: Any) -> None:
    import litellm
    from litellm.integrations.custom_logger import CustomLogger

    seen: list[dict[str, Any]] = []

    class Spy(CustomLogger):  # type: ignore[misc]
        def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
            seen.append(kwargs["litellm_params"]["metadata"]["mm_litellm"])

    setup()
    litellm.callbacks.append(Spy())
    mm_litellm.completion(
        model="auto",
        prompt_id="qa",
        prompt_label="production",
        prompt_variables=VARS,
        metadata={"mm_litellm": {"identity": {"user": "ana"}}, "tag": "x"},
    )
    _wait(lambda: seen)
    assert seen[0]["prompt"]["id"] == "qa" and seen[0]["prompt"]["version"] == 1
    assert seen[0]["identity"] == {"user": "ana"} and seen[0]["route"] == "auto"


def test_render_errors_surface_before_any_call(setup: Any, fake_upstream: Any) -> None:
    setup()
    with pytest.raises(RenderError, match="missing variables: question"):
        mm_litellm.completion(model="auto", prompt_id="qa", prompt_variables={})
    with pytest.raises(PromptNotFoundError, match="unknown prompt 'nope'; known: qa"):
        mm_litellm.completion(model="auto", prompt_id="nope")
    assert fake_upstream.requests == []


async def test_mm_litellm_acompletion_renders_once(setup: Any, fake_upstream: Any) -> None:
    setup()
    await mm_litellm.acompletion(model="auto", prompt_id="qa", prompt_variables=VARS)
    body = sent(fake_upstream)
    assert [m["content"] for m in body["messages"]] == ["Answer briefly.", "Q: Why is the sky blue?"]
    assert body["temperature"] == 0.1


@pytest.mark.filterwarnings("ignore:prompt 'qa' v.. template parameters")
def test_litellm_completion_after_registration(setup: Any, fake_upstream: Any) -> None:
    import litellm

    setup()
    mm_litellm.register_prompts()
    litellm.completion(
        model="openai/gpt-4o-mini",
        api_base=fake_upstream.base_url,
        api_key="sk-fake",
        messages=[],
        prompt_id="qa",
        prompt_variables=VARS,
        temperature=0.1,
        max_tokens=50,
    )
    body = sent(fake_upstream)
    assert [m["content"] for m in body["messages"]] == ["Answer briefly.", "Q: Why is the sky blue?"]
    assert (body["temperature"], body["max_tokens"]) == (0.1, 50)


def test_litellm_completion_warns_that_it_drops_template_params(setup: Any, fake_upstream: Any) -> None:
    import litellm

    from mm_litellm.integrations import prompt_manager

    setup()
    mm_litellm.register_prompts()
    prompt_manager._warned.clear()
    with pytest.warns(
        RuntimeWarning, match=r"prompt 'qa' v1: template parameters max_tokens, temperature are not"
    ):
        litellm.completion(
            model="openai/gpt-4o-mini",
            api_base=fake_upstream.base_url,
            api_key="sk-fake",
            messages=[],
            prompt_id="qa",
            prompt_variables=VARS,
        )


async def test_litellm_acompletion_renders_once_and_applies_params(setup: Any, fake_upstream: Any) -> None:
    import litellm

    setup()
    mm_litellm.register_prompts()
    await litellm.acompletion(
        model="openai/gpt-4o-mini",
        api_base=fake_upstream.base_url,
        api_key="sk-fake",
        messages=[{"role": "user", "content": "more"}],
        prompt_id="qa",
        prompt_version=2,
        prompt_variables=VARS,
        max_tokens=9,
    )
    body = sent(fake_upstream)
    assert [m["content"] for m in body["messages"]] == [
        'Answer as JSON: {"answer": ...}',
        "Why is the sky blue?",
        "more",
    ]
    assert (body["temperature"], body["max_tokens"], body["response_format"]) == (
        0.7,
        9,
        {"type": "json_object"},
    )


async def test_hooks_alone_are_idempotent_under_litellms_double_render(setup: Any) -> None:
    """LiteLLM's own order under acompletion: the async hook, then the sync hook on its output."""
    from mm_litellm.integrations.prompt_manager import prompt_manager

    setup()
    mm_litellm.register_prompts()
    kwargs = {"prompt_id": "qa", "prompt_variables": VARS}
    model, first, _ = await prompt_manager.async_get_chat_completion_prompt(
        "m", [{"role": "user", "content": "x"}], kwargs, "qa", VARS, {}, None
    )
    assert "prompt_id" not in kwargs  # LiteLLM's sync pass will not render again
    _, second, _ = prompt_manager.get_chat_completion_prompt(model, first, {}, "qa", VARS, {})
    assert second == first and len(first) == 3


def test_unknown_prompt_through_litellm_is_an_error(setup: Any) -> None:
    import litellm

    setup()
    mm_litellm.register_prompts()
    with pytest.raises(PromptNotFoundError, match="unknown prompt 'nope'"):
        litellm.completion(model="gpt-4o-mini", messages=[], prompt_id="nope", mock_response="x")


def test_experiment_end_to_end_sticky_recorded_and_reported(setup: Any, fake_upstream: Any) -> None:
    setup(EXPERIMENT)
    seen: dict[str, set[str]] = {}
    call_ids = []
    for round_ in range(3):
        for user in ("ana", "bo", "cy", "di", "ed", "flo"):
            response = mm_litellm.completion(model="auto", prompt_id="qa", prompt_variables=VARS, user=user)
            prompt = mm_litellm.decision_of(response)["prompt"]
            seen.setdefault(user, set()).add(prompt["variant"])
            assert prompt["experiment"] == "qa-ab"
            assert prompt["version"] == (1 if prompt["variant"] == "control" else 2)
            body = sent(fake_upstream)
            assert body["temperature"] == (0.1 if prompt["variant"] == "control" else 0.7)
            if round_ == 0:
                call_ids.append((prompt["call_id"], response.id, prompt["variant"]))
    assert all(len(v) == 1 for v in seen.values())  # sticky: one variant per user
    assert {next(iter(v)) for v in seen.values()} == {"control", "candidate"}
    for i, (call_id, response_id, variant) in enumerate(call_ids):
        mm_litellm.record_outcome(response_id if i % 2 else call_id, success=variant == "candidate")
    registry = mm_litellm.register_prompts(install=False)
    report = registry.report("qa-ab")
    by_name = {v.variant: v for v in report.variants}
    assert by_name["control"].assigned + by_name["candidate"].assigned == 18
    assert by_name["candidate"].mean == 1.0 and by_name["control"].mean == 0.0
    assert by_name["control"].cost_usd_mean > 0 and by_name["control"].latency_ms_mean > 0


def test_sticky_assignment_through_litellm_acompletion(setup: Any, fake_upstream: Any) -> None:
    import litellm

    setup(EXPERIMENT)
    registry = mm_litellm.register_prompts()

    async def call(user: str) -> Any:
        return await litellm.acompletion(
            model="openai/gpt-4o-mini",
            api_base=fake_upstream.base_url,
            api_key="sk-fake",
            messages=[],
            prompt_id="qa",
            prompt_variables=VARS,
            user=user,
        )

    async def main() -> list[Any]:
        return [await call(u) for u in ("ana", "bo", "ana", "bo")]

    responses = asyncio.run(main())
    _wait(lambda: all(r.status == "ok" for r in registry.store.assignments("qa-ab")) or None)
    rows = {r.call_id: r for r in registry.store.assignments("qa-ab")}
    assert len(rows) == 4
    variants = [rows[r._hidden_params["litellm_call_id"]].variant for r in responses]
    assert variants[0] == variants[2] and variants[1] == variants[3]
    assert all(r.cost_usd is not None and r.response_id for r in rows.values())


def _wait(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert condition(), "timed out waiting for LiteLLM's callbacks"


async def test_through_a_litellm_router_after_registration(setup: Any, fake_upstream: Any) -> None:
    import litellm

    setup(EXPERIMENT)
    mm_litellm.register_prompts()
    router = litellm.Router(
        model_list=[
            {
                "model_name": "qa-model",
                "litellm_params": {
                    "model": "openai/gpt-4o-mini",
                    "api_base": fake_upstream.base_url,
                    "api_key": "sk-fake",
                },
            }
        ],
        num_retries=0,
    )
    variants = []
    for user in ("ana", "ana", "bo", "bo"):
        await router.acompletion(
            model="qa-model", messages=[], prompt_id="qa", prompt_variables=VARS, user=user
        )
        body = sent(fake_upstream)
        assert body["messages"][-1]["content"] in ("Q: Why is the sky blue?", "Why is the sky blue?")
        assert len(body["messages"]) == 2
        variants.append(body["temperature"])  # 0.1: control (v1), 0.7: candidate (v2)
    assert variants[0] == variants[1] and variants[2] == variants[3]


@pytest.mark.filterwarnings("ignore:prompt 'qa' v.. template parameters")
def test_litellm_completion_records_metadata_and_experiment_calls(setup: Any, fake_upstream: Any) -> None:
    import litellm
    from litellm.integrations.custom_logger import CustomLogger

    seen: list[dict[str, Any]] = []

    class Spy(CustomLogger):  # type: ignore[misc]
        def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
            seen.append(kwargs["litellm_params"]["metadata"]["mm_litellm"]["prompt"])

    setup(EXPERIMENT)
    registry = mm_litellm.register_prompts()
    litellm.callbacks.append(Spy())
    response = litellm.completion(
        model="openai/gpt-4o-mini",
        api_base=fake_upstream.base_url,
        api_key="sk-fake",
        messages=[],
        prompt_id="qa",
        prompt_variables=VARS,
        metadata={"team": "x"},
    )
    _wait(lambda: seen and registry.store.assignments("qa-ab")[0].status == "ok")
    record = seen[0]
    assert record["experiment"] == "qa-ab" and record["variant"] in ("control", "candidate")
    assert record["call_id"] == response._hidden_params["litellm_call_id"]
    row = registry.store.assignments("qa-ab")[0]
    assert (row.call_id, row.variant, row.unit) == (
        record["call_id"],
        record["variant"],
        None,
    )  # no user: random
    assert row.response_id == response.id and row.cost_usd is not None
    mm_litellm.record_outcome(response.id, score=0.5)
    assert registry.store.assignments("qa-ab")[0].score == 0.5


def test_streaming_through_mm_litellm_keeps_the_prompt_record(setup: Any, fake_upstream: Any) -> None:
    setup(EXPERIMENT)
    stream = mm_litellm.completion(
        model="auto", prompt_id="qa", prompt_variables=VARS, user="ana", stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text == "ok"
    assert mm_litellm.decision_of(stream)["prompt"]["experiment"] == "qa-ab"
    assert sent(fake_upstream)["stream"] is True
    registry = mm_litellm.register_prompts(install=False)
    (row,) = registry.store.assignments("qa-ab")
    assert row.status == "ok" and row.cost_usd is None  # settled when the stream started


@pytest.mark.filterwarnings("ignore:prompt 'qa' v.. template parameters")
def test_register_a_prompts_directory_without_a_policy(prompt_dir: Path, fake_upstream: Any) -> None:
    import litellm

    from mm_litellm.prompts.errors import PromptStoreError

    fake_upstream.script(reply="ok")
    registry = mm_litellm.register_prompts(dir=prompt_dir)
    litellm.completion(
        model="openai/gpt-4o-mini",
        api_base=fake_upstream.base_url,
        api_key="sk-fake",
        messages=[],
        prompt_id="qa",
        prompt_variables=VARS,
    )
    assert sent(fake_upstream)["messages"][1]["content"] == "Q: Why is the sky blue?"
    with pytest.raises(PromptStoreError, match="needs a database"):
        registry.set_label("qa", "production", 2)
    mm_litellm.completion(
        model="openai/gpt-4o-mini",
        api_base=fake_upstream.base_url,
        api_key="sk-fake",
        prompt_id="qa",
        prompt_version=2,
        prompt_variables=VARS,
    )  # no policy: pass-through
    assert sent(fake_upstream)["temperature"] == 0.7


def test_without_a_model_or_a_registry_the_errors_say_what_is_missing(mm_policy: Any) -> None:
    from mm_litellm.errors import ConfigurationError

    with pytest.raises(TypeError, match=r"completion\(\) needs model= \(or prompt_id= of a template"):
        mm_litellm.completion(messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(ConfigurationError, match="register_prompts\\(\\) found no prompts"):
        mm_litellm.register_prompts()
    with pytest.raises(ConfigurationError, match="record_outcome\\(\\): no prompt registry"):
        mm_litellm.record_outcome("x", success=True)
