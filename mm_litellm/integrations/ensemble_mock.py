"""One mock meaning for ensembles: ``mock_response=`` on ``ensemble/<name>`` is what its members answer.

LiteLLM answers a call carrying ``mock_response`` itself, before any provider runs, so an
ensemble mocked that way would never run (no members, no strategy, cost 0, no
``decision_of(r)["ensemble"]``). Moved into the call's ``metadata["mm_litellm"]`` instead
(:func:`carry_mock_to_members`), the mock reaches each member call, where LiteLLM mocks it; the
strategy, the Router and the cost calculation run for real.

Who moves it, per door:

- ``mm_litellm.completion`` / ``acompletion`` and a routed ``litellm.Router``
  (``routed_router`` / ``install_routing``): the door itself, sync and async.
- plain ``litellm.acompletion`` and ``Router.acompletion``: the
  :func:`carrier` callback's ``async_pre_call_deployment_hook``, which LiteLLM runs on every
  async call before it reads ``mock_response``; :func:`install` puts it in
  ``litellm.callbacks`` (``register_ensembles`` and ``build_router`` do).
- plain sync ``litellm.completion`` and ``Router.completion``: not carried. LiteLLM's sync
  ``completion()`` reads ``mock_response`` into a local at its top and runs no callback that may
  change the call before it answers the mock (only the async wrapper runs
  ``async_pre_call_deployment_hook``; ``log_pre_api_call`` errors are swallowed), so the mock
  is LiteLLM's own answer and the members do not run. Use ``acompletion``,
  ``mm_litellm.completion`` (or a routed Router), or script the members with
  ``mm_litellm.testing.MockLLM``. ``tests/ensemble/test_ensemble_mock.py`` pins this.
"""

from __future__ import annotations

import threading
from typing import Any

from mm_litellm.context import CONTEXT_KEY
from mm_litellm.integrations._litellm import litellm
from mm_litellm.policy.ensembles import ENSEMBLE_PREFIX

__all__ = ["MEMBERS_MOCK", "carrier", "carry_mock_to_members", "install", "mocked_ensemble"]

MEMBERS_MOCK = "members_mock"
"""Context key carrying a caller's ``mock_response`` for an ensemble to its members."""

PROVIDER = "ensemble"
"""The ``custom_provider_map`` name of mm_litellm's ensemble provider (``ensemble/<name>``)."""

_lock = threading.Lock()
_carrier: Any = None


def carry_mock_to_members(call: dict[str, Any]) -> None:
    """Move ``call``'s ``mock_response`` into its ``metadata["mm_litellm"]``, for the members.

    ``call`` (LiteLLM keyword arguments) is changed in place; the metadata dict and the context
    in it are new copies, so a caller's own dicts are never changed.
    """
    if "mock_response" not in call:
        return
    metadata = call["metadata"] = dict(call.get("metadata") or {})
    metadata[CONTEXT_KEY] = {**(metadata.get(CONTEXT_KEY) or {}), MEMBERS_MOCK: call.pop("mock_response")}


def mocked_ensemble(kwargs: Any) -> bool:
    """True for LiteLLM call kwargs that ask an ``ensemble/<name>`` with ``mock_response``."""
    model = kwargs.get("model") if isinstance(kwargs, dict) else None
    return (
        isinstance(model, str)
        and model.startswith(ENSEMBLE_PREFIX)
        and kwargs.get("mock_response") is not None
        and _provider_registered()
    )


def _provider_registered() -> bool:
    return any(e.get("provider") == PROVIDER for e in litellm().custom_provider_map)


def carrier() -> Any:
    """The process's ``CustomLogger`` that carries an ensemble's mock to its members (async calls)."""
    global _carrier
    if _carrier is None:
        from litellm.integrations.custom_logger import CustomLogger

        class EnsembleMockCarrier(CustomLogger):
            """Moves ``mock_response`` of an ``ensemble/<name>`` call to its members."""

            async def async_pre_call_deployment_hook(self, kwargs: dict[str, Any], call_type: Any) -> Any:
                if not mocked_ensemble(kwargs):
                    return None
                call = dict(kwargs)
                carry_mock_to_members(call)
                return call

        _carrier = EnsembleMockCarrier()
    return _carrier


def install() -> None:
    """Put :func:`carrier` into ``litellm.callbacks`` (once; again after a callback reset)."""
    handler = carrier()
    with _lock:
        callbacks = litellm().callbacks
        if handler not in callbacks:
            callbacks.append(handler)
