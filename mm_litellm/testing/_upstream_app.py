"""HTTP side of :class:`mm_litellm.testing.upstream.FakeUpstream`.

This module holds the aiohttp request handler and the OpenAI-shaped payload
builders. It lives apart from the public module so that importing
``mm_litellm.testing.upstream`` stays cheap: aiohttp is only loaded when a
server is actually started.

aiohttp's low-level server was chosen over uvicorn + ASGI because it parses
HTTP in C (uvicorn without httptools falls back to pure-Python h11), it is
always installed alongside LiteLLM, and it exposes the transport, which the
``"disconnect"`` fault needs to drop a connection without any response.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import re
import secrets
import struct
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from mm_litellm.testing.upstream import Behaviour, FakeUpstream

#: How long a ``"timeout"`` fault holds a request (it is released at stop()).
HOLD_SECONDS = 3600.0
#: Vector size of fake embeddings when the request gives no ``dimensions``.
DEFAULT_DIMENSIONS = 8

_WORDS = re.compile(r"\s*\S+|\s+$")
_ERRORS: dict[str, tuple[int, str, str, str | None]] = {
    "429": (
        429,
        "Rate limit reached for {model} (scripted by FakeUpstream).",
        "requests",
        "rate_limit_exceeded",
    ),
    "500": (
        500,
        "The server had an error while processing your request (scripted by FakeUpstream).",
        "server_error",
        None,
    ),
    "503": (
        503,
        "The server is overloaded or not ready yet (scripted by FakeUpstream).",
        "server_error",
        None,
    ),
    # Client errors: the request, not the deployment, is at fault.
    "400": (400, "Invalid request for {model} (scripted by FakeUpstream).", "invalid_request_error", None),
    "404": (
        404,
        "The model {model} does not exist (scripted by FakeUpstream).",
        "invalid_request_error",
        "model_not_found",
    ),
    "413": (413, "Request too large for {model} (scripted by FakeUpstream).", "invalid_request_error", None),
    "422": (
        422,
        "Unprocessable request for {model} (scripted by FakeUpstream).",
        "invalid_request_error",
        None,
    ),
}
_MALFORMED = b'{"id": "chatcmpl-malformed", "object": "chat.completion", "choices": [{"index": 0,'

_Route = Callable[[web.BaseRequest, dict[str, Any], str, "Behaviour"], Awaitable[web.StreamResponse]]


def _dumps(payload: Any) -> bytes:
    """Compact JSON encoding (the hot path of every response)."""
    return json.dumps(payload, separators=(",", ":")).encode()


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=_dumps(payload), status=status, headers=headers, content_type="application/json")


def error_response(
    status: int, message: str, err_type: str, code: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    """An error in OpenAI's shape, which LiteLLM and the openai SDK map to typed exceptions."""
    return _json(
        {"error": {"message": message, "type": err_type, "param": None, "code": code}},
        status=status,
        headers=headers,
    )


def text_tokens(text: str) -> int:
    """Deterministic token estimate for a text: characters // 4."""
    return len(text) // 4


