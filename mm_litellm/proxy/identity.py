"""The proxy's caller, from LiteLLM's authenticated key only (see :func:`mm_litellm.context.identify`).

The proxy authenticates a request before any hook runs and hands hooks a ``UserAPIKeyAuth``.
That object is the only trusted source of identity: the request body's ``user`` and
``metadata`` are whatever the client typed, so they never decide whose budget is charged.
Both kinds of key give the same :class:`Identity`: ours (``mm_litellm.proxy.auth`` puts the
declared key into ``UserAPIKeyAuth.metadata["mm_litellm"]``) and LiteLLM's own virtual keys
(``token``/``key_alias``, ``user_id``, ``team_id``, ``metadata.tags``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mm_litellm.context import Identity

__all__ = ["AUTH_METADATA_KEY", "Identity", "identity_of"]

AUTH_METADATA_KEY = "mm_litellm"
"""Key in ``UserAPIKeyAuth.metadata`` under which our auth stores the declared key."""


def identity_of(auth: Any) -> Identity:
    """The identity in a ``UserAPIKeyAuth`` (or anything with the same attributes)."""
    metadata = getattr(auth, "metadata", None) or {}
    ours = metadata.get(AUTH_METADATA_KEY) if isinstance(metadata, Mapping) else None
    if isinstance(ours, Mapping):
        return Identity(
            key=ours.get("key"),
            user=getattr(auth, "user_id", None),
            team=getattr(auth, "team_id", None),
            tags=tuple(ours.get("tags") or ()),
            limits=dict(ours.get("limits") or {}),
            source=str(ours.get("source") or "mm_litellm"),
        )
    tags = metadata.get("tags") if isinstance(metadata, Mapping) else None
    limits = {
        name: value
        for name, value in (
            ("max_budget_usd", getattr(auth, "max_budget", None)),
            ("rpm", getattr(auth, "rpm_limit", None)),
            ("tpm", getattr(auth, "tpm_limit", None)),
        )
        if value is not None
    }
    return Identity(
        key=getattr(auth, "key_alias", None) or getattr(auth, "token", None),
        user=getattr(auth, "user_id", None),
        team=getattr(auth, "team_id", None),
        tags=tuple(str(t) for t in tags) if isinstance(tags, list | tuple) else (),
        limits=limits,
        source="litellm",
    )
