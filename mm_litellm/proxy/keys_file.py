"""The policy's keys file from the command line: where it is, what is wrong with it, adding a key.

``mm-litellm policy check`` reports a keys file's problems next to the policy's (unknown
fields, a plain secret where a hash belongs, one key id declared twice, one secret hash shared
by two ids); ``mm-litellm keys add`` appends a new key's entry and checks the file still loads.
The proxy itself reads the file through :mod:`mm_litellm.proxy.auth`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import yaml

from mm_litellm.errors import PolicyError, PolicyIssue
from mm_litellm.policy.proxy import KeySpec
from mm_litellm.policy.schema import Policy

__all__ = ["add_key_entry", "entry_text", "keys_file_issues", "keys_file_of"]


def keys_file_of(policy: Policy) -> Path | None:
    """The policy's ``proxy.keys_file``, relative to the policy file (``None`` when it names none)."""
    from mm_litellm.policy.paths import resolve_path

    name = policy.proxy.keys_file
    return resolve_path(policy, name, field="proxy.keys_file") if name else None


def keys_file_issues(policy: Policy) -> list[PolicyIssue]:
    """Every problem of the policy's keys file, and of its keys against the inline ones."""
    from mm_litellm.proxy.keys import load_keys_file

    path = keys_file_of(policy)
    if path is None:
        return []
    source = os.fspath(path)
    try:
        keys = load_keys_file(path)
    except PolicyError as exc:
        return list(exc.issues)
    issues = [
        PolicyIssue(source, None, f"keys.{key_id}", f"key id '{key_id}' is declared in the policy too")
        for key_id in keys
        if key_id in policy.proxy.keys
    ]
    seen: dict[str, str] = {}
    for key_id, spec in {**policy.proxy.keys, **keys}.items():
        other = seen.setdefault(spec.hash, key_id)
        if other != key_id:
            issues.append(
                PolicyIssue(
                    source,
                    None,
                    f"keys.{key_id}",
                    f"same secret hash as key '{other}': give each key its own secret",
                )
            )
    return issues


def entry_text(key_id: str, spec: dict[str, object]) -> str:
    """``spec`` as YAML lines to append under a keys file's top-level ``keys:`` (indented)."""
    body = yaml.safe_dump({key_id: spec}, sort_keys=False, default_flow_style=None)
    return "".join(f"  {line}\n" for line in body.splitlines())


def add_key_entry(path: Path, key_id: str, spec: dict[str, object]) -> None:
    """Append ``key_id``'s entry to the keys file at ``path`` (created if missing).

    The file is checked before and after: an id already there is refused, and if the appended
    text does not load as that entry (``keys:`` is not the file's last section), the file is
    left as it was and the error says so. The new file replaces the old one in one rename.
    """
    from mm_litellm.proxy.keys import load_keys_file

    KeySpec.model_validate(spec)
    before = path.read_text(encoding="utf-8") if path.exists() else ""
    existing = load_keys_file(path) if before.strip() else {}
    if key_id in existing:
        raise PolicyError(
            [
                PolicyIssue(
                    os.fspath(path),
                    None,
                    f"keys.{key_id}",
                    f"key id '{key_id}' exists already; choose another --id",
                )
            ]
        )
    data = yaml.safe_load(before) if before.strip() else None
    prefix = before if before.endswith("\n") or not before else before + "\n"
    if not isinstance(data, dict) or "keys" not in data:
        prefix += "keys:\n"
    # The new file is written beside the old one, checked, then renamed over it: a proxy watching
    # the file (MM_LITELLM_WATCH) never reads it half written, and a failed check changes nothing.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(prefix + entry_text(key_id, spec), encoding="utf-8")
    try:
        if path.exists():
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        try:
            added = load_keys_file(tmp)
        except PolicyError:
            added = {}
        if key_id not in added or set(added) != {*existing, key_id}:
            raise PolicyError(
                [
                    PolicyIssue(
                        os.fspath(path),
                        None,
                        "keys",
                        "cannot append the entry: 'keys:' is not the last section of this "
                        "file; add the entry by hand (mm-litellm keys new prints it)",
                    )
                ]
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
