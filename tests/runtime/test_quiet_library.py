"""A library stays quiet: nothing mm_litellm does reaches the host application's stdout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r'''
import logging, sys
sys.path.insert(0, {budget_dir!r})
from budget_support import BASE, MESSAGES
import mm_litellm

policy = BASE + """
database: {{url: "sqlite:///{db}"}}
budgets:
  limits:
    - {{name: tiny, scope: global, window: daily, limit_usd: 0.0000001, on_exceed: downgrade, downgrade_to: local}}
"""
logging.basicConfig(stream=sys.stderr, level=logging.WARNING)  # the host's own choice: stderr
mm_litellm.configure(mm_litellm.parse_policy(policy))
r = mm_litellm.completion(model="auto", messages=MESSAGES, mock_response="hi")  # downgraded: warns
assert mm_litellm.decision_of(r)["model"] == "local", mm_litellm.decision_of(r)
broken = BASE + """
database: {{url: "sqlite:////nonexistent-dir/x/ledger.db"}}
budgets:
  on_store_error: allow
  limits: [{{name: g, scope: global, window: daily, limit_usd: 10}}]
"""
mm_litellm.configure(mm_litellm.parse_policy(broken))
mm_litellm.completion(model="auto", messages=MESSAGES, mock_response="hi")  # the store fails: logs an error
mm_litellm.configure(None)
'''


@pytest.mark.slow
def test_nothing_reaches_stdout_from_calls_that_warn(tmp_path: Path) -> None:
    script = SCRIPT.format(budget_dir=str(ROOT / "tests" / "budget"), db=tmp_path / "ledger.db")
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", PYTHONPATH=str(ROOT))
    env.pop("MM_LITELLM_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == ""
    assert "budget.downgrade" in done.stderr  # the warning went through logging, to the host's handler
    assert "budget.store_failed" in done.stderr
