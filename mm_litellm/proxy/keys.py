"""API keys the proxy accepts: hashing, the keys file, and the lookup on every request.

Why our own keys: LiteLLM's virtual keys live in its Prisma database, whose engines cannot be
downloaded on an offline machine. Keys here are declared in the policy (``proxy.keys``) or a
keys file (``proxy.keys_file``) with hashed secrets only (the hash of the whole token).

A key minted by ``mm-litellm keys new`` carries its public id next to its secret,
``sk-mm.<id>.<secret>``: an unknown id is refused after one SHA-256 and a dict lookup, and only
the named key's hash is checked. Generated secrets are long and random, so an unsalted SHA-256
is safe for them (LiteLLM hashes its own keys the same way); ``scrypt`` is there for secrets a
person chose. A verified token is remembered by its SHA-256, so scrypt runs once per key per
process, in a worker thread (:meth:`KeyStore.alookup`).

Tokens without an id (keys issued before ids existed) keep working: SHA-256 keys by one dict
lookup; scrypt keys by trying each id-less scrypt key, which is what the proxy's per-address
failure throttle (:mod:`mm_litellm.proxy.throttle`) is there to bound. Re-issue them with an id.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from mm_litellm.errors import PolicyError
from mm_litellm.policy.proxy import KeysFile, KeySpec

__all__ = [
    "ID_PREFIX",
    "MAX_KEY_LENGTH",
    "KeyStore",
    "hash_key",
    "load_keys_file",
    "new_key",
    "split_key",
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
        got = hashlib.scrypt(
            secret.encode(),
            salt=bytes.fromhex(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(digest) // 2,
            maxmem=2**27,
        )
        return hmac.compare_digest(got.hex(), digest)
    return False


ID_PREFIX = "sk-mm."
"""Start of a token that names its key: ``sk-mm.<id>.<secret>``."""


def new_key(prefix: str = "sk-mm-", *, key_id: str | None = None) -> str:
    """A fresh random API key (256 bits of entropy): ``sk-mm.<id>.<secret>`` when ``key_id`` is given."""
    secret = secrets.token_urlsafe(32)
    if key_id is not None:
        return f"{ID_PREFIX}{key_id}.{secret}"
    return prefix + secret


def split_key(token: str) -> str | None:
    """The key id a ``sk-mm.<id>.<secret>`` token names, or ``None`` for a token without one."""
    if not token.startswith(ID_PREFIX):
        return None
    key_id, dot, secret = token[len(ID_PREFIX) :].rpartition(".")
    return key_id if dot and key_id and secret else None


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
    from mm_litellm.policy.loader import _issues_from_validation, _read_yaml, read_text

    source = os.fspath(path)
    text = read_text(source, "keys")
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
        self._by_id = {key_id: KnownKey(key_id, spec) for key_id, spec in self.keys.items()}
        self._by_sha256 = {k.spec.hash: k for k in self._by_id.values() if k.spec.hash.startswith("sha256$")}
        self._salted = [k for k in self._by_id.values() if k.spec.hash.startswith("scrypt$")]
        self._verified: dict[str, KnownKey] = {}
        """SHA-256 of a token -> its key, for tokens a scrypt check accepted (bounded by the key count)."""
        self.auth_cache: dict[str, Any] = {}
        """Key id -> the proxy's validated auth object for it (built by ``mm_litellm.proxy.auth``)."""
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.keys)

    def lookup(self, secret: str) -> KnownKey | None:
        """The enabled key ``secret`` belongs to (``None`` when unknown, disabled or malformed).

        Runs any scrypt check in the calling thread; the proxy uses :meth:`alookup`.
        """
        found = self.quick_lookup(secret)
        if isinstance(found, list):
            found = self._slow_lookup(secret, found)
        return found

    async def alookup(self, secret: str) -> KnownKey | None:
        """:meth:`lookup` with any scrypt check in a worker thread (the event loop keeps serving)."""
        found = self.quick_lookup(secret)
        if isinstance(found, list):
            found = await asyncio.to_thread(self._slow_lookup, secret, found)
        return found

    def quick_lookup(self, secret: str) -> KnownKey | list[KnownKey] | None:
        """What one SHA-256 and dict lookups decide: the key, ``None``, or the scrypt keys still to try."""
        if not well_formed(secret):
            return None
        digest = hash_key(secret, "sha256")
        found = self._verified.get(digest) or self._by_sha256.get(digest)
        if found is not None:
            return None if found.spec.disabled else found
        key_id = split_key(secret)
        if key_id is not None:  # the token names its key: only that key's hash is worth checking
            named = self._by_id.get(key_id)
            if named is None or named.spec.disabled or not named.spec.hash.startswith("scrypt$"):
                return None
            return [named]
        return [k for k in self._salted if not k.spec.disabled] or None  # id-less: every scrypt key

    def _slow_lookup(self, secret: str, candidates: list[KnownKey]) -> KnownKey | None:
        found = next((k for k in candidates if verify(secret, k.spec.hash)), None)
        if found is not None:
            with self._lock:
                self._verified[hash_key(secret, "sha256")] = found
        return found
