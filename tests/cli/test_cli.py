"""The mm-litellm command: run (offline), models, policy check, help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mm_litellm.cli.main import main
from tests.conftest import EXAMPLE_POLICY, ROOT


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mm_litellm.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def test_run_mock_prints_answer_model_reason_and_cost(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "What is the capital of France?", "--policy", str(EXAMPLE_POLICY), "--mock"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("answer:  [mocked answer]")
    assert out[1] == "model:   gpt-4o-mini (openai/gpt-4o-mini)"
    assert out[2] == "why:     route 'auto': no rule matched, default"
    assert out[3].startswith("cost:    $0.0000") and out[3].endswith("output tokens at the model's prices")
    assert "no provider was called" in out[5]


def test_run_meta_and_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "result.json"
    assert (
        main(
            [
                "run",
                "hi",
                "--policy",
                str(EXAMPLE_POLICY),
                "--mock",
                "sure",
                "--meta",
                "priority=high",
                "--output",
                str(out_file),
                "--json",
            ]
        )
        == 0
    )
    record = json.loads(out_file.read_text())
    assert json.loads(capsys.readouterr().out) == record
    assert set(record) == {
        "response",
        "model_used",
        "cost",
        "latency",
        "confidence",
        "input_tokens",
        "output_tokens",
        "strategy",
        "ensemble_models",
        "metadata",
        "timestamp",
    }
    assert (record["response"], record["model_used"]) == ("sure", "gpt-4o")
    assert record["metadata"]["decision"]["rule"] == "high-priority"
    assert record["cost"] == pytest.approx(record["input_tokens"] * 2.5e-6 + record["output_tokens"] * 10e-6)


def test_mocked_runs_stay_out_of_the_real_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--mock answers are not spend: the policy's ledger (./mm_litellm.db here) is not written."""
    from mm_litellm.storage import DATABASE_ENV, MIGRATIONS

    monkeypatch.delenv(DATABASE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "hi", "--policy", str(EXAMPLE_POLICY), "--mock"]) == 0
    from mm_litellm.usage import flush

    flush()  # the ledger writer has written the call (to the scratch database)
    assert not list(tmp_path.glob("mm_litellm.db*"))
    assert os.environ[DATABASE_ENV].endswith(f"mm_litellm-mock-v{MIGRATIONS[-1].version}.db")


@pytest.mark.slow
def test_run_without_keys_and_without_mock_names_the_missing_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = run_cli("run", "hi", "--policy", str(EXAMPLE_POLICY))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "mm-litellm: model 'gpt-4o-mini' needs the environment variable OPENAI_API_KEY "
        "(from 'os.environ/OPENAI_API_KEY' in its litellm_params), and it is not set"
    )


def test_run_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "hi", "--policy", str(EXAMPLE_POLICY), "--route", "nope", "--mock"])
    assert info.value.code == 1
    assert (
        capsys.readouterr().err.strip()
        == "mm-litellm: unknown route 'nope'; known: auto, cheap, best, fast, balanced, careful, smart"
    )
    with pytest.raises(SystemExit):
        main(["run", "hi", "--policy", str(EXAMPLE_POLICY), "--meta", "novalue", "--mock"])
    assert "--meta expects KEY=VALUE, got 'novalue'" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: {a: {tier: x}}\n")
    with pytest.raises(SystemExit):
        main(["run", "hi", "--policy", str(bad)])
    assert "invalid policy:" in capsys.readouterr().err


def test_models_lists_prices_from_policy_and_litellm(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--policy", str(EXAMPLE_POLICY), "--json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["gpt-4o-mini"]["input_per_mtok"] == pytest.approx(0.15)
    assert rows["gpt-4o-mini"]["price_source"] == "litellm"
    assert rows["local-llama"]["price_source"] == "policy"
    assert rows["local-llama"]["context_window"] == 8192
    assert main(["models", "--policy", str(EXAMPLE_POLICY)]) == 0
    table = capsys.readouterr().out
    assert "claude-sonnet    advanced     anthropic/claude-sonnet-4-5" in table


def test_unpriced_model_is_shown_as_unpriced(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("models:\n  mystery: {litellm_params: {model: openai/not-a-real-model-xyz}}\n")
    assert main(["models", "--policy", str(policy)]) == 0
    assert "unpriced" in capsys.readouterr().out


def test_policy_check(tmp_path: Path) -> None:
    ok = run_cli("policy", "check", str(EXAMPLE_POLICY))
    assert ok.returncode == 0
    assert ok.stdout.strip().endswith("OK (11 models, 7 routes, 4 aliases, keys file keys.yaml)")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  a: {litellm_params: {model: x}, tier: nope}\nroutez: 1\n")
    result = run_cli("policy", "check", str(bad))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{bad}:2 models.a.tier: Input should be 'basic', 'intermediate', 'advanced' or 'expert'",
        f"{bad}:3 routez: unknown key 'routez'; allowed: version, models, aliases, router, routes, database, "
        "classifier, chains, escalation, ensembles, prompts, budgets, default_route, proxy",
        "",
        f"2 problem(s) in {bad}",
    ]


def test_help_and_version() -> None:
    result = run_cli("--help")
    assert result.returncode == 0 and "run" in result.stdout and "policy" in result.stdout
    assert run_cli("run", "--help").stdout.count("--mock") >= 1
    assert run_cli("--version").stdout.startswith("mm-litellm ")
    assert run_cli().returncode == 2  # a command is required


def test_usage_names_its_ledger_and_points_at_the_mock_scratch_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mm_litellm.cli.common import mock_ledger_path
    from mm_litellm.storage import DATABASE_ENV

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    monkeypatch.delenv(DATABASE_ENV, raising=False)
    assert main(["run", "hi", "--policy", str(EXAMPLE_POLICY), "--mock"]) == 0
    from mm_litellm.usage import flush

    flush()
    assert mock_ledger_path().exists()
    real = tmp_path / "real.db"
    monkeypatch.setenv(DATABASE_ENV, f"sqlite:///{real}")
    capsys.readouterr()
    assert main(["usage", "--policy", str(EXAMPLE_POLICY)]) == 0
    err = capsys.readouterr().err
    assert f"ledger: sqlite:///{real}" in err
    assert f"--mock runs are recorded apart, in {mock_ledger_path()}" in err
