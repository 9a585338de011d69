"""mm_litellm's prompt registry as a LiteLLM ``CustomPromptManagement``.

After ``mm_litellm.register_prompts(...)`` (or with ``prompt_manager`` listed in the proxy's
``litellm_settings.callbacks``), ``litellm.completion(model=..., prompt_id="extraction",
prompt_variables={...})`` renders from the registry. Three LiteLLM 1.106 behaviours shape this
class (see shared/LITELLM_NOTES.md):

- ``acompletion`` renders twice (async hook, then the sync hook inside ``completion``). The
  whole render happens earlier, in ``async_pre_call_deployment_hook``, where the request's
  kwargs (user, metadata, call id) are at hand; it removes ``prompt_id`` so LiteLLM does not
  render again. Where that hook cannot run, rendering is idempotent (messages that already
  start with the rendered template are left alone) and the async hook unpins ``prompt_id``.
- LiteLLM discards the model parameters a prompt manager returns. The deployment hook puts
  them into the request itself (caller's explicit values win). Plain sync
  ``litellm.completion`` has no such hook: there the template's parameters cannot be applied
  and a warning names them (``mm_litellm.completion`` applies them).
- The prompt hooks do not see the caller's ``user`` or ``metadata``: on plain sync
  ``litellm.completion`` an experiment assigns at random instead of by user.

The prompt record (id, version, label, variant, experiment, call_id) is written into
``metadata["mm_litellm"]["prompt"]`` before the provider is called, so every later callback
(the budget ledger) sees it; LiteLLM's success and failure events settle experiment calls with
LiteLLM's own cost and latency.
"""

from __future__ import annotations

import warnings
from typing import Any

import structlog

from mm_litellm.integrations._litellm import litellm
from mm_litellm.logs import get_logger

litellm()  # sets the local price map before LiteLLM's import below
from litellm.integrations.custom_prompt_management import CustomPromptManagement  # noqa: E402

from mm_litellm.context import context_of  # noqa: E402
from mm_litellm.prompts import apply  # noqa: E402

__all__ = ["MMPromptManager", "install", "prompt_manager", "uninstall"]

log = get_logger(__name__)
STASH = "mm_litellm_prompt"
"""Key under which a prompt hook hands its record to ``log_pre_api_call`` of the same call."""


