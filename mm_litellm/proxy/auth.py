"""LiteLLM proxy custom auth: ``general_settings.custom_auth: mm_litellm.proxy.auth.user_api_key_auth``.

LiteLLM calls :func:`user_api_key_auth` for every request, before any hook, with the bearer
token. It answers with LiteLLM's ``UserAPIKeyAuth`` carrying the declared key's id, user, team,
tags and limits, or refuses with 401. With ``custom_auth`` set LiteLLM skips its own key check,
so the operator's master key is recognised here as well (role ``proxy_admin``).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import os
import sys
import threading
from pathlib import Path
from typing import Any

from mm_litellm.errors import PolicyError
from mm_litellm.integrations._litellm import litellm
from mm_litellm.policy.proxy import KeySpec
from mm_litellm.proxy.identity import AUTH_METADATA_KEY
from mm_litellm.proxy.keys import KeyStore, KnownKey, load_keys_file, well_formed
from mm_litellm.proxy.precall import RequestRefused, current_runtime

__all__ = ["KEYS_ENV", "key_store", "user_api_key_auth"]

KEYS_ENV = "MM_LITELLM_KEYS"
"""Environment variable naming a keys file, used besides the policy's ``proxy`` section."""

_cache: dict[str, Any] = {"policy": None, "env": None, "store": KeyStore({})}
_cache_lock = threading.Lock()


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
    """Authenticate ``api_key`` (LiteLLM already removed ``Bearer``); 401 when it is not ours."""
    LitellmUserRoles, UserAPIKeyAuth = _litellm_types()
    try:
        store = key_store()  # also readies the policy for this request (models, ledger callback)
    except (PolicyError, RequestRefused) as exc:  # a broken policy or keys file: the operator's problem
        from litellm.proxy._types import ProxyException

        raise ProxyException(message=f"mm_litellm: cannot load the proxy's keys: {exc}", type="server_error",
                             param=None, code=500) from exc
    if not well_formed(api_key):
        raise _unauthorized("missing or malformed API key: send 'Authorization: Bearer <key>'")
    master = _master_key()
    if master and hmac.compare_digest(api_key.encode(), master.encode()):
        return UserAPIKeyAuth(
            api_key=api_key,  # LiteLLM stores its SHA-256 only
            user_id="operator",
            key_alias="master",
            user_role=LitellmUserRoles.PROXY_ADMIN,
            metadata={AUTH_METADATA_KEY: {"key": "master", "source": "master", "tags": [], "limits": {}}},
        )
    found = store.lookup(api_key)
    if found is None:
        raise _unauthorized("unknown API key")
    template = store.auth_cache.get(found.key_id)
    if template is None:
        template = store.auth_cache[found.key_id] = _auth_for(found, api_key, UserAPIKeyAuth, LitellmUserRoles)
    # Validating LiteLLM's model costs ~130 us a request; a copy of the validated one (with its own
    # metadata dict, the part requests may change) costs a third of that.
    return template.model_copy(update={"metadata": copy.deepcopy(template.metadata)})


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
            AUTH_METADATA_KEY: {"key": found.key_id, "source": "mm_litellm", "tags": list(spec.tags),
                                "limits": limits},
        },
    )


def _master_key() -> str | None:
    """The proxy's master key (LiteLLM resolves ``general_settings.master_key`` at startup)."""
    server = sys.modules.get("litellm.proxy.proxy_server")  # always loaded inside the proxy
    key = getattr(server, "master_key", None)
    return key if isinstance(key, str) and key else os.environ.get("LITELLM_MASTER_KEY")


def _unauthorized(message: str) -> Exception:
    litellm()
    from litellm.proxy._types import ProxyException

    return ProxyException(message=f"mm_litellm: {message}", type="auth_error", param="api_key", code=401)
