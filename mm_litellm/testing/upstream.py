"""Loopback fake OpenAI-compatible upstream server for tests and benchmarks.

:class:`FakeUpstream` stands in for a paid provider whenever a request must
really cross HTTP: LiteLLM SDK calls with ``api_base=up.base_url`` and model
``openai/<anything>``, or a LiteLLM proxy whose deployments point at it. It
runs an aiohttp server on its own event loop in a background thread, so it
works next to any event loop of the test process (pytest-asyncio included),
and scripted latency is an ``asyncio.sleep`` that never blocks other requests.

Example::

    with FakeUpstream(latency=0.05) as up:
        up.script("fake-model", fault="429", times=1)   # first call: 429, then OK
        litellm.completion(model="openai/fake-model", api_base=up.base_url,
                           api_key="sk-fake", messages=[...])

Importing this module starts nothing and imports neither aiohttp nor LiteLLM.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FAULTS", "Behaviour", "FakeUpstream", "Reply"]

#: A reply value: text, or ``{"tool_calls": [...], "content": ...}`` for tool calls.
ReplyValue = str | dict[str, Any]
#: What ``reply`` may be: a value or ``callable(request_body) -> value``.
Reply = ReplyValue | Callable[[dict[str, Any]], ReplyValue]

#: What ``embedding`` may be: ``callable(text, dimensions) -> vector`` (a list of ``dimensions`` floats).
Embedder = Callable[[str, int], Sequence[float]]

#: Scriptable faults; ``"none"`` explicitly clears a fault inherited from a wider script.
FAULTS = frozenset(
    {
        "400",
        "404",
        "413",
        "422",
        "429",
        "500",
        "503",
        "timeout",
        "malformed",
        "disconnect",
        "no_usage",
        "reset_midstream",
    }
)
_FIELDS = ("reply", "latency", "fault", "prompt_tokens", "completion_tokens", "embedding")


@dataclass(frozen=True)
class Behaviour:
    """The effective behaviour for one request, after merging the scripts."""

    reply: Reply
    latency: float = 0.0
    fault: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    embedding: Embedder | None = None


@dataclass
class _Temporary:
    """A ``times=N`` script: applies to the next ``remaining`` matching requests."""

    model: str | None
    overrides: dict[str, Any]
    remaining: int


@dataclass
class _Stats:
    per_model: Counter[str] = field(default_factory=Counter)
    per_path: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    total: int = 0
    in_flight: int = 0
    max_in_flight: int = 0


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (somewhat cheaper per request), else stock asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class FakeUpstream:
    """Loopback OpenAI-compatible server for tests and benchmarks.

    Endpoints: ``POST /v1/chat/completions`` (also without ``/v1``; with
    ``stream`` and ``stream_options.include_usage``), ``POST /v1/embeddings``,
    ``GET /v1/models`` and ``GET /health``.

    Scripts are layered, most specific last: constructor defaults, then
    ``script(None, ...)``, then ``script(model, ...)``, then the oldest
    still-active ``times=N`` script matching the model (its own or a
    model-less one; they are used in the order they were added). Arguments
    left as ``None`` inherit from the layer below, so ``script(latency=0.1)``
    followed by ``script("m", reply="x")`` gives model ``m`` both. Repeated
    permanent calls for the same model accumulate.

    ``requests`` records every request that carries a body (not GETs such
    as the ``/v1/models`` probe LiteLLM's proxy sends at startup), in arrival
    order, as a dict with ``method``, ``path``, ``model`` (from the JSON body,
    or ``None``), ``headers`` (lower-cased names) and ``body`` (the parsed JSON
    body, ``{}`` if it was not JSON). :meth:`stats` counts GETs too, but never
    ``/health``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        reply: Reply = "Hello from the fake upstream.",
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
    ) -> None:
        if latency < 0:
            raise ValueError("latency must be >= 0")
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._base = Behaviour(
            reply=reply, latency=latency, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
        self._lock = threading.Lock()
        self._permanent: dict[str | None, dict[str, Any]] = {}
        self._temporary: list[_Temporary] = []
        self._stats = _Stats()
        self._models_seen: set[str] = set()
        self.requests: list[dict[str, Any]] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._startup_error: BaseException | None = None

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (known once started)."""
        if self._port is None:
            raise RuntimeError("FakeUpstream is not started")
        return self._port

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6 literal
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``url + "/v1"``: what LiteLLM's ``api_base`` / openai's ``base_url`` should be."""
        return self.url + "/v1"

    @property
    def running(self) -> bool:
        """Whether the server thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> FakeUpstream:
        """Start serving in a background thread; return once the port accepts connections."""
        if self.running:
            return self
        ready = threading.Event()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, args=(ready,), name="FakeUpstream", daemon=True)
        self._thread.start()
        if not ready.wait(timeout=30):
            raise RuntimeError("FakeUpstream did not start within 30 s")
        if self._startup_error is not None:
            self._thread.join(timeout=5)
            self._thread = None
            raise RuntimeError(
                f"FakeUpstream failed to start: {self._startup_error!r}"
            ) from self._startup_error
        return self

    def stop(self) -> None:
        """Stop the server, release held requests, free the port and join the thread."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout=10)
        self._thread = self._loop = self._stop_event = None
        if self._requested_port == 0:
            self._port = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "stopped"
        return f"<FakeUpstream {where}>"

    def _run(self, ready: threading.Event) -> None:
        """Thread body: own event loop, serve until stop()."""
        loop = _new_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(ready))
        except BaseException as exc:  # surfaced by start()
            self._startup_error = exc
        finally:
            ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        from aiohttp import web

        from mm_litellm.testing._upstream_app import UpstreamApp

        loop = asyncio.get_running_loop()
        app = UpstreamApp(self)
        handler = web.Server(app.handle, access_log=None, handler_cancellation=True)
        server = await loop.create_server(
            handler, self.host, self._requested_port, backlog=1024, reuse_address=True
        )
        self._port = server.sockets[0].getsockname()[1]
        self._loop, self._stop_event = loop, asyncio.Event()
        ready.set()
        try:
            await self._stop_event.wait()
        finally:
            app.closing.set()
            server.close()
            # Give in-flight requests a moment to finish; idle keep-alive connections
            # would otherwise make aiohttp's shutdown wait its whole timeout.
            deadline = loop.time() + 0.5
            while self._stats.in_flight > 0 and loop.time() < deadline:
                await asyncio.sleep(0.01)
            await handler.shutdown(timeout=0.01)
            await server.wait_closed()

    # -- scripting ---------------------------------------------------------------------

    def script(
        self,
        model: str | None = None,
        *,
        reply: Reply | None = None,
        latency: float | None = None,
        fault: str | None = None,
        times: int | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        embedding: Embedder | None = None,
    ) -> None:
        """Script the behaviour for ``model`` (``None``: every model).

        ``fault`` is one of :data:`FAULTS` (or ``"none"`` to clear an inherited
        fault): ``"429"`` (OpenAI error body and ``retry-after``), ``"500"``,
        ``"503"``, the client errors ``"400"``, ``"404"``, ``"413"``, ``"422"``,
        ``"timeout"`` (no response: held open until the client
        gives up or stop(), without blocking others), ``"malformed"`` (200
        whose body is not JSON; a non-JSON first event when streaming) or
        ``"disconnect"`` (connection closed without a response), ``"no_usage"``
        (a normal answer without its ``usage`` object, streamed or not) or
        ``"reset_midstream"`` (200, then the connection is closed halfway
        through the body or the stream's events).
        Negative ``prompt_tokens``/``completion_tokens`` are sent as given (a
        provider reporting impossible usage).
        With ``times=N`` the script covers only the next N matching requests,
        after which the previous behaviour returns. ``reply`` is a string, a
        ``{"tool_calls": [...]}`` dict (used when the request has ``tools``) or
        a callable taking the request body and returning either.
        ``embedding`` replaces the ``/v1/embeddings`` vectors: ``embedding(text, dimensions)``
        returns each input's vector (``dimensions``: the request's, else 8), so a test can give
        texts vectors that mean something; without it a vector is a hash of the text.
        """
        if fault is not None:
            fault = str(fault).lower()
            if fault not in FAULTS and fault != "none":
                raise ValueError(f"unknown fault {fault!r}; expected one of {sorted(FAULTS)}")
        if latency is not None and latency < 0:
            raise ValueError("latency must be >= 0")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1")
        given = {
            "reply": reply,
            "latency": latency,
            "fault": fault,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "embedding": embedding,
        }
        overrides = {k: v for k, v in given.items() if v is not None}
        with self._lock:
            if times is None:
                self._permanent.setdefault(model, {}).update(overrides)
            else:
                self._temporary.append(_Temporary(model, overrides, times))

    def reset(self) -> None:
        """Forget all scripts, recorded requests and statistics (not the in-flight count)."""
        with self._lock:
            self._permanent.clear()
            self._temporary.clear()
            self.requests.clear()
            self._models_seen.clear()
            in_flight = self._stats.in_flight
            self._stats = _Stats(in_flight=in_flight, max_in_flight=in_flight)

    def stats(self) -> dict[str, Any]:
        """Counts since start/reset: ``requests``, ``per_model``, ``per_path``,
        ``faults`` (faults served, by name), ``in_flight`` and ``max_in_flight``."""
        with self._lock:
            s = self._stats
            return {
                "requests": s.total,
                "per_model": dict(s.per_model),
                "per_path": dict(s.per_path),
                "faults": dict(s.faults),
                "in_flight": s.in_flight,
                "max_in_flight": s.max_in_flight,
            }

    # -- called from the server thread by UpstreamApp -------------------------------------

    def _begin(
        self, method: str, path: str, model: str | None, body: dict[str, Any], headers: dict[str, str]
    ) -> None:
        """Record a request and count it in flight (paired with :meth:`_end`)."""
        with self._lock:
            if method != "GET":  # bodies only: a proxy's GET /v1/models probe is not a call
                self.requests.append(
                    {"method": method, "path": path, "model": model, "headers": headers, "body": body}
                )
            s = self._stats
            s.total += 1
            s.per_path[path] += 1
            if model is not None:
                s.per_model[model] += 1
                self._models_seen.add(model)
            s.in_flight += 1
            s.max_in_flight = max(s.max_in_flight, s.in_flight)

    def _end(self) -> None:
        with self._lock:
            self._stats.in_flight -= 1

    def _resolve(self, model: str | None) -> Behaviour:
        """Merge the scripts for ``model`` and consume one use of a ``times`` script."""
        with self._lock:
            merged = {name: getattr(self._base, name) for name in _FIELDS}
            merged.update(self._permanent.get(None, {}))
            if model is not None:
                merged.update(self._permanent.get(model, {}))
            for rule in self._temporary:
                if rule.model is None or rule.model == model:
                    merged.update(rule.overrides)
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._temporary.remove(rule)
                    break
            if merged["fault"] == "none":
                merged["fault"] = None
            if merged["fault"] is not None:
                self._stats.faults[merged["fault"]] += 1
            return Behaviour(**merged)

    def _known_models(self) -> list[str]:
        """Models for ``GET /v1/models``: every scripted model plus every model served."""
        with self._lock:
            scripted = {m for m in self._permanent if m is not None}
            scripted.update(r.model for r in self._temporary if r.model is not None)
            return sorted(scripted | self._models_seen)


def _main() -> None:
    """``python -m mm_litellm.testing.upstream``: a by-hand throughput self-check."""
    import argparse
    import logging

    from mm_litellm.testing._upstream_app import CLIENTS, measure_throughput

    parser = argparse.ArgumentParser(description=_main.__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--client", choices=CLIENTS, default=CLIENTS[0])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log = logging.getLogger("mm_litellm.testing.upstream")
    log.setLevel(logging.INFO)
    with FakeUpstream(latency=args.latency) as up:
        rate = asyncio.run(measure_throughput(up.url, args.requests, args.concurrency, args.client))
        ideal = args.concurrency / args.latency if args.latency else float("inf")
        log.info(
            "%s: %d requests, concurrency %d, latency %.3fs: %.0f req/s (ideal %.0f), max in flight %d",
            args.client,
            args.requests,
            args.concurrency,
            args.latency,
            rate,
            ideal,
            up.stats()["max_in_flight"],
        )


if __name__ == "__main__":
    _main()
