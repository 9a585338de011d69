"""The figures in docs/evaluation.md still reproduce: ``scripts/eval_figures.py --check`` on the shared data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "routing"
RULES = "evaluate-example,baselines,example-policy,calibrated,sweep"

pytestmark = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"the recorded data sets are not in {DATA} (CI has ../shared beside the clone)"
)


def check(only: str) -> None:
    done = subprocess.run(
        [sys.executable, "scripts/eval_figures.py", "--check", "--only", only],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout[-6000:]}\n{done.stderr[-2000:]}"
    assert "figures up to date" in done.stdout


def test_rule_policy_figures_reproduce() -> None:
    check(RULES)  # about 25 s


@pytest.mark.slow
def test_learned_route_figures_reproduce() -> None:
    pytest.importorskip("sklearn", reason="training the routers needs the learn extra (scikit-learn)")
    check("learned")  # about 80 s: trains a router per data set


def test_a_stale_region_is_reported_with_a_diff(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import eval_figures
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    doc = "a\n<!-- figures:x -->\nold\n<!-- /figures:x -->\nb\n"
    assert eval_figures.replace_region(doc, "x", ["new", "lines"]) == (
        "a\n<!-- figures:x -->\nnew\nlines\n<!-- /figures:x -->\nb\n"
    )
    with pytest.raises(SystemExit, match=r"expected one region <!-- figures:y -->"):
        eval_figures.replace_region(doc, "y", ["z"])
