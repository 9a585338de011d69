"""``mm-litellm batch``: output rows, resume, torn lines, SIGKILL and SIGTERM mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from mm_litellm.cli.main import main
from tests.conftest import EXAMPLE_POLICY, ROOT


def write_input(path: Path, count: int, extra: list[str] | None = None) -> Path:
    lines = [json.dumps({"id": f"q{i}", "prompt": f"question {i}"}) for i in range(count)]
    path.write_text("\n".join(lines + (extra or [])) + "\n", encoding="utf-8")
    return path


def output_rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def cli(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True")
    return subprocess.Popen(
        [sys.executable, "-m", "mm_litellm.cli.main", "batch", *args],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_rows_results_and_errors_are_written_then_a_rerun_skips_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_input(
        tmp_path / "in.jsonl",
        5,
        [
            "{broken",
            json.dumps({"messages": [{"role": "user", "content": "hi"}], "metadata": {"priority": "high"}}),
            json.dumps({"id": "q1", "prompt": "x"}),
        ],
    )
    out = tmp_path / "out.jsonl"
    code = main(
        ["batch", str(source), "-o", str(out), "--policy", str(EXAMPLE_POLICY), "--mock", "yes", "-q"]
    )
    assert code == 3  # finished, with failed rows
    rows = sorted(output_rows(out), key=lambda r: r["index"])
    assert [r["index"] for r in rows] == list(range(8))
    assert [r["status"] for r in rows] == ["ok"] * 5 + ["error", "ok", "error"]
    assert rows[0]["id"] == "q0" and rows[0]["result"]["response"] == "yes"  # type: ignore[index]
    assert (
        rows[5]["error"]
        == "in.jsonl:6: not valid JSON (Expecting property name enclosed in double quotes at column 2)"
    )
    assert rows[6]["result"]["model_used"] == "gpt-4o"  # type: ignore[index]
    assert rows[7]["error"] == "in.jsonl:8: duplicate id 'q1' (first at line 2)" and rows[7]["id"] is None
    assert "8 requests: 6 ok, 2 failed" in capsys.readouterr().out
    assert main(["batch", str(source), "-o", str(out), "--policy", str(EXAMPLE_POLICY), "--mock", "-q"]) == 0
    assert capsys.readouterr().out.startswith("nothing to do: all 8 rows")
    assert len(output_rows(out)) == 8


def test_a_torn_last_line_is_cut_and_its_row_rerun(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_input(tmp_path / "in.jsonl", 3)
    out = tmp_path / "out.jsonl"
    assert main(["batch", str(source), "-o", str(out), "--policy", str(EXAMPLE_POLICY), "--mock", "-q"]) == 0
    lines = out.read_text().splitlines(keepends=True)
    last = next(line for line in lines if '"q2"' in line)
    out.write_text("".join(line for line in lines if line is not last) + last[:40])  # q2 torn mid-line
    assert main(["batch", str(source), "-o", str(out), "--policy", str(EXAMPLE_POLICY), "--mock", "-q"]) == 0
    assert "cut a torn last line (40 bytes)" in capsys.readouterr().err
    assert sorted(r["id"] for r in output_rows(out)) == ["q0", "q1", "q2"]  # type: ignore[type-var]


def test_an_output_file_that_is_not_batch_output_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_input(tmp_path / "in.jsonl", 1)
    out = tmp_path / "out.jsonl"
    out.write_text('{"hello": 1}\n')
    with pytest.raises(SystemExit):
        main(["batch", str(source), "-o", str(out), "--policy", str(EXAMPLE_POLICY), "--mock"])
    assert "out.jsonl:1: not a batch output row" in capsys.readouterr().err


def wait_for_rows(path: Path, at_least: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= at_least:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached {at_least} rows")


@pytest.mark.slow
def test_interrupted_runs_resume_with_every_row_exactly_once(tmp_path: Path) -> None:
    """SIGTERM stops cleanly (whole lines, exit 130); SIGKILL may tear a line; a rerun finishes the job."""
    total = 150
    source = write_input(tmp_path / "in.jsonl", total)
    out = tmp_path / "out.jsonl"
    args = (
        str(source),
        "-o",
        str(out),
        "--policy",
        str(EXAMPLE_POLICY),
        "--mock",
        "--mock-delay",
        "0.05",
        "--max-concurrency",
        "4",
    )

    first = cli(*args)
    wait_for_rows(out, 10)
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=30)
    assert first.returncode == 130, err
    assert "interrupted;" in err and "rerun the same command to resume" in err
    assert out.read_bytes().endswith(b"\n")  # a clean stop leaves whole lines only
    after_term = len(output_rows(out))
    assert 10 <= after_term < total

    second = cli(*args)
    wait_for_rows(out, after_term + 10)
    second.send_signal(signal.SIGKILL)
    second.communicate(timeout=30)
    assert second.returncode == -signal.SIGKILL
    assert out.read_bytes().count(b"\n") < total  # killed mid-run

    third = cli(*args, "-q")
    _, err = third.communicate(timeout=120)
    assert third.returncode == 0, err
    rows = output_rows(out)
    counts = Counter(r["id"] for r in rows)
    assert set(counts) == {f"q{i}" for i in range(total)}
    assert set(counts.values()) == {1}
    assert all(r["status"] == "ok" for r in rows)


def test_progress_line_shows_bar_done_failed_and_cost() -> None:
    import io

    from mm_litellm.cli.batch import Progress

    stream = io.StringIO()
    progress = Progress(total=10, already=2, stream=stream)
    progress.update(True, 0.25)
    progress.update(False, None)
    progress.show(final=True)
    line = stream.getvalue().strip()
    assert line.startswith("[########------------] 4/10 done (2 this run, 1 failed), $0.250000 so far, ")
