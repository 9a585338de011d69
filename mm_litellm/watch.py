"""Opt-in hot reload: swap in a changed policy file, keep the last good one if it is invalid.

A small polling thread (stat every ``interval`` seconds; no extra dependency) reloads the file
when its modification time or size changes, or that of a file it names (a learned router's
artifact, the proxy keys file: a key added with ``mm-litellm keys add`` works without a
restart). A file that fails validation is refused with a logged error listing its problems,
and the last good policy keeps serving. Requests already running finish on the policy they
started with: each request takes the active runtime once, at its start
(:func:`mm_litellm.runtime.current`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from mm_litellm import runtime
from mm_litellm.errors import PolicyError
from mm_litellm.logs import get_logger
from mm_litellm.policy.loader import load_complete_policy as load_policy  # refuses empty/partial files
from mm_litellm.policy.schema import Policy

__all__ = ["PolicyWatcher", "watch_policy"]

log = get_logger("mm_litellm.watch")


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _artifacts(policy: Policy | None) -> tuple[Path, ...]:
    """Files beside the policy whose change reloads it: its learned routers' artifacts (retrained)
    and its proxy keys file (a key added or removed)."""
    if policy is None:
        return ()
    files: list[Path] = []
    if policy.routers:
        from mm_litellm.learned.artifact import artifact_files

        files += [f for compiled in policy.routers.values() for f in artifact_files(compiled.router.path)]
    keys = _keys_file(policy)
    if keys is not None:
        files.append(keys)
    return tuple(files)


def _keys_file(policy: Policy) -> Path | None:
    from mm_litellm.proxy.keys_file import keys_file_of

    return keys_file_of(policy) if policy.proxy.keys_file else None


def _load(path: Path) -> Policy:
    """The policy at ``path``, with its keys file checked too (a broken one refuses the reload)."""
    policy = load_policy(path)
    keys = _keys_file(policy)
    if keys is not None:
        from mm_litellm.proxy.keys import load_keys_file

        load_keys_file(keys)
    return policy


class PolicyWatcher:
    """Reloads ``path`` into the process's runtime when it changes (see :func:`watch_policy`)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        interval: float = 1.0,
        on_reload: Callable[[Policy], None] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self.path = Path(path)
        self.interval = interval
        self.on_reload = on_reload
        self.reloads = 0
        self.refusals = 0
        self._seen = _signature(self.path)
        current = runtime.current()
        self._watched = _artifacts(current.policy if current is not None else None)
        self._seen_artifacts = tuple(_signature(f) for f in self._watched)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """Reload now if the file changed; True when a new policy was swapped in."""
        signature = _signature(self.path)
        artifacts = tuple(_signature(f) for f in self._watched)
        if signature is None or (signature == self._seen and artifacts == self._seen_artifacts):
            return False
        self._seen = signature
        self._seen_artifacts = artifacts
        try:
            policy = _load(self.path)
        except PolicyError as exc:
            self.refusals += 1
            log.error(
                "policy.reload_refused",
                path=str(self.path),
                problems=[str(i) for i in exc.issues],
                keeping="the last good policy",
            )
            return False
        runtime.configure(policy)
        self._watched = _artifacts(policy)
        self._seen_artifacts = tuple(_signature(f) for f in self._watched)
        self.reloads += 1
        log.info("policy.reloaded", path=str(self.path), routes=len(policy.routes), models=len(policy.models))
        if self.on_reload is not None:
            self.on_reload(policy)
        return True

    def start(self) -> PolicyWatcher:
        """Start polling in a daemon thread."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="mm-litellm-policy-watch", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling (waits for the thread to finish)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception as exc:  # the watcher must outlive any surprise; the last policy serves on
                log.error("policy.watch_failed", path=str(self.path), error=repr(exc))

    def __enter__(self) -> PolicyWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def watch_policy(path: str | os.PathLike[str], *, interval: float = 1.0) -> PolicyWatcher:
    """Load ``path`` as the active policy and reload it whenever it changes (started watcher)."""
    runtime.configure(path)
    return PolicyWatcher(path, interval=interval).start()
