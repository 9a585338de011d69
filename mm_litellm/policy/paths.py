"""Paths in a policy resolve relative to the policy file, wherever the command runs.

``prompts.dir``, ``proxy.keys_file`` and a relative SQLite ``database.url``
(``sqlite:///mm_litellm.db``) name files next to the policy, so ``MM_LITELLM_POLICY=/srv/p.yaml``
works from any working directory. A policy given as text (``<string>``) has no directory: its
paths are relative to the working directory. Earlier versions resolved ``prompts.dir`` and the
SQLite file against the working directory; when only that old location exists, it is used and
a warning says to move it or write the path relative to the policy.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

__all__ = ["policy_dir", "resolve_database_url", "resolve_path"]

log = logging.getLogger(__name__)
_SQLITE = "sqlite:///"


def policy_dir(policy: Any) -> Path | None:
    """The directory of the policy file (``None`` for a policy parsed from text)."""
    source = str(getattr(policy, "source", "") or "")
    if not source or source.startswith("<"):
        return None
    return Path(source).resolve().parent


def resolve_path(policy: Any, value: str | Path, *, field: str = "path") -> Path:
    """``value`` relative to the policy file (absolute paths unchanged)."""
    path = Path(value).expanduser()
    base = policy_dir(policy)
    if path.is_absolute() or base is None:
        return path
    beside = base / path
    if not beside.exists() and path.exists():  # the old, working-directory meaning
        log.warning(
            "%s '%s' is resolved relative to the working directory (%s); paths in a policy are "
            "relative to the policy file (%s): write it relative to that",
            field,
            value,
            path.resolve(),
            base,
        )
        return path.resolve()
    return beside


def resolve_database_url(policy: Any, url: str) -> str:
    """A relative SQLite file in ``url`` made relative to the policy file; other URLs unchanged."""
    if not url.startswith(_SQLITE) or url == "sqlite:///:memory:":
        return url
    name = url[len(_SQLITE) :]
    if not name or name.startswith("/") or name.startswith(":"):
        return url
    file, sep, query = name.partition("?")
    return f"{_SQLITE}{resolve_path(policy, file, field='database.url')}{sep}{query}"
