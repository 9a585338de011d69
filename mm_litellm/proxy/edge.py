"""The proxy's outermost ASGI layer: what must happen before LiteLLM sees a request, or after it answers.

Two things LiteLLM's own hooks cannot do:

- **Before**: LiteLLM inspects a request body before it calls the custom auth, and a body that
  is not a JSON object, or that carries a field LiteLLM bans (``api_base``, ``base_url``, AWS
  and Azure identity fields, ...), makes that code fail with a 500. On the model routes
  (:mod:`mm_litellm.proxy.routes`) this layer answers such requests itself with a 400 naming
  ``body``, or a 403 naming the field (callers other than the master key).
- **Strangers**: a request whose one API key is certainly unknown (an id no key has, a SHA-256
  miss with no scrypt key to try), or that comes from an address the failure throttle is
  slowing, is answered 401/429 here (``precheck``, from :mod:`mm_litellm.proxy.auth`), before
  LiteLLM parses, logs or hooks anything: random tokens cost the proxy next to nothing.
- **After**: LiteLLM adds ``x-litellm-model-api-base`` (the deployment's URL) to model answers,
  with no setting to turn it off, and callback headers cannot remove a header. Headers in
  :data:`LEAKY_HEADERS` are dropped from every response to a caller without the master key
  (streams included).

:func:`install` wraps the proxy app once (from the custom auth, which LiteLLM imports at startup).
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any

from mm_litellm.proxy.routes import OPEN_ROUTES, user_may_call

__all__ = ["LEAKY_HEADERS", "install", "strip_leaks"]

LEAKY_HEADERS: frozenset[bytes] = frozenset({b"x-litellm-model-api-base"})
"""Header names (lower case) a non-master caller never receives."""

_AUTH_HEADERS = (b"authorization", b"x-litellm-api-key", b"api-key", b"x-api-key")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Precheck = Callable[[str, str], "tuple[int, str, dict[str, str]] | None"]
"""(token, client address) -> (status, message, headers) to refuse at once, or ``None``."""


def strip_leaks(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` (ASGI raw pairs) without :data:`LEAKY_HEADERS`."""
    return [(k, v) for k, v in headers if k.lower() not in LEAKY_HEADERS]


def _litellm_banned_fields() -> tuple[str, ...]:
    """The top-level body fields LiteLLM refuses before auth (its list, when it has one)."""
    try:
        from litellm.proxy.auth.auth_utils import _BANNED_REQUEST_BODY_PARAMS
    except ImportError:  # another LiteLLM version: ours only
        return ()
    return tuple(str(p) for p in _BANNED_REQUEST_BODY_PARAMS)


class EdgeGuard:
    """ASGI wrapper around the proxy app (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        master_key: Callable[[], str | None],
        banned: Collection[str] | None = None,
        precheck: Precheck | None = None,
    ) -> None:
        self.app = app
        self.master_key = master_key
        self.precheck = precheck
        self.banned = frozenset(banned if banned is not None else _litellm_banned_fields())
        names = b"|".join(re.escape(n.encode()) for n in sorted(self.banned))
        self._banned_re = re.compile(rb'"(' + names + rb')"\s*:') if names else None

    def _is_master(self, scope: Scope) -> bool:
        master = self.master_key()
        if not master:
            return False
        return any(hmac.compare_digest(t.encode(), master.encode()) for t in _tokens(scope))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        master = self._is_master(scope)
        if not master and self.precheck is not None and _route(scope) not in OPEN_ROUTES:
            tokens = _tokens(scope)
            client = scope.get("client")
            address = str(client[0]) if client else "unknown"
            stranger = self.precheck(tokens[0], address) if len(tokens) == 1 else None
            if stranger is not None:  # answered before LiteLLM spends anything on it
                status, message, headers = stranger
                await _json_error(send, status, "auth_error", "api_key", message, headers)
                return
        if scope.get("method") == "POST" and user_may_call("POST", _route(scope)) and not _is_form(scope):
            body, receive = await _buffer(receive)
            refusal = self._refusal(body, master)
            if refusal is not None:
                await _json_error(send, *refusal)
                return
        if master:
            await self.app(scope, receive, send)
            return

        async def guarded_send(message: Message) -> None:
            if message.get("type") == "http.response.start":
                message["headers"] = strip_leaks(list(message.get("headers") or ()))
            await send(message)

        await self.app(scope, receive, guarded_send)

    def _refusal(self, body: bytes, master: bool) -> tuple[int, str, str, str] | None:
        """(status, type, field, message) for a body LiteLLM would fail on, or ``None``."""
        head = body.lstrip()[:1]
        suspicious = not master and self._banned_re is not None and self._banned_re.search(body) is not None
        if head in (b"{", b"") and not suspicious:
            return None
        try:
            parsed = json.loads(body)
        except ValueError:
            return None  # LiteLLM answers malformed JSON with its own 400
        if not isinstance(parsed, dict):
            return (
                400,
                "invalid_request_error",
                "body",
                "mm_litellm: the request 'body' must be a JSON object",
            )
        if master or _client_side_credentials_allowed():
            return None
        for name in parsed:
            if name in self.banned:
                return (
                    403,
                    "permission_error",
                    name,
                    f"mm_litellm: '{name}' may not be set by this API key: it changes the deployment or "
                    "credentials a request uses (LiteLLM refuses it unless the operator sets "
                    "general_settings.allow_client_side_credentials)",
                )
        return None


def _client_side_credentials_allowed() -> bool:
    """LiteLLM's proxy-wide opt-in to credentials in request bodies (then LiteLLM decides alone)."""
    import sys

    server = sys.modules.get("litellm.proxy.proxy_server")
    settings = getattr(server, "general_settings", None)
    return isinstance(settings, dict) and settings.get("allow_client_side_credentials") is True


def _tokens(scope: Scope) -> list[str]:
    """The API keys the request presents, one per authentication header."""
    out = []
    for name, value in scope.get("headers") or ():
        if name.lower() in _AUTH_HEADERS:
            token = value.decode("latin-1").strip()
            out.append(token[7:].strip() if token[:7].lower() == "bearer " else token)
    return out


def _route(scope: Scope) -> str:
    path = str(scope.get("path") or "")
    root = str(scope.get("root_path") or "").rstrip("/")
    return path[len(root) :] if root and path.startswith(root + "/") else path


def _is_form(scope: Scope) -> bool:
    for name, value in scope.get("headers") or ():
        if name.lower() == b"content-type":
            return b"form" in value.lower()
    return False


async def _buffer(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a ``receive`` that replays it, then defers to the original."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message.get("type") != "http.request":  # the client went away
            first: Message | None = message
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            first = None
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return first if first is not None else {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


async def _json_error(
    send: Send, status: int, kind: str, field: str, message: str, headers: dict[str, str] | None = None
) -> None:
    payload = json.dumps({"error": {"message": message, "type": kind, "param": field, "code": str(status)}})
    extra = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload.encode()})


_installed: set[int] = set()


def install(app: Any, master_key: Callable[[], str | None], precheck: Precheck | None = None) -> None:
    """Guard ``app`` (a FastAPI/Starlette app) once: as its outermost user middleware before it
    starts, or around its built ASGI stack once it has."""
    if id(app) in _installed:
        return
    if getattr(app, "middleware_stack", None) is None:
        app.add_middleware(EdgeGuard, master_key=master_key, precheck=precheck)
    else:
        app.middleware_stack = EdgeGuard(app.middleware_stack, master_key, precheck=precheck)
    _installed.add(id(app))
