"""The prompt registry's public entry points: ``register_prompts`` and ``record_outcome``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from mm_litellm import runtime as _runtime
from mm_litellm.errors import ConfigurationError
from mm_litellm.prompts import apply

if TYPE_CHECKING:
    from mm_litellm.prompts.registry import PromptRegistry
    from mm_litellm.prompts.store import Assignment

__all__ = ["record_outcome", "register_prompts"]


def register_prompts(
    source: Any = None,
    *,
    dir: str | os.PathLike[str] | None = None,
    database_url: str | None = None,
    install: bool = True,
) -> PromptRegistry:
    """Make a prompt registry active and plug it into LiteLLM's prompt management.

    ``source`` is a :class:`~mm_litellm.prompts.registry.PromptRegistry`, a policy (object or
    file path; its ``prompts:`` section and database), or ``None`` with ``dir=`` (and optionally
    ``database_url=``) for a registry without a policy. Without any of these, the active
    policy's registry is used. Afterwards ``litellm.completion(..., prompt_id=...)`` and
    ``mm_litellm.completion(..., prompt_id=...)`` render from it.
    """
    from mm_litellm.prompts.registry import PromptRegistry
    from mm_litellm.prompts.store import PromptStore

    if isinstance(source, PromptRegistry):
        registry = source
    elif source is not None:
        from mm_litellm.policy import Policy, load_policy

        policy = source if isinstance(source, Policy) else load_policy(source)
        registry = PromptRegistry.from_policy(policy)
    elif dir is not None:
        from mm_litellm import storage

        store = PromptStore(storage.engine_for(database_url)) if database_url else None
        registry = PromptRegistry(dir, store)
    else:
        apply.set_registered(None)
        found = apply.active_registry(_runtime.current())
        if found is None:
            raise ConfigurationError(
                "register_prompts() found no prompts: pass a registry, a policy with a 'prompts:' section, "
                "or dir='config/prompts'"
            )
        registry = found
    apply.set_registered(registry)
    if install:
        from mm_litellm.integrations.prompt_manager import install as _install

        _install()
    return registry


def record_outcome(call_id: str, *, success: bool | None = None, score: float | None = None) -> Assignment:
    """Record how an experiment call went: ``success=True/False`` or ``score=<number>``.

    ``call_id`` is the call's ``litellm_call_id`` (``decision_of(response)["prompt"]["call_id"]``)
    or the response id (``response.id``).
    """
    registry = apply.active_registry(_runtime.current())
    if registry is None:
        raise ConfigurationError(
            "record_outcome(): no prompt registry (policy 'prompts:' section or register_prompts())"
        )
    return registry.record_outcome(call_id, success=success, score=score)