def prompt_tokens(body: dict[str, Any]) -> int:
    """Token estimate of a chat request: all message text characters // 4, at least 1."""
    chars = 0
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(part.get("text") or "") for part in content if isinstance(part, dict))
    return max(1, chars // 4)


def _tool_calls(raw: list[Any], prefix: str) -> list[dict[str, Any]]:
    """Normalise scripted tool calls to OpenAI's ``tool_calls`` shape.

    Accepts full OpenAI entries (``{"function": {...}}``) or the short form
    ``{"name": ..., "arguments": str | dict}``.
    """
    calls = []
    for i, item in enumerate(raw):
        function = item.get("function", item)
        arguments = function.get("arguments", "{}")
        calls.append(
            {
                "id": item.get("id") or f"call_{prefix}_{i}",
                "type": "function",
                "function": {
                    "name": function["name"],
                    "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
                },
            }
        )
    return calls


def _vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector derived from the text's hash."""
    raw = hashlib.shake_256(text.encode()).digest(dimensions)
    values = [(b - 127.5) / 127.5 for b in raw]
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    return [v / norm for v in values]


class UpstreamApp:
    """Routes requests, applies the scripted behaviour and builds responses.

    ``owner`` is the :class:`FakeUpstream` that records requests, resolves
    scripts and counts in-flight requests; this class only speaks HTTP.
    """

    def __init__(self, owner: FakeUpstream) -> None:
        self._owner = owner
        self._prefix = secrets.token_hex(4)
        self._ids = itertools.count(1)
        #: Set at stop() so requests held by the ``"timeout"`` fault are released.
        self.closing = asyncio.Event()
        self._routes: dict[tuple[str, str], _Route] = {}
        for base in ("/v1", ""):
            self._routes["POST", base + "/chat/completions"] = self._chat
            self._routes["POST", base + "/embeddings"] = self._embeddings

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """aiohttp entry point for every request."""
        path = request.path.rstrip("/") or "/"
        if path == "/health":
            return _json({"status": "ok"})
        # content.read() rather than request.read(): no 1 MiB client_max_size cap on prompts.
        raw = await request.content.read() if request.can_read_body else b""
        try:
            parsed = json.loads(raw) if raw else {}
        except ValueError:
            parsed = None
        body: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
        model = body.get("model") if isinstance(body.get("model"), str) else None
        headers = {k.lower(): v for k, v in request.headers.items()}
        self._owner._begin(request.method, path, model, body, headers)
        try:
            if request.method == "GET" and path in ("/v1/models", "/models"):
                data = [
                    {"id": m, "object": "model", "created": 0, "owned_by": "fake-upstream"}
                    for m in self._owner._known_models()
                ]
                return _json({"object": "list", "data": data})
            route = self._routes.get((request.method, path))
            if route is None:
                return error_response(
                    404, f"Unknown endpoint {request.method} {path}", "invalid_request_error", "unknown_url"
                )
            behaviour = self._owner._resolve(model)
            return await self._apply(request, body, model or "unknown", behaviour, route)
        finally:
            self._owner._end()

    async def _apply(
        self, request: web.BaseRequest, body: dict[str, Any], model: str, behaviour: Behaviour, route: _Route
    ) -> web.StreamResponse:
        """Latency first (never blocking the loop), then the fault or the real route."""
        fault = behaviour.fault
        if fault == "timeout":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), HOLD_SECONDS)
            fault = "disconnect"
        elif behaviour.latency > 0:
            await asyncio.sleep(behaviour.latency)
        if fault == "disconnect":
            if request.transport is not None:
                request.transport.close()
            # Writing to the closed transport makes aiohttp drop the response quietly.
            return web.Response(status=204)
        if fault in _ERRORS:
            status, message, err_type, code = _ERRORS[fault]
            headers = {"retry-after": "1"} if status == 429 else None
            return error_response(status, message.format(model=model), err_type, code, headers)
        if fault == "malformed":
            if body.get("stream"):
                return web.Response(
                    body=b"data: " + _MALFORMED + b"\n\ndata: [DONE]\n\n", content_type="text/event-stream"
                )
            return web.Response(body=_MALFORMED, content_type="application/json")
        return await route(request, body, model, behaviour)

    def _next_id(self, kind: str) -> str:
        return f"{kind}-{self._prefix}{next(self._ids):08d}"

    async def _chat(
        self, request: web.BaseRequest, body: dict[str, Any], model: str, behaviour: Behaviour
    ) -> web.StreamResponse:
        """``/v1/chat/completions``: a chat.completion, or SSE chunks when ``stream`` is set."""
        reply = behaviour.reply(body) if callable(behaviour.reply) else behaviour.reply
        completion_id = self._next_id("chatcmpl")
        content: str | None
        calls: list[dict[str, Any]] | None = None
        if isinstance(reply, dict):
            content = reply.get("content")
            if body.get("tools") and reply.get("tool_calls"):
                calls = _tool_calls(reply["tool_calls"], completion_id)
        else:
            content = str(reply)
        n = max(1, int(body.get("n") or 1))
        per_choice = text_tokens(content or "")
        if calls:
            per_choice += sum(max(1, text_tokens(c["function"]["arguments"])) for c in calls)
        completion = behaviour.completion_tokens
        if completion is None:
            completion = per_choice * n
        prompt = behaviour.prompt_tokens if behaviour.prompt_tokens is not None else prompt_tokens(body)
        usage: dict[str, int] | None = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if behaviour.fault == "no_usage":
            usage = None
        reset = behaviour.fault == "reset_midstream"
        finish = "tool_calls" if calls else "stop"
        head = {
            "id": completion_id,
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake_upstream",
        }
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return await self._stream(
                request, head, n, content, calls, finish, usage if include_usage else None, reset
            )
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            message["tool_calls"] = calls
        choices = [
            {"index": i, "message": message, "logprobs": None, "finish_reason": finish} for i in range(n)
        ]
        payload = {**head, "object": "chat.completion", "choices": choices}
        if usage is not None:
            payload["usage"] = usage
        if reset:
            return await self._reset(request, _dumps(payload), "application/json")
        return _json(payload)

    async def _reset(self, request: web.BaseRequest, body: bytes, content_type: str) -> web.StreamResponse:
        """Send a 200 and half of ``body``, then close the connection (``"reset_midstream"``)."""
        response = web.StreamResponse(headers={"Content-Type": content_type})
        if content_type == "application/json":
            response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        if request.transport is not None:
            request.transport.close()
        return response

    async def _stream(
        self,
        request: web.BaseRequest,
        head: dict[str, Any],
        n: int,
        content: str | None,
        calls: list[dict[str, Any]] | None,
        finish: str,
        usage: dict[str, int] | None,
        reset: bool = False,
    ) -> web.StreamResponse:
        """Write the reply as ``chat.completion.chunk`` server-sent events, one per word."""
        head = {**head, "object": "chat.completion.chunk"}
        events: list[bytes] = []

        def emit(choices: list[dict[str, Any]], **extra: Any) -> None:
            events.append(b"data: " + _dumps({**head, "choices": choices, **extra}) + b"\n\n")

        for i in range(n):
            pieces = _WORDS.findall(content) if content else []
            first: dict[str, Any] = {"role": "assistant", "content": pieces[0] if pieces else ""}
            if calls:
                first["content"] = content
                first["tool_calls"] = [{"index": j, **c} for j, c in enumerate(calls)]
            emit([{"index": i, "delta": first, "logprobs": None, "finish_reason": None}])
            for piece in pieces[1:] if not calls else ():
                emit([{"index": i, "delta": {"content": piece}, "logprobs": None, "finish_reason": None}])
            emit([{"index": i, "delta": {}, "logprobs": None, "finish_reason": finish}])
        if usage is not None:
            emit([], usage=usage)
        events.append(b"data: [DONE]\n\n")
        if reset:
            return await self._reset(
                request, b"".join(events[: max(1, len(events) // 2)]) + b"da", "text/event-stream"
            )
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        # One write of all events: the framing is per word, the syscall is not.
        await response.write(b"".join(events))
        await response.write_eof()
        return response

    async def _embeddings(
        self, request: web.BaseRequest, body: dict[str, Any], model: str, behaviour: Behaviour
    ) -> web.StreamResponse:
        """``/v1/embeddings``: deterministic unit vectors, or the scripted ``embedding``'s (float or
        base64 encoded)."""
        raw = body.get("input", "")
        items = [raw] if isinstance(raw, str) or (raw and isinstance(raw[0], int)) else list(raw)
        texts = [item if isinstance(item, str) else json.dumps(item) for item in items]
        dimensions = int(body.get("dimensions") or DEFAULT_DIMENSIONS)
        data = []
        for i, text in enumerate(texts):
            vector: Any = _vector(text, dimensions)
            if behaviour.embedding is not None:
                vector = [float(v) for v in behaviour.embedding(text, dimensions)]
                if len(vector) != dimensions:
                    return error_response(
                        500,
                        f"scripted embedding returned {len(vector)} values for {dimensions} dimensions "
                        "(FakeUpstream script error)",
                        "server_error",
                    )
            if body.get("encoding_format") == "base64":
                vector = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": vector})
        prompt = behaviour.prompt_tokens
        if prompt is None:
            prompt = max(1, sum(len(t) for t in texts) // 4)
        return _json(
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
            }
        )


#: Clients for :func:`measure_throughput`.
CLIENTS = ("httpx", "httpx-shared", "aiohttp")


async def measure_throughput(url: str, total: int, concurrency: int, client: str = "httpx") -> float:
    """Requests/s of ``total`` chat requests to ``url`` from ``concurrency`` workers.

    ``"httpx"`` gives each worker its own ``httpx.AsyncClient``; ``"httpx-shared"``
    shares one, which measures httpcore's pool bookkeeping (it scans every
    connection for every waiting request) rather than the server; ``"aiohttp"``
    shares one ``aiohttp.ClientSession``. Clients are built before the clock
    starts, without TLS setup (a default httpx client loads the CA bundle, ~20 ms).
    """
    import aiohttp
    import httpx

    payload = {"model": "bench", "messages": [{"role": "user", "content": "ping"}]}
    endpoint = url + "/v1/chat/completions"
    remaining = iter(range(total))
    if client == "aiohttp":
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))

        async def post(i: int) -> None:
            async with session.post(endpoint, json=payload) as response:
                response.raise_for_status()
                await response.read()

        async def close() -> None:
            await session.close()
    else:
        count = 1 if client == "httpx-shared" else concurrency
        limits = httpx.Limits(max_connections=concurrency)
        clients = [httpx.AsyncClient(verify=False, trust_env=False, limits=limits) for _ in range(count)]

        async def post(i: int) -> None:
            (await clients[i % count].post(endpoint, json=payload)).raise_for_status()

        async def close() -> None:
            for one in clients:
                await one.aclose()

    async def worker(i: int) -> None:
        for _ in remaining:
            await post(i)

    try:
        start = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        return total / (time.perf_counter() - start)
    finally:
        await close()
