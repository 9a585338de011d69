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

from mm_litellm.cli.common import MOCK_ANSWER, fail
from mm_litellm.errors import ConfigurationError, PolicyError
from mm_litellm.runtime import POLICY_ENV

__all__ = ["register"]

DEFAULT_CONFIG = Path("config/proxy.yaml")
MOCK_REPLY = MOCK_ANSWER
"""``--mock`` without TEXT: the same confident stand-in as ``mm-litellm run --mock``."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "proxy",
        help="start LiteLLM's proxy server with the policy (routing, keys, x-mm-* headers)",
        description="Generate the LiteLLM proxy config from --config (default config/proxy.yaml) and the "
        "policy, then run 'litellm --config' on it. Needs LITELLM_MASTER_KEY (a strong key).",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        default=str(DEFAULT_CONFIG),
        help=f"base LiteLLM proxy config (default: {DEFAULT_CONFIG})",
    )
    p.add_argument(
        "--policy",
        metavar="FILE",
        help=f"policy file (default: ${POLICY_ENV}, else the config's mm_litellm.policy)",
    )
    p.add_argument("--port", type=int, default=4000, help="port (default: 4000)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    p.add_argument(
        "--mock",
        nargs="?",
        const=MOCK_REPLY,
        metavar="TEXT",
        help="offline: start a local fake OpenAI-compatible upstream and point every policy model "
        "at it (no provider keys needed; real proxy, keys, budgets and headers; the ledger is a "
        "scratch database unless MM_LITELLM_DATABASE_URL is set); TEXT is the answer",
    )
    p.add_argument("--print-config", action="store_true", help="print the generated config and exit")
    p.add_argument("--write-config", metavar="FILE", help="write the generated config to FILE and exit")
    p.add_argument(
        "litellm_args",
        nargs=argparse.REMAINDER,
        help="after '--': further arguments for litellm (e.g. -- --num_workers 2)",
    )
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
    add = ksub.add_parser(
        "add",
        help="generate a key and append its entry to the keys file; prints only the key (stdout)",
        description="Generate a key, append its entry (hash only) to the policy's proxy.keys_file (or "
        "--keys-file) and print the key on stdout, once: KEY=$(mm-litellm keys add --id alice ...).",
    )
    add.add_argument("--id", required=True, help="key id (shown in logs, the ledger and x-mm headers)")
    add.add_argument("--user")
    add.add_argument("--team")
    add.add_argument("--tag", action="append", default=[], help="tag (repeatable)")
    add.add_argument("--scheme", choices=("sha256", "scrypt"), default="sha256")
    add.add_argument(
        "--keys-file", metavar="FILE", help="the keys file (default: the policy's proxy.keys_file)"
    )
    add.add_argument(
        "--policy", metavar="FILE", help=f"policy file (default: ${POLICY_ENV} or config/policy.yaml)"
    )
    add.set_defaults(handler=handle_keys_add)
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
    if args.mock is not None and (args.print_config or args.write_config):
        fail(
            "--mock starts the proxy with a local fake upstream; it cannot be combined with "
            "--print-config or --write-config"
        )
    if args.mock is not None:
        return _run_mocked(args)
    config = generated_config(args.config, args.policy)
    text = yaml.safe_dump(config, sort_keys=False)
    if args.print_config:
        print(text, end="")
        return 0
    if args.write_config:
        Path(args.write_config).write_text(text, encoding="utf-8")
        return 0
    _preflight()
    with tempfile.TemporaryDirectory(prefix="mm-litellm-proxy-") as tmp:
        return _start(args, text, Path(tmp), _child_env())


def _preflight() -> None:
    """One line saying what is missing, instead of LiteLLM failing later with a traceback."""
    from mm_litellm.proxy.preflight import MASTER_KEY_ENV, MASTER_KEY_HINT, master_key_problem
    from mm_litellm.proxy.requirements import INSTALL_HINT, missing_proxy_requirements

    problem = master_key_problem(os.environ.get(MASTER_KEY_ENV))
    if problem is not None:
        fail(f"the proxy cannot start: {problem}; {MASTER_KEY_HINT}")
    missing = missing_proxy_requirements()
    if missing:
        fail(f"LiteLLM's proxy server is not installed (missing: {', '.join(missing[:6])}): {INSTALL_HINT}")


def _start(args: argparse.Namespace, config_text: str, tmp: Path, env: dict[str, str]) -> int:
    path = tmp / "proxy.yaml"
    path.write_text(config_text, encoding="utf-8")
    extra = [a for a in args.litellm_args if a != "--"]
    cmd = [
        _litellm_executable(),
        "--config",
        str(path),
        "--port",
        str(args.port),
        "--host",
        args.host,
        *extra,
    ]
    return _run_forwarding_signals(cmd, env)


def _run_mocked(args: argparse.Namespace) -> int:
    """The proxy with every policy model answered by a loopback fake upstream (see proxy/mock.py)."""
    from mm_litellm.cli.common import keep_mocks_out_of_the_ledger
    from mm_litellm.policy import load_policy
    from mm_litellm.proxy.config import read_base_config
    from mm_litellm.proxy.mock import mock_policy_text
    from mm_litellm.testing.upstream import FakeUpstream

    _preflight()
    try:
        base = read_base_config(args.config)
    except ConfigurationError as exc:
        fail(str(exc))
    from mm_litellm.proxy.config import policy_path_of

    chosen = args.policy or os.environ.get(POLICY_ENV) or policy_path_of(base, args.config)
    if chosen is None:
        fail(f"no policy: pass --policy FILE, set {POLICY_ENV}, or set mm_litellm.policy in {args.config}")
    try:
        policy = load_policy(chosen)
    except PolicyError as exc:
        fail(f"invalid policy:\n{exc}")
    scratch = keep_mocks_out_of_the_ledger()
    with (
        FakeUpstream(reply=args.mock) as upstream,
        tempfile.TemporaryDirectory(prefix="mm-litellm-proxy-") as tmp,
    ):
        mocked = Path(tmp) / "policy.mock.yaml"
        mocked.write_text(mock_policy_text(policy, chosen, upstream.base_url), encoding="utf-8")
        config = generated_config(args.config, str(mocked))
        ledger = scratch or os.environ.get("MM_LITELLM_DATABASE_URL") or "the policy's database"
        print(
            f"mm-litellm proxy --mock: every model of {chosen} answers from a local fake upstream at "
            f"{upstream.base_url} (no provider is called); ledger: {ledger}",
            file=sys.stderr,
        )
        return _start(args, yaml.safe_dump(config, sort_keys=False), Path(tmp), _child_env())


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


def _new_entry(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    from mm_litellm.proxy.keys import hash_key, new_key

    secret = new_key(key_id=args.id)  # sk-mm.<id>.<secret>: the proxy checks only this key's hash
    entry: dict[str, Any] = {"hash": hash_key(secret, args.scheme)}
    for name in ("user", "team"):
        if getattr(args, name):
            entry[name] = getattr(args, name)
    if args.tag:
        entry["tags"] = list(args.tag)
    return secret, entry


def handle_keys_new(args: argparse.Namespace) -> int:
    from mm_litellm.proxy.keys_file import entry_text

    secret, entry = _new_entry(args)
    print(
        f"# API key for '{args.id}' (shown once; give it to its owner, store only the hash):", file=sys.stderr
    )
    print(f"#   {secret}", file=sys.stderr)
    print("# append under the keys file's 'keys:' (or use: mm-litellm keys add)", file=sys.stderr)
    print(entry_text(args.id, entry), end="")
    return 0


def handle_keys_add(args: argparse.Namespace) -> int:
    from mm_litellm.cli.common import resolve_policy
    from mm_litellm.proxy.keys_file import add_key_entry, keys_file_of

    if args.keys_file:
        path = Path(args.keys_file)
    else:
        policy = resolve_policy(args.policy)
        found = keys_file_of(policy)
        if found is None:
            fail(f"{policy.source} names no proxy.keys_file: pass --keys-file FILE, or set proxy.keys_file")
        path = found
    secret, entry = _new_entry(args)
    try:
        add_key_entry(path, args.id, entry)
    except PolicyError as exc:
        fail(f"key not added:\n{exc}")
    print(
        f"mm-litellm: added key '{args.id}' to {path} (its hash only); the key is printed once, on stdout.\n"
        "A running proxy accepts it after a restart, or at once if it watches its policy (MM_LITELLM_WATCH).",
        file=sys.stderr,
    )
    print(secret)
    return 0


def handle_keys_hash(args: argparse.Namespace) -> int:
    from mm_litellm.proxy.keys import hash_key, well_formed

    secret = sys.stdin.readline().strip()
    if not well_formed(secret):
        fail("read no usable key from stdin (printable ASCII, no spaces, at most 256 characters)")
    print(hash_key(secret, args.scheme))
    return 0
