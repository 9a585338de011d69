"""``litellm --config proxy.yaml`` started directly, without ``mm-litellm proxy``.

The hook finds the policy through the config's ``mm_litellm.policy`` entry and adds the policy's
models to LiteLLM's router on the first request.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mm_litellm.testing.upstream import FakeUpstream
from tests.proxy.support import ALICE_KEY, BASE_CONFIG, RunningProxy, start_proxy, stop_proxy, write_workdir

pytestmark = pytest.mark.slow

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    workdir = tmp_path_factory.mktemp("bare")
    master = "sk-master-" + secrets.token_urlsafe(32)
    with FakeUpstream() as upstream:
        write_workdir(workdir, upstream.base_url)
        # the shipped base config, unchanged: its `mm_litellm.policy: policy.yaml` is relative to it
        (workdir / "proxy.yaml").write_text(BASE_CONFIG.read_text(), encoding="utf-8")
        litellm = str(Path(sys.executable).with_name("litellm"))
        proc, url, log = start_proxy(workdir, {"LITELLM_MASTER_KEY": master},
                                     command=[litellm, "--config", str(workdir / "proxy.yaml")])
        try:
            yield RunningProxy(url=url, master_key=master, upstream=upstream, log=log, keys={"alice": ALICE_KEY})
        finally:
            stop_proxy(proc)


def test_route_and_fallback_work_without_the_generated_config(bare: RunningProxy) -> None:
    bare.upstream.script("fake-flaky", fault="429")
    bare.upstream.script("fake-backup", reply="backup in bare mode")
    client = bare.client(bare.keys["alice"])
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=HI)
    assert raw.headers["x-mm-model"] == "small"
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=HI, extra_body={"metadata": {"path": "flaky"}})
    assert raw.parse().choices[0].message.content == "backup in bare mode"
    assert (raw.headers["x-mm-rule"], raw.headers["x-mm-model"]) == ("flaky-path", "backup")
    assert {"auto", "small", "big"} <= {m.id for m in client.models.list()}
