"""Checks before LiteLLM's proxy starts: one clear line instead of a traceback.

LiteLLM refuses to start with a missing, empty or publicly known master key (``sk-1234``), but
says so after a long lifespan traceback. ``mm-litellm proxy`` calls :func:`master_key_problem`
before it starts ``litellm``; a proxy started directly (``litellm --config config/proxy.yaml``)
gets the same check from the callback name ``mm_litellm.proxy.preflight.master_key_check`` in
the config's ``litellm_settings.callbacks``: LiteLLM looks that name up while it loads the
config, before its own check, and a weak key then stops the process with one line on stderr.
Importing this module does nothing.
"""

from __future__ import annotations

import hashlib
import os
import sys
from typing import Any

__all__ = ["MASTER_KEY_ENV", "MASTER_KEY_HINT", "master_key_problem"]

MASTER_KEY_ENV = "LITELLM_MASTER_KEY"
MASTER_KEY_HINT = (
    "set it to a long random secret, e.g. "
    "export LITELLM_MASTER_KEY=\"sk-$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')\""
)
# sha256 of LiteLLM's documented example key, the one its proxy refuses.
_PUBLICLY_KNOWN = frozenset({"88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"})
MIN_LENGTH = 16


def master_key_problem(value: str | None) -> str | None:
    """What is wrong with ``value`` as the proxy's master key (``None``: nothing)."""
    if value is None:
        return f"{MASTER_KEY_ENV} is not set"
    key = value.strip()
    if not key:
        return f"{MASTER_KEY_ENV} is empty"
    if hashlib.sha256(key.encode()).hexdigest() in _PUBLICLY_KNOWN:
        return f"{MASTER_KEY_ENV} is LiteLLM's publicly known example key"
    if len(key) < MIN_LENGTH:
        return f"{MASTER_KEY_ENV} is too short ({len(key)} characters; at least {MIN_LENGTH})"
    return None


def _configured_master_key() -> str | None:
    """The key the proxy will use: a literal ``general_settings.master_key``, else the variable."""
    path = os.environ.get("CONFIG_FILE_PATH")
    if not path:  # `litellm --config FILE` passes its arguments to the server as JSON
        import json

        try:
            worker = json.loads(os.environ.get("WORKER_CONFIG") or "{}")
        except ValueError:
            worker = {}
        path = worker.get("config") if isinstance(worker, dict) else None
    if isinstance(path, str) and os.path.isfile(path):
        import yaml

        try:
            with open(path, encoding="utf-8") as handle:
                config = yaml.safe_load(handle) or {}
            literal = (config.get("general_settings") or {}).get("master_key")
        except (OSError, yaml.YAMLError, AttributeError):
            literal = None
        if isinstance(literal, str) and not literal.startswith("os.environ/"):
            return literal
    return os.environ.get(MASTER_KEY_ENV)


def __getattr__(name: str) -> Any:
    """``master_key_check``: the check, run when LiteLLM's proxy looks the name up in its config."""
    if name != "master_key_check":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    problem = master_key_problem(_configured_master_key())
    if problem is not None:
        sys.stderr.write(f"mm_litellm: the proxy cannot start: {problem}; {MASTER_KEY_HINT}\n")
        sys.stderr.flush()
        os._exit(1)  # before LiteLLM's lifespan turns the refusal into a traceback
    from litellm.integrations.custom_logger import CustomLogger

    return CustomLogger()
