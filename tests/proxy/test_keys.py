"""Key hashing, the keys file and the lookup (no proxy process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mm_litellm.errors import PolicyError
from mm_litellm.policy import parse_policy
from mm_litellm.policy.proxy import KeySpec
from mm_litellm.proxy.keys import KeyStore, hash_key, load_keys_file, new_key, verify, well_formed


def test_hashes_verify_and_differ_by_scheme() -> None:
    secret = new_key()
    assert secret.startswith("sk-mm-") and len(secret) > 40
    sha = hash_key(secret)
    assert sha.startswith("sha256$") and verify(secret, sha) and not verify(secret + "x", sha)
    salted = hash_key(secret, "scrypt")
    assert salted != hash_key(secret, "scrypt")  # a fresh salt each time
    assert verify(secret, salted) and not verify("other", salted)
    with pytest.raises(ValueError, match="unknown hash scheme"):
        hash_key(secret, "md5")


@pytest.mark.parametrize("token", ["", " ", "a b", "x" * 257, "caf\u00e9", "line\nbreak", None])
def test_malformed_tokens(token: object) -> None:
    assert not well_formed(token)


def test_store_finds_sha256_and_scrypt_keys_and_skips_disabled() -> None:
    a, b, c = new_key(), new_key(), new_key()
    store = KeyStore(
        {
            "a": KeySpec(hash=hash_key(a), user="alice"),
            "b": KeySpec(hash=hash_key(b, "scrypt"), user="bob"),
            "c": KeySpec(hash=hash_key(c), disabled=True),
        }
    )
    assert store.lookup(a).key_id == "a"  # type: ignore[union-attr]
    assert store.lookup(b).spec.user == "bob"  # type: ignore[union-attr]
    assert store.lookup(b).key_id == "b"  # type: ignore[union-attr]  # second time: remembered
    assert store.lookup(c) is None
    assert store.lookup(new_key()) is None
    assert store.lookup("bad key") is None


def test_a_plain_secret_in_the_policy_is_refused() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy("proxy:\n  keys:\n    alice: {hash: sk-mm-plaintext-secret}\n")
    text = str(info.value)
    assert "<string>:3 proxy.keys.alice.hash" in text and "never the key itself" in text
    assert "sk-mm-plaintext-secret" not in text  # errors never echo secrets


def test_keys_file_errors_have_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(f"keys:\n  ok: {{hash: '{hash_key('k')}'}}\n  bad: {{hash: nope, colour: red}}\n")
    with pytest.raises(PolicyError) as info:
        load_keys_file(path)
    lines = str(info.value).splitlines()
    assert any(f"{path}:3 keys.bad.hash" in line for line in lines)
    assert any(f"{path}:3 keys.bad.colour" in line for line in lines)
    with pytest.raises(PolicyError, match="cannot read the keys file"):
        load_keys_file(tmp_path / "missing.yaml")


def test_a_token_with_an_id_checks_only_that_key(monkeypatch: pytest.MonkeyPatch) -> None:
    import mm_litellm.proxy.keys as keys

    bob = new_key(key_id="bob")
    assert bob.startswith("sk-mm.bob.") and keys.split_key(bob) == "bob"
    assert keys.split_key(new_key()) is None and keys.split_key("sk-mm.bob.") is None
    store = KeyStore(
        {
            "bob": KeySpec(hash=hash_key(bob, "scrypt"), user="bob"),
            "old": KeySpec(hash=hash_key("my-chosen-secret", "scrypt")),
        }
    )
    calls: list[str] = []
    real_verify = keys.verify
    monkeypatch.setattr(keys, "verify", lambda s, h: calls.append(h) or real_verify(s, h))
    assert store.quick_lookup("sk-mm.nobody." + "x" * 40) is None  # unknown id: no scrypt at all
    assert store.lookup(bob).key_id == "bob" and len(calls) == 1  # type: ignore[union-attr]
    assert store.lookup(bob).key_id == "bob" and len(calls) == 1  # type: ignore[union-attr]  # remembered
    assert store.lookup("sk-mm.bob.wrong") is None and len(calls) == 2  # only bob's hash was tried
    assert store.lookup("my-chosen-secret").key_id == "old"  # type: ignore[union-attr]  # id-less keys still work


async def test_scrypt_runs_off_the_event_loop() -> None:
    import asyncio
    import threading

    bob = new_key(key_id="bob")
    store = KeyStore({"bob": KeySpec(hash=hash_key(bob, "scrypt"))})
    seen: list[str] = []
    import mm_litellm.proxy.keys as keys

    real_verify = keys.verify

    def spy(secret: str, stored: str) -> bool:
        seen.append(threading.current_thread().name)
        return real_verify(secret, stored)

    keys.verify = spy  # type: ignore[assignment]
    try:
        found = await store.alookup(bob)
    finally:
        keys.verify = real_verify  # type: ignore[assignment]
    assert found is not None and seen and seen[0] != threading.main_thread().name
    assert asyncio.get_running_loop() is not None


def test_failure_throttle_slows_one_address_only() -> None:
    from mm_litellm.proxy.throttle import FailureThrottle

    now = [0.0]
    throttle = FailureThrottle(burst=3, rate=1, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.retry_after("1.2.3.4") == 0
        throttle.failed("1.2.3.4")
    assert throttle.retry_after("1.2.3.4") == pytest.approx(1.0)
    assert throttle.retry_after("5.6.7.8") == 0
    now[0] = 1.0
    assert throttle.retry_after("1.2.3.4") == 0
    throttle.failed("scrypt", cost=5)  # a costly failure puts the bucket in debt: 3 - 5 = -2
    assert throttle.retry_after("scrypt") == pytest.approx(3.0)
    assert throttle.take("scrypt2", 5) == 0 and throttle.take("scrypt2", 1) == pytest.approx(3.0)  # reserved
    throttle.refund("scrypt2", 5)  # the checks succeeded: nothing owed
    assert throttle.take("scrypt2", 1) == 0
    with pytest.raises(ValueError):
        FailureThrottle(burst=0)
