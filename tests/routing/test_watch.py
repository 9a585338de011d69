"""Hot reload: a changed policy is swapped in; an invalid one is refused and the last good one serves."""

from __future__ import annotations

import os
import time
from pathlib import Path

from structlog.testing import capture_logs

from mm_litellm import runtime
from mm_litellm.watch import PolicyWatcher, watch_policy
from tests.conftest import TEST_POLICY


def bump(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a clearly newer mtime


def test_reload_swaps_valid_and_refuses_invalid(policy_file) -> None:
    path = policy_file()
    runtime.configure(path)
    first = runtime.current()
    watcher = PolicyWatcher(path)
    assert watcher.check() is False  # unchanged
    bump(path, TEST_POLICY.replace("default: small", "default: wide"))
    assert watcher.check() is True
    second = runtime.current()
    assert second is not first and second.policy.routes["auto"].default == "wide"
    assert first.policy.routes["auto"].default == "small"  # a request holding the old runtime keeps it
    with capture_logs() as logs:
        bump(path, TEST_POLICY.replace("use: big", "use: gpt5"))
        assert watcher.check() is False
    assert runtime.current() is second
    assert logs[0]["event"] == "policy.reload_refused" and logs[0]["log_level"] == "error"
    assert "unknown model or route 'gpt5'" in logs[0]["problems"][0]
    assert (watcher.reloads, watcher.refusals) == (1, 1)


def test_watch_policy_thread_picks_up_a_change(policy_file) -> None:
    path = policy_file()
    watcher = watch_policy(path, interval=0.02)
    try:
        bump(path, TEST_POLICY.replace("default: small", "default: claude"))
        deadline = time.monotonic() + 5
        while runtime.current().policy.routes["auto"].default != "claude" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert runtime.current().policy.routes["auto"].default == "claude"
    finally:
        watcher.stop()
    assert watcher._thread is None


def test_a_key_added_to_the_keys_file_reloads_the_policy(policy_file, tmp_path: Path) -> None:
    """``mm-litellm keys add`` on a watched proxy: the new key works without a restart; a broken
    keys file is refused like a broken policy (the last good keys keep serving)."""
    from mm_litellm.proxy.auth import key_store
    from mm_litellm.proxy.keys import hash_key
    from mm_litellm.proxy.keys_file import add_key_entry

    keys = tmp_path / "keys.yaml"
    keys.write_text(f'keys:\n  alice:\n    hash: "{hash_key("sk-mm.alice.first-secret-0123456789")}"\n')
    path = policy_file(TEST_POLICY + f"proxy:\n  keys_file: {keys}\n")
    runtime.configure(path)
    watcher = PolicyWatcher(path)
    assert watcher.check() is False
    assert key_store().quick_lookup("sk-mm.bob.second-secret-0123456789") is None
    add_key_entry(keys, "bob", {"hash": hash_key("sk-mm.bob.second-secret-0123456789"), "user": "bob"})
    stat = keys.stat()
    os.utime(keys, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert watcher.check() is True
    assert key_store().quick_lookup("sk-mm.bob.second-secret-0123456789").key_id == "bob"
    with capture_logs() as logs:
        bump(keys, "keys:\n  carol: {hash: plaintext}\n")
        assert watcher.check() is False
    assert logs[0]["event"] == "policy.reload_refused"
    assert key_store().quick_lookup("sk-mm.bob.second-secret-0123456789").key_id == "bob"
