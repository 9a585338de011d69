"""LiteLLM proxy custom auth: ``general_settings.custom_auth: mm_litellm.proxy.auth.user_api_key_auth``.

LiteLLM calls :func:`user_api_key_auth` for every request, before any hook, with the bearer
token. It answers with LiteLLM's ``UserAPIKeyAuth`` carrying the declared key's id, user, team,
tags and limits, or refuses. With ``custom_auth`` set LiteLLM skips its own key and route
checks, so this is the proxy's boundary (docs/proxy.md "Security model"):

- 429: the client address failed authentication too often (:mod:`mm_litellm.proxy.throttle`);
- 401: missing, malformed or unknown key (the master key is recognised here, role ``proxy_admin``);
- 403: a non-master key on a route that is not model-serving (:mod:`mm_litellm.proxy.routes`);
- 400/403: a malformed body field, or a deployment override the key may not send
  (:func:`mm_litellm.validation.check_request`), before any LiteLLM handler runs.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mm_litellm.errors import InvalidRequestError, PolicyError
from mm_litellm.integrations._litellm import litellm
from mm_litellm.policy.proxy import KeySpec
from mm_litellm.proxy import edge
from mm_litellm.proxy.identity import AUTH_METADATA_KEY
from mm_litellm.proxy.keys import KeyStore, KnownKey, load_keys_file, well_formed
from mm_litellm.proxy.precall import RequestRefused, current_runtime
from mm_litellm.proxy.routes import user_may_call
from mm_litellm.proxy.throttle import FailureThrottle
from mm_litellm.validation import check_overrides, check_request

__all__ = ["KEYS_ENV", "key_store", "user_api_key_auth"]

KEYS_ENV = "MM_LITELLM_KEYS"
"""Environment variable naming a keys file, used besides the policy's ``proxy`` section."""

_cache: dict[str, Any] = {"policy": None, "env": None, "store": KeyStore({})}
_cache_lock = threading.Lock()
throttle = FailureThrottle()
"""Authentication failures per client address, and failed scrypt checks (one process-wide table)."""
SCRYPT_BUCKET = "scrypt"
"""The throttle's bucket of failed scrypt checks, whatever the address: a few a second at most."""


def key_store() -> KeyStore:
    """The keys of the active policy (inline and ``keys_file``) plus ``$MM_LITELLM_KEYS``.

    Rebuilt only when the active policy object or the variable changes (a policy reload).
    """
    rt = current_runtime()
    policy = rt.policy if rt is not None else None
    env = os.environ.get(KEYS_ENV)
    if _cache["policy"] is policy and _cache["env"] == env:
        return _cache["store"]  # type: ignore[no-any-return]
    with _cache_lock:
        keys: dict[str, KeySpec] = {}
        if policy is not None:
            keys.update(policy.proxy.keys)
            if policy.proxy.keys_file:
                keys.update(load_keys_file(_relative_to_policy(policy.proxy.keys_file, policy.source)))
        if env:
            keys.update(load_keys_file(env))
        store = KeyStore(keys)
        _cache.update(policy=policy, env=env, store=store)
        return store


def _relative_to_policy(path: str, source: str) -> Path:
    p = Path(path)
    if p.is_absolute() or source.startswith("<"):
        return p
    return Path(source).resolve().parent / p


