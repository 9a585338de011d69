"""Which proxy routes a non-master key may call: the model-serving ones, nothing else.

With ``general_settings.custom_auth`` LiteLLM skips its own route-role checks, so route
separation is ours: :func:`mm_litellm.proxy.auth.user_api_key_auth` refuses every route not
listed here with 403 for any key but the master key. The list is an allow-list, so a route a
LiteLLM upgrade adds is refused until someone adds it here (``tests/proxy/test_security.py``
enumerates the proxy app's routes and checks each).

:data:`MODEL_ROUTES` call a model (each must be budgeted: the accounting code asserts it);
:data:`FREE_ROUTES` only list the model names the caller can use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FREE_ROUTES",
    "MODEL_ROUTES",
    "OPEN_ROUTES",
    "USER_ROUTES",
    "AppRoute",
    "proxy_app_routes",
    "user_may_call",
]


def _family(*suffixes: str, deployments: bool = True) -> tuple[str, ...]:
    """``/x``, ``/v1/x`` and, for OpenAI-compatible families, the Azure/engine aliases."""
    out: list[str] = []
    for suffix in suffixes:
        out += [f"/{suffix}", f"/v1/{suffix}"]
        if deployments:
            out += [f"/openai/deployments/{{model}}/{suffix}", f"/engines/{{model}}/{suffix}"]
    return tuple(out)


MODEL_ROUTES: frozenset[tuple[str, str]] = frozenset(
    ("POST", path)
    for path in (
        *_family("chat/completions", "completions", "embeddings", "images/generations", "images/edits"),
        *_family("audio/speech", "audio/transcriptions", "moderations", "rerank", deployments=False),
        "/v2/rerank",
        "/responses",
        "/v1/responses",
        "/openai/v1/responses",
        "/v1/messages",
    )
)
"""``(method, path template)`` of every route that calls a model for a user key."""

FREE_ROUTES: frozenset[tuple[str, str]] = frozenset({("GET", "/models"), ("GET", "/v1/models")})
"""Routes a user key may call that reach no model (the list of model names)."""

USER_ROUTES: frozenset[tuple[str, str]] = MODEL_ROUTES | FREE_ROUTES
"""Everything a non-master key may call."""

OPEN_ROUTES: frozenset[str] = frozenset(
    {
        "/health/liveliness",
        "/health/liveness",
        "/health/readiness",
    }
)
"""Probes answered without any key (LiteLLM serves them without calling the custom auth)."""


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    regex = "".join("[^/]+(?:/[^/]+)*?" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(regex + "/?")


_COMPILED: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (method, _pattern(path)) for method, path in sorted(USER_ROUTES)
)


def user_may_call(method: str, path: str) -> bool:
    """Whether a non-master key may call ``method path`` (a concrete request path)."""
    method = method.upper()
    return any(m == method and p.fullmatch(path) for m, p in _COMPILED)


@dataclass(frozen=True, slots=True)
class AppRoute:
    """One route of the proxy app as the tests and docs enumerate it."""

    path: str
    methods: frozenset[str]
    authenticated: bool
    """Whether LiteLLM runs its auth (and so our custom auth) before the handler."""


def proxy_app_routes(*, load_lazy: bool = True) -> list[AppRoute]:
    """Every HTTP route of LiteLLM's proxy app (imports the proxy; for tests and audits).

    ``load_lazy`` also registers the feature routers LiteLLM loads on a first matching request.
    """
    from fastapi.routing import _IncludedRouter  # FastAPI's lazily flattened include_router
    from litellm.proxy import proxy_server
    from litellm.proxy.auth.user_api_key_auth import user_api_key_auth

    if load_lazy:
        from litellm.proxy._lazy_features import register_all_features

        register_all_features(proxy_server.app)

    def walk(routes: Iterable[Any]) -> Iterable[Any]:
        for route in routes:
            if isinstance(route, _IncludedRouter):
                yield from walk(route.effective_candidates())
            else:
                yield route

    def calls(dependant: Any) -> Iterable[Any]:
        yield dependant.call
        for sub in dependant.dependencies:
            yield from calls(sub)

    out = []
    for route in walk(proxy_server.app.routes):
        methods = getattr(route, "methods", None)
        path = getattr(route, "path", None)
        if not methods or not path:  # mounts, websockets: not HTTP routes of this app
            continue
        dependant = getattr(route, "dependant", None)
        authenticated = dependant is not None and any(c is user_api_key_auth for c in calls(dependant))
        out.append(AppRoute(path, frozenset(methods), authenticated))
    return out
