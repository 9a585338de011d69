"""One real LiteLLM proxy (started through ``mm-litellm proxy``) over a FakeUpstream, per module.

Startup takes several seconds on these machines, so every test of a module shares the process;
tests script the upstream per model name and never depend on each other's order.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from mm_litellm.testing.upstream import FakeUpstream
from tests.proxy.support import (
    ALICE_KEY,
    BOB_KEY,
    DAVE_KEY,
    ERIN_KEY,
    NARROW_KEY,
    RunningProxy,
    start_proxy,
    stop_proxy,
    write_workdir,
)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    workdir = tmp_path_factory.mktemp("proxy")
    master = "sk-master-" + secrets.token_urlsafe(32)
    with FakeUpstream() as upstream:
        write_workdir(workdir, upstream.base_url)
        proc, url, log = start_proxy(workdir, {"LITELLM_MASTER_KEY": master})
        try:
            yield RunningProxy(
                url=url,
                master_key=master,
                upstream=upstream,
                log=log,
                keys={
                    "alice": ALICE_KEY,
                    "bob": BOB_KEY,
                    "narrow": NARROW_KEY,
                    "erin": ERIN_KEY,
                    "dave": DAVE_KEY,
                },
                workdir=workdir,
            )
        finally:
            stop_proxy(proc)
