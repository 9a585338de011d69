"""Two proxy processes sharing one PostgreSQL ledger enforce one budget together.

Proxy A is started by ``mm-litellm proxy``; proxy B is plain ``litellm --config proxy.yaml`` (the
hook finds the policy and adds its models itself). Both point at the same PostgreSQL database
(started by the test setup, ``tests/pg.py``); what A spends, B refuses.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from mm_litellm.proxy.keys import hash_key, new_key
from mm_litellm.testing.upstream import FakeUpstream
from tests.pg import pg_server  # noqa: F401  (the session's PostgreSQL server fixture)
from tests.proxy.support import BASE_CONFIG, RunningProxy, launch_proxy, stop_proxy, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.proxy]

KEY = new_key()
LIMIT = 0.0003

POLICY = """
version: 1
database: {{url: "{db}"}}
models:
  small:
    litellm_params: {{model: openai/fake-small, api_base: "{base}", api_key: sk-fake}}
    pricing: {{input_per_mtok: 1, output_per_mtok: 2}}
router: {{num_retries: 0}}
routes:
  auto: {{default: small}}
budgets:
  limits:
    - {{name: shared-cap, scope: global, window: daily, limit_usd: {limit}, on_exceed: block}}
proxy:
  keys:
    tester: {{hash: "{key_hash}", user: tester}}
"""


@pytest.fixture(scope="module")
def two_proxies(tmp_path_factory: pytest.TempPathFactory, pg_server: Any) -> Iterator[tuple[Any, ...]]:  # noqa: F811
    workdir = tmp_path_factory.mktemp("shared")
    master = "sk-master-" + secrets.token_urlsafe(32)
    db = pg_server.create_database()
    with FakeUpstream(prompt_tokens=1, completion_tokens=10) as upstream:
        (workdir / "policy.yaml").write_text(
            POLICY.format(db=db, base=upstream.base_url, limit=LIMIT, key_hash=hash_key(KEY))
        )
        (workdir / "proxy.yaml").write_text(BASE_CONFIG.read_text())
        env = {"LITELLM_MASTER_KEY": master}
        litellm = str(Path(sys.executable).with_name("litellm"))
        # started together: their start-ups (several seconds each) overlap
        a = launch_proxy(workdir, env)
        b = launch_proxy(workdir, env, command=[litellm, "--config", str(workdir / "proxy.yaml")])
        try:
            wait_ready(a)
            wait_ready(b)
            yield (
                RunningProxy(a[1], master, upstream, a[2], {"tester": KEY}),
                RunningProxy(b[1], master, upstream, b[2], {"tester": KEY}),
                db,
            )
        finally:
            stop_proxy(b[0])
            stop_proxy(a[0])


def scalar(db: str, sql: str) -> float:
    import sqlalchemy

    engine = sqlalchemy.create_engine(db)
    with engine.connect() as c:
        total = c.execute(sqlalchemy.text(sql)).scalar()
    engine.dispose()
    return float(total or 0)


def spent_in(db: str) -> float:
    return scalar(db, "SELECT COALESCE(SUM(cost_usd), 0) FROM mm_ledger")


def wait_settled(db: str) -> None:
    """Until no call is held in the store any more (the ledger writers settle in the background)."""
    deadline = time.monotonic() + 15
    while scalar(db, "SELECT COALESCE(SUM(reserved_usd), 0) FROM mm_budget_counter") > 1e-12:
        assert time.monotonic() < deadline, "reservations were never settled"
        time.sleep(0.05)


def test_what_one_proxy_spends_the_other_refuses(two_proxies: tuple[Any, ...]) -> None:
    a, b, db = two_proxies
    hi = [{"role": "user", "content": "hi"}]
    # B (plain litellm on the base config) serves the policy's route like A ...
    raw = b.client(KEY).chat.completions.with_raw_response.create(model="auto", messages=hi, max_tokens=10)
    assert (raw.headers["x-mm-route"], raw.headers["x-mm-model"]) == ("auto", "small")
    assert {"auto", "small"} <= {m.id for m in b.client(KEY).models.list()}
    served = 1
    settled_refusal = False
    for _ in range(60):  # ... then A serves until the shared budget is spent
        try:
            a.client(KEY).chat.completions.create(model="auto", messages=hi, max_tokens=10)
            served += 1
            settled_refusal = False
        except openai.RateLimitError as exc:
            body = exc.body
            assert (
                isinstance(body, dict)
                and body["provider_specific_fields"]["mm_litellm"]["budget"] == "shared-cap"
            )
            if settled_refusal:
                break
            # Calls in flight are held at their estimate, an upper bound of their real cost: once
            # they settle there may be room for one more. Spent means refused with nothing held.
            wait_settled(db)
            settled_refusal = True
    else:
        pytest.fail("proxy A never hit the shared budget")
    assert served >= 4
    with pytest.raises(openai.RateLimitError) as info:  # and B, which served one call, refuses too
        b.client(KEY).chat.completions.create(model="auto", messages=hi, max_tokens=10)
    assert info.value.body["provider_specific_fields"]["mm_litellm"]["budget"] == "shared-cap"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and spent_in(db) < served * 21e-6:
        time.sleep(0.2)  # the ledger writer settles in the background
    spent = spent_in(db)
    assert 0 < spent <= LIMIT
