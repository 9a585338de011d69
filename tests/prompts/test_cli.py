"""``mm-litellm prompts``: every action, in-process, against a policy with its own database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mm_litellm.cli.main import main
from tests.conftest import ROOT


@pytest.fixture
def policy(tmp_path: Path, prompt_dir: Path, db_url: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(f"""
version: 1
database: {{url: "{db_url}"}}
prompts:
  dir: "{prompt_dir}"
  experiments:
    qa-ab:
      prompt: qa
      variants: {{control: {{label: production}}, candidate: {{version: 2, weight: 3}}}}
      min_samples: 2
""")
    return str(path)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_list_and_show(policy: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "prompts", "list", "--policy", policy)
    assert code == 0
    assert out.splitlines()[1].split() == ["qa", "1,2", "production=1", "qa-ab"]
    code, out, _ = cli(capsys, "prompts", "list", "--json", "--policy", policy)
    assert json.loads(out) == [
        {"id": "qa", "versions": [1, 2], "labels": {"production": 1}, "experiment": "qa-ab"}
    ]
    code, out, _ = cli(capsys, "prompts", "show", "qa", "--version", "2", "--json", "--policy", policy)
    shown = json.loads(out)
    assert (shown["version"], shown["variables"], shown["labels"]) == (2, ["question"], [])
    assert shown["params"] == {
        "temperature": 0.7,
        "max_tokens": 200,
        "response_format": {"type": "json_object"},
    }
    code, out, _ = cli(capsys, "prompts", "show", "qa", "--policy", policy)
    assert "version: 1\n" in out and "labels:\n- production\n" in out


def test_render(policy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "prompts", "render", "qa", "--var", "question=why?", "--policy", policy)
    assert code == 0
    assert json.loads(out) == {
        "prompt": "qa",
        "version": 1,
        "model": "small",
        "params": {"temperature": 0.1, "max_tokens": 50},
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Q: why?"},
        ],
    }
    (tmp_path / "vars.json").write_text('{"question": ["a", "b"]}')
    code, out, _ = cli(
        capsys,
        "prompts",
        "render",
        "qa",
        "--label",
        "production",
        "--vars",
        str(tmp_path / "vars.json"),
        "--policy",
        policy,
    )
    assert json.loads(out)["messages"][1]["content"] == 'Q: ["a", "b"]'
    code, _, err = cli(
        capsys, "prompts", "render", "qa", "--var", "other=1", "--var", "question=q", "--policy", policy
    )
    assert code == 1
    assert err == "mm-litellm: prompt 'qa' v1: undeclared variables: other; declared variables: question\n"


def test_create_version_label_history_diff(
    policy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = tmp_path / "v3.yaml"
    new.write_text(
        "variables: [question]\nparams: {temperature: 0}\n"
        "messages:\n  - {role: system, content: Be exact.}\n  - {role: user, content: '{{ question }}'}\n"
    )
    code, out, _ = cli(
        capsys,
        "prompts",
        "new-version",
        "qa",
        str(new),
        "--label",
        "staging",
        "--by",
        "ana",
        "--policy",
        policy,
    )
    assert (code, out) == (0, "created qa v3\nstaging -> v3\n")
    code, out, _ = cli(
        capsys,
        "prompts",
        "label",
        "qa",
        "3",
        "production",
        "--by",
        "ana",
        "--note",
        "ship",
        "--policy",
        policy,
    )
    assert out == "qa production: v1 -> v3\n"
    code, out, _ = cli(capsys, "prompts", "label", "qa", "1", "production", "--by", "bo", "--policy", policy)
    assert out == "qa production: v3 -> v1\n"
    code, out, _ = cli(capsys, "prompts", "history", "qa", "--policy", policy)
    lines = [line.split(None, 2)[2] for line in out.splitlines()]
    assert lines == [
        "staging      - -> v3  by ana  (set with create-version)",
        "production   v1 -> v3  by ana  (ship)",
        "production   v3 -> v1  by bo",
    ]
    code, out, _ = cli(capsys, "prompts", "diff", "qa", "1", "3", "--policy", policy)
    assert out.startswith("--- qa v1\n+++ qa v3\n")
    assert "-  content: 'Q: {{ question }}'\n" in out and "+  content: Be exact.\n" in out


def test_refusals_are_reported(policy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("variables: [q]\nmessages: [{role: user, content: '{{ q.__class__ }}'}]\n")
    code, _, err = cli(capsys, "prompts", "create-version", "qa", str(bad), "--policy", policy)
    assert code == 1
    assert err == (
        "mm-litellm: prompt 'qa' v3 messages[0] (user): '{{ q.__class__ }}' uses attribute access; "
        "placeholders are plain variable names, written {{ name }}\n"
    )
    code, _, err = cli(capsys, "prompts", "label", "qa", "9", "production", "--policy", policy)
    assert err == "mm-litellm: prompt 'qa' has no version 9; versions: 1, 2\n"
    code, _, err = cli(capsys, "prompts", "record-outcome", "nope", "--success", "--policy", policy)
    assert code == 1 and "no experiment call 'nope'" in err


def test_experiment_report_and_record_outcome(policy: str, capsys: pytest.CaptureFixture[str]) -> None:
    from mm_litellm.policy import load_policy
    from mm_litellm.prompts.registry import PromptRegistry

    registry = PromptRegistry.from_policy(load_policy(policy))
    for i in range(4):
        registry.store.add_assignment(
            call_id=f"c{i}",
            experiment="qa-ab",
            variant="control" if i < 2 else "candidate",
            prompt_id="qa",
            version=1 if i < 2 else 2,
            unit=None,
        )
    code, out, _ = cli(capsys, "prompts", "record-outcome", "c0", "--failure", "--policy", policy)
    assert out == "recorded for c0 (experiment qa-ab, variant control)\n"
    for call in ("c1",):
        cli(capsys, "prompts", "record-outcome", call, "--failure", "--policy", policy)
    for call in ("c2", "c3"):
        cli(capsys, "prompts", "record-outcome", call, "--success", "--policy", policy)
    code, out, _ = cli(capsys, "prompts", "ab-report", "qa-ab", "--policy", policy)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "experiment qa-ab (prompt qa, metric success, control control)"
    assert lines[2].split()[:6] == ["control", "1", "2", "0", "2", "0.0000"]
    assert lines[-1].startswith("decision: no winner: no significant difference")
    code, out, _ = cli(capsys, "prompts", "experiment-report", "qa-ab", "--json", "--policy", policy)
    data = json.loads(out)
    assert [v["n"] for v in data["variants"]] == [2, 2] and data["decision"]["winner"] is None


def test_help_lists_the_actions() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mm_litellm.cli.main", "prompts", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout
    for action in (
        "list",
        "show",
        "render",
        "create-version",
        "new-version",
        "label",
        "history",
        "diff",
        "experiment-report",
        "ab-report",
        "record-outcome",
    ):
        assert action in out
