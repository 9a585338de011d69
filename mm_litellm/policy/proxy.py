"""The policy's ``proxy:`` section: who may call the LiteLLM proxy, with hashed secrets only.

A key is declared with its owner (user, team, tags) and optional limits of its own; the secret
itself never appears in a file, only its hash (``mm-litellm keys new`` prints both). Keys live
inline under ``proxy.keys`` or in a separate file named by ``proxy.keys_file`` (same shape,
top-level ``keys:``), which is re-read when the policy is.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from mm_litellm.policy.types import Frozen, FrozenDict, Name

__all__ = ["HASH_SCHEMES", "KeyLimits", "KeySpec", "KeysFile", "ProxySettings", "check_hash"]

HASH_SCHEMES = ("sha256", "scrypt")
"""``sha256$<hex>`` (for generated random keys: fast, looked up by digest) or
``scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>`` (salted, slow on purpose, for human-chosen secrets)."""

_SHA256 = re.compile(r"^sha256\$[0-9a-f]{64}$")
_SCRYPT = re.compile(r"^scrypt\$(\d+)\$(\d+)\$(\d+)\$[0-9a-f]{16,}\$[0-9a-f]{32,}$")


def check_hash(value: str) -> str:
    """Accept only a hash in one of :data:`HASH_SCHEMES`; a plain secret is refused."""
    if _SHA256.match(value) or _SCRYPT.match(value):
        return value
    raise ValueError(
        "must be a hash, never the key itself: 'sha256$<64 hex>' or "
        "'scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>' (make one with: mm-litellm keys new --id NAME)"
    )


SecretHash = Annotated[str, AfterValidator(check_hash)]


class KeyLimits(Frozen):
    """Limits of one key on top of the policy's budgets (enforced by LiteLLM's proxy where noted)."""

    max_budget_usd: float | None = Field(default=None, gt=0)
    """Spend cap of this key per calendar month, enforced like a budget (reserved before each call;
    needs the policy's ``budgets:`` section, which keeps the ledger). To stop a key, disable it."""
    rpm: int | None = Field(default=None, gt=0)
    """Requests per minute (LiteLLM's proxy rate limiter)."""
    tpm: int | None = Field(default=None, gt=0)
    """Tokens per minute (LiteLLM's proxy rate limiter)."""


class KeySpec(Frozen):
    """One API key: its hash and whose it is. The mapping key is the key id (shown in logs)."""

    hash: SecretHash
    user: Name | None = None
    team: Name | None = None
    tags: tuple[Name, ...] = ()
    limits: KeyLimits = Field(default_factory=KeyLimits)
    models: tuple[Name, ...] = ()
    """Model names (routes, aliases, models) this key may request; empty: all."""
    allow_overrides: tuple[Name, ...] = ()
    """Request fields this key may set although they change a deployment or its credentials
    (``api_base``, ``api_key``, ``fallbacks``, ... see ``mm_litellm.validation.OVERRIDE_FIELDS``);
    empty: none. The master key may set them all."""
    disabled: bool = False
    description: str = ""

    @field_validator("allow_overrides")
    @classmethod
    def _known_overrides(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from mm_litellm.validation import OVERRIDE_FIELDS

        unknown = [v for v in value if v not in OVERRIDE_FIELDS]
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}; allowed: {', '.join(OVERRIDE_FIELDS)}")
        return value


class ProxySettings(Frozen):
    """How the LiteLLM proxy authenticates callers against this policy."""

    keys: FrozenDict[KeySpec] = Field(default_factory=dict)
    keys_file: str | None = None
    """YAML file with a top-level ``keys:`` mapping of the same shape; relative to the policy file."""


class KeysFile(Frozen):
    """The shape of a keys file."""

    keys: FrozenDict[KeySpec] = Field(default_factory=dict)
