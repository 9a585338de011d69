"""API keys the proxy accepts: hashing, the keys file, and the lookup on every request.

Why our own keys: LiteLLM's virtual keys live in its Prisma database, whose engines cannot be
downloaded on an offline machine. Keys here are declared in the policy (``proxy.keys``) or a
keys file (``proxy.keys_file``) with hashed secrets only. Generated keys are long random
strings, so an unsalted SHA-256 is safe for them and lets a request find its key with one dict
lookup (LiteLLM hashes its own keys the same way); ``scrypt`` is there for secrets a person
chose, and is verified once per key per process, then remembered by its SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mm_litellm.errors import PolicyError, PolicyIssue
from mm_litellm.policy.proxy import KeysFile, KeySpec

__all__ = [
    "MAX_KEY_LENGTH",
    "KeyStore",
    "hash_key",
    "load_keys_file",
    "new_key",
    "verify",
    "well_formed",
]

MAX_KEY_LENGTH = 256
"""Longer bearer tokens are refused before any hashing."""

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_key(secret: str, scheme: str = "sha256") -> str:
    """The hash to store for ``secret``: ``sha256$...`` or a salted ``scrypt$...``."""
    if scheme == "sha256":
        return "sha256$" + hashlib.sha256(secret.encode()).hexdigest()
    if scheme == "scrypt":
        salt = secrets.token_bytes(16)
        digest = hashlib.scrypt(secret.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
        return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"
    raise ValueError(f"unknown hash scheme {scheme!r}; use 'sha256' or 'scrypt'")


def verify(secret: str, stored: str) -> bool:
    """Whether ``secret`` matches the stored hash (constant-time comparison)."""
    scheme, _, rest = stored.partition("$")
    if scheme == "sha256":
        return hmac.compare_digest(hash_key(secret, "sha256"), stored)
    if scheme == "scrypt":
        n, r, p, salt, digest = rest.split("$")
        got = hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(digest) // 2, maxmem=2**27)
        return hmac.compare_digest(got.hex(), digest)
    return False


def new_key(prefix: str = "sk-mm-") -> str:
    """A fresh random API key (256 bits of entropy)."""
    return prefix + secrets.token_urlsafe(32)


def well_formed(secret: object) -> bool:
    """A bearer token worth looking up: printable ASCII without spaces, of sane length."""
    return (
        isinstance(secret, str)
        and 0 < len(secret) <= MAX_KEY_LENGTH
        and secret.isascii()
        and secret.isprintable()
        and " " not in secret
    )


def load_keys_file(path: str | os.PathLike[str]) -> dict[str, KeySpec]:
    """Read a keys file (top-level ``keys:``); every problem reported with its line."""
    from mm_litellm.policy.loader import _issues_from_validation, _read_yaml

    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError([PolicyIssue(source, None, "", f"cannot read the keys file: {exc.strerror}")]) from exc
    data, lines, issues = _read_yaml(text, source)
    if issues:
        raise PolicyError(issues)
    try:
        return dict(KeysFile.model_validate(data or {}).keys)
    except ValidationError as exc:
        raise PolicyError(_issues_from_validation(exc, source, lines)) from None


@dataclass(frozen=True, slots=True)
class KnownKey:
    """A key that authenticated: its id and declaration."""

    key_id: str
    spec: KeySpec


class KeyStore:
    """Finds the declared key a bearer token belongs to, or ``None``."""

    def __init__(self, keys: Mapping[str, KeySpec]) -> None:
        self.keys = dict(keys)
        self._by_sha256 = {
            spec.hash: KnownKey(key_id, spec) for key_id, spec in self.keys.items() if spec.hash.startswith("sha256$")
        }
        self._salted = [KnownKey(key_id, spec) for key_id, spec in self.keys.items() if spec.hash.startswith("scrypt$")]
        self._verified: dict[str, KnownKey | None] = {}
        self.auth_cache: dict[str, Any] = {}
        """Key id -> the proxy's validated auth object for it (built by ``mm_litellm.proxy.auth``)."""
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.keys)

    def lookup(self, secret: str) -> KnownKey | None:
        """The enabled key ``secret`` belongs to (``None`` when unknown, disabled or malformed)."""
        if not well_formed(secret):
            return None
        digest = hash_key(secret, "sha256")
        found = self._by_sha256.get(digest)
        if found is None and self._salted:
            found = self._salted_lookup(secret, digest)
        if found is None or found.spec.disabled:
            return None
        return found

    def _salted_lookup(self, secret: str, digest: str) -> KnownKey | None:
        with self._lock:
            if digest in self._verified:
                return self._verified[digest]
        found = next((k for k in self._salted if verify(secret, k.spec.hash)), None)
        with self._lock:
            if found is not None or len(self._verified) < 10_000:  # bounded memory of unknown tokens
                self._verified[digest] = found
        return found