async def user_api_key_auth(request: Any, api_key: str) -> Any:
    """Authenticate ``api_key`` (LiteLLM already removed ``Bearer``), then check the route and body."""
    LitellmUserRoles, UserAPIKeyAuth = _litellm_types()
    _guard_headers()
    try:
        store = key_store()  # also readies the policy for this request (models, ledger callback)
    except (PolicyError, RequestRefused) as exc:  # a broken policy or keys file: the operator's problem
        from litellm.proxy._types import ProxyException

        raise ProxyException(
            message=f"mm_litellm: cannot load the proxy's keys: {exc}",
            type="server_error",
            param=None,
            code=500,
        ) from exc
    if not well_formed(api_key):
        raise _unauthorized("missing or malformed API key: send 'Authorization: Bearer <key>'")
    method, route = _route_of(request)
    master = _master_key()
    if master and hmac.compare_digest(api_key.encode(), master.encode()):
        if user_may_call(method, route):  # model routes: the body's shape (every override allowed)
            await _check_body(request, trusted=True, allowed=())
        return UserAPIKeyAuth(
            api_key=api_key,  # LiteLLM stores its SHA-256 only
            user_id="operator",
            key_alias="master",
            user_role=LitellmUserRoles.PROXY_ADMIN,
            metadata={AUTH_METADATA_KEY: {"key": "master", "source": "master", "tags": [], "limits": {}}},
        )
    found = store.quick_lookup(api_key)
    if not isinstance(found, KnownKey):  # not a key verified before: only for an address not failing
        address = _client_address(request)
        wait = throttle.retry_after(address)
        if wait > 0:
            raise _throttled(wait)
        if isinstance(found, list):  # scrypt, in a worker thread; failed ones bounded process-wide
            checks = len(found)  # an id-less token is tried against every scrypt key
            wait = throttle.take(SCRYPT_BUCKET, checks)  # reserved before the work, whatever the address
            if wait > 0:
                raise _throttled(wait)
            found = await store.alookup(api_key)
            if found is not None:
                throttle.refund(SCRYPT_BUCKET, checks)
        if found is None:
            throttle.failed(address)
            raise _unauthorized("unknown API key")
    if not user_may_call(method, route):
        raise _forbidden(method, route)
    await _check_body(request, trusted=False, allowed=found.spec.allow_overrides)
    template = store.auth_cache.get(found.key_id)
    if template is None:
        template = _auth_for(found, api_key, UserAPIKeyAuth, LitellmUserRoles)
        store.auth_cache[found.key_id] = template
    # Validating LiteLLM's model costs ~130 us a request; a copy of the validated one (with its own
    # metadata dict, the part requests may change) costs a third of that.
    return template.model_copy(update={"metadata": copy.deepcopy(template.metadata)})


def _route_of(request: Any) -> tuple[str, str]:
    from litellm.proxy.auth.auth_utils import get_request_route

    return str(getattr(request, "method", "GET")).upper(), get_request_route(request)


def _client_address(request: Any) -> str:
    client = getattr(request, "client", None)
    return str(getattr(client, "host", None) or "unknown")


async def _check_body(request: Any, *, trusted: bool, allowed: tuple[str, ...]) -> None:
    """The request body's fields (:func:`mm_litellm.validation.check_request`): 400/403 naming the field."""
    if str(getattr(request, "method", "GET")).upper() != "POST":
        return
    from litellm.proxy.common_utils.http_parsing_utils import _safe_get_request_parsed_body

    body: Any = _safe_get_request_parsed_body(request)  # LiteLLM parsed and cached JSON objects and forms
    content_type = str(getattr(request, "headers", {}).get("content-type", ""))
    try:
        if body is None:  # not cached: empty, or JSON that is not an object
            raw = await request.body()
            if not raw.strip():
                return
            try:
                body = json.loads(raw)
            except ValueError:
                return  # LiteLLM answers malformed JSON with its own 400
        if "form" in content_type and isinstance(body, Mapping):
            if not trusted:
                check_overrides(body, allowed)
            return
        check_request(body, trusted=trusted, allowed_overrides=allowed)
    except InvalidRequestError as exc:
        from litellm.proxy._types import ProxyException

        kind = "permission_error" if exc.status == 403 else "invalid_request_error"
        raise ProxyException(
            message=f"mm_litellm: {exc.message}", type=kind, param=exc.field, code=exc.status
        ) from None


def _guard_headers() -> None:
    """Wrap the proxy app in :mod:`mm_litellm.proxy.edge` (body pre-checks, no upstream URLs), once."""
    server = sys.modules.get("litellm.proxy.proxy_server")
    app = getattr(server, "app", None)
    if app is not None:
        edge.install(app, _master_key, precheck=stranger_refusal)


