"""Budget tests: each test gets its own database; PostgreSQL tests use tests/pg.py's cluster."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from budget_support import BASE, MESSAGES, prompt_tokens  # noqa: F401  (shared with the test modules)
from pg import pg_server, pg_url  # noqa: F401  (fixtures re-exported for this package)


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite ledger for this test (through MM_LITELLM_DATABASE_URL)."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("MM_LITELLM_DATABASE_URL", url)
    return url


@pytest.fixture
def budget_policy(mm_policy: Callable[[Any], Any], db_url: str) -> Callable[[str], Any]:
    """Activate BASE plus the given ``budgets:`` YAML (indented at top level) on a fresh database."""

    def activate(budgets_yaml: str, base: str = BASE) -> Any:
        return mm_policy(base + budgets_yaml)

    return activate


@pytest.fixture
def service() -> Iterator[Callable[[], Any]]:
    """The active runtime's budget service (flushed at the end of the test)."""
    from mm_litellm import runtime
    from mm_litellm.budget.guard import service_for

    made: list[Any] = []

    def get() -> Any:
        rt = runtime.current()
        assert rt is not None
        svc = service_for(rt)
        made.append(svc)
        return svc

    yield get
    for svc in made:
        if svc is not None:
            svc.flush(timeout=5)
