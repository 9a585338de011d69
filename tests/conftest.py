"""Shared test set-up: offline LiteLLM, and no state leaking between tests.

Each test gets: the local price map (no download), no active policy, LiteLLM's global
callbacks and price table restored afterwards. Budget tests get their own database through
their own fixtures (``tmp_path``).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.pop("MM_LITELLM_POLICY", None)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_POLICY = ROOT / "config" / "policy.yaml"

TEST_POLICY = """
version: 1
models:
  small:
    litellm_params: {model: openai/gpt-4o-mini, api_key: os.environ/TEST_OPENAI_KEY}
    tier: basic
  big:
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/TEST_OPENAI_KEY}
    tier: advanced
  claude:
    litellm_params: {model: anthropic/claude-sonnet-4-5, api_key: os.environ/TEST_ANTHROPIC_KEY}
    tier: advanced
  wide:
    litellm_params: {model: gemini/gemini-2.5-flash, api_key: os.environ/TEST_GEMINI_KEY}
    tier: intermediate
aliases:
  gpt-4: big
router:
  num_retries: 0
  context_window_fallbacks: {small: [wide]}
routes:
  auto:
    rules:
      - {name: vision, when: {has_images: true}, use: big}
      - {name: vip, when: {priority: high}, use: claude}
    default: small
    fallbacks: [claude]
default_route: auto
"""
"""A small policy for unit tests: no retries (LiteLLM's retries really sleep)."""


@pytest.fixture(autouse=True, scope="session")
def _ledger_outside_the_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A policy with ``budgets:`` records every call: keep that database out of the repo and cwd."""
    saved = os.environ.get("MM_LITELLM_DATABASE_URL")
    os.environ["MM_LITELLM_DATABASE_URL"] = f"sqlite:///{tmp_path_factory.mktemp('ledger') / 'mm_litellm.db'}"
    yield
    if saved is None:
        os.environ.pop("MM_LITELLM_DATABASE_URL", None)
    else:
        os.environ["MM_LITELLM_DATABASE_URL"] = saved


@pytest.fixture(autouse=True)
def _isolate_litellm_and_runtime() -> Iterator[None]:
    """No active policy; structlog, LiteLLM callbacks, custom providers (a policy's ensemble
    provider registered by a test) and added price entries reset after."""
    from mm_litellm import runtime
    from mm_litellm.routing.latency import LATENCY

    runtime.configure(None)
    litellm = _loaded_litellm()
    keys = set(litellm.model_cost) if litellm is not None else None
    providers = list(litellm.custom_provider_map) if litellm is not None else None
    yield
    runtime.configure(None)
    runtime.wait_retired(10)  # the replaced runtimes close (ledger written, callbacks unregistered)
    structlog.reset_defaults()  # the CLI configures structlog in-process
    LATENCY.reset()  # observed latencies steer speed_optimized routes
    litellm = _loaded_litellm()
    if litellm is not None:
        litellm.logging_callback_manager._reset_all_callbacks()
        if providers is not None and litellm.custom_provider_map != providers:
            litellm.custom_provider_map = providers
            litellm.utils.custom_llm_setup()
        if keys is not None:
            for key in set(litellm.model_cost) - keys:
                del litellm.model_cost[key]


@pytest.fixture
def prices_restored() -> Iterator[None]:
    """For tests that change existing LiteLLM prices: the whole price table is restored after."""
    import litellm

    saved = copy.deepcopy(litellm.model_cost)
    yield
    litellm.model_cost.clear()
    litellm.model_cost.update(saved)


def _loaded_litellm():  # type: ignore[no-untyped-def]
    import sys

    return sys.modules.get("litellm")


@pytest.fixture
def policy_file(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write YAML text to a policy file and return its path."""

    def write(text: str = TEST_POLICY, name: str = "policy.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def _needs_proxy(item: pytest.Item) -> bool:
    """Marked ``proxy``, or in tests/proxy/ (the proxy's own tests import its server's modules)."""
    return item.get_closest_marker("proxy") is not None or item.nodeid.startswith("tests/proxy/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``proxy`` skip, saying what to install, where LiteLLM's proxy server is absent."""
    if not any(_needs_proxy(item) for item in items):
        return
    from mm_litellm.proxy.requirements import INSTALL_HINT, missing_proxy_requirements

    missing = missing_proxy_requirements()
    if not missing:
        return
    skip = pytest.mark.skip(
        reason=f"needs LiteLLM's proxy server ({INSTALL_HINT}); missing: {', '.join(missing[:5])}"
    )
    for item in items:
        if _needs_proxy(item):
            item.add_marker(skip)
