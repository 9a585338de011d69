"""Tests for mm_litellm.testing.upstream.FakeUpstream, through LiteLLM, openai and raw HTTP.

Every LiteLLM call passes ``num_retries=0, max_retries=0`` so nothing retries
silently; the fault tests assert the exact exception class LiteLLM raises.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
import openai
from litellm.exceptions import MidStreamFallbackError  # not exported at top level

from mm_litellm.testing.upstream import FakeUpstream

NO_RETRY: dict[str, Any] = {"num_retries": 0, "max_retries": 0}
MESSAGES = [{"role": "user", "content": "x" * 40}]  # 40 chars -> 10 prompt tokens by default
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture()
def up(server: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> FakeUpstream:
    """The module's server with scripts, recorded requests and stats cleared."""
    monkeypatch.setattr(litellm, "suppress_debug_info", True)
    server.reset()
    return server


def call(up: FakeUpstream, model: str = "fake-model", **kwargs: Any) -> Any:
    kwargs.setdefault("messages", MESSAGES)
    return litellm.completion(
        model=f"openai/{model}", api_base=up.base_url, api_key="sk-fake", **NO_RETRY, **kwargs
    )


async def acall(up: FakeUpstream, model: str = "fake-model", **kwargs: Any) -> Any:
    kwargs.setdefault("messages", MESSAGES)
    return await litellm.acompletion(
        model=f"openai/{model}", api_base=up.base_url, api_key="sk-fake", **NO_RETRY, **kwargs
    )


def raw_chat(up: FakeUpstream, **body: Any) -> httpx.Response:
    body.setdefault("model", "raw-model")
    body.setdefault("messages", MESSAGES)
    return httpx.post(up.base_url + "/chat/completions", json=body, timeout=10)


# -- happy paths through LiteLLM ---------------------------------------------------------


def test_completion_returns_scripted_reply_and_counted_usage(up: FakeUpstream) -> None:
    up.script("fake-model", reply="Scripted answer.")  # 16 chars -> 4 completion tokens

    response = call(up)

    assert response.choices[0].message.content == "Scripted answer."
    assert response.choices[0].finish_reason == "stop"
    assert response.model == "fake-model"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens, response.usage.total_tokens) == (
        10,
        4,
        14,
    )
    [record] = up.requests
    assert record["path"] == "/v1/chat/completions"
    assert record["model"] == "fake-model"
    assert record["body"]["messages"] == MESSAGES
    assert record["headers"]["authorization"] == "Bearer sk-fake"


def test_scripted_token_counts_and_unique_ids(up: FakeUpstream) -> None:
    up.script(prompt_tokens=1234, completion_tokens=56)

    first, second = call(up), call(up)

    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (1234, 56)
    assert first.usage.total_tokens == 1290
    assert first.id != second.id


def test_n_returns_n_choices(up: FakeUpstream) -> None:
    up.script("fake-model", reply="two choices")  # 11 chars -> 2 tokens per choice

    response = call(up, n=2)

    assert [c.message.content for c in response.choices] == ["two choices"] * 2
    assert [c.index for c in response.choices] == [0, 1]
    assert response.usage.completion_tokens == 4


def test_streaming_reassembles_text_and_carries_usage(up: FakeUpstream) -> None:
    up.script("fake-model", reply="one two three four", prompt_tokens=321, completion_tokens=7)

    chunks = list(call(up, stream=True, stream_options={"include_usage": True}))

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 4
    built = litellm.stream_chunk_builder(chunks)
    assert built.choices[0].message.content == "one two three four"
    assert (built.usage.prompt_tokens, built.usage.completion_tokens) == (321, 7)
    assert up.requests[0]["body"]["stream"] is True


def test_raw_stream_is_openai_sse(up: FakeUpstream) -> None:
    up.script("raw-model", reply="a b")

    response = raw_chat(up, stream=True, stream_options={"include_usage": True}, n=2)

    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line[len("data: ") :] for line in response.text.splitlines() if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    for index in (0, 1):
        deltas = [c["choices"][0] for c in chunks if c["choices"] and c["choices"][0]["index"] == index]
        assert "".join(d["delta"].get("content", "") for d in deltas) == "a b"
        assert deltas[0]["delta"]["role"] == "assistant"
        assert deltas[-1]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 0  # "a b" is 3 chars -> 0 per choice


