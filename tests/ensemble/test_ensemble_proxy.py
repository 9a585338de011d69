"""The fourth entry point: a real LiteLLM proxy process serving ``ensemble/<name>`` through
``litellm_settings.custom_provider_map`` (members answer with deployment-level mocks)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

POLICY = """
models:
  a: {litellm_params: {model: openai/gpt-4o-mini, api_key: none, mock_response: "The answer is 42."}}
  b: {litellm_params: {model: openai/gpt-4o, api_key: none, mock_response: "#### 42"}}
  c: {litellm_params: {model: anthropic/claude-haiku-4-5, api_key: none, mock_response: "41"}}
router: {num_retries: 0}
ensembles:
  vote: {strategy: voting, members: [a, b, c], normalise: number}
"""

PROXY = """
model_list:
  - model_name: careful
    litellm_params: {model: ensemble/vote}
litellm_settings:
  custom_provider_map:
    - {provider: ensemble, custom_handler: mm_litellm.integrations.ensemble_provider.handler}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.proxy
@pytest.mark.slow
def test_proxy_serves_an_ensemble_with_its_summed_cost(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "proxy.yaml").write_text(PROXY)
    port, key = _free_port(), "sk-" + secrets.token_hex(16)
    env = os.environ | {
        "MM_LITELLM_POLICY": str(tmp_path / "policy.yaml"),
        "LITELLM_MASTER_KEY": key,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "PYTHONPATH": str(ROOT),
    }
    litellm_cli = Path(sys.executable).with_name("litellm")
    proc = subprocess.Popen(
        [
            str(litellm_cli),
            "--config",
            str(tmp_path / "proxy.yaml"),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(base + "/health/liveliness", timeout=1)
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                time.sleep(0.25)
        request = urllib.request.Request(
            base + "/v1/chat/completions",
            method="POST",
            data=json.dumps({"model": "careful", "messages": [{"role": "user", "content": "6*7?"}]}).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.loads(response.read())
            cost = float(response.headers["x-litellm-response-cost"])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert body["choices"][0]["message"]["content"] == "The answer is 42."
    assert body["usage"] == {"completion_tokens": 60, "prompt_tokens": 30, "total_tokens": 90}
    import litellm

    expected = sum(
        sum(litellm.cost_per_token(model=m, prompt_tokens=10, completion_tokens=20))
        for m in ("gpt-4o-mini", "gpt-4o", "anthropic/claude-haiku-4-5")
    )
    assert cost == pytest.approx(expected)
