"""``mm-litellm policy evaluate | diff | calibrate`` end to end on a synthetic dataset."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mm_litellm.cli.main import main
from mm_litellm.policy import load_policy

KNOB = "routes.auto.rules[long].when.input_tokens.gt"


def test_evaluate_prints_policy_beside_baselines_and_the_time(
    synthetic: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "policy",
                "evaluate",
                "--policy",
                str(synthetic["policy"]),
                "--data",
                str(synthetic["data"]),
                "--split",
                "all",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert (
        "  policy                     1.0000    100.0%     4.6000     46.0%  weak 60.0%, strong 40.0%" in out
    )
    assert "  random, matched cost       0.7600     76.0%     4.6000     46.0%  p(strong)=0.400" in out
    assert "  performance gap recovered (PGR): 100.0%" in out
    assert "evaluated 100 rows in " in out


def test_evaluate_json_and_output_file(
    synthetic: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = synthetic["dir"] / "report.json"
    assert (
        main(
            [
                "policy",
                "evaluate",
                "--policy",
                str(synthetic["policy"]),
                "--data",
                str(synthetic["data"]),
                "--seed",
                "3",
                "--json",
                "-o",
                str(out_file),
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads(out_file.read_text())
    assert report["split"] == "test" and report["seed"] == 3
    assert report["rows_evaluated"] < 100 and report["result"]["quality"] == 1.0


def test_evaluate_sweep_with_plot(synthetic: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    png = synthetic["dir"] / "curve.png"
    assert (
        main(
            [
                "policy",
                "evaluate",
                "--policy",
                str(synthetic["policy"]),
                "--data",
                str(synthetic["data"]),
                "--split",
                "all",
                "--sweep",
                KNOB,
                "--values",
                "0,50,100000",
                "--plot",
                str(png),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "APGR (RouteLLM, x = strong-model call share 0-100%): " in out
    assert "AIQ (RouterBench" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_says_how_to_install(
    synthetic: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(SystemExit):
        main(
            [
                "policy",
                "evaluate",
                "--policy",
                str(synthetic["policy"]),
                "--data",
                str(synthetic["data"]),
                "--split",
                "all",
                "--sweep",
                KNOB,
                "--values",
                "0,50",
                "--plot",
                str(synthetic["dir"] / "x.png"),
            ]
        )
    assert "pip install 'mm-litellm[eval]'" in capsys.readouterr().err


def test_diff_reports_changes_with_intervals(
    synthetic: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "policy",
                "diff",
                str(synthetic["weak"]),
                str(synthetic["policy"]),
                "--data",
                str(synthetic["data"]),
                "--split",
                "all",
                "--samples",
                "200",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "  40 of 100 requests change model (40.0%)" in out
    assert "    weak -> strong: 40" in out
    assert "  quality change:   +0.4000  (95% CI +" in out


def test_calibrate_writes_a_reviewable_policy_that_loads(
    synthetic: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = synthetic["dir"] / "calibrated.yaml"
    assert (
        main(
            [
                "policy",
                "calibrate",
                "--policy",
                str(synthetic["weak"]),
                "--data",
                str(synthetic["data"]),
                "--by",
                "metadata.category",
                "--meta-label",
                "category",
                "--min-rows",
                "3",
                "--target",
                "cost",
                "--max-cost",
                "0.6",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "on train: met" in text and f"wrote {out}" in text
    written = out.read_text()
    assert written.startswith("# Calibrated from ")
    assert "metadata.category:" in written
    assert len(load_policy(out).routes["auto"].rules) == 1


def test_calibrate_knob_needs_values(synthetic: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(
            [
                "policy",
                "calibrate",
                "--policy",
                str(synthetic["policy"]),
                "--data",
                str(synthetic["data"]),
                "--knob",
                KNOB,
                "--out",
                str(synthetic["dir"] / "c.yaml"),
            ]
        )
    assert "--knob needs --values" in capsys.readouterr().err


def test_errors_are_one_line_without_traceback(
    synthetic: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(
            [
                "policy",
                "evaluate",
                "--policy",
                str(synthetic["policy"]),
                "--data",
                str(synthetic["dir"] / "none.jsonl"),
            ]
        )
    assert "cannot read the dataset" in capsys.readouterr().err