def test_tool_calls_when_request_has_tools(up: FakeUpstream) -> None:
    up.script("fake-model", reply={"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]})

    response = call(up, tools=TOOLS)
    streamed = litellm.stream_chunk_builder(list(call(up, tools=TOOLS, stream=True)))

    for message in (response.choices[0].message, streamed.choices[0].message):
        [tool_call] = message.tool_calls
        assert tool_call.function.name == "get_weather"
        assert json.loads(tool_call.function.arguments) == {"city": "Paris"}
        assert tool_call.type == "function" and tool_call.id
    assert response.choices[0].finish_reason == "tool_calls"


def test_callable_reply_echoes_last_user_message(up: FakeUpstream) -> None:
    up.script(reply=lambda body: "echo: " + body["messages"][-1]["content"])

    response = call(up, "any-model", messages=[{"role": "user", "content": "ping"}])

    assert response.choices[0].message.content == "echo: ping"


def test_embeddings_are_deterministic_float_and_base64(up: FakeUpstream) -> None:
    first = litellm.embedding(
        model="openai/emb", api_base=up.base_url, api_key="sk-fake", input=["alpha", "beta"]
    )
    again = litellm.embedding(model="openai/emb", api_base=up.base_url, api_key="sk-fake", input=["alpha"])
    raw = httpx.post(
        up.base_url + "/embeddings",
        json={"model": "emb", "input": "alpha", "encoding_format": "base64", "dimensions": 8},
    ).json()

    vectors = [item["embedding"] for item in first.data]
    assert len(vectors) == 2 and len(vectors[0]) == 8 and vectors[0] != vectors[1]
    assert again.data[0]["embedding"] == vectors[0]
    assert abs(sum(v * v for v in vectors[0]) - 1.0) < 1e-9
    decoded = struct.unpack("<8f", base64.b64decode(raw["data"][0]["embedding"]))
    assert decoded == pytest.approx(vectors[0], abs=1e-6)


def test_scripted_embedding_gives_texts_chosen_vectors(up: FakeUpstream) -> None:
    def axis(text: str, dimensions: int) -> list[float]:
        return [1.0 if i == len(text) % dimensions else 0.0 for i in range(dimensions)]

    up.script("axes", embedding=axis)
    scripted = litellm.embedding(
        model="openai/axes", api_base=up.base_url, api_key="sk-fake", input=["ab", "abc"]
    )
    other = litellm.embedding(model="openai/emb", api_base=up.base_url, api_key="sk-fake", input=["ab"])
    up.script("short", embedding=lambda text, dimensions: [1.0])

    assert [item["embedding"] for item in scripted.data] == [
        [0, 0, 1, 0, 0, 0, 0, 0],
        [0, 0, 0, 1, 0, 0, 0, 0],
    ]
    assert other.data[0]["embedding"] != [0, 0, 1, 0, 0, 0, 0, 0]  # other models keep the hash
    with pytest.raises(litellm.InternalServerError, match="scripted embedding returned 1 values"):
        litellm.embedding(
            model="openai/short", api_base=up.base_url, api_key="sk-fake", input="x", **NO_RETRY
        )


# -- faults ---------------------------------------------------------------------------------


def test_429_raises_rate_limit_error_with_openai_body(up: FakeUpstream) -> None:
    up.script("fake-model", fault="429")

    with pytest.raises(litellm.RateLimitError) as caught:
        call(up)
    raw = raw_chat(up, model="fake-model")

    assert type(caught.value) is litellm.RateLimitError
    assert "Rate limit reached" in str(caught.value)
    assert raw.status_code == 429 and raw.headers["retry-after"] == "1"
    assert raw.json()["error"]["code"] == "rate_limit_exceeded"
    assert up.stats()["faults"] == {"429": 2}


def test_500_raises_internal_server_error(up: FakeUpstream) -> None:
    up.script("fake-model", fault="500")

    with pytest.raises(litellm.InternalServerError) as caught:
        call(up)

    assert type(caught.value) is litellm.InternalServerError
    assert caught.value.status_code == 500


def test_503_raises_service_unavailable_error(up: FakeUpstream) -> None:
    up.script("fake-model", fault="503")

    with pytest.raises(litellm.ServiceUnavailableError) as caught:
        call(up)

    assert type(caught.value) is litellm.ServiceUnavailableError
    assert caught.value.status_code == 503


def test_malformed_body_raises_internal_server_error(up: FakeUpstream) -> None:
    up.script("fake-model", fault="malformed")

    with pytest.raises(litellm.InternalServerError) as caught:
        call(up)
    raw = raw_chat(up, model="fake-model")

    assert type(caught.value) is litellm.InternalServerError
    assert raw.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        raw.json()


def test_malformed_stream_raises_mid_stream_fallback_error(up: FakeUpstream) -> None:
    # The 200 arrives, then the first SSE event is not JSON: LiteLLM wraps its
    # APIConnectionError in MidStreamFallbackError (a ServiceUnavailableError).
    up.script("fake-model", fault="malformed")

    with pytest.raises(MidStreamFallbackError) as caught:
        list(call(up, stream=True))

    assert isinstance(caught.value.original_exception, litellm.APIConnectionError)


def test_disconnect_raises_internal_server_error(up: FakeUpstream) -> None:
    # LiteLLM maps openai.APIConnectionError (no status code) to a 500 InternalServerError.
    up.script("fake-model", fault="disconnect")

    with pytest.raises(litellm.InternalServerError, match="Connection error") as caught:
        call(up)
    with pytest.raises(httpx.RemoteProtocolError):
        raw_chat(up, model="fake-model")

    assert type(caught.value) is litellm.InternalServerError


def test_no_usage_and_negative_usage_are_sent_as_scripted(up: FakeUpstream) -> None:
    up.script("fake-model", fault="no_usage")
    assert "usage" not in raw_chat(up, model="fake-model").json()
    streamed = raw_chat(up, model="fake-model", stream=True, stream_options={"include_usage": True}).text
    assert '"usage"' not in streamed and streamed.endswith("data: [DONE]\n\n")
    up.script("fake-model", fault="none", prompt_tokens=-7, completion_tokens=-1)
    assert raw_chat(up, model="fake-model").json()["usage"]["prompt_tokens"] == -7


def test_reset_midstream_sends_200_then_closes_halfway(up: FakeUpstream) -> None:
    up.script("fake-model", fault="reset_midstream", reply="one two three four five six seven")
    with pytest.raises(httpx.RemoteProtocolError):
        raw_chat(up, model="fake-model")
    with httpx.stream(
        "POST",
        up.base_url + "/chat/completions",
        timeout=10,
        json={"model": "fake-model", "messages": MESSAGES, "stream": True},
    ) as reply:
        assert reply.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            body = b"".join(reply.iter_raw())
            assert b"[DONE]" in body  # not reached: the stream is cut before its end
    with pytest.raises(litellm.exceptions.MidStreamFallbackError):
        for _ in call(up, stream=True):
            pass


@pytest.mark.asyncio
async def test_timeout_raises_quickly_without_blocking_others(up: FakeUpstream) -> None:
    up.script("stuck-model", fault="timeout")
    up.script("fast-model", latency=0.05)

    async def timed(coro: Any) -> tuple[Any, float]:
        start = time.perf_counter()
        try:
            return await coro, time.perf_counter() - start
        except Exception as exc:
            return exc, time.perf_counter() - start

    (stuck, stuck_s), (fast, fast_s) = await asyncio.gather(
        timed(acall(up, "stuck-model", timeout=0.5)), timed(acall(up, "fast-model", timeout=5))
    )

    assert type(stuck) is litellm.Timeout
    assert 0.4 <= stuck_s < 5
    assert fast.choices[0].message.content == "Hello from the fake upstream."
    assert fast_s < stuck_s
    # The held request is released when the client gives up (handler cancelled).
    deadline = time.monotonic() + 5
    while up.stats()["in_flight"] and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert up.stats()["in_flight"] == 0


def test_sync_timeout_raises_litellm_timeout(up: FakeUpstream) -> None:
    up.script("fake-model", fault="timeout")
    start = time.perf_counter()

    with pytest.raises(litellm.Timeout):
        call(up, timeout=0.5)

    assert time.perf_counter() - start < 5


def test_times_one_then_previous_behaviour_returns(up: FakeUpstream) -> None:
    up.script("fake-model", reply="steady")
    up.script("fake-model", fault="429", times=1)

    with pytest.raises(litellm.RateLimitError):
        call(up)
    assert call(up).choices[0].message.content == "steady"
    assert call(up).choices[0].message.content == "steady"
    assert len(up.requests) == 3


def test_temporary_scripts_apply_in_order_and_layer_over_defaults(up: FakeUpstream) -> None:
    up.script(reply="default reply", prompt_tokens=9)
    up.script("m", fault="500", times=1)
    up.script(fault="503", times=1)  # any model
    up.script("m", reply="second", times=2)

    codes = [raw_chat(up, model="m").status_code for _ in range(2)]
    replies = [raw_chat(up, model="m").json() for _ in range(3)]
    other = raw_chat(up, model="other").json()

    assert codes == [500, 503]
    assert [r["choices"][0]["message"]["content"] for r in replies] == ["second", "second", "default reply"]
    assert {r["usage"]["prompt_tokens"] for r in replies} == {9}
    assert other["choices"][0]["message"]["content"] == "default reply"


def test_fault_none_overrides_an_inherited_fault(up: FakeUpstream) -> None:
    up.script(fault="500")
    up.script("healthy", fault="none")

    assert raw_chat(up, model="sick").status_code == 500
    assert raw_chat(up, model="healthy").status_code == 200


def test_script_rejects_bad_arguments(up: FakeUpstream) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        up.script(fault="418")
    with pytest.raises(ValueError):
        up.script(times=0)
    with pytest.raises(ValueError):
        up.script(latency=-1)


# -- concurrency, other clients, endpoints ---------------------------------------------------


@pytest.mark.asyncio
async def test_concurrent_requests_overlap(up: FakeUpstream) -> None:
    await acall(up)  # warm LiteLLM's client for this event loop outside the timing
    up.reset()
    up.script(latency=0.2)
    start = time.perf_counter()

    responses = await asyncio.gather(*(acall(up, f"model-{i % 4}") for i in range(20)))

    elapsed = time.perf_counter() - start
    assert len(responses) == 20
    assert elapsed < 2.5  # sequential would take 20 * 0.2 = 4 s; ideal is ~0.2 s
    stats = up.stats()
    assert stats["max_in_flight"] > 1
    assert stats["requests"] == 20 and stats["in_flight"] == 0
    assert stats["per_model"] == {f"model-{i}": 5 for i in range(4)}


def test_official_openai_client(up: FakeUpstream) -> None:
    up.script("gpt-fake", reply="from openai sdk")
    with openai.OpenAI(base_url=up.base_url, api_key="sk-fake", max_retries=0) as client:
        completion = client.chat.completions.create(model="gpt-fake", messages=MESSAGES)
        chunks = list(
            client.chat.completions.create(
                model="gpt-fake", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
        )
        embedding = client.embeddings.create(model="emb", input="alpha")  # base64 on the wire
        up.script("gpt-fake", fault="429", times=1)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="gpt-fake", messages=MESSAGES)

    assert completion.choices[0].message.content == "from openai sdk"
    assert completion.usage is not None and completion.usage.prompt_tokens == 10
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "from openai sdk"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    assert len(embedding.data[0].embedding) == 8


@pytest.mark.asyncio
async def test_async_openai_client_inside_running_loop(up: FakeUpstream) -> None:
    async with openai.AsyncOpenAI(base_url=up.base_url, api_key="sk-fake", max_retries=0) as client:
        completion = await client.chat.completions.create(model="m", messages=MESSAGES)

    assert completion.choices[0].message.content == "Hello from the fake upstream."


def test_models_health_and_unknown_paths(up: FakeUpstream) -> None:
    up.script("scripted-a", reply="a")
    raw_chat(up, model="served-b")

    models = httpx.get(up.base_url + "/models").json()
    health = httpx.get(up.url + "/health")
    missing = httpx.post(up.base_url + "/nope", json={})
    bare = httpx.post(up.url + "/chat/completions", json={"model": "x", "messages": MESSAGES})

    assert [m["id"] for m in models["data"]] == ["scripted-a", "served-b"]
    assert health.status_code == 200
    assert missing.status_code == 404 and "error" in missing.json()
    assert bare.status_code == 200
    # Only requests with bodies are recorded; GET /v1/models is counted, /health is not.
    assert [r["path"] for r in up.requests] == ["/v1/chat/completions", "/v1/nope", "/chat/completions"]
    assert up.stats()["per_path"]["/v1/models"] == 1 and "/health" not in up.stats()["per_path"]


def test_large_prompt_is_accepted(up: FakeUpstream) -> None:
    big = "y" * (3 * 1024 * 1024)  # beyond aiohttp's default 1 MiB request.read() cap

    response = raw_chat(up, messages=[{"role": "user", "content": big}])

    assert response.status_code == 200
    assert response.json()["usage"]["prompt_tokens"] == len(big) // 4


def test_reset_clears_scripts_requests_and_stats(up: FakeUpstream) -> None:
    up.script("fake-model", fault="500")
    raw_chat(up, model="fake-model")

    up.reset()

    assert up.requests == [] and up.stats()["requests"] == 0
    assert raw_chat(up, model="fake-model").status_code == 200


# -- lifecycle ------------------------------------------------------------------------------


def test_start_is_quick_and_stop_frees_port_and_thread() -> None:
    threads_before = threading.active_count()
    upstream = FakeUpstream(latency=0.01)
    start = time.perf_counter()
    upstream.start()
    started_in = time.perf_counter() - start
    port = upstream.port
    assert upstream.url == f"http://127.0.0.1:{port}"
    assert upstream.base_url == upstream.url + "/v1"
    assert raw_chat(upstream).status_code == 200  # leaves a keep-alive connection open
    upstream.script(fault="timeout")
    outcome: list[object] = []

    def held_request() -> None:
        try:
            outcome.append(raw_chat(upstream))
        except httpx.HTTPError as exc:
            outcome.append(exc)

    pending = threading.Thread(target=held_request)
    pending.start()
    while upstream.stats()["in_flight"] == 0:
        time.sleep(0.01)

    start = time.perf_counter()
    upstream.stop()
    stopped_in = time.perf_counter() - start
    pending.join(timeout=5)

    assert started_in < 5 and stopped_in < 2  # generous: the machine is shared
    assert not pending.is_alive()  # the held request was released at stop()...
    assert isinstance(outcome[0], httpx.RemoteProtocolError)  # ...by closing its connection
    assert threading.active_count() == threads_before
    with socket.socket() as sock:  # the listening socket is gone (TIME_WAIT needs SO_REUSEADDR)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
    with FakeUpstream(port=port) as again:  # restartable on the same fixed port
        assert again.port == port
        assert httpx.get(again.url + "/health").status_code == 200


def test_start_fails_loudly_when_port_is_taken() -> None:
    with FakeUpstream() as first, pytest.raises(RuntimeError, match="failed to start"):
        FakeUpstream(port=first.port).start()


def test_import_starts_nothing_and_does_not_import_litellm() -> None:
    code = (
        "import sys, threading; import mm_litellm.testing.upstream as u; u.FakeUpstream(); "
        "assert 'litellm' not in sys.modules, 'litellm imported'; "
        "assert threading.active_count() == 1, threading.enumerate()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert result.returncode == 0, result.stderr
