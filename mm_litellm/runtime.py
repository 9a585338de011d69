"""The active policy of this process, and what is built from it once (engine, Router).

A request takes the current :class:`Runtime` once at its start and uses it to the end, so
that a policy swapped in meanwhile (``configure`` or hot reload) never changes a request
half-way through.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from mm_litellm.policy.loader import load_policy
from mm_litellm.policy.schema import Policy
from mm_litellm.routing.engine import RoutingEngine

__all__ = ["POLICY_ENV", "Runtime", "configure", "current"]

POLICY_ENV = "MM_LITELLM_POLICY"
"""Environment variable naming the policy file used when ``configure`` was not called."""


class Runtime:
    """A loaded policy with its compiled routing engine and (built on first use) its Router."""

    def __init__(self, policy: Policy) -> None:
        from mm_litellm.integrations.router import SecretCheck

        self.policy = policy
        self.engine = RoutingEngine(policy)
        self.secrets = SecretCheck(policy)
        self._router: Any = None
        self._lock = threading.Lock()

    @property
    def router(self) -> Any:
        """The ``litellm.Router`` serving the policy's models (built once, on first use)."""
        if self._router is None:
            with self._lock:
                if self._router is None:
                    from mm_litellm.integrations.router import build_router

                    self._router = build_router(self.policy)
                    if any(r.strategy == "speed_optimized" for r in self.policy.routes.values()):
                        from mm_litellm.integrations.latency import install

                        install()  # observed latencies feed the speed_optimized strategy
        return self._router


_UNSET: Any = object()
_state: dict[str, Any] = {"runtime": _UNSET}
_state_lock = threading.Lock()


def configure(policy: Policy | str | os.PathLike[str] | None) -> Runtime | None:
    """Make ``policy`` (a :class:`Policy` or a file path) the process's active policy.

    ``None`` switches routing off: every call passes straight through to LiteLLM. Without a
    call to ``configure``, the file named by ``MM_LITELLM_POLICY`` is loaded on first use.
    """
    if policy is not None and not isinstance(policy, Policy):
        policy = load_policy(policy)
    runtime = Runtime(policy) if policy is not None else None
    with _state_lock:
        _state["runtime"] = runtime
    return runtime


def current() -> Runtime | None:
    """The active runtime, or ``None`` when no policy is configured (pure pass-through)."""
    runtime = _state["runtime"]
    if runtime is _UNSET:
        with _state_lock:
            runtime = _state["runtime"]
            if runtime is _UNSET:
                path = os.environ.get(POLICY_ENV)
                runtime = Runtime(load_policy(Path(path))) if path else None
                _state["runtime"] = runtime
    return runtime  # type: ignore[no-any-return]


def reset() -> None:
    """Forget the active policy; the next call reads ``MM_LITELLM_POLICY`` again (for tests)."""
    with _state_lock:
        _state["runtime"] = _UNSET
