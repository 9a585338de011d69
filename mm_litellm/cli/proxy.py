"""``mm-litellm proxy`` (start LiteLLM's proxy with the policy) and ``mm-litellm keys`` (API keys).

``proxy`` writes the generated LiteLLM config (base ``config/proxy.yaml`` + the policy, see
``mm_litellm.proxy.config``) to a temporary file and runs ``litellm --config`` on it as a child
process, forwarding SIGINT/SIGTERM so that stopping ``mm-litellm`` stops the proxy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from mm_litellm.cli.common import fail
from mm_litellm.errors import ConfigurationError, PolicyError
from mm_litellm.runtime import POLICY_ENV

__all__ = ["register"]

DEFAULT_CONFIG = Path("config/proxy.yaml")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "proxy",
        help="start LiteLLM's proxy server with the policy (routing, keys, x-mm-* headers)",
        description="Generate the LiteLLM proxy config from --config (default config/proxy.yaml) and the "
        "policy, then run 'litellm --config' on it. Needs LITELLM_MASTER_KEY (a strong key).",
    )
    p.add_argument("--config", metavar="FILE", default=str(DEFAULT_CONFIG),
                   help=f"base LiteLLM proxy config (default: {DEFAULT_CONFIG})")
    p.add_argument("--policy", metavar="FILE",
                   help=f"policy file (default: ${POLICY_ENV}, else the config's mm_litellm.policy)")
    p.add_argument("--port", type=int, default=4000, help="port (default: 4000)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    p.add_argument("--print-config", action="store_true", help="print the generated config and exit")
    p.add_argument("--write-config", metavar="FILE", help="write the generated config to FILE and exit")
    p.add_argument("litellm_args", nargs=argparse.REMAINDER,
                   help="after '--': further arguments for litellm (e.g. -- --num_workers 2)")
    p.set_defaults(handler=handle_proxy)

    k = sub.add_parser("keys", help="make API keys for the proxy (hashed secrets for the keys file)")
    ksub = k.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    new = ksub.add_parser("new", help="generate a key: prints the secret once and its keys-file entry")
    new.add_argument("--id", required=True, help="key id (shown in logs, the ledger and x-mm headers)")
    new.add_argument("--user")
    new.add_argument("--team")
    new.add_argument("--tag", action="append", default=[], help="tag (repeatable)")
    new.add_argument("--scheme", choices=("sha256", "scrypt"), default="sha256")
    new.set_defaults(handler=handle_keys_new)
    h = ksub.add_parser("hash", help="hash an existing secret read from stdin")
    h.add_argument("--scheme", choices=("sha256", "scrypt"), default="sha256")
    h.set_defaults(handler=handle_keys_hash)


def generated_config(config_path: str, policy_arg: str | None) -> dict[str, Any]:
    """The full LiteLLM config for the base file and the chosen policy (exits on a bad input)."""
    from mm_litellm.policy import load_policy
    from mm_litellm.proxy.config import build_proxy_config, policy_path_of, read_base_config

    try:
        base = read_base_config(config_path)
    except ConfigurationError as exc:
        fail(str(exc))
    chosen = policy_arg or os.environ.get(POLICY_ENV) or policy_path_of(base, config_path)
    if chosen is None:
        fail(f"no policy: pass --policy FILE, set {POLICY_ENV}, or set mm_litellm.policy in {config_path}")
    try:
        policy = load_policy(chosen)
    except PolicyError as exc:
        fail(f"invalid policy:\n{exc}")
    if policy.proxy.keys_file or policy.proxy.keys:
        from mm_litellm import runtime
        from mm_litellm.proxy.auth import key_store

        runtime.configure(policy)
        try:
            key_store()  # a broken keys file stops here, not on the first request
        except PolicyError as exc:
            fail(f"invalid keys file:\n{exc}")
    return build_proxy_config(base, policy, chosen)


def handle_proxy(args: argparse.Namespace) -> int:
    config = generated_config(args.config, args.policy)
    text = yaml.safe_dump(config, sort_keys=False)
    if args.print_config:
        print(text, end="")
        return 0
    if args.write_config:
        Path(args.write_config).write_text(text, encoding="utf-8")
        return 0
    if not os.environ.get("LITELLM_MASTER_KEY"):
        fail("set LITELLM_MASTER_KEY to a strong secret first (e.g. the key 'mm-litellm keys new --id operator' prints)")
    with tempfile.TemporaryDirectory(prefix="mm-litellm-proxy-") as tmp:
        path = Path(tmp) / "proxy.yaml"
        path.write_text(text, encoding="utf-8")
        extra = [a for a in args.litellm_args if a != "--"]
        cmd = [_litellm_executable(), "--config", str(path), "--port", str(args.port), "--host", args.host, *extra]
        return _run_forwarding_signals(cmd, _child_env())


def _litellm_executable() -> str:
    beside = Path(sys.executable).with_name("litellm")
    found = str(beside) if beside.exists() else shutil.which("litellm")
    if not found:
        fail("the 'litellm' command is not installed (pip install 'litellm[proxy]')")
    return found


def _child_env() -> dict[str, str]:
    """The environment for litellm: the same mm_litellm this command runs from is importable."""
    import mm_litellm

    env = dict(os.environ)
    root = str(Path(mm_litellm.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    return env


def _run_forwarding_signals(cmd: list[str], env: dict[str, str]) -> int:
    child = subprocess.Popen(cmd, env=env)

    def forward(signum: int, _frame: Any) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:  # pragma: no cover - SIGINT is forwarded by the handler
                continue
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if child.poll() is None:
            child.kill()
            child.wait()


def handle_keys_new(args: argparse.Namespace) -> int:
    from mm_litellm.proxy.keys import hash_key, new_key

    secret = new_key(key_id=args.id)  # sk-mm.<id>.<secret>: the proxy checks only this key's hash
    entry: dict[str, Any] = {"hash": hash_key(secret, args.scheme)}
    for name in ("user", "team"):
        if getattr(args, name):
            entry[name] = getattr(args, name)
    if args.tag:
        entry["tags"] = list(args.tag)
    print(f"# API key for '{args.id}' (shown once; give it to its owner, store only the hash):", file=sys.stderr)
    print(f"#   {secret}", file=sys.stderr)
    print(yaml.safe_dump({"keys": {args.id: entry}}, sort_keys=False), end="")
    return 0


def handle_keys_hash(args: argparse.Namespace) -> int:
    from mm_litellm.proxy.keys import hash_key, well_formed

    secret = sys.stdin.readline().strip()
    if not well_formed(secret):
        fail("read no usable key from stdin (printable ASCII, no spaces, at most 256 characters)")
    print(hash_key(secret, args.scheme))
    return 0