class MMPromptManager(CustomPromptManagement):
    """Renders ``prompt_id`` requests from the active mm_litellm prompt registry."""

    @property
    def integration_name(self) -> str:
        return "mm_litellm"

    def should_run_prompt_management(
        self, prompt_id: str | None, prompt_spec: Any, dynamic_callback_params: Any
    ) -> bool:
        registry = apply.active_registry(_current())
        return bool(prompt_id) and registry is not None and registry.knows(str(prompt_id))

    # --- rendering --------------------------------------------------------------------------

    async def async_pre_call_deployment_hook(
        self, kwargs: dict[str, Any], call_type: Any
    ) -> dict[str, Any] | None:
        """Render the whole request (messages, parameters, metadata) before LiteLLM does."""
        if (
            not kwargs.get("prompt_id")
            or "model" not in kwargs
            or not isinstance(kwargs.get("messages"), list)
        ):
            return None  # model or messages passed positionally: the prompt hooks render instead
        registry = apply.active_registry(_current())
        if registry is None or not registry.knows(str(kwargs["prompt_id"])):
            return None
        call = dict(kwargs)
        model, messages, _ = apply.prepare(
            call.get("model"), call.get("messages"), call, _current(), record_now=True
        )
        call["model"], call["messages"] = model, messages
        return call

    def get_chat_completion_prompt(  # type: ignore[override]  # LiteLLM's TypedDicts, taken as Any
        self,
        model: str,
        messages: list[Any],
        non_default_params: dict[str, Any],
        prompt_id: str | None,
        prompt_variables: dict[str, Any] | None,
        dynamic_callback_params: Any,
        prompt_spec: Any = None,
        prompt_label: str | None = None,
        prompt_version: int | None = None,
        **_: Any,
    ) -> tuple[str, list[Any], dict[str, Any]]:
        return self._render(
            model,
            messages,
            non_default_params,
            prompt_id,
            prompt_variables,
            dynamic_callback_params,
            prompt_label,
            prompt_version,
            sync=True,
        )

    async def async_get_chat_completion_prompt(  # type: ignore[override]
        self,
        model: str,
        messages: list[Any],
        non_default_params: dict[str, Any],
        prompt_id: str | None,
        prompt_variables: dict[str, Any] | None,
        dynamic_callback_params: Any,
        litellm_logging_obj: Any = None,
        prompt_spec: Any = None,
        tools: Any = None,
        prompt_label: str | None = None,
        prompt_version: int | None = None,
        **_: Any,
    ) -> tuple[str, list[Any], dict[str, Any]]:
        rendered = self._render(
            model,
            messages,
            non_default_params,
            prompt_id,
            prompt_variables,
            dynamic_callback_params,
            prompt_label,
            prompt_version,
            sync=False,
        )
        for (
            key
        ) in apply.PROMPT_KWARGS:  # these are acompletion's own kwargs: its sync pass must not render again
            non_default_params.pop(key, None)
        return rendered

    def _render(
        self,
        model: str,
        messages: list[Any],
        params: dict[str, Any],
        prompt_id: str | None,
        variables: dict[str, Any] | None,
        dynamic: Any,
        label: str | None,
        version: int | None,
        *,
        sync: bool,
    ) -> tuple[str, list[Any], dict[str, Any]]:
        registry = apply.active_registry(_current())
        if not prompt_id or registry is None:
            return model, messages, params
        compiled, info, unit = apply.resolve(registry, str(prompt_id), version, label, {})
        rendered = compiled.render(variables)
        merged = apply.merge_messages(rendered.messages, messages)
        if len(merged) == len(messages or []):  # already rendered (LiteLLM's second pass): leave as is
            return model, merged, params
        if sync and rendered.params:
            # LiteLLM hides the caller's own temperature etc. from this hook, so say it for all of them.
            _warn_params_dropped(str(prompt_id), compiled.spec.version, sorted(rendered.params))
        if isinstance(dynamic, dict):
            dynamic[STASH] = {**info, "unit": unit}
        return model, merged, {**rendered.params, **params}

    # --- recording --------------------------------------------------------------------------

    def log_pre_api_call(self, model: Any, messages: Any, kwargs: dict[str, Any]) -> None:
        """Write the prompt record into the call's metadata, and store an experiment assignment."""
        dynamic = kwargs.get("standard_callback_dynamic_params")
        stash = dynamic.pop(STASH, None) if isinstance(dynamic, dict) else None
        registry = apply.active_registry(_current())
        if stash is None or registry is None:
            return
        unit = stash.pop("unit", None)
        stash["call_id"] = kwargs.get("litellm_call_id")
        litellm_params = kwargs.get("litellm_params")
        if isinstance(litellm_params, dict):
            litellm_params["metadata"] = apply.with_prompt_metadata(litellm_params.get("metadata"), stash)
        if stash["call_id"]:
            apply.record_assignment(registry, stash, unit)

    def log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._settle(kwargs, response_obj, start_time, end_time, ok=True)

    def log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._settle(kwargs, response_obj, start_time, end_time, ok=False)

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._settle(kwargs, response_obj, start_time, end_time, ok=True)

    async def async_log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._settle(kwargs, response_obj, start_time, end_time, ok=False)

    def _settle(self, kwargs: dict[str, Any], response: Any, start: Any, end: Any, *, ok: bool) -> None:
        ctx = context_of(kwargs) or {}
        info = ctx.get("prompt") or {}
        registry = apply.active_registry(_runtime_of(ctx))
        if not info.get("experiment") or registry is None or registry.store is None:
            return
        try:
            latency = (end - start).total_seconds() * 1000
        except Exception:
            latency = None
        call_id = info.get("call_id") or kwargs.get("litellm_call_id")
        if not call_id:
            return
        registry.store.settle(
            str(call_id),
            ok=ok,
            cost_usd=kwargs.get("response_cost"),
            latency_ms=latency,
            response_id=getattr(response, "id", None) if ok else None,
        )


def _current() -> Any:
    from mm_litellm import runtime

    return runtime.current()


def _runtime_of(ctx: Any) -> Any:
    """The runtime that admitted the call, else the active one (plain ``litellm`` calls)."""
    from mm_litellm import runtime

    return runtime.find(ctx.get("runtime")) or runtime.current()


_warned: set[tuple[str, int]] = set()


def _warn_params_dropped(prompt_id: str, version: int, params: list[str]) -> None:
    """Say once per prompt version that plain ``litellm.completion`` cannot apply its parameters."""
    if (prompt_id, version) in _warned:
        return
    _warned.add((prompt_id, version))
    message = (
        f"prompt '{prompt_id}' v{version}: template parameters {', '.join(params)} are not applied by "
        "litellm.completion (LiteLLM discards prompt-manager parameters); pass them yourself, or call "
        "litellm.acompletion or mm_litellm.completion, which apply them"
    )
    if structlog.is_configured():  # an unconfigured structlog prints to stdout: warn through `warnings` then
        log.warning("prompt.params_not_applied", prompt=prompt_id, version=version, params=params)
    else:
        warnings.warn(message, RuntimeWarning, stacklevel=2)


prompt_manager = MMPromptManager()
"""The instance to register: ``litellm.callbacks``, or the proxy's callbacks as
``mm_litellm.integrations.prompt_manager.prompt_manager``
in the proxy's ``litellm_settings.callbacks``)."""


def install() -> MMPromptManager:
    """Add :data:`prompt_manager` to ``litellm.callbacks`` once."""
    module = litellm()
    if not any(cb is prompt_manager for cb in module.callbacks):
        module.callbacks.append(prompt_manager)
    return prompt_manager


def uninstall() -> None:
    """Remove :data:`prompt_manager` from LiteLLM's callbacks (the registered registry stays active)."""
    module = litellm()
    module.callbacks[:] = [cb for cb in module.callbacks if cb is not prompt_manager]
