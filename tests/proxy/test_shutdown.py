"""Stopping the proxy (SIGTERM) right after answering loses no ledger row."""

from __future__ import annotations

import secrets
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from mm_litellm.testing.upstream import FakeUpstream
from tests.proxy.support import start_proxy, stop_proxy

POLICY = """
version: 1
models:
  small:
    litellm_params: {{model: openai/fake-small, api_base: "{base}", api_key: sk-fake}}
    pricing: {{input_per_mtok: 1, output_per_mtok: 1}}
router: {{num_retries: 0}}
routes:
  auto: {{default: small}}
budgets:
  limits: [{{name: g, scope: global, window: daily, limit_usd: 100}}]
"""


@pytest.mark.slow
def test_sigterm_right_after_the_answers_keeps_every_row(tmp_path: Path) -> None:
    master = "sk-master-" + secrets.token_urlsafe(32)
    with FakeUpstream() as upstream:
        upstream.script(reply="ok", prompt_tokens=10, completion_tokens=5)
        (tmp_path / "policy.yaml").write_text(POLICY.format(base=upstream.base_url), encoding="utf-8")
        proc, url, log = start_proxy(tmp_path, {"LITELLM_MASTER_KEY": master})
        try:

            def call(_: int) -> int:
                r = httpx.post(
                    url + "/v1/chat/completions",
                    headers={"Authorization": f"Bearer {master}"},
                    json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
                    timeout=30,
                )
                return r.status_code

            with ThreadPoolExecutor(8) as pool:
                codes = list(pool.map(call, range(40)))
        finally:
            stop_proxy(proc)  # at once: some success events are still queued in LiteLLM's worker
    assert codes == [200] * 40
    with sqlite3.connect(tmp_path / "mm_litellm.db") as db:
        rows = db.execute("SELECT COUNT(*) FROM mm_ledger WHERE status = 'success'").fetchone()[0]
    assert rows == 40, log.read_text()[-2000:]
