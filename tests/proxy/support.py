"""Helpers for the proxy tests: the test policy and keys, starting and stopping a real proxy process."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from mm_litellm.proxy.keys import hash_key
from mm_litellm.testing.upstream import FakeUpstream

ROOT = Path(__file__).resolve().parents[2]
BASE_CONFIG = ROOT / "config" / "proxy.yaml"

ALICE_KEY = "sk-mm-alice-" + secrets.token_urlsafe(24)
BOB_KEY = "sk-mm-bob-" + secrets.token_urlsafe(24)
NARROW_KEY = "sk-mm-narrow-" + secrets.token_urlsafe(24)
ERIN_KEY = "sk-mm-erin-" + secrets.token_urlsafe(24)
DAVE_KEY = "sk-mm-dave-" + secrets.token_urlsafe(24)

POLICY = """
version: 1
models:
  small:
    litellm_params: {{model: openai/fake-small, api_base: "{base}", api_key: sk-fake}}
    tier: basic
    pricing: {{input_per_mtok: 1, output_per_mtok: 2}}
  big:
    litellm_params: {{model: openai/fake-big, api_base: "{base}", api_key: sk-fake}}
    tier: advanced
    pricing: {{input_per_mtok: 10, output_per_mtok: 30}}
  flaky:
    litellm_params: {{model: openai/fake-flaky, api_base: "{base}", api_key: sk-fake}}
    tier: basic
    pricing: {{input_per_mtok: 1, output_per_mtok: 2}}
  backup:
    litellm_params: {{model: openai/fake-backup, api_base: "{base}", api_key: sk-fake}}
    tier: basic
    pricing: {{input_per_mtok: 1, output_per_mtok: 2}}
aliases:
  legacy-gpt: big
router:
  num_retries: 0
routes:
  auto:
    rules:
      - {{name: vip, when: {{priority: high}}, use: big}}
      - {{name: bobs-route, when: {{user: bob}}, use: big}}
      - {{name: research-team, when: {{team: research}}, use: big}}
      - {{name: flaky-path, when: {{metadata.path: flaky}}, use: flaky, fallbacks: [backup]}}
      - {{name: vote, when: {{metadata.vote: true}}, use: ensemble/trio}}
      - {{name: long-input, when: {{input_tokens: {{gt: 500}}}}, use: big}}
    default: small
    fallbacks: [backup]
  careful: {{default: small, escalate: unsure}}
  strict:
    rules:
      - {{name: only-vip, when: {{priority: high}}, use: big}}
chains:
  unsure: [small, big]
escalation: {{min_confidence: 0.6, max_hops: 2}}
ensembles:
  trio: {{strategy: voting, members: [small, big, backup], normalise: text, on_disagreement: weight}}
budgets:
  limits:
    - {{name: erin-cap, scope: user, match: [erin], window: daily, limit_usd: 0.00001, on_exceed: block}}
    - {{name: dave-cap, scope: user, match: [dave], window: daily, limit_usd: 0.00001, on_exceed: downgrade,
       downgrade_to: small}}
prompts:
  dir: prompts          # relative to the proxy's working directory (the test's workdir)
proxy:
  keys_file: keys.yaml
"""

SUMMARISE_PROMPT = """
name: Summarise
labels: {production: 1}
versions:
  - version: 1
    variables: [text]
    model: auto
    params: {temperature: 0.2, max_tokens: 50}
    messages:
      - {role: system, content: "You summarise."}
      - {role: user, content: "Summarise: {{ text }}"}
"""


def write_workdir(workdir: Path, upstream_base: str) -> None:
    """The test policy, keys file and prompts directory in ``workdir``."""
    (workdir / "policy.yaml").write_text(POLICY.format(base=upstream_base), encoding="utf-8")
    (workdir / "keys.yaml").write_text(KEYS, encoding="utf-8")
    (workdir / "prompts").mkdir(exist_ok=True)
    (workdir / "prompts" / "summarise.yaml").write_text(SUMMARISE_PROMPT, encoding="utf-8")


KEYS = f"""
keys:
  alice:
    hash: "{hash_key(ALICE_KEY)}"
    user: alice
    team: support
    tags: [interactive]
  bob:
    hash: "{hash_key(BOB_KEY, "scrypt")}"
    user: bob
    team: research
    allow_overrides: [fallbacks]
  narrow:
    hash: "{hash_key(NARROW_KEY)}"
    user: carol
    models: [strict]
  erin:
    hash: "{hash_key(ERIN_KEY)}"
    user: erin
  dave:
    hash: "{hash_key(DAVE_KEY)}"
    user: dave
