"""A learned route through the proxy door: the proxy serves what ``explain`` predicts, per prompt.

The shipped example policy's ``smart`` route (a router trained on the shared recordings, in
config/routers/) runs in a real ``mm-litellm proxy --mock``: LiteLLM's server, our hooks, a
key from a keys file, the fake upstream. For prompts the router sends to different models,
the ``x-mm-model`` header names the model that the SDK's dry run chose for the same prompt.
"""

from __future__ import annotations

import secrets
import shutil
import sys
from pathlib import Path

import httpx
import pytest

import mm_litellm
from mm_litellm.proxy.keys import hash_key
from tests.proxy.support import ROOT, start_proxy, stop_proxy

PROMPTS = [
    "hi",
    "What is the capital of France?",
    "Solve: a train leaves at 3pm going 60 mph; another at 4pm going 80 mph. When does the second "
    "catch up? Show your work step by step.",
    "Write a haiku about spring.",
]


@pytest.mark.slow
def test_the_proxy_serves_the_learned_choice_for_each_prompt(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)  # the example policy, its routers/ and prompts/
    key = "sk-mm-learned-" + secrets.token_urlsafe(24)
    (config / "keys.yaml").write_text(f'keys:\n  tester:\n    hash: "{hash_key(key)}"\n    user: tester\n')
    policy = config / "policy.yaml"
    expected = {p: mm_litellm.explain("smart", prompt=p, policy=str(policy)).plan.target for p in PROMPTS}
    assert set(expected.values()) == {"gpt-4o", "gpt-4o-mini"}, "the prompts must exercise both choices"

    master = "sk-master-" + secrets.token_urlsafe(32)
    command = [sys.executable, "-m", "mm_litellm.cli.main", "proxy", "--mock", "--policy", str(policy)]
    proc, url, log = start_proxy(tmp_path, {"LITELLM_MASTER_KEY": master}, command=command)
    try:
        for prompt, model in expected.items():
            response = httpx.post(
                url + "/v1/chat/completions",
                headers={"Authorization": f"Bearer {key}"},
                json={"model": "smart", "messages": [{"role": "user", "content": prompt}]},
                timeout=60,
            )
            assert response.status_code == 200, (prompt, response.text, log.read_text()[-3000:])
            assert response.headers["x-mm-route"] == "smart"
            assert response.headers["x-mm-model"] == model, prompt
            assert float(response.headers["x-mm-cost"]) > 0
    finally:
        stop_proxy(proc)