def stranger_refusal(token: str, address: str) -> tuple[int, str, dict[str, str]] | None:
    """The edge's cheap pre-check of a non-master key (see :mod:`mm_litellm.proxy.edge`): 429 for a
    throttled address (or, for a key needing scrypt, a drained scrypt bucket) and a key not already
    verified, 401 for a key that is certainly unknown (one SHA-256 and dict lookups, no scrypt);
    ``None`` lets the request through to LiteLLM and the custom auth."""
    try:
        found = key_store().quick_lookup(token)
    except Exception:  # a policy that does not load: the custom auth reports it properly
        return None
    if isinstance(found, KnownKey):
        return None
    wait = throttle.retry_after(address)
    if isinstance(found, list):  # would need scrypt: not while failed ones are being paid back
        wait = max(wait, throttle.retry_after(SCRYPT_BUCKET))
    if wait > 0:
        seconds = max(1, round(wait + 0.5))
        return (
            429,
            f"mm_litellm: too many failed authentications from this address; retry in {seconds} s",
            {"retry-after": str(seconds)},
        )
    if found is None and well_formed(token):
        throttle.failed(address)
        return 401, "mm_litellm: unknown API key", {}
    return None


def _litellm_types() -> tuple[Any, Any]:
    litellm()  # LiteLLM imported our way (local price map) before its proxy types
    from litellm.proxy._types import LitellmUserRoles, UserAPIKeyAuth

    return LitellmUserRoles, UserAPIKeyAuth


def _auth_for(found: KnownKey, api_key: str, auth_cls: Any, roles: Any) -> Any:
    spec = found.spec  # spec.models is enforced by the pre-call hook on the requested name
    limits = spec.limits.model_dump(exclude_none=True)
    return auth_cls(
        # The SHA-256 hex digest, which is also what LiteLLM records as the key's token.
        api_key=hashlib.sha256(api_key.encode()).hexdigest(),
        key_alias=found.key_id,
        key_name=found.key_id,
        user_id=spec.user,
        team_id=spec.team,
        rpm_limit=spec.limits.rpm,
        tpm_limit=spec.limits.tpm,
        user_role=roles.INTERNAL_USER,
        metadata={
            "tags": list(spec.tags),
            AUTH_METADATA_KEY: {
                "key": found.key_id,
                "source": "mm_litellm",
                "tags": list(spec.tags),
                "limits": limits,
            },
        },
    )


def _master_key() -> str | None:
    """The proxy's master key (LiteLLM resolves ``general_settings.master_key`` at startup)."""
    server = sys.modules.get("litellm.proxy.proxy_server")  # always loaded inside the proxy
    key = getattr(server, "master_key", None)
    return key if isinstance(key, str) and key else os.environ.get("LITELLM_MASTER_KEY")


def _forbidden(method: str, route: str) -> Exception:
    litellm()
    from litellm.proxy._types import ProxyException

    return ProxyException(
        message=f"mm_litellm: this API key may not call {method} {route}: keys reach only the model-serving "
        "routes (chat, completions, responses, messages, embeddings, images, audio, models); "
        "the rest need the master key",
        type="permission_error",
        param="route",
        code=403,
    )


def _throttled(wait: float) -> Exception:
    litellm()
    from litellm.proxy._types import ProxyException

    seconds = max(1, round(wait + 0.5))
    return ProxyException(
        message=f"mm_litellm: too many failed authentications from this address; retry in {seconds} s",
        type="auth_error",
        param="api_key",
        code=429,
        headers={"retry-after": str(seconds)},
    )


def _unauthorized(message: str) -> Exception:
    litellm()
    from litellm.proxy._types import ProxyException

    return ProxyException(message=f"mm_litellm: {message}", type="auth_error", param="api_key", code=401)


# LiteLLM imports this module while it starts (``general_settings.custom_auth``): guard its app from
# the first request on. Outside the proxy process (tests, tools) there is no app and nothing happens.
_guard_headers()
