"""Plain ``litellm --config config/proxy.yaml``: find the policy and give LiteLLM's router its models.

``mm-litellm proxy`` writes ``model_list`` and ``router_settings`` into the config it generates,
so nothing here has anything to do then. When an operator starts LiteLLM directly on the base
config instead, two things are missing, and this module supplies them once per policy:

- the policy path: ``$MM_LITELLM_POLICY``, else ``mm_litellm.policy`` of the config file LiteLLM
  loaded (``proxy_server.user_config_file_path``);
- the policy's models: added to the proxy's ``litellm.Router`` through its public
  ``add_deployment`` and ``update_settings`` (the calls LiteLLM's own model-management endpoints
  use), on the first request.

Either way, the budget ledger's callback (and, with an active prompt experiment, the prompt
manager that settles experiment calls) is registered here too, once per loaded policy, from the
custom auth (which runs before LiteLLM sets up the request's logging). Router settings LiteLLM
cannot change at run time
  (``content_policy_fallbacks``, ``default_fallbacks``) need the generated config.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from mm_litellm.logs import get_logger
from mm_litellm.runtime import POLICY_ENV

__all__ = ["WATCH_ENV", "attach_models", "find_policy"]

WATCH_ENV = "MM_LITELLM_WATCH"
"""Seconds between checks of the policy file for changes (hot reload); unset or 0: no reload."""

_state: dict[str, Any] = {"looked": False, "attached": None, "watcher": None}
_lock = threading.Lock()


def _proxy_server() -> Any:
    return sys.modules.get("litellm.proxy.proxy_server")


def find_policy() -> None:
    """Set ``$MM_LITELLM_POLICY`` from the loaded proxy config when it is not set (once)."""
    if _state["looked"]:
        return
    with _lock:
        if _state["looked"]:
            return
        _state["looked"] = True
        _drain_at_shutdown()
        if not os.environ.get(POLICY_ENV):
            config_path = getattr(_proxy_server(), "user_config_file_path", None)
            if isinstance(config_path, str) and config_path:
                from mm_litellm.proxy.config import policy_path_of, read_base_config

                path = policy_path_of(read_base_config(config_path), config_path)
                if path is not None:
                    os.environ[POLICY_ENV] = str(path)
        _start_watching()


def _drain_at_shutdown() -> None:
    """Record every answered call before the proxy stops.

    LiteLLM reports a call's success on a logging worker a moment after the answer is sent; its
    shutdown cancels that worker. So its ``proxy_shutdown_event`` is wrapped once: first the
    worker's queue is drained and every policy's ledger written, then LiteLLM shuts down.
    """
    server = _proxy_server()
    original = getattr(server, "proxy_shutdown_event", None)
    if original is None or getattr(original, "mm_litellm_drains", False):
        return

    async def proxy_shutdown_event(*args: Any, **kwargs: Any) -> Any:
        import asyncio

        from mm_litellm import runtime
        from mm_litellm.integrations.callbacks_drain import drain_callbacks

        try:
            if not await drain_callbacks(timeout=10.0):
                get_logger("mm_litellm.proxy").error("proxy.shutdown_drain_timeout", waited_s=10.0)
            for rt in runtime.live_runtimes():
                if rt.keeps_ledger and rt.budget is not None:
                    await asyncio.to_thread(rt.budget.flush, 10.0)
        except Exception as exc:  # LiteLLM's own shutdown must still run
            get_logger("mm_litellm.proxy").error("proxy.shutdown_drain_failed", error=repr(exc)[:300])
        return await original(*args, **kwargs)

    proxy_shutdown_event.mm_litellm_drains = True  # type: ignore[attr-defined]
    server.proxy_shutdown_event = proxy_shutdown_event


def _start_watching() -> None:
    """Reload the policy file when it changes, if ``$MM_LITELLM_WATCH`` asks (seconds between checks).

    A reload builds the new policy's runtime and swaps it in; the old one closes once the calls it
    admitted are recorded (see :mod:`mm_litellm.runtime`). A file that does not load is refused and
    the last good policy keeps serving.
    """
    raw, path = os.environ.get(WATCH_ENV, "").strip(), os.environ.get(POLICY_ENV)
    if not raw or not path:
        return

    try:
        interval = float(raw)
    except ValueError:
        get_logger("mm_litellm.proxy").error(
            "proxy.watch_invalid", value=raw, expected=f"{WATCH_ENV}: seconds between checks, e.g. 1"
        )
        return
    if interval <= 0:
        return
    from mm_litellm.watch import PolicyWatcher

    _state["watcher"] = PolicyWatcher(path, interval=interval).start()


def attach_models(runtime: Any) -> None:
    """Add the policy's model groups the proxy's router lacks and register the ledger (once per policy)."""
    if _state["attached"] is runtime:
        return
    with _lock:
        if _state["attached"] is runtime:
            return
        router = getattr(_proxy_server(), "llm_router", None)
        if router is None:
            return  # not inside a started proxy (yet): nothing to attach to
        _add_missing(router, runtime.policy)
        if runtime.policy.budgets is not None:
            _register_ledger(runtime)
        prompts = runtime.policy.prompts
        if prompts is not None and any(spec.active for spec in prompts.experiments.values()):
            # settles A/B experiment calls from LiteLLM's success and failure events; only then
            # is it worth a callback on every request
            from mm_litellm.integrations.prompt_manager import install

            install()
        _state["attached"] = runtime


def _register_ledger(runtime: Any) -> None:
    """Put the ledger callback in place before the first request's logging is set up."""
    try:
        runtime.budget  # noqa: B018  (built now: the store opens, the runtime registers with LiteLLM)
    except Exception as exc:  # the store cannot be opened: the budget step refuses (or allows) per policy
        get_logger("mm_litellm.proxy").error("proxy.ledger_unavailable", error=str(exc))


def _add_missing(router: Any, policy: Any) -> None:
    from litellm.types.router import Deployment

    from mm_litellm.integrations.router import model_list, router_settings
    from mm_litellm.proxy.config import listed_names

    known = set(router.get_model_names())
    missing = [entry for entry in model_list(policy) if entry["model_name"] not in known]
    if not missing:
        return
    if policy.ensembles:  # ensemble groups need their provider (config/proxy.yaml registers it too)
        from mm_litellm.integrations.ensemble_provider import ensure_registered

        ensure_registered()
    for entry in missing:
        router.add_deployment(Deployment(**entry))
    settings = router_settings(policy)
    settings.pop("content_policy_fallbacks", None)
    settings.pop("default_fallbacks", None)
    settings["model_group_alias"] = listed_names(policy) | dict(router.model_group_alias or {})
    allowed_fails = settings.pop("allowed_fails_policy", None)  # update_settings cannot change it
    router.update_settings(**settings)
    if allowed_fails and getattr(router, "allowed_fails_policy", None) is None:
        from litellm.types.router import AllowedFailsPolicy

        # a request's own 4xx never cools a shared deployment, under plain `litellm --config` too
        router.allowed_fails_policy = AllowedFailsPolicy(**allowed_fails)
