"""Every shell and Python snippet of README.md and docs/*.md runs offline, as written.

Each file's snippets run in order as one script (tests/docs/snippets.py) in a fresh copy of
the repository, with this environment's ``bin`` first on PATH, no provider keys, a scratch
ledger, and port 4000 replaced by a free port. Snippets that need real keys or would install
are marked in the Markdown (``<!-- needs-keys -->``, ``<!-- not-run: why -->``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.docs.snippets import script_of, snippets_of

pytestmark = pytest.mark.slow

PROXY_FILES = {"README.md", "proxy.md"}
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
KEY_VARIABLES = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GROQ_API_KEY",
    "MM_LITELLM_POLICY",
    "MM_LITELLM_DATABASE_URL",
    "LITELLM_MASTER_KEY",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _repo_copy(target: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    shared = ROOT.parent / "shared"  # the recorded data sets the docs train and evaluate on
    if shared.is_dir() and not (target.parent / "shared").exists():
        (target.parent / "shared").symlink_to(shared, target_is_directory=True)
    return target


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, id=p.name, marks=[pytest.mark.proxy] if p.name in PROXY_FILES else []) for p in FILES],
)
def test_snippets_run_offline(path: Path, tmp_path: Path) -> None:
    snippets = snippets_of(path)
    if not any(s.skip is None for s in snippets):
        pytest.skip(f"{path.name}: every snippet is marked (needs keys or not run)")
    work = _repo_copy(tmp_path / "repo")
    port = str(_free_port())
    script = script_of(snippets).replace(":4000", f":{port}").replace("--port 4000", f"--port {port}")
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["MM_LITELLM_DATABASE_URL"] = f"sqlite:///{tmp_path / 'ledger.db'}"
    env["TMPDIR"] = str(tmp_path)
    result = subprocess.run(
        ["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, (
        f"{path.name}: a snippet failed (exit {result.returncode})\n--- stdout\n{result.stdout[-3000:]}"
        f"\n--- stderr\n{result.stderr[-4000:]}"
    )
