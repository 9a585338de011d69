"""prompt_id through a real LiteLLM proxy process with mm_litellm's prompt manager as a callback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

MASTER_KEY = "sk-prompts-test-" + "k" * 24


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.proxy
@pytest.mark.slow
def test_prompt_id_through_the_litellm_proxy(tmp_path: Path, fake_upstream: Any, prompt_dir: Path) -> None:
    fake_upstream.script(reply="ok")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f'version: 1\ndatabase: {{url: "sqlite:///{tmp_path / "p.db"}"}}\nprompts: {{dir: "{prompt_dir}"}}\n'
    )
    config = tmp_path / "proxy.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: qa-model\n"
        "    litellm_params:\n"
        f'      {{model: openai/gpt-4o-mini, api_base: "{fake_upstream.base_url}", api_key: sk-fake}}\n'
        "litellm_settings:\n"
        "  callbacks: mm_litellm.integrations.prompt_manager.prompt_manager\n"
    )
    port = _free_port()
    env = dict(
        os.environ,
        LITELLM_MASTER_KEY=MASTER_KEY,
        MM_LITELLM_POLICY=str(policy),
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        PYTHONPATH=str(ROOT),
    )
    litellm_cli = Path(sys.executable).with_name("litellm")
    log = (tmp_path / "proxy.log").open("w")  # a file, not a pipe nobody reads (it would fill and block)
    proc = subprocess.Popen(
        [str(litellm_cli), "--config", str(config), "--port", str(port), "--host", "127.0.0.1"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/health/liveliness", timeout=1)
                break
            except OSError:
                started = proc.poll() is None and time.monotonic() < deadline
                assert started, (tmp_path / "proxy.log").read_text()[-2000:]
                time.sleep(0.3)
        body = {
            "model": "qa-model",
            "messages": [{"role": "user", "content": "thanks"}],
            "prompt_id": "qa",
            "prompt_version": 2,
            "prompt_variables": {"question": "Why?"},
        }
        request = urllib.request.Request(
            f"{base}/v1/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.loads(response.read())["choices"][0]["message"]["content"] == "ok"
        sent = fake_upstream.requests[-1]["body"]
        assert [m["content"] for m in sent["messages"]] == [
            'Answer as JSON: {"answer": ...}',
            "Why?",
            "thanks",
        ]
        assert (sent.get("temperature"), sent.get("max_tokens")) == (0.7, 200), (
            tmp_path / "proxy.log"
        ).read_text()[-3000:]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