"""


@dataclass
class RunningProxy:
    url: str
    master_key: str
    upstream: FakeUpstream
    log: Path
    keys: dict[str, str]
    """Key id -> secret of the keys declared in the test keys file (alice, bob, narrow, erin, dave)."""
    workdir: Path | None = None
    """The proxy's working directory (its SQLite ledger is ``mm_litellm.db`` there)."""

    def ledger_row(self, call_id: str, timeout: float = 15) -> dict[str, object]:
        """The ledger row of one call (LiteLLM's call id), once the proxy's writer has stored it."""
        import sqlite3

        assert self.workdir is not None
        deadline = time.monotonic() + timeout
        while True:
            try:
                with sqlite3.connect(self.workdir / "mm_litellm.db") as db:
                    db.row_factory = sqlite3.Row
                    row = db.execute("SELECT * FROM mm_ledger WHERE call_id = ?", (call_id,)).fetchone()
            except sqlite3.OperationalError:  # the table is not there yet
                row = None
            if row is not None:
                return dict(row)
            if time.monotonic() > deadline:
                with sqlite3.connect(self.workdir / "mm_litellm.db") as db:
                    recent = db.execute(
                        "SELECT call_id, user, model FROM mm_ledger ORDER BY id DESC LIMIT 5"
                    ).fetchall()
                raise AssertionError(
                    f"no ledger row for call {call_id} after {timeout} s; latest rows: {recent}"
                )
            time.sleep(0.2)

    def ledger_children(self, parent_id: str, expect: int, timeout: float = 15) -> list[dict[str, object]]:
        """Ledger rows with this ``parent_id`` (escalation hops, ensemble members), once ``expect`` exist."""
        import sqlite3

        assert self.workdir is not None
        deadline = time.monotonic() + timeout
        while True:
            with sqlite3.connect(self.workdir / "mm_litellm.db") as db:
                db.row_factory = sqlite3.Row
                rows = [
                    dict(r)
                    for r in db.execute(
                        "SELECT * FROM mm_ledger WHERE parent_id = ? ORDER BY escalation_hop, id",
                        (parent_id,),
                    )
                ]
            if len(rows) >= expect or time.monotonic() > deadline:
                return rows
            time.sleep(0.2)

    def client(self, key: str):  # type: ignore[no-untyped-def]
        """The official OpenAI client for this proxy (no retries: a test sees the first answer)."""
        import openai

        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0, timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch_proxy(
    workdir: Path, env_extra: dict[str, str] | None = None, *, command: list[str] | None = None
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """Start ``mm-litellm proxy`` for ``workdir/policy.yaml`` (or ``command`` + ``--port``), without waiting."""
    port = free_port()
    log = workdir / f"proxy-{port}.log"
    env = dict(os.environ, **(env_extra or {}))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.pop("MM_LITELLM_POLICY", None)
    env.pop("MM_LITELLM_DATABASE_URL", None)  # the test session's ledger override: the policy decides here
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    if command is None:
        command = [
            sys.executable,
            "-m",
            "mm_litellm.cli.main",
            "proxy",
            "--config",
            str(BASE_CONFIG),
            "--policy",
            str(workdir / "policy.yaml"),
        ]
    cmd = [*command, "--port", str(port), "--host", "127.0.0.1"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}", log


def wait_ready(started: tuple[subprocess.Popen[bytes], str, Path], timeout: float = 120) -> None:
    """Wait until ``/health/liveliness`` answers (the process is stopped and the log shown otherwise)."""
    proc, url, log = started
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"proxy exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url + "/health/liveliness", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    stop_proxy(proc)
    raise RuntimeError(f"proxy did not start within {timeout} s:\n{log.read_text()[-4000:]}")


def start_proxy(
    workdir: Path,
    env_extra: dict[str, str] | None = None,
    *,
    command: list[str] | None = None,
    timeout: float = 120,
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """:func:`launch_proxy` and :func:`wait_ready`: returns (process, base URL, log path)."""
    started = launch_proxy(workdir, env_extra, command=command)
    wait_ready(started, timeout)
    return started


def stop_proxy(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
